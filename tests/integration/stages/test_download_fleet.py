"""Stage download: every wanted track once, verified, and never a partial file under its name.

Unit level with `responses` for what the device answers (status codes, Range,
lying sizes); end to end against the simulated fleet on loopback for what the
network does (truncation, stalls, leavers, two processes, SIGKILL).

The tests here need the simulated fleet on loopback, subprocesses, SIGTERM and SIGKILL;
the others are in tests/unit/stages/test_download.py.
"""

import contextlib
import datetime as dt
import hashlib
import logging
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from jobs import config, runner, spool
from jobs.device import api
from jobs.spool import locks, state
from jobs.spool.files import is_temporary
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from jobs.stages import download
from tests.builders import fixture_folder, fleet_config, ledger_entry, queue_device, wait_until


# --- end to end: the simulated fleet on loopback, the stage as cron runs it ---

FIXTURE_OAO = fixture_folder() / "oao"   # made by the simulator: a bare clone has it
REAL_TRACK = str(FIXTURE_OAO / "0470_2022-07-16-1202.oao")


def fetches(fleet, file, device=470):
    """The device's answers to requests for `file`, from the fleet's access log."""
    return [a for a in fleet.accesses() if a["path"] == file and a["device"] == device]


def fleet_ledger(fleet, device, **changes):
    """The ledger inspect would write from the device's logs.json: every track wanted."""
    entries = []
    for log in fleet.logs(device):
        local = dt.datetime.fromtimestamp(log["start_date"] / 1000, fleet.tz)
        entry = ledger_entry(log["file"], f"S{device}X_{device}_{local:%Y%m%d_%H%M%S}.oao", log["size"],
                             f"{local:%Y%m%d}", start=log["start_date"])
        entries.append({**entry, **changes})
    return entries


def queue_from_fleet(cfg, fleet, device, entries=None):
    queue_device(cfg, device, fleet_ledger(fleet, device) if entries is None else entries,
                 address=fleet.address(device))


def run_stage(cfg):
    """`motion-server download --once`, in this process."""
    return runner.run(cfg, "download", download.step, once=True, stop=threading.Event())


def temporary_files(folder):
    return [p for p in Path(folder).rglob("*") if p.is_file() and is_temporary(p.name)]


def test_fixture_tracks_arrive_byte_identical_under_their_local_names_each_fetched_once(tmp_path):
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=str(p)) for p in sorted(FIXTURE_OAO.glob("*.oao"))])],
                  folder=tmp_path)
    with fleet:
        cfg = fleet_config(fleet, tmp_path)
        queue_from_fleet(cfg, fleet, 470)
        run_stage(cfg)
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "completed"
        for entry in fleet_ledger(fleet, 470):
            final = Path(cfg.paths.tracks) / entry["day"] / entry["name"]
            assert final.read_bytes() == fleet.track_bytes(470, entry["file"])
            assert doc["tracks"][entry["file"]]["status"] == "verified"
            assert [(a["status"], a["complete"]) for a in fetches(fleet, entry["file"])] == [(200, True)]
        assert temporary_files(cfg.paths.tracks) == []


FAULTS = {  # the fault, and the cause the operator reads
    "truncated body": ({"truncate": 300_000}, "connection closed after "),
    "stall past the read timeout": ({"stall": 2.0}, "no data for 0.5 s after "),
    "HTTP 500": ({"http500": "tracks"}, "HTTP 500"),
    "device leaves mid-download": ({"leave_after_bytes": 400_000}, "connection closed after "),
}


@pytest.mark.parametrize("fault, cause", FAULTS.values(), ids=FAULTS.keys())
def test_a_faulty_transfer_leaves_no_final_file_fails_the_device_and_the_next_round_completes(tmp_path, fault, cause,
                                                                                           motion_log):
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=REAL_TRACK)], faults=dict(fault))], folder=tmp_path)
    with fleet:
        cfg = fleet_config(fleet, tmp_path, **{"network.track_read_timeout": 0.5})
        [entry] = fleet_ledger(fleet, 470)
        final = Path(cfg.paths.tracks) / entry["day"] / entry["name"]
        queue_from_fleet(cfg, fleet, 470)
        run_stage(cfg)
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "failed" and doc["address"] is None and entry["name"] in doc["error"]
        assert doc["tracks"][entry["file"]]["status"] == "wanted"
        assert not final.exists()
        errors = [r.getMessage() for r in motion_log.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and entry["name"] in errors[0] and cause in errors[0], errors

        fleet.device(470).faults = {}          # the fault clears; detect and inspect find it again
        fleet.set_online(470, True)
        queue_from_fleet(cfg, fleet, 470, entries=[])
        run_stage(cfg)
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "completed" and doc["tracks"][entry["file"]]["status"] == "verified"
        assert final.read_bytes() == fleet.track_bytes(470, entry["file"])
        assert temporary_files(cfg.paths.tracks) == []
        answers = fetches(fleet, entry["file"])
        if "http500" not in fault:             # what arrived before the fault was kept and resumed
            # (any answer, not the last: a stalled request is logged when its stall ends, which may be after the resume)
            assert any(a["status"] == 206 and a["range"] > 0 for a in answers), answers


def test_a_body_longer_than_logs_json_said_is_refused_and_the_next_round_completes(tmp_path):
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=REAL_TRACK)])], folder=tmp_path)
    with fleet:
        cfg = fleet_config(fleet, tmp_path)
        [entry] = fleet_ledger(fleet, 470)
        final = Path(cfg.paths.tracks) / entry["day"] / entry["name"]
        queue_from_fleet(cfg, fleet, 470, entries=[{**entry, "size": entry["size"] - 1000}])  # logs.json lied
        run_stage(cfg)
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "failed" and "logs.json says" in doc["error"]
        assert not final.exists() and temporary_files(cfg.paths.tracks) == []
        queue_from_fleet(cfg, fleet, 470, entries=[{**entry, "failures": 1}])  # logs.json now right
        run_stage(cfg)
        assert final.read_bytes() == fleet.track_bytes(470, entry["file"])
        assert state.read(cfg.paths.spool, 470)["tracks"][entry["file"]]["failures"] == 0


def test_a_track_sent_a_wifi_segment_at_a_time_is_read_in_gathered_pieces_and_verifies(tmp_path, monkeypatch):
    # 1460-byte writes at 600 KB/s: read as each arrives, that is 900 reads of the
    # socket, each costing as much Python as 64 KB; gathered, a few dozen.
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=REAL_TRACK)], rate=600_000,
                              faults={"segment": 1460})], folder=tmp_path)
    read = []
    real_pieces = api.pieces

    def counted(answer, size):
        for piece in real_pieces(answer, size):
            read.append(len(piece))
            yield piece
    monkeypatch.setattr(api, "pieces", counted)
    with fleet:
        cfg = fleet_config(fleet, tmp_path)
        [entry] = fleet_ledger(fleet, 470)
        queue_from_fleet(cfg, fleet, 470)
        run_stage(cfg)
        assert state.read(cfg.paths.spool, 470)["tracks"][entry["file"]]["status"] == "verified"
    segments = entry["size"] / 1460
    assert sum(read) == entry["size"] and len(read) < segments / 4, (len(read), segments)


@pytest.mark.parametrize("honours_range", [True, False], ids=["range honoured", "range ignored"])
def test_a_partial_file_is_resumed_only_when_the_device_honours_range(tmp_path, honours_range):
    faults = {} if honours_range else {"range": False}
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=REAL_TRACK)], faults=faults)], folder=tmp_path)
    with fleet:
        cfg = fleet_config(fleet, tmp_path)
        [entry] = fleet_ledger(fleet, 470)
        data = fleet.track_bytes(470, entry["file"])
        folder = Path(cfg.paths.tracks) / entry["day"]
        folder.mkdir(parents=True)
        (folder / f".{entry['name']}.part").write_bytes(data[:777_000])
        queue_from_fleet(cfg, fleet, 470)
        run_stage(cfg)
        [answer] = fetches(fleet, entry["file"])
        if honours_range:
            assert (answer["status"], answer["range"], answer["bytes"]) == (206, 777_000, len(data) - 777_000)
        else:
            assert (answer["status"], answer["range"], answer["bytes"]) == (200, None, len(data))
        assert (folder / entry["name"]).read_bytes() == data
        assert state.read(cfg.paths.spool, 470)["tracks"][entry["file"]]["sha256"] == hashlib.sha256(data).hexdigest()
        assert temporary_files(cfg.paths.tracks) == []


def stage_process(motion_server, cfg_path, *when):
    return subprocess.Popen([*motion_server, "--config", str(cfg_path), "download", *when],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_two_download_processes_at_once_never_fetch_the_same_track(tmp_path, motion_server):
    # Each device its own track of the real file's size: the real file's header names device 470.
    size = os.path.getsize(REAL_TRACK)
    devices = [DeviceSpec(id=n, tracks=[TrackSpec(size=size)], rate=600_000) for n in (471, 472, 473, 474)]
    fleet = Fleet(devices, folder=tmp_path)
    with fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml", **{"threads.download": 2})
        cfg = config.load(cfg_path)
        for spec in devices:
            queue_from_fleet(cfg, fleet, spec.id)
        # The first run reaches its deadline with transfers in flight: it lets go of
        # the stage lock and finishes them while the next cron run starts beside it.
        first = stage_process(motion_server, cfg_path, "--for", "0.3")
        stage_lock = Path(cfg.paths.spool) / "locks" / "stage-download.lock"
        wait_until(lambda: spool.claims(cfg.paths.spool, "download") and locks.holder(stage_lock) is None, 20,
                   what="a claim and no stage lock")
        second = stage_process(motion_server, cfg_path, "--once")
        assert first.poll() is None  # still finishing its transfers: the two overlap
        busiest, claimers = 0, set()
        while first.poll() is None or second.poll() is None:
            busiest = max(busiest, fleet.busy())
            claimers |= {claim["pid"] for claim in spool.claims(cfg.paths.spool, "download")}
            time.sleep(0.01)
        assert first.returncode == 0 and second.returncode == 0
        # Both served devices: the overlap really happened (their claims name them).
        assert {first.pid, second.pid} <= claimers
        for spec in devices:
            [entry] = fleet_ledger(fleet, spec.id)
            assert [a["status"] for a in fetches(fleet, entry["file"], spec.id)] == [200]
            assert state.read(cfg.paths.spool, spec.id)["tracks"][entry["file"]]["status"] == "verified"
        assert busiest == 2  # threads.download bounds both processes together


def assert_no_partial_file_under_a_final_name(cfg, fleet, entry):
    final = Path(cfg.paths.tracks) / entry["day"] / entry["name"]
    if final.exists():
        assert final.read_bytes() == fleet.track_bytes(470, entry["file"])


@contextlib.contextmanager
def one_real_track_queued(tmp_path, rate):
    """Device 470 serving the real track at `rate` bytes/s, queued for download: the
    fleet, its config file, the config, the track's ledger entry and its .part path."""
    fleet = Fleet([DeviceSpec(id=470, tracks=[TrackSpec(source=REAL_TRACK)], rate=rate)], folder=tmp_path)
    with fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml")
        cfg = config.load(cfg_path)
        [entry] = fleet_ledger(fleet, 470)
        queue_from_fleet(cfg, fleet, 470)
        yield fleet, cfg_path, cfg, entry, Path(cfg.paths.tracks) / entry["day"] / f".{entry['name']}.part"


@pytest.mark.slow
def test_a_download_killed_mid_track_and_rerun_ends_verified_once_with_no_stray_files(tmp_path, motion_server):
    rng = random.Random(470)
    with one_real_track_queued(tmp_path, rate=500_000) as (fleet, cfg_path, cfg, entry, part):
        for _ in range(3):  # killed at a random moment of the transfer, three times over
            before = part.stat().st_size if part.exists() else 0
            victim = stage_process(motion_server, cfg_path, "--for", "30")
            wait_until(lambda: part.exists() and part.stat().st_size > before, 20, what="the partial file growing")
            time.sleep(rng.uniform(0.0, 0.6))
            victim.kill()
            victim.wait()
            assert state.read(cfg.paths.spool, 470)["status"] == "downloading"
            assert_no_partial_file_under_a_final_name(cfg, fleet, entry)
        assert stage_process(motion_server, cfg_path, "--once").wait(timeout=30) == 0
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "completed" and doc["tracks"][entry["file"]]["status"] == "verified"
        final = Path(cfg.paths.tracks) / entry["day"] / entry["name"]
        assert final.read_bytes() == fleet.track_bytes(470, entry["file"])
        answers = fetches(fleet, entry["file"])
        assert sum(a["complete"] for a in answers) == 1  # one whole transfer, pieced together by Range
        assert [a["status"] for a in answers[1:]] == [206] * (len(answers) - 1)
        assert temporary_files(cfg.paths.tracks) == [] and temporary_files(cfg.paths.spool) == []
        assert spool.claims(cfg.paths.spool, "download") == []
        # Verified means never fetched again, also when the device comes round once more.
        queue_from_fleet(cfg, fleet, 470, entries=[])
        run_stage(cfg)
        assert len(fetches(fleet, entry["file"])) == len(answers)


def test_sigterm_mid_track_keeps_the_partial_file_and_hands_the_device_back(tmp_path, motion_server):
    with one_real_track_queued(tmp_path, rate=400_000) as (fleet, cfg_path, cfg, entry, part):
        job = stage_process(motion_server, cfg_path, "--for", "30")
        progress = lambda: state.read(cfg.paths.spool, 470)["progress"] or {}  # noqa: E731
        wait_until(lambda: progress().get("bytes", 0) > 0, 20, what="download progress")
        seen = progress()
        assert seen["total"] == entry["size"] and seen["name"] == entry["name"] and seen["rate"] > 0
        job.send_signal(signal.SIGTERM)
        assert job.wait(timeout=10) == 0
        doc = state.read(cfg.paths.spool, 470)
        assert doc["status"] == "pending" and doc["progress"] is None
        assert [device for device, _ in spool.pending(cfg.paths.spool, "download")] == [470]
        kept = part.stat().st_size
        assert 0 < kept < entry["size"]
        run_stage(cfg)
        assert fetches(fleet, entry["file"])[-1]["range"] == kept
        assert state.read(cfg.paths.spool, 470)["tracks"][entry["file"]]["status"] == "verified"


def test_a_device_back_with_a_new_track_while_it_waited_to_download_gets_it_too(tmp_path):
    """Planned, then queued behind other devices: meanwhile it leaves and comes back with a new
    track, seen by no stage (disconnect watches completed devices only). Once its planned tracks
    are in, its listing is read again, and the new track is planned and fetched as well."""
    from jobs.stages import detect, inspect

    today = dt.datetime.now(dt.timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0)
    spec = DeviceSpec(id=470, tracks=[TrackSpec(start=today, duration_s=1200, size=300_000, best500_knots=20.0)])
    with Fleet([spec], folder=tmp_path, timezone="UTC") as fleet:
        cfg = fleet_config(fleet, tmp_path)
        for name, module in (("detect", detect), ("inspect", inspect)):
            runner.run(cfg, name, module.step, once=True, stop=threading.Event())
        assert state.read(cfg.paths.spool, 470)["status"] == "pending"
        fleet.set_online(470, False)
        new = fleet.add_track(470, TrackSpec(start=today.replace(hour=19), duration_s=1200, size=300_000,
                                             best500_knots=20.0))
        fleet.set_online(470, True)
        for _ in range(3):    # as cron runs them: each stage once, a few times over
            for name, module in (("detect", detect), ("inspect", inspect), ("download", download)):
                runner.run(cfg, name, module.step, once=True, stop=threading.Event())
        doc = state.read(cfg.paths.spool, 470)
        assert {file: t["status"] for file, t in doc["tracks"].items()} == {
            log["file"]: "verified" for log in fleet.logs(470)}
        assert new["file"] in doc["tracks"] and doc["status"] == "completed"
        assert len(fetches(fleet, new["file"])) == 1
