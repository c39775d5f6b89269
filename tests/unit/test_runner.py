"""The loop every stage shares: stage lock, --once, --for, signals, worker slots."""

import multiprocessing
import os
import signal
import threading
import time
from types import SimpleNamespace

import pytest

from jobs import config, locks, runner, spool, state

fork = multiprocessing.get_context("fork")


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("paths: {spool: spool, log: spool/log/m.log}\nthreads: {download: 3}\n"
                    "intervals: {detect: 0.05, download: 0.05}\n")
    return config.load(path)


def test_once_runs_one_pass_of_a_sweep_stage(cfg):
    calls = []
    assert runner.run(cfg, "detect", lambda ctx: calls.append(1), once=True) == 0
    assert calls == [1]


def test_for_loops_at_the_interval_until_the_deadline(cfg):
    calls = []
    started = time.monotonic()
    runner.run(cfg, "detect", lambda ctx: calls.append(time.monotonic()), for_seconds=0.5)
    took = time.monotonic() - started
    assert 0.5 <= took < 3
    assert 4 <= len(calls) <= 12


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


def test_serve_queue_finishes_work_and_releases_on_stop(cfg):
    for device in (1, 2, 3, 4, 5):
        spool.enqueue(cfg.paths.spool, "download", device)
    done, stopped = [], threading.Event()

    def work(ctx, claim):
        if claim.device == 5:
            ctx.stop.set()
            raise runner.Stopping()
        done.append(claim.device)

    runner.run(cfg, "download", lambda ctx: runner.serve_queue(ctx, "download", work), once=True,
               stop=threading.Event())
    assert sorted(done) == [1, 2, 3, 4]
    assert [d for d, _ in spool.pending(cfg.paths.spool, "download")] == [5]  # released, not lost
    assert spool.claims(cfg.paths.spool, "download") == []


def test_a_bug_in_a_stage_fails_the_device_and_finishes_the_claim(cfg):
    spool.enqueue(cfg.paths.spool, "download", 9)
    state.transition(cfg.paths.spool, 9, ("unknown",), "downloading", address="127.0.1.9")

    def work(ctx, claim):
        raise KeyError("oops")

    runner.run(cfg, "download", lambda ctx: runner.serve_queue(ctx, "download", work), once=True)
    doc = state.read(cfg.paths.spool, 9)
    assert doc["status"] == "failed" and "internal error" in doc["error"]
    assert spool.pending(cfg.paths.spool, "download") == [] and spool.claims(cfg.paths.spool, "download") == []


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


def test_our_own_full_disk_fails_the_device_and_the_run_exits_1(cfg):
    """Not a device fault: the operator must hear of it (cron mails a non-zero exit)."""
    import errno
    spool.enqueue(cfg.paths.spool, "inspect", 8)
    state.transition(cfg.paths.spool, 8, ("unknown",), "connected", address="127.0.1.8")

    def work(ctx, claim):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/spool/cache/8/info.json")

    status = runner.run(cfg, "inspect", lambda ctx: runner.serve_queue(ctx, "inspect", work), once=True)
    assert status == 1
    doc = state.read(cfg.paths.spool, 8)
    assert doc["status"] == "failed" and doc["error"] == "No space left on device: /data/spool/cache/8/info.json"
    assert spool.claims(cfg.paths.spool, "inspect") == []
