"""The loop every stage shares: stage lock, --once, --for, signals, worker slots.

The tests here need several processes;
the others are in tests/unit/test_runner.py.
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from jobs import runner, spool
from jobs.spool import locks
from tests.builders import SPOOL_PATHS, config_file, runner_config

fork = multiprocessing.get_context("fork")


@pytest.fixture
def cfg(tmp_path):
    return runner_config(tmp_path)


def _hold_stage(cfg, ready, stop_after):
    def step(ctx):
        ready.set()
    runner.run(cfg, "detect", step, for_seconds=stop_after)


def test_an_overlapping_run_is_refused_by_the_stage_lock_and_exits_at_once(cfg):
    ready = fork.Event()
    first = fork.Process(target=_hold_stage, args=(cfg, ready, 30))
    first.start()
    try:
        assert ready.wait(30)
        calls = []
        started = time.monotonic()
        assert runner.run(cfg, "detect", lambda ctx: calls.append(1), once=True) == 0
        assert calls == [] and time.monotonic() - started < 2
        holder = locks.holder(os.path.join(cfg.paths.spool, "locks", "stage-detect.lock"))
        assert holder.split()[0] == str(first.pid)
    finally:
        os.kill(first.pid, signal.SIGTERM)
        first.join(30)
    assert first.exitcode == 0  # SIGTERM is a clean stop
    assert runner.run(cfg, "detect", lambda ctx: calls.append(1), once=True) == 0
    assert calls == [1]


def _busy_worker(cfg, started, release_after):
    def work(ctx, claim):
        started.put(claim.device)
        time.sleep(release_after)
    runner.run(cfg, "download", lambda ctx: runner.serve_queue(ctx, "download", work), for_seconds=0.2)


def test_workers_of_all_download_runs_together_stay_within_threads(cfg):
    """A run past its deadline and the next cron run share threads.download slots."""
    for device in range(1, 9):
        spool.enqueue(cfg.paths.spool, "download", device)
    started = fork.Queue()
    old = fork.Process(target=_busy_worker, args=(cfg, started, 3))
    old.start()
    first = sorted(started.get(timeout=30) for _ in range(3))  # 3 slots taken
    time.sleep(0.5)  # the old run passed its deadline: stage lock free, workers busy
    new = fork.Process(target=_busy_worker, args=(cfg, started, 0))
    new.start()
    new.join(30)
    assert started.empty()  # every slot was still held by the old run's workers
    old.join(30)
    assert len(first) == 3 and len(spool.pending(cfg.paths.spool, "download")) == 5


def test_an_idle_download_run_imports_neither_requests_nor_numpy(tmp_path):
    """An idle cron minute costs under 2 % of a core only while a run with no
    device to serve leaves the HTTP client and the OAO arithmetic unloaded."""
    config_file(tmp_path, "c.yaml", paths=SPOOL_PATHS)
    script = ("import sys; from jobs import cli; status = cli.main(['--config', 'c.yaml', 'download', '--once']); "
              "print(' '.join(sys.modules)); sys.exit(status)")
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    imported = set(run.stdout.split())
    assert "jobs.stages.download" in imported
    assert not imported & {"requests", "numpy", "jobs.track.fetch", "jobs.track.oao"}
