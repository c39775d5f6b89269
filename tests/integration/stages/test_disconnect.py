"""disconnect: completed devices that left are marked disconnected after the grace, and only those.

The devices are the simulated fleet's (jobs.sim): real HTTP servers on
127.0.1.K; a device that goes offline has no listener, so probes are refused.

The tests that need no socket, process or fleet are in tests/unit/stages/test_disconnect_silence.py.
"""

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from jobs import config, log, runner, spool
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet
from jobs.stages import detect, disconnect
from tests.builders import fleet_config, log_lines, wait_until

GRACE = 1.0


@pytest.fixture
def fleet(tmp_path):
    """Devices 1-9 of the simulated fleet, all online at first."""
    with Fleet([DeviceSpec(id=d) for d in range(1, 10)], folder=tmp_path) as running:
        yield running


def configure(fleet, grace=GRACE):
    """Grace 1 s, intervals 0.3 s, debug lines in the log."""
    cfg = fleet_config(fleet, fleet.folder, "c.yaml", **{
        "intervals.detect": 0.3, "intervals.disconnect": 0.3, "disconnect.grace_s": grace,
        "log.level": "DEBUG", "paths.log": str(fleet.folder / "spool" / "log" / "m.log")})
    log.setup(cfg, console=False)
    return cfg


@pytest.fixture
def fleet_cfg(fleet):
    """The config of the fleet fixture's event, for in-process detect and disconnect runs."""
    return configure(fleet)


def completed(cfg, device, address):
    """The device as inspect or download leaves it when nothing more is wanted."""
    with state.update(cfg.paths.spool, device) as doc:
        state.set_status(doc, "connected", address=address, history=time.time())
        state.mark_completed(doc)


def run_once(cfg, stage="disconnect"):
    module = disconnect if stage == "disconnect" else detect
    runner.run(cfg, stage, module.step, once=True, stop=threading.Event())


def status(cfg, device):
    return state.read(cfg.paths.spool, device)["status"]


def test_a_device_that_answers_stays_completed_and_nothing_is_written(fleet_cfg, fleet):
    completed(fleet_cfg, 1, fleet.address(1))
    before = state.read(fleet_cfg.paths.spool, 1)
    for _ in range(3):
        run_once(fleet_cfg)
    assert state.read(fleet_cfg.paths.spool, 1) == before


def test_a_device_that_left_is_disconnected_only_after_the_grace(fleet_cfg, fleet):
    completed(fleet_cfg, 2, fleet.address(2))
    run_once(fleet_cfg)
    fleet.set_online(2, False)
    run_once(fleet_cfg)  # first failed probe: the grace starts, the device stays
    doc = state.read(fleet_cfg.paths.spool, 2)
    assert doc["status"] == "completed" and doc["address"] == fleet.address(2)
    assert time.time() - 1 < doc["absent_since"] <= time.time()
    run_once(fleet_cfg)  # still within the grace
    assert status(fleet_cfg, 2) == "completed"
    assert state.read(fleet_cfg.paths.spool, 2)["absent_since"] == doc["absent_since"]  # the first failure counts
    time.sleep(max(0.0, doc["absent_since"] + GRACE - time.time()) + 0.05)
    run_once(fleet_cfg)
    gone = state.read(fleet_cfg.paths.spool, 2)
    assert gone["status"] == "disconnected" and gone["address"] is None and gone["absent_since"] is None
    lines = log_lines(fleet_cfg, "disconnected")
    assert len(lines) == 1
    assert lines[0].rstrip().endswith(f" disconnect 2 disconnected: no answer at {fleet.address(2)} for 1 s")
    run_once(fleet_cfg)
    assert len(log_lines(fleet_cfg, "disconnected")) == 1


def test_even_with_no_grace_one_failed_probe_is_not_enough(fleet):
    cfg = configure(fleet, grace=0)
    completed(cfg, 3, fleet.address(3))
    fleet.set_online(3, False)
    run_once(cfg)
    assert status(cfg, 3) == "completed"
    run_once(cfg)
    assert status(cfg, 3) == "disconnected"


def test_a_device_silent_for_less_than_the_grace_stays_completed_and_is_not_reinspected(fleet_cfg, fleet):
    completed(fleet_cfg, 4, fleet.address(4))
    fleet.set_online(4, False)
    run_once(fleet_cfg)
    assert state.read(fleet_cfg.paths.spool, 4)["absent_since"] is not None
    fleet.set_online(4)  # back, within the grace
    run_once(fleet_cfg, "detect")
    run_once(fleet_cfg)
    doc = state.read(fleet_cfg.paths.spool, 4)
    assert doc["status"] == "completed" and doc["absent_since"] is None
    time.sleep(GRACE + 0.1)
    run_once(fleet_cfg)
    assert status(fleet_cfg, 4) == "completed"
    assert 4 not in [d for d, _ in spool.pending(fleet_cfg.paths.spool, "inspect")]  # never re-inspected
    assert log_lines(fleet_cfg, " 4 connected at ") == [] and log_lines(fleet_cfg, "disconnected") == []


def test_a_new_silence_after_an_answer_starts_a_new_grace(fleet_cfg, fleet):
    completed(fleet_cfg, 5, fleet.address(5))
    fleet.set_online(5, False)
    run_once(fleet_cfg)  # absent
    fleet.set_online(5)
    time.sleep(GRACE + 0.1)
    run_once(fleet_cfg)  # answered: the old absence is forgotten
    fleet.set_online(5, False)
    run_once(fleet_cfg)  # absent again, more than the grace after the first failure
    assert status(fleet_cfg, 5) == "completed"


def test_devices_that_another_stage_owns_are_never_disconnected(fleet_cfg, fleet):
    owned = {6: "connected", 7: "pending", 8: "downloading"}
    for device, owner in owned.items():
        fleet.set_online(device, False)
        with state.update(fleet_cfg.paths.spool, device) as doc:
            state.set_status(doc, owner, address=fleet.address(device))
    for _ in range(2):
        run_once(fleet_cfg)
        time.sleep(GRACE / 2 + 0.05)
    run_once(fleet_cfg)
    for device, owner in owned.items():
        doc = state.read(fleet_cfg.paths.spool, device)
        assert doc["status"] == owner and doc["address"] == fleet.address(device)
        assert doc.get("absent_since") is None


def test_a_probe_result_is_not_applied_to_a_device_that_moved_on(fleet_cfg, fleet):
    fleet.set_online(9, False)
    completed(fleet_cfg, 9, fleet.address(9))
    seen = state.read(fleet_cfg.paths.spool, 9)
    with state.update(fleet_cfg.paths.spool, 9) as doc:  # meanwhile: gone, back and being inspected again
        state.set_status(doc, "connected")
    ctx = runner.Context(cfg=fleet_cfg, stage="disconnect")
    disconnect.check_presence(ctx, seen)
    assert state.read(fleet_cfg.paths.spool, 9).get("absent_since") is None
    with state.update(fleet_cfg.paths.spool, 9) as doc:
        state.mark_completed(doc)
        doc["address"] = fleet.address(1)  # completed again, at another address
    disconnect.check_presence(ctx, seen)
    assert state.read(fleet_cfg.paths.spool, 9).get("absent_since") is None
    completed(fleet_cfg, 9, fleet.address(9))  # control: the same probe applies to the device it was for
    disconnect.check_presence(ctx, seen)
    assert state.read(fleet_cfg.paths.spool, 9)["absent_since"] is not None


def test_concurrent_disconnect_runs_log_one_disconnection(fleet_cfg, fleet):
    devices = [1, 2, 3, 4, 5]
    for device in devices:
        fleet.set_online(device, False)
        completed(fleet_cfg, device, fleet.address(device))
        with state.update(fleet_cfg.paths.spool, device) as doc:
            doc["absent_since"] = time.time() - GRACE - 1  # silent for longer than the grace
    contexts = [runner.Context(cfg=fleet_cfg, stage="disconnect", pool=ThreadPoolExecutor(4)) for _ in range(3)]
    start = threading.Barrier(len(contexts))

    def run(ctx):
        start.wait()
        disconnect.step(ctx)
        ctx.pool.shutdown()
    threads = [threading.Thread(target=run, args=(ctx,)) for ctx in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status(fleet_cfg, d) for d in devices] == ["disconnected"] * len(devices)
    assert sorted(int(line.split()[4]) for line in log_lines(fleet_cfg, "disconnected")) == devices


def test_detect_and_disconnect_side_by_side_follow_a_device_that_comes_and_goes(fleet_cfg, fleet):
    stop_runs = threading.Event()
    runs = [threading.Thread(target=runner.run, args=(fleet_cfg, stage, module.step), kwargs={"stop": stop_runs})
            for stage, module in (("detect", detect), ("disconnect", disconnect))]

    for run in runs:
        run.start()
    try:
        assert wait_until(lambda: status(fleet_cfg, 6) == "connected", 5)
        held, deadline = None, time.time() + 5  # the test plays inspect: nothing to fetch
        while held is None and time.time() < deadline:
            held = spool.claim(fleet_cfg.paths.spool, "inspect", 6)  # queued just after "connected"
        state.transition(fleet_cfg.paths.spool, 6, ("connected",), "completed")
        spool.finish(held)
        fleet.set_online(6, False)
        left = time.time()
        assert wait_until(lambda: status(fleet_cfg, 6) == "disconnected", 10)
        took = time.time() - left
        fleet.set_online(6)
        assert wait_until(lambda: status(fleet_cfg, 6) == "connected", 5)
    finally:
        stop_runs.set()
        for run in runs:
            run.join()
    # silent for the grace since its last answer (at most an interval before it left),
    # and within grace + one interval, plus slack for a loaded machine
    assert GRACE - fleet_cfg.intervals.disconnect <= took < GRACE + fleet_cfg.intervals.disconnect + 1.5
    assert len(log_lines(fleet_cfg, " 6 connected at ")) == 2
    assert len(log_lines(fleet_cfg, " 6 disconnected: ")) == 1


@pytest.mark.slow
def test_detect_inspect_and_disconnect_jobs_follow_a_fleet_that_comes_and_goes(tmp_path, motion_server):
    # As cron runs them: one process per stage, side by side, against 20 devices.
    stay, leave, late, never = range(101, 109), range(109, 115), range(115, 119), range(119, 121)
    specs = ([DeviceSpec(id=d) for d in (*stay, *leave)]
             + [DeviceSpec(id=d, arrive=None) for d in (*late, *never)])
    with Fleet(specs, folder=tmp_path) as fleet:
        path = fleet.write_config(tmp_path / "c.yaml", **{
            "intervals.detect": 0.3, "intervals.inspect": 0.2, "intervals.disconnect": 0.3,
            "disconnect.grace_s": GRACE})
        cfg = config.load(path)

        def statuses(devices):
            return [status(cfg, d) for d in devices]

        jobs = [subprocess.Popen(motion_server + ["--config", str(path), stage, "--for", "60"],
                                 stderr=subprocess.DEVNULL) for stage in ("detect", "inspect", "disconnect")]
        try:
            assert wait_until(lambda: statuses([*stay, *leave]) == ["completed"] * 14, 20, interval=0.1)
            for device in leave:
                fleet.set_online(device, False)
            for device in late:
                fleet.set_online(device)
            assert wait_until(lambda: statuses(leave) == ["disconnected"] * 6
                              and statuses([*stay, *late]) == ["completed"] * 12, 20, interval=0.1)
            time.sleep(GRACE + 2 * cfg.intervals.disconnect)  # nothing else changes
        finally:
            for job in jobs:
                job.terminate()
            assert [job.wait(30) for job in jobs] == [0, 0, 0]
        assert statuses([*stay, *late]) == ["completed"] * 12 and statuses(leave) == ["disconnected"] * 6
        assert statuses(never) == ["unknown"] * 2
        text = open(cfg.paths.log, encoding="utf-8").read()
        for device in (*stay, *leave, *late):
            assert text.count(f" detect {device} connected at ") == 1
            assert text.count(f" disconnect {device} disconnected: ") == (device in leave)
        shown = subprocess.run(motion_server + ["--config", str(path), "status"], capture_output=True, text=True)
        assert shown.returncode == 0
        assert sum(" completed " in line for line in shown.stdout.splitlines()) == 12
        assert sum(" disconnected " in line for line in shown.stdout.splitlines()) == 6
