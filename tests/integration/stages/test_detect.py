"""detect: roster devices that join the WiFi are found, marked connected and queued once.

The devices are the simulated fleet's (jobs.sim): real HTTP servers on
127.0.1.K, named in the fleet's hosts file, refusing connections while offline.
"""

import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from jobs import log, runner, spool
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet
from jobs.stages import detect
from tests.builders import fleet_config, log_lines


@pytest.fixture
def start_fleet(tmp_path):
    """start_fleet(online, offline=(), **config overrides) -> (fleet, cfg); fleets stop at the end."""
    fleets = []

    def start(online, offline=(), folder=None, **overrides):
        specs = [DeviceSpec(id=d) for d in online] + [DeviceSpec(id=d, arrive=None) for d in offline]
        fleet = Fleet(specs, folder=folder or tmp_path).start()
        fleets.append(fleet)
        return fleet, configure(fleet, **overrides)
    yield start
    for fleet in fleets:
        fleet.stop()


def configure(fleet, folder=None, **overrides):
    """The fleet's test configuration: detect every 0.3 s, debug lines in the log."""
    folder = folder or fleet.folder
    settings = {"intervals.detect": 0.3, "intervals.disconnect": 0.3, "log.level": "DEBUG",
                "paths.spool": str(folder / "spool"), "paths.log": str(folder / "spool" / "log" / "m.log")}
    cfg = fleet_config(fleet, folder, "c.yaml", **{**settings, **overrides})
    log.setup(cfg, console=False)
    return cfg


def sweep(cfg):
    """One detect run as `motion-server detect --once` does it (waits for its look-ups)."""
    runner.run(cfg, "detect", detect.step, once=True, stop=threading.Event())


def connected_lines(cfg, device):
    return log_lines(cfg, f" detect {device} connected at ")


def queued(cfg):
    return sorted(d for d, _ in spool.pending(cfg.paths.spool, "inspect"))


def test_a_device_that_answers_is_marked_connected_queued_and_logged_once(start_fleet):
    fleet, cfg = start_fleet(online=[1], offline=[2, 3])
    before = time.time()
    sweep(cfg)
    doc = state.read(cfg.paths.spool, 1)
    assert doc["status"] == "connected" and doc["address"] == fleet.address(1)
    assert before <= doc["history"] == doc["last_seen"] <= time.time()
    assert doc["error"] is None and doc["absent_since"] is None
    assert queued(cfg) == [1]
    for absent in (2, 3):  # nothing changes for a device that is not there
        assert not state.path(cfg.paths.spool, absent).exists()
    assert len(connected_lines(cfg, 1)) == 1
    assert connected_lines(cfg, 1)[0].endswith(f"connected at {fleet.address(1)}")

    fleet.set_online(2)
    sweep(cfg)
    sweep(cfg)
    assert queued(cfg) == [1, 2]
    assert state.read(cfg.paths.spool, 1)["history"] == doc["history"]  # connected devices are not looked for
    assert [len(connected_lines(cfg, d)) for d in (1, 2, 3)] == [1, 1, 0]


def test_a_device_is_found_within_one_interval_of_coming_online(start_fleet):
    fleet, cfg = start_fleet(online=[], offline=[4, 5])
    stop = threading.Event()
    loop = threading.Thread(target=runner.run, args=(cfg, "detect", detect.step), kwargs={"stop": stop})
    loop.start()
    try:
        time.sleep(3 * cfg.intervals.detect)
        assert state.read(cfg.paths.spool, 4)["status"] == "unknown"
        fleet.set_online(4)
        came = time.time()
        while state.read(cfg.paths.spool, 4)["status"] != "connected" and time.time() < came + 10:
            time.sleep(0.02)
        found = state.read(cfg.paths.spool, 4)["history"]
        time.sleep(3 * cfg.intervals.detect)  # more sweeps: still one connection
    finally:
        stop.set()
        loop.join()
    # one interval, plus slack for a loaded machine (a probe of loopback takes a millisecond)
    assert found is not None and found - came < cfg.intervals.detect + 1.0
    assert len(connected_lines(cfg, 4)) == 1 and queued(cfg) == [4]


def test_a_not_found_address_counts_as_absent_even_if_a_device_answers_there(start_fleet, tmp_path):
    fleet, _ = start_fleet(online=[6])
    cfg = configure(fleet, **{"network.not_found_addresses": ["10.10.10.10", fleet.address(6)]})
    sweep(cfg)
    assert state.read(cfg.paths.spool, 6)["status"] == "unknown" and queued(cfg) == []
    assert connected_lines(cfg, 6) == []


def test_a_router_answering_10_10_10_10_means_not_found_and_is_never_probed(start_fleet, tmp_path, monkeypatch):
    # No hosts file: the (fake) router resolves the names, answering its
    # "not found" address for motion-7 and the device's address for motion-8.
    fleet, _ = start_fleet(online=[7, 8])
    cfg = configure(fleet, **{"network.hosts_file": None})
    answers = {"motion-7": "10.10.10.10", "motion-8": fleet.address(8)}
    real_getaddrinfo = socket.getaddrinfo

    def router(name, *args, **kwargs):
        if name in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[name], 0))]
        if name.startswith("127."):  # numeric: create_connection's own look-up
            return real_getaddrinfo(name, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    probed = []
    real_connect = socket.create_connection

    def connect(target, *args, **kwargs):
        probed.append(target[0])
        if not target[0].startswith("127."):
            raise OSError("the tests use loopback only")
        return real_connect(target, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", router)
    monkeypatch.setattr(socket, "create_connection", connect)
    sweep(cfg)
    assert "10.10.10.10" not in probed and fleet.address(8) in probed
    assert state.read(cfg.paths.spool, 7)["status"] == "unknown"
    assert state.read(cfg.paths.spool, 8)["status"] == "connected"
    assert queued(cfg) == [8]


def test_names_the_hosts_file_gives_not_found_take_no_thread_and_a_stranded_one_is_still_requeued(
        start_fleet, tmp_path, monkeypatch):
    fleet, _ = start_fleet(online=[3, 4])
    hosts = tmp_path / "hosts"
    hosts.write_text(f"{fleet.address(3)} motion-3\n10.10.10.10 motion-4\n10.10.10.10 motion-5\n")
    cfg = configure(fleet, **{"network.hosts_file": str(hosts), "event.extra_devices": ["4-5"]})
    with state.update(cfg.paths.spool, 5) as doc:   # connected long ago, queued nowhere (a killed run)
        state.set_status(doc, "connected", address="127.0.1.250")
        doc["since"] = time.time() - 3600
    handed = []
    real_look_for = detect.look_for
    monkeypatch.setattr(detect, "look_for", lambda ctx, doc, hosts: (handed.append(doc["device"]),
                                                                       real_look_for(ctx, doc, hosts)))
    sweep(cfg)
    assert handed == [3]                    # 4 and 5 were answered by the hosts file: no look-up
    assert state.read(cfg.paths.spool, 3)["status"] == "connected"
    assert state.read(cfg.paths.spool, 4)["status"] == "unknown"
    assert queued(cfg) == [3, 5]            # the stranded device is queued again all the same


def test_a_hosts_entry_whose_port_refuses_stays_unknown(start_fleet):
    fleet, cfg = start_fleet(online=[10], offline=[9])
    sweep(cfg)
    assert not state.path(cfg.paths.spool, 9).exists()
    assert state.read(cfg.paths.spool, 9)["status"] == "unknown"
    assert queued(cfg) == [10]
    assert connected_lines(cfg, 9) == [] and log_lines(cfg, " detect 9 motion-9 at ")


def test_devices_owned_by_another_stage_are_not_looked_for(start_fleet):
    devices = (11, 12, 13, 14)
    fleet, cfg = start_fleet(online=devices)
    for device, status in zip(devices, state.ACTIVE):
        with state.update(cfg.paths.spool, device) as doc:
            state.set_status(doc, status, address=fleet.address(device), history=1.0)
    spool.enqueue(cfg.paths.spool, "inspect", 11)  # the connected one is being inspected
    spool.claim(cfg.paths.spool, "inspect", 11)
    sweep(cfg)
    for device, status in zip(devices, state.ACTIVE):
        assert state.read(cfg.paths.spool, device)["status"] == status
        assert state.read(cfg.paths.spool, device)["history"] == 1.0
    assert queued(cfg) == [] and log_lines(cfg, "connected at") == []


def test_a_connected_device_queued_nowhere_is_queued_again(start_fleet):
    # A run killed between writing "connected" and queueing it must not strand the device.
    fleet, cfg = start_fleet(online=[15, 16])
    for device in (15, 16):
        with state.update(cfg.paths.spool, device) as doc:
            state.set_status(doc, "connected", address=fleet.address(device))
            doc["since"] = time.time() - 2 * detect.STRANDED_AFTER_S
    spool.enqueue(cfg.paths.spool, "inspect", 16)
    assert spool.claim(cfg.paths.spool, "inspect", 16) is not None  # being inspected: not stranded
    sweep(cfg)
    assert queued(cfg) == [15]
    assert len(log_lines(cfg, "queued nowhere")) == 1


def test_a_failed_device_is_retried_only_after_its_backoff(start_fleet):
    fleet, cfg = start_fleet(online=[17])
    with state.update(cfg.paths.spool, 17) as doc:
        for _ in range(3):  # third failure in a row: 4 intervals of back-off
            state.mark_failed(doc, "inspect: /info.json: HTTP 500", cfg.intervals.detect)
    retry = state.read(cfg.paths.spool, 17)["retry"]
    assert retry["failures"] == 3 and retry["next"] > time.time() + 2 * cfg.intervals.detect
    sweep(cfg)
    assert state.read(cfg.paths.spool, 17)["status"] == "failed" and queued(cfg) == []
    time.sleep(max(0.0, retry["next"] - time.time()) + 0.05)
    sweep(cfg)
    doc = state.read(cfg.paths.spool, 17)
    assert doc["status"] == "connected" and doc["error"] is None and queued(cfg) == [17]
    assert doc["retry"]["failures"] == 3  # only a successful inspect or download ends the streak


DEVICES = list(range(20, 32))


def _concurrent_sweeps(cfg, runs):
    contexts = [runner.Context(cfg=cfg, stage="detect", pool=ThreadPoolExecutor(8)) for _ in range(runs)]
    start = threading.Barrier(runs)

    def run(ctx):
        start.wait()
        detect.step(ctx)
        ctx.pool.shutdown(wait=True)
    threads = [threading.Thread(target=run, args=(ctx,)) for ctx in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_concurrent_sweeps_connect_and_queue_each_device_once(start_fleet, tmp_path):
    fleet, _ = start_fleet(online=DEVICES)
    for attempt in range(3):  # a fresh spool each time: more chances for the sweeps to collide
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        cfg = configure(fleet, folder=folder)
        _concurrent_sweeps(cfg, 3)
        assert queued(cfg) == DEVICES
        assert [len(connected_lines(cfg, d)) for d in DEVICES] == [1] * len(DEVICES)
        assert all(state.read(cfg.paths.spool, d)["status"] == "connected" for d in DEVICES)


def test_two_detect_processes_at_once_queue_each_device_once(start_fleet, motion_server):
    fleet, cfg = start_fleet(online=DEVICES)
    command = motion_server + ["--config", str(fleet.folder / "c.yaml"), "detect", "--once"]
    runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, errors = run.communicate(timeout=60)
        assert run.returncode == 0, errors
    assert queued(cfg) == DEVICES
    assert [len(connected_lines(cfg, d)) for d in DEVICES] == [1] * len(DEVICES)
