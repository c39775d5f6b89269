"""Housekeeping: expired things go through the trash; tracks and state stay.

Those that need sockets, processes or the simulated fleet are in
tests/integration/stages/test_expire_killed.py.
"""

from jobs import config, log, runner
from jobs.stages import expire
from tests.builders import config_file


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
    config_file(root, "c.yaml", paths={"spool": "spool", "tracks": "tracks", "log": "spool/log/m.log"},
                retention={"days": 3, "tracks": True})
    runner.run(config.load(cfg_path), "expire", expire.step, once=True)
    assert not (root / "tracks" / track_day).exists()
