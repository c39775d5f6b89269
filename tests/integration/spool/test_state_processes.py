"""Device state: changed only under its lock, by atomic replace; no update lost.

The tests here need several processes and SIGKILL;
the others are in tests/unit/spool/test_state.py.
"""

import json
import logging
import multiprocessing
import threading
import time

import pytest

from jobs import config, runner, spool
from jobs.spool import state

fork = multiprocessing.get_context("fork")


def _bump(root, times):
    for _ in range(times):
        with state.update(root, 470) as doc:
            doc.setdefault("counter", 0)
            doc["counter"] += 1


def _read_forever(root, stop, errors):
    path = state.path(root, 470)
    while not stop.is_set():
        try:
            json.loads(path.read_text())
        except FileNotFoundError:
            continue
        except ValueError as exc:
            errors.append(str(exc))


def test_eight_processes_200_updates_each_lose_nothing_and_always_parse(tmp_path):
    stop, errors = threading.Event(), []
    reader = threading.Thread(target=_read_forever, args=(tmp_path, stop, errors))
    reader.start()
    workers = [fork.Process(target=_bump, args=(tmp_path, 200)) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    stop.set()
    reader.join()
    assert [w.exitcode for w in workers] == [0] * 8
    assert state.read(tmp_path, 470)["counter"] == 1600
    assert errors == []


# --- a holder that stops or hangs: writers wait a bounded time, then say who holds the lock ---

def _hold_lock(root, ready):
    with state.update(root, 470):
        ready.set()
        time.sleep(60)                         # killed by the test long before


@pytest.fixture
def held_by_another_process(tmp_path, monkeypatch):
    monkeypatch.setattr(state, "LOCK_WAIT_S", 0.5)
    ready = fork.Event()
    holder = fork.Process(target=_hold_lock, args=(tmp_path, ready), name="download_3")
    holder.start()
    assert ready.wait(30)
    yield holder
    holder.kill()
    holder.join(30)


def test_a_hung_holder_makes_update_give_up_naming_the_lock_and_holder(tmp_path, held_by_another_process):
    started = time.monotonic()
    with pytest.raises(state.LockTimeout) as caught:
        with state.update(tmp_path, 470):
            pass
    assert 0.5 <= time.monotonic() - started < 3
    message = str(caught.value)
    assert str(tmp_path / "locks" / "470.lock") in message
    assert f"pid {held_by_another_process.pid}@" in message
    assert state.transition(tmp_path, 471, ("unknown",), "connected")   # other devices are not held


def test_the_stage_machinery_hands_a_locked_device_back_with_one_line(tmp_path, held_by_another_process, caplog):
    cfg = config.load(cwd=tmp_path)
    cfg.paths.spool = str(tmp_path)            # where the fixture's process holds device 470
    spool.enqueue(tmp_path, "inspect", 470)
    spool.enqueue(tmp_path, "inspect", 471)
    done = []

    def work(ctx, claim):
        state.transition(ctx.spool, claim.device, ("unknown",), "connected")
        done.append(claim.device)

    with caplog.at_level(logging.INFO, logger="motion"):
        runner.run(cfg, "inspect", lambda ctx: runner.serve_queue(ctx, "inspect", work), for_seconds=1.2,
                   stop=threading.Event(), interval=0.1)
    assert 471 in done and 470 not in done
    gave_up = [r for r in caplog.records if "gave up for now" in r.getMessage()]
    assert gave_up and all("470.lock" in r.getMessage() and "pid " in r.getMessage() for r in gave_up)
    assert not any(r.exc_info for r in caplog.records)          # one line each, no traceback
    assert spool.claims(tmp_path, "inspect") == []
    assert [d for d, _ in spool.pending(tmp_path, "inspect")] == [470]   # waiting for the next run
