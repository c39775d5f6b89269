"""Download concurrency for a WiFi of slow devices: nobody waits, no leaver missed (issue 12).

The two fleet tests share one session (~25 s, marked slow): `motion-server
run` (every stage in one process) as it ships, with the default
threads.download, intervals and timeouts, against 16 simulated devices
arriving within 5 s, each with one throttled track, one of them a device with
6 MB at 400 KB/s that leaves 40 s after it arrives. The shipped intervals are
kept on purpose, the 5 s detect interval above all: it bunches arrivals into
sweeps, which is when a small pool makes devices queue behind each other.

The tests that need no socket, process or fleet are in tests/unit/spool/test_concurrency_queue.py.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from jobs import config, spool
from jobs.dashboard import pages
from jobs.spool import state
from jobs.roster import Roster
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from jobs.stages import dashboard
from tests.builders import EVENT_PATHS, config_file

KB = 1000
LEAVER = 116
LEAVER_SIZE, LEAVER_RATE, LEAVER_STAYS = 6_000_000, 400 * KB, 40.0
OTHERS_SIZE, OTHERS_RATE = 3_000_000, 200 * KB      # 15 s each: longer than the arrivals' spread


def arriving_fleet():
    """15 devices and the leaver, arriving evenly within 5 s; the leaver last."""
    specs = [DeviceSpec(id=101 + n, rate=OTHERS_RATE, arrive=round(5.0 * n / 15, 2),
                        tracks=[TrackSpec(size=OTHERS_SIZE)]) for n in range(15)]
    specs.append(DeviceSpec(id=LEAVER, rate=LEAVER_RATE, arrive=5.0, leave=5.0 + LEAVER_STAYS,
                            tracks=[TrackSpec(size=LEAVER_SIZE)]))
    return specs


def shipped(fleet_config):
    """Undo the sim config's short test intervals and timeouts: what the example config ships."""
    net = config.DEFAULTS["network"]
    return {"intervals": dict(config.DEFAULTS["intervals"]),
            "network": {key: net[key] for key in ("probe_timeout", "json_connect_timeout", "json_read_timeout",
                                                  "track_connect_timeout", "track_read_timeout")},
            "disconnect.grace_s": config.DEFAULTS["disconnect"]["grace_s"], **fleet_config}


def all_verified(cfg, devices):
    for device in devices:
        tracks = state.read(cfg.paths.spool, device)["tracks"].values()
        if not tracks or any(t["status"] != "verified" for t in tracks):
            return False
    return True


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One session of the arriving fleet under `motion-server run` with the shipped defaults."""
    folder = tmp_path_factory.mktemp("arrivals")
    specs = arriving_fleet()
    # The tracks are generated (and cached in the fleet's folder) before the clock starts,
    # so that the devices arrive over 5 s while `run` is already looking for them.
    with Fleet([DeviceSpec(**{**s.__dict__, "arrive": None, "leave": None}) for s in specs], folder=folder) as resting:
        for spec in specs:
            resting.track_path(spec.id, resting.logs(spec.id)[0]["file"])
    fleet = Fleet(specs, folder=folder)
    with fleet:
        cfg_path = fleet.write_config(folder / "motion-server.yaml", **shipped({"log.console_level": "ERROR"}))
        cfg = config.load(cfg_path)
        run = subprocess.Popen([sys.executable, "-m", "jobs", "--config", str(cfg_path), "run", "--no-serve"],
                               stdout=subprocess.DEVNULL, stderr=open(folder / "run.stderr", "wb"))
        try:
            deadline = time.monotonic() + 70
            while not all_verified(cfg, fleet.devices) and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.25)
        finally:
            run.send_signal(signal.SIGTERM)
            run.wait(30)
        yield fleet, cfg, specs


def fleet_start(fleet):
    """The fleet's time zero on the wall clock (its schedule runs on the monotonic clock)."""
    return time.time() - (time.monotonic() - fleet.started)


def transfers(fleet):
    """[(device, start, end)] of every whole track transfer: the access log's end time minus bytes/rate.

    The sim never sends faster than its rate, so the real start is at or before
    the one derived: intervals that overlap here overlapped in fact.
    """
    rates = {d: fleet.device(d).spec.rate for d in fleet.devices}
    return [(a["device"], a["time"] - a["bytes"] / rates[a["device"]], a["time"])
            for a in fleet.accesses() if str(a["path"]).startswith("/logs/") and a["complete"]]


@pytest.mark.slow
def test_sixteen_devices_arriving_within_5_s_all_transfer_at_the_same_time(session):
    fleet, cfg, specs = session
    seen = transfers(fleet)
    assert sorted(d for d, _, _ in seen) == sorted(fleet.devices)  # one whole transfer each, none again
    latest_start = max(start for _, start, _ in seen)
    earliest_end = min(end for _, _, end in seen)
    # A moment at which all 16 were in progress: nobody waited for another device.
    assert latest_start < earliest_end, sorted(seen, key=lambda t: t[1])


@pytest.mark.slow
def test_a_device_leaving_40_s_after_it_arrives_gets_its_6_mb_track_verified(session):
    fleet, cfg, specs = session
    doc = state.read(cfg.paths.spool, LEAVER)
    (track,) = doc["tracks"].values()
    assert track["status"] == "verified" and track["size"] == LEAVER_SIZE
    on_disk = os.path.join(cfg.paths.tracks, track["day"], track["name"])
    with open(on_disk, "rb") as f:
        assert f.read() == fleet.track_bytes(LEAVER, track["file"])
    # Served while it was there: verified before it left, the others too.
    assert track["verified_at"] - fleet_start(fleet) < 5.0 + LEAVER_STAYS
    assert all_verified(cfg, fleet.devices)


# ---- how long a device has waited, where the operator looks -------------------------

def test_status_and_the_dashboard_show_how_long_a_device_has_waited_for_download(tmp_path, motion_server):
    cfg_path = config_file(tmp_path, "c.yaml", paths=EVENT_PATHS)
    cfg = config.load(cfg_path)
    now = time.time()
    with state.update(cfg.paths.spool, 470) as doc:
        state.set_status(doc, "pending", address="127.0.1.1", history=now - 50)
    spool.enqueue(cfg.paths.spool, "download", 470)
    item = os.path.join(cfg.paths.spool, "download", "470.json")
    os.utime(item, (now - 42, now - 42))  # enqueued 42 s ago: the item's mtime is its place in line

    shown = subprocess.run([*motion_server, "--config", str(cfg_path), "status", "--json"],
                           capture_output=True, text=True, check=True)
    device = json.loads(shown.stdout)["devices"]["470"]
    assert device["queue"] == "download" and 42 <= device["waiting_s"] < 50
    text = subprocess.run([*motion_server, "--config", str(cfg_path), "status"],
                          capture_output=True, text=True, check=True).stdout
    assert re.search(r"\b470\b.*waiting 4\d s in download", text)

    dashboard.write(cfg, cfg.paths.spool, Roster(path="none"), pages.Renderer())
    page = (tmp_path / "html" / "index.html").read_text()
    assert re.search(r"waiting for download for 4\d s", page)
    facts = json.loads((tmp_path / "html" / "status.json").read_text())["devices"]["470"]
    assert facts["queue"] == "download" and 42 <= facts["waiting_s"] < 50
