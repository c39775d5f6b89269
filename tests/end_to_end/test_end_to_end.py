"""End to end: the pipeline as cron runs it, against a simulated fleet.

Each stage is its own process with --for, as crontab.example runs them. The
detect and download runs are handed over the way cron does it: a second copy
started while the first runs is refused by the stage lock and exits at once; a
third starts as the first reaches its deadline and takes over while the first
finishes what it holds. The fleet has arrivals, a leaver, a device that comes
back later with a new track, a transfer fault that clears, and a device that
lies about who it is.
"""

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from jobs import config, spool
from jobs.spool import state
from jobs.spool.files import is_temporary
from jobs.sim import DeviceSpec, Fleet, TrackSpec

pytestmark = pytest.mark.slow
KB = 1000


def fleet_specs(tz):
    nine = dt.datetime.now(tz).replace(hour=9, minute=0, second=0, microsecond=0)

    def tracks(*sizes, slow=False):
        return [TrackSpec(start=nine + dt.timedelta(hours=k), duration_s=1800, size=size * KB,
                          best500_knots=0.6 if slow and k == 0 else 16.0 + k) for k, size in enumerate(sizes)]

    return [
        *[DeviceSpec(id=101 + n, tracks=tracks(300 + 60 * n, 200), rate=400 * KB, arrive=n * 0.7) for n in range(6)],
        DeviceSpec(id=107, tracks=tracks(250, 250, slow=True), rate=400 * KB, arrive=1.0),  # one too slow
        DeviceSpec(id=108, tracks=tracks(200), rate=400 * KB, arrive=0.0, leave=7.0),       # leaves for good
        DeviceSpec(id=109, tracks=tracks(400), rate=400 * KB, arrive=0.5,
                   faults={"truncate": 100 * KB}),                                      # cut off until cleared
        DeviceSpec(id=110, tracks=tracks(200), arrive=0.0, faults={"wrong_id": 999}),       # not who it says
        DeviceSpec(id=111, tracks=tracks(300), rate=400 * KB, arrive=0.0, leave=8.0),       # comes back later
    ]


def start(argv, log_path):
    return subprocess.Popen([sys.executable, "-m", "jobs", *argv], stdout=subprocess.DEVNULL,
                            stderr=open(log_path, "ab"))


def test_the_pipeline_as_cron_runs_it(tmp_path):
    tz = ZoneInfo("Europe/London")
    fleet = Fleet(fleet_specs(tz), folder=tmp_path, timezone="Europe/London")
    with fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml", **{
            "intervals": {"detect": 0.5, "inspect": 0.2, "download": 0.2, "disconnect": 0.5, "dashboard": 0.5},
            "disconnect": {"grace_s": 1.5}})
        cfg = config.load(cfg_path)
        run = lambda stage, seconds: start(["--config", str(cfg_path), stage, "--for", str(seconds)],
                                           tmp_path / f"{stage}.stderr")
        t0 = time.monotonic()
        procs = [run("detect", 10), run("inspect", 34), run("download", 10), run("disconnect", 34),
                 run("dashboard", 35)]
        time.sleep(2)
        refused = [run("detect", 20), run("download", 20)]           # cron overlap: refused at once
        for proc in refused:
            assert proc.wait(timeout=10) == 0
        time.sleep(max(0, 5 - (time.monotonic() - t0)))
        fleet.device(109).faults = {}                                  # the fault clears
        time.sleep(max(0, 13 - (time.monotonic() - t0)))
        procs += [run("detect", 20), run("download", 20)]              # the next minute's runs take over
        time.sleep(max(0, 15 - (time.monotonic() - t0)))
        fleet.add_track(111, TrackSpec(start=dt.datetime.now(tz).replace(hour=15, minute=0, second=0,
                                                                         microsecond=0),
                                       duration_s=1200, size=150 * KB, best500_knots=20.0))
        fleet.set_online(111, True)                                     # back with a new track
        for proc in procs:
            assert proc.wait(timeout=90) == 0
        accesses = fleet.accesses()
        logs = {device: fleet.logs(device) for device in fleet.devices}

        root = Path(cfg.paths.spool)
        docs = {d["device"]: d for d in state.all_devices(root)}
        statuses = {device: doc["status"] for device, doc in docs.items()}
        assert statuses == {**{d: "completed" for d in (101, 102, 103, 104, 105, 106, 107, 109, 111)},
                            108: "disconnected", 110: "failed"}
        assert "identifier 999" in docs[110]["error"]

        # Every wanted track verified once, byte-identical, under its local name.
        for device, served in logs.items():
            if device == 110:
                continue
            ledger = docs[device]["tracks"]
            for entry in served:
                track = ledger[entry["file"]]
                if entry["500m_best"] * 3.6 / 1852 < cfg.filters.min_500m_knots:
                    assert track["status"] == "skipped" and "too slow" in track["reason"]
                    continue
                assert track["status"] == "verified", (device, track)
                path = Path(cfg.paths.tracks) / track["day"] / track["name"]
                assert path.read_bytes() == fleet.track_bytes(device, entry["file"])
                fetched = [a for a in accesses if a["device"] == device and a["path"] == entry["file"]
                           and a.get("complete")]
                assert len(fetched) == 1, (device, entry["file"], fetched)
        assert len(docs[111]["tracks"]) == 2
        first_111 = [a for a in accesses if a["device"] == 111 and a["path"] == logs[111][0]["file"]]
        assert len(first_111) == 1  # the returning device got only its new track

        # The dashboard shows every device with its status.
        status = json.loads((Path(cfg.paths.html) / "status.json").read_text())
        assert {int(k): v["status"] for k, v in status["devices"].items()
                if int(k) in statuses} == statuses
        index = (Path(cfg.paths.html) / "index.html").read_text()
        for device in statuses:
            assert str(device) in index

        # A clean spool: no queue item, no claim, no temporary file anywhere.
        for queue in spool.QUEUES:
            assert spool.pending(root, queue) == [] and spool.claims(root, queue) == []
        leftovers = [p for folder in (root, Path(cfg.paths.tracks), Path(cfg.paths.html))
                     for p in folder.rglob("*") if is_temporary(p.name) and p.is_file()]
        assert leftovers == []

        log = Path(cfg.paths.log).read_text()
        assert log.count("holds the stage lock") >= 2
        assert log.count("111 connected at") == 2
        assert "108 disconnected" in log
