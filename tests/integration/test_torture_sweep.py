"""A killed writer's temporary file is swept by the next run; a live writer's never is.

The crash torture (tests/end_to_end/test_torture.py, 50 random SIGKILLs of
every stage) found that temporary files of writers killed mid-write were never
removed. This checks that piece on its own, with real writer processes: one
killed with SIGKILL, one still writing, and a stage run in between.
"""

import subprocess
import sys
import time
from pathlib import Path


from jobs import config
from jobs.spool.files import is_temporary
from tests.builders import EVENT_PATHS, config_file


# --- the pieces the torture found missing, each on its own -------------------------

STUCK_WRITER = """
import os, sys, time
from jobs.spool import files
os.fsync = lambda fd: time.sleep(3600)      # a disk that never comes back: stuck mid-write
print("writing", flush=True)
files.atomic_write(sys.argv[1], b"{}")
"""


def stuck_writer(target):
    """A process stopped inside atomic_write of `target`: its temporary file is on disk."""
    proc = subprocess.Popen([sys.executable, "-c", STUCK_WRITER, str(target)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"writing\n"
    deadline = time.monotonic() + 10
    while not [p for p in target.parent.iterdir() if is_temporary(p.name)]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def temporary(folder):
    return sorted(p.name for p in folder.iterdir() if is_temporary(p.name))


def test_a_killed_writers_temporary_file_is_swept_by_the_next_run_a_live_writers_is_not(tmp_path):
    cfg_path = config_file(tmp_path, paths=EVENT_PATHS)
    cfg = config.load(cfg_path)
    state_dir, html = Path(cfg.paths.spool) / "state", Path(cfg.paths.html)
    state_dir.mkdir(parents=True)
    html.mkdir()
    dead, live = stuck_writer(state_dir / "470.json"), stuck_writer(html / "index.html")
    dead.kill()
    dead.wait()
    left, writing = temporary(state_dir), temporary(html)
    assert len(left) == 1 and len(writing) == 1
    try:
        run = subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg_path), "disconnect", "--once"],
                             capture_output=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert temporary(state_dir) == []          # its writer is dead: nobody else would remove it
        assert temporary(html) == writing          # a live writer's file is never taken from it
        assert "deleted 1 temporary file left by killed writers" in Path(cfg.paths.log).read_text()
    finally:
        live.kill()
        live.wait()
