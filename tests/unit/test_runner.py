"""The loop every stage shares: stage lock, --once, --for, signals, worker slots.

Those that need sockets, processes or the simulated fleet are in
tests/integration/test_runner_processes.py.
"""

import threading
import time

import pytest

from jobs import runner, spool
from jobs.spool import state
from tests.builders import runner_config


@pytest.fixture
def cfg(tmp_path):
    return runner_config(tmp_path)


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


def test_a_queued_device_wakes_its_stage_before_the_interval_is_up(cfg):
    """Work queued during a long pause is taken within a fraction of a second, not at the next interval."""
    steps = []
    stop = threading.Event()

    def step(ctx):
        steps.append((time.monotonic(), [d for d, _ in spool.pending(ctx.spool, "inspect")]))

    spool.pending(cfg.paths.spool, "inspect")
    thread = threading.Thread(target=runner.run, args=(cfg, "inspect", step),
                              kwargs=dict(stop=stop, interval=30.0))
    thread.start()
    try:
        while not steps:
            time.sleep(0.01)
        time.sleep(0.3)
        queued_at = time.monotonic()
        spool.enqueue(cfg.paths.spool, "inspect", 7)
        deadline = time.monotonic() + 5
        while not any(7 in queued for _, queued in steps) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(10)
    woken = [at for at, queued in steps if 7 in queued]
    assert woken and woken[0] - queued_at < 1.0


def test_a_stage_without_a_queue_is_not_woken_by_one(cfg):
    steps = []
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(cfg, "detect", lambda ctx: steps.append(1)),
                              kwargs=dict(stop=stop, interval=30.0))
    thread.start()
    try:
        while not steps:
            time.sleep(0.01)
        spool.enqueue(cfg.paths.spool, "inspect", 7)
        time.sleep(0.6)
    finally:
        stop.set()
        thread.join(10)
    assert steps == [1]
