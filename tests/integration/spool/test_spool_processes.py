"""The spool: enqueue once, claim exclusively, never lose an item, take over the dead.

The tests here need several processes and SIGKILL;
the others are in tests/unit/spool/test_spool.py.
"""

import multiprocessing
import os
import signal
import time


from jobs import spool

fork = multiprocessing.get_context("fork")


def _claim_all(root, results):
    done = []
    while True:
        pending = spool.pending(root, "inspect")
        if not pending:
            break
        for device, _ in pending:
            c = spool.claim(root, "inspect", device)
            if c is None:
                continue
            done.append(device)
            spool.finish(c)
    results.put(done)


def test_eight_processes_claiming_200_items_finish_each_exactly_once(tmp_path):
    for device in range(1, 201):
        spool.enqueue(tmp_path, "inspect", device)
    results = fork.Queue()
    workers = [fork.Process(target=_claim_all, args=(tmp_path, results)) for _ in range(8)]
    for w in workers:
        w.start()
    finished = [d for _ in workers for d in results.get(timeout=120)]
    for w in workers:
        w.join(timeout=30)
    assert sorted(finished) == list(range(1, 201))
    done_files = list((tmp_path / "done" / "inspect").rglob("*.json"))
    assert len(done_files) == 200
    assert spool.pending(tmp_path, "inspect") == [] and spool.claims(tmp_path, "inspect") == []


def _claim_and_hang(root, ready):
    c = spool.claim(root, "download", 470)
    ready.set()
    time.sleep(600)


def test_a_claimer_killed_with_sigkill_is_taken_over_and_finished(tmp_path):
    spool.enqueue(tmp_path, "download", 470)
    ready = fork.Event()
    owner = fork.Process(target=_claim_and_hang, args=(tmp_path, ready))
    owner.start()
    assert ready.wait(30)
    assert spool.take_over(tmp_path, "download", lease_s=3600) == []  # alive: left alone
    assert spool.claim(tmp_path, "download", 470) is None
    os.kill(owner.pid, signal.SIGKILL)
    owner.join(30)
    assert spool.take_over(tmp_path, "download", lease_s=3600) == [470]
    c = spool.claim(tmp_path, "download", 470)
    assert c is not None
    spool.finish(c)
    assert spool.claims(tmp_path, "download") == [] and spool.pending(tmp_path, "download") == []


def test_a_live_owner_silent_beyond_its_lease_is_taken_over(tmp_path):
    spool.enqueue(tmp_path, "download", 470)
    ready = fork.Event()
    owner = fork.Process(target=_claim_and_hang, args=(tmp_path, ready))
    owner.start()
    try:
        assert ready.wait(30)
        [held] = spool.claims(tmp_path, "download")
        old = time.time() - 100
        os.utime(held["path"], (old, old))
        assert spool.take_over(tmp_path, "download", lease_s=50) == [470]
        c = spool.claim(tmp_path, "download", 470)  # a new file: not locked by the hung owner
        assert c is not None
        spool.finish(c)
    finally:
        owner.kill()
        owner.join(30)
