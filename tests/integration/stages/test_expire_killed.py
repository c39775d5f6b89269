"""Housekeeping: expired things go through the trash; tracks and state stay.

The tests here need a real expire process, killed;
the others are in tests/unit/stages/test_expire.py.
"""

import subprocess
import sys
import time


from jobs import config, runner
from jobs.stages import expire
from tests.builders import DAY_S


def test_a_run_killed_after_the_rename_is_finished_by_the_next(expired_spool):
    cfg_path, root, *_ = expired_spool
    cfg = config.load(cfg_path)
    ctx = runner.Context(cfg=cfg, stage="expire")
    trash = root / "spool" / "trash"
    for path in expire.expired(ctx, time.time() - 3 * DAY_S):
        expire.to_trash(ctx, path, trash)  # ... and the job dies here
    assert len(list(trash.iterdir())) == 4  # cache, queue records, rotated log, abandoned .part
    done = subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg_path), "expire", "--once"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert list(trash.iterdir()) == []
