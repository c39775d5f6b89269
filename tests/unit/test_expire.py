"""Housekeeping: expired things go through the trash; tracks and state stay.

Those that need sockets, processes or the simulated fleet are in
tests/integration/test_expire_killed.py.
"""

import os
import time

import pytest

from jobs import config, log, runner
from jobs.stages import expire

DAY = 86400


def age(path, days):
    past = time.time() - days * DAY
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (past, past))


@pytest.fixture
def expired_spool(tmp_path):
    """A spool, log and tracks folder with things 10 days old and fresh:
    (config path, tmp_path, old day, new day, track day)."""
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("paths: {spool: spool, tracks: tracks, log: spool/log/m.log}\nretention: {days: 3}\n")
    spool = tmp_path / "spool"
    for device, days in ((470, 10), (601, 1)):
        folder = spool / "cache" / str(device)
        folder.mkdir(parents=True)
        (folder / "info.json").write_text("{}")
        age(folder, days)
    old_day = time.strftime("%Y-%m-%d", time.localtime(time.time() - 10 * DAY))
    new_day = time.strftime("%Y-%m-%d")
    for day in (old_day, new_day):
        (spool / "done" / "inspect" / day).mkdir(parents=True)
        (spool / "done" / "inspect" / day / "470.1.json").write_text("{}")
    (spool / "log").mkdir()
    (spool / "log" / "m.log").write_text("live\n")
    (spool / "log" / "m.log.1").write_text("rotated\n")
    age(spool / "log" / "m.log.1", 10)
    age(spool / "log" / "m.log", 10)
    track_day = time.strftime("%Y%m%d", time.localtime(time.time() - 10 * DAY))
    (tmp_path / "tracks" / track_day).mkdir(parents=True)
    (tmp_path / "tracks" / track_day / "A_470_x.oao").write_bytes(b"track")
    (tmp_path / "tracks" / track_day / ".A_470_y.oao.part").write_bytes(b"abandoned")
    age(tmp_path / "tracks" / track_day / ".A_470_y.oao.part", 10)
    (spool / "state").mkdir()
    (spool / "state" / "470.json").write_text("{}")
    age(spool / "state" / "470.json", 10)
    return cfg_path, tmp_path, old_day, new_day, track_day


def test_expired_cache_records_and_logs_go_tracks_and_state_stay(expired_spool):
    cfg_path, root, old_day, new_day, track_day = expired_spool
    cfg = config.load(cfg_path)
    log.setup(cfg, console=False)
    runner.run(cfg, "expire", expire.step, once=True)
    spool = root / "spool"
    assert not (spool / "cache" / "470").exists() and (spool / "cache" / "601").exists()
    assert not (spool / "done" / "inspect" / old_day).exists()
    assert (spool / "done" / "inspect" / new_day).exists()
    assert not (spool / "log" / "m.log.1").exists() and (spool / "log" / "m.log").exists()
    assert (root / "tracks" / track_day / "A_470_x.oao").read_bytes() == b"track"
    assert not (root / "tracks" / track_day / ".A_470_y.oao.part").exists()  # its device never came back
    assert (spool / "state" / "470.json").exists()
    assert list((spool / "trash").iterdir()) == []
    assert "expired" in (spool / "log" / "m.log").read_text()


def test_tracks_expire_only_when_configured(expired_spool):
    cfg_path, root, *_, track_day = expired_spool
    cfg_path.write_text("paths: {spool: spool, tracks: tracks, log: spool/log/m.log}\n"
                        "retention: {days: 3, tracks: true}\n")
    runner.run(config.load(cfg_path), "expire", expire.step, once=True)
    assert not (root / "tracks" / track_day).exists()
