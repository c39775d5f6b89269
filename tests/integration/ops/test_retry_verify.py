"""The operator's commands against a simulated event: `verify` finds every kept
track that is missing or changed on disk; `retry` makes a failed device with a
bad track be looked for now and its track fetched again."""

import datetime as dt
import subprocess
import sys
import time

import pytest

from jobs import config
from jobs.spool import state
from jobs.track import naming
from jobs.sim import DeviceSpec, Fleet, TrackSpec


def motion_server(cfg_path, *argv):
    return subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg_path), *argv],
                          capture_output=True, text=True, timeout=120)


def collect(cfg_path, cfg, devices):
    """detect, inspect and download as cron runs them, until every device is completed."""
    deadline = time.monotonic() + 60
    while any(state.read(cfg.paths.spool, d)["status"] != "completed" for d in devices):
        assert time.monotonic() < deadline, [state.read(cfg.paths.spool, d)["status"] for d in devices]
        for stage in ("detect", "inspect", "download"):
            done = motion_server(cfg_path, stage, "--once")
            assert done.returncode == 0, done.stderr


@pytest.fixture
def collected_fleet(tmp_path):
    """Two devices, two tracks each, all verified on disk."""
    fleet = Fleet([DeviceSpec(id=d, tracks=[TrackSpec(size=60_000), TrackSpec(size=80_000)]) for d in (470, 471)],
                  folder=tmp_path, timezone="UTC")
    with fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml")
        cfg = config.load(cfg_path)
        collect(cfg_path, cfg, (470, 471))
        yield fleet, cfg_path, cfg


def kept_files(cfg, device):
    ledger = state.read(cfg.paths.spool, device)["tracks"]
    return {file: naming.final_path(cfg.paths.tracks, t) for file, t in ledger.items() if t["status"] == "verified"}


def test_verify_passes_an_intact_event_and_names_each_changed_or_missing_file(collected_fleet):
    fleet, cfg_path, cfg = collected_fleet
    clean = motion_server(cfg_path, "verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.splitlines() == ["4 track(s) checked, 0 problem(s)"]
    (changed_file, changed), (missing_file, missing) = sorted(kept_files(cfg, 470).items())
    data = bytearray(changed.read_bytes())
    data[1000] ^= 0x01                                 # one bit rotted on the disk
    changed.write_bytes(bytes(data))
    missing.unlink()
    found = motion_server(cfg_path, "verify")
    assert found.returncode == 1 and found.stderr == ""       # said once, on stdout
    lines = found.stdout.splitlines()
    assert len(lines) == 3 and lines[-1] == "4 track(s) checked, 2 problem(s)"
    assert f"470 {changed_file}: MISMATCH {changed}: sha256 " in lines[0]
    assert lines[1] == f"470 {missing_file}: MISSING {missing}"
    log = (fleet.folder / "log" / "motion-server.log").read_text()
    assert f"ERROR verify 470 '{missing_file}': MISSING {missing}" in log


def test_verify_of_one_day_checks_only_that_days_tracks(collected_fleet):
    fleet, cfg_path, cfg = collected_fleet
    today = dt.datetime.now(dt.timezone.utc).date()
    for missing in kept_files(cfg, 471).values():
        missing.unlink()
    other_day = motion_server(cfg_path, "verify", "--date", (today - dt.timedelta(days=1)).isoformat())
    assert other_day.returncode == 0 and "0 track(s) checked" in other_day.stdout
    that_day = motion_server(cfg_path, "verify", "--date", today.isoformat())
    assert that_day.returncode == 1 and "4 track(s) checked" in that_day.stdout and "2 problem(s)" in that_day.stdout
    assert motion_server(cfg_path, "verify", "--date", "16/07").returncode == 2


def test_retry_looks_for_a_failed_device_now_and_fetches_its_bad_track_again(collected_fleet):
    fleet, cfg_path, cfg = collected_fleet
    file, path = sorted(kept_files(cfg, 470).items())[0]
    path.unlink()
    with state.update(cfg.paths.spool, 470) as doc:   # as download leaves it after three failed verifications
        doc["tracks"][file].update(status="bad", reason="frame checksum wrong (3 times)", failures=3)
        state.mark_failed(doc, "verification failed", 300.0)
        doc["retry"].update(next=time.time() + 3600, wait=3600)     # a long backoff
    assert motion_server(cfg_path, "detect", "--once").returncode == 0
    assert state.read(cfg.paths.spool, 470)["status"] == "failed"   # backing off: not looked for
    done = motion_server(cfg_path, "retry", "470")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "470: backoff cleared, detect looks for it at its next sweep; 1 bad track(s) wanted again"]
    doc = state.read(cfg.paths.spool, 470)
    assert doc["retry"] == {"failures": 0, "next": 0} and doc["tracks"][file]["status"] == "wanted"
    collect(cfg_path, cfg, (470,))
    assert state.read(cfg.paths.spool, 470)["tracks"][file]["status"] == "verified"
    assert path.read_bytes() == fleet.track_bytes(470, file)
    assert "INFO retry 470 backoff cleared" in (fleet.folder / "log" / "motion-server.log").read_text()


def test_retry_of_a_completed_device_lets_it_go_so_its_bad_track_is_fetched(collected_fleet):
    fleet, cfg_path, cfg = collected_fleet
    file, path = sorted(kept_files(cfg, 471).items())[1]
    path.unlink()
    with state.update(cfg.paths.spool, 471) as doc:
        doc["tracks"][file].update(status="bad", reason="too long", failures=3)
    done = motion_server(cfg_path, "retry", "471")
    assert done.returncode == 0 and "1 bad track(s) wanted again; let go" in done.stdout
    assert state.read(cfg.paths.spool, 471)["status"] == "disconnected"
    collect(cfg_path, cfg, (471,))
    assert path.read_bytes() == fleet.track_bytes(471, file)


def test_retry_of_a_device_never_seen_says_so_and_exits_1(collected_fleet):
    fleet, cfg_path, cfg = collected_fleet
    done = motion_server(cfg_path, "retry", "470", "999")
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["motion-server: retry: device 999 has no state: never seen"]
    assert done.stdout.splitlines() == ["470: nothing to retry (completed, no bad tracks)"]
