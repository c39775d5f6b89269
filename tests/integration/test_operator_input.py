"""Bad operator input: one clear error naming the file, line and field before any work starts;
folders that cannot be written and a disk that fills up stop the job with a clear line and a
non-zero exit, leave no partial track, and the next run recovers.

tests/unit/test_config.py and tests/unit/test_roster.py check each mistake where it is parsed; here the
mistakes go through the command line a cron job runs. Exit status 2: the configuration, the
roster or the spool is unusable and nothing was done; 1: a run met a local error (disk full,
tracks folder not writable): the device being fetched is failed with that cause, which the
dashboard shows, and is found again after its backoff, as after any failure.

The tests that need no socket, process or fleet are in tests/unit/test_operator_input_in_process.py.
"""

import contextlib
import datetime as dt
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs import cli, config, spool
from jobs.spool import state
from jobs.spool.files import is_temporary
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from tests.builders import GOOD_ROW, ENTRY_HEADER as HEADER, ROSTER_MISTAKES, config_with_roster, run_cli

KB = 1000


# cli.main sets up the log in this process (file and stderr); later tests must not write to them.
pytestmark = pytest.mark.usefixtures("closes_motion_log")


def test_the_real_command_exits_2_on_a_broken_roster_before_any_work(tmp_path):
    cfg_path = config_with_roster(tmp_path, ROSTER_MISTAKES["end before start"][0])
    done = subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg_path), "inspect", "--for", "60"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"motion-server: {tmp_path / 'motions.csv'}: line 2, column End Date: "
                                        "2022-07-16 is before Start Date 2022-07-18"]
    assert not (tmp_path / "spool").exists()


def test_a_device_given_to_two_entrants_is_a_warning_shown_by_check_and_the_dashboard(tmp_path, capsys):
    cfg_path = config_with_roster(tmp_path, HEADER + GOOD_ROW +
                     "1102,2,470,2022-07-17,2022-07-19,BRO470BEN,Ben,Brook,Kite,Open,All Week\n")
    status, err = run_cli(capsys, "--config", cfg_path, "dashboard", "--once")
    assert status == 0 and err == []                    # a warning: the stages run, the first row wins
    shown = json.loads((tmp_path / "html" / "status.json").read_text())
    [warning] = shown["roster_warnings"]
    assert "line 3: device 470 is also given to entrant 1101 on line 2" in warning and "line 2 wins" in warning
    cli.main(["--config", str(cfg_path), "check"])
    assert "device 470 is also given to entrant 1101 on line 2" in capsys.readouterr().out


def one_device_fleet(tmp_path, size=600 * KB, rate=None):
    start = dt.datetime.now(dt.timezone.utc).replace(hour=10, minute=0, second=0, microsecond=0)
    return Fleet([DeviceSpec(id=470, tracks=[TrackSpec(start=start, duration_s=1800, size=size)], rate=rate)],
                 folder=tmp_path, timezone="UTC")


def stage(cfg_path, name, **popen):
    """`motion-server NAME --once` as cron runs it: (exit status, stderr)."""
    done = subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg_path), name, "--once"],
                          capture_output=True, text=True, timeout=120, **popen)
    return done.returncode, done.stderr


def queue_for_download(cfg_path):
    for name in ("detect", "inspect"):
        status, err = stage(cfg_path, name)
        assert status == 0, err


def assert_no_track_and_the_device_to_retry(cfg, fleet, cause):
    """Nothing under a final name, no partial file; the device failed with our cause, to be found again."""
    tracks = Path(cfg.paths.tracks)
    files = [p for p in tracks.rglob("*") if p.is_file()] if tracks.is_dir() else []
    assert files == []
    doc = state.read(cfg.paths.spool, 470)
    # Shown on the dashboard as the device's error; detect finds it again after its backoff.
    assert doc["status"] == "failed" and cause in doc["error"] and doc["progress"] is None
    assert spool.claims(cfg.paths.spool, "download") == [] and spool.pending(cfg.paths.spool, "download") == []
    [entry] = fleet.logs(470)
    assert doc["tracks"][entry["file"]]["status"] == "wanted" and doc["tracks"][entry["file"]]["failures"] == 0


def assert_recovered(cfg_path, cfg, fleet):
    """The next runs, as cron starts them, bring the track in."""
    time.sleep(max(0.0, state.read(cfg.paths.spool, 470)["retry"]["next"] - time.time()))
    for name in ("detect", "inspect", "download"):
        status, err = stage(cfg_path, name)
        assert status == 0, err
    doc = state.read(cfg.paths.spool, 470)
    [entry] = fleet.logs(470)
    track = doc["tracks"][entry["file"]]
    assert doc["status"] == "completed" and track["status"] == "verified"
    assert (Path(cfg.paths.tracks) / track["day"] / track["name"]).read_bytes() == fleet.track_bytes(470, entry["file"])
    assert [p for p in Path(cfg.paths.tracks).rglob("*") if is_temporary(p.name)] == []


def test_a_tracks_folder_that_cannot_be_created_exits_1_with_one_line_and_the_next_run_recovers(tmp_path):
    with one_device_fleet(tmp_path) as fleet:
        blocker = tmp_path / "data"
        blocker.write_text("the data disk is not mounted: a file stands where its folder should be\n")
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml", **{"paths.tracks": str(blocker / "tracks")})
        cfg = config.load(cfg_path)
        queue_for_download(cfg_path)
        status, err = stage(cfg_path, "download")
        assert status == 1
        [line] = [line for line in err.splitlines() if " ERROR " in line]
        assert f"cannot write {blocker}/tracks/" in line and "Not a directory" in line
        assert fleet.accesses() and not [a for a in fleet.accesses() if a["path"].endswith(".oao")]
        assert_no_track_and_the_device_to_retry(cfg, fleet, "Not a directory")
        blocker.unlink()                               # the operator mounts the disk
        assert_recovered(cfg_path, cfg, fleet)


def limit_file_size():
    # A write past 200 kB fails with EFBIG, as a full disk fails with ENOSPC (SIGXFSZ ignored:
    # an ignored signal stays ignored through exec).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200 * KB, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_a_write_that_fails_mid_track_exits_1_keeps_no_partial_file_and_the_next_run_recovers(tmp_path):
    with one_device_fleet(tmp_path) as fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml")
        cfg = config.load(cfg_path)
        queue_for_download(cfg_path)
        status, err = stage(cfg_path, "download", preexec_fn=limit_file_size)
        assert status == 1, err
        [line] = [line for line in err.splitlines() if " ERROR " in line]
        assert "cannot write" in line and "File too large" in line
        assert_no_track_and_the_device_to_retry(cfg, fleet, "File too large")
        assert_recovered(cfg_path, cfg, fleet)


@pytest.fixture
def small_disk(tmp_path):
    """A 300 kB tmpfs: a disk that fills up. Skipped where mounting is not allowed."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_full_disk_mid_track_exits_1_frees_the_partial_file_and_the_next_run_recovers(tmp_path, small_disk):
    """The track starts with room to spare; another program fills the disk meanwhile. Only the
    .part whose write hit ENOSPC goes; another device's, waiting for its resume, stays."""
    with one_device_fleet(tmp_path, rate=150 * KB) as fleet:
        subprocess.run(["mount", "-o", "remount,size=1m", str(small_disk)], check=True)  # room at the start
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml",
                                      **{"paths.tracks": str(small_disk), "checks.min_free_gb": 0})
        cfg = config.load(cfg_path)
        queue_for_download(cfg_path)
        [entry] = fleet.logs(470)
        day = small_disk / dt.datetime.fromtimestamp(entry["start_date"] / 1000, dt.timezone.utc).strftime("%Y%m%d")
        day.mkdir()
        others = day / ".S471X_471_20260101_100000.oao.part"
        others.write_bytes(b"\xd0\x0a" * 5000)
        download = subprocess.Popen([sys.executable, "-m", "jobs", "--config", str(cfg_path), "download", "--once"],
                                    stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not [p for p in day.glob(".S470X*.part") if p.stat().st_size > 100 * KB]:
            assert time.monotonic() < deadline and download.poll() is None
            time.sleep(0.05)
        filler = small_disk / "another-program"
        with contextlib.suppress(OSError), open(filler, "wb") as out:   # until the disk is full
            while True:
                out.write(b"x" * 4096)
                out.flush()
        status, err = download.wait(timeout=60), download.stderr.read()
        assert status == 1, err
        [line] = [line for line in err.splitlines() if " ERROR " in line]
        assert f"disk full writing {small_disk}/" in line and "the partial download was deleted" in line
        assert others.read_bytes() == b"\xd0\x0a" * 5000
        filler.unlink()
        others.unlink()
        assert_no_track_and_the_device_to_retry(cfg, fleet, "disk full")
        assert os.statvfs(small_disk).f_bfree * os.statvfs(small_disk).f_frsize > 250 * KB  # its room given back
        subprocess.run(["mount", "-o", "remount,size=2m", str(small_disk)], check=True)   # space is back
        assert_recovered(cfg_path, cfg, fleet)
