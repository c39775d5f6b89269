"""The spool: enqueue once, claim exclusively, never lose an item, take over the dead.

Those that need sockets, processes or the simulated fleet are in
tests/integration/spool/test_spool_processes.py.
"""

import json
import os
import time
from pathlib import Path


from jobs import spool
from jobs.spool import files, locks


def test_enqueue_twice_is_a_no_op(tmp_path):
    assert spool.enqueue(tmp_path, "inspect", 470) is True
    assert spool.enqueue(tmp_path, "inspect", 470) is False
    assert [d for d, _ in spool.pending(tmp_path, "inspect")] == [470]
    item = json.loads((tmp_path / "inspect" / "470.json").read_text())
    assert item["device"] == 470
    assert not [n for n in os.listdir(tmp_path / "inspect") if n.startswith(".")]


def test_claimed_oldest_first_whatever_the_folder_order(tmp_path):
    for device in (900, 12, 470, 3, 601):
        spool.enqueue(tmp_path, "download", device)
        time.sleep(0.01)
    assert [d for d, _ in spool.pending(tmp_path, "download")] == [900, 12, 470, 3, 601]
    claimed = []
    while (pending := spool.pending(tmp_path, "download")):
        c = spool.claim(tmp_path, "download", pending[0][0])
        claimed.append(c.device)
        spool.finish(c)
    assert claimed == [900, 12, 470, 3, 601]


def test_a_released_item_keeps_its_place_in_line(tmp_path):
    spool.enqueue(tmp_path, "download", 1)
    time.sleep(0.01)
    spool.enqueue(tmp_path, "download", 2)
    c = spool.claim(tmp_path, "download", 1)
    time.sleep(0.01)
    spool.release(c)
    assert [d for d, _ in spool.pending(tmp_path, "download")] == [1, 2]


def test_a_device_is_claimed_once_while_a_new_item_for_it_waits(tmp_path):
    spool.enqueue(tmp_path, "inspect", 470)
    first = spool.claim(tmp_path, "inspect", 470)
    assert first is not None
    assert spool.claim(tmp_path, "inspect", 470) is None  # gone from the queue
    spool.enqueue(tmp_path, "inspect", 470)              # queued again meanwhile
    assert spool.claim(tmp_path, "inspect", 470) is None  # waits for the first claim
    spool.finish(first)
    second = spool.claim(tmp_path, "inspect", 470)
    assert second is not None
    spool.finish(second)
    assert list((tmp_path / "done" / "inspect").iterdir())


def test_claims_show_owner_and_age(tmp_path):
    spool.enqueue(tmp_path, "inspect", 5)
    c = spool.claim(tmp_path, "inspect", 5)
    [held] = spool.claims(tmp_path, "inspect")
    assert held["device"] == 5 and held["pid"] == os.getpid() and held["host"] == spool.HOST
    assert 0 <= held["age"] < 5
    assert c.path.parent.name == "inspect" and c.path.parent.parent.name == "claimed"
    spool.finish(c)
    assert spool.claims(tmp_path, "inspect") == []


def test_an_unreadable_item_is_quarantined_not_deleted(tmp_path):
    (tmp_path / "inspect").mkdir()
    (tmp_path / "inspect" / "7.json").write_text("{not json")
    assert spool.claim(tmp_path, "inspect", 7) is None
    [kept] = list((tmp_path / "corrupt").iterdir())
    assert kept.read_text() == "{not json"


def _finish_and_reclaim_before(monkeypatch, module, name, first):
    """Make <module>.<name>, on its first call inside take_over, first let the owner finish `first`
    and claim the device again: a new claim under the same name, the old file gone to done/."""
    real = getattr(module, name)
    again = {}

    def racing(*args, **kwargs):
        if not again:
            again["claim"] = None                           # once: claim() below calls it too
            spool.finish(first)
            spool.enqueue(first.path.parents[2], first.queue, first.device)
            again["claim"] = spool.claim(first.path.parents[2], first.queue, first.device)
            assert again["claim"].path == first.path      # same pid, same device: same name
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, racing)
    return again


def test_take_over_never_puts_back_a_new_claim_that_took_a_finished_ones_name(tmp_path, monkeypatch):
    # The old file's lock is free once finished: a name check would take the new claim from its owner.
    spool.enqueue(tmp_path, "download", 470)
    first = spool.claim(tmp_path, "download", 470)
    again = _finish_and_reclaim_before(monkeypatch, locks, "lock_open_file", first)
    assert spool.take_over(tmp_path, "download", lease_s=3600) == []
    assert again["claim"].path.exists() and spool.pending(tmp_path, "download") == []
    assert spool.touch(again["claim"])


def test_take_over_by_lease_never_removes_a_new_claim_under_the_same_name(tmp_path, monkeypatch):
    spool.enqueue(tmp_path, "download", 470)
    first = spool.claim(tmp_path, "download", 470)
    old = time.time() - 100
    os.utime(first.path, (old, old))
    again = _finish_and_reclaim_before(monkeypatch, spool, "_read_item", first)
    assert spool.take_over(tmp_path, "download", lease_s=50) == []
    assert again["claim"].path.exists() and spool.pending(tmp_path, "download") == []


def test_take_over_leaves_the_callers_own_claims_alone_only_within_their_lease(tmp_path, monkeypatch):
    for device in (470, 471, 472):
        spool.enqueue(tmp_path, "download", device)
    fresh, stuck, other = (spool.claim(tmp_path, "download", device) for device in (470, 471, 472))
    old = time.time() - 100
    os.utime(stuck.path, (old, old))
    looked_at = []
    real = locks.lock_open_file
    monkeypatch.setattr(locks, "lock_open_file",
                        lambda fd, **how: looked_at.append(os.fstat(fd).st_ino) or real(fd, **how))
    ours = {fresh.path.name, stuck.path.name}
    assert spool.take_over(tmp_path, "download", lease_s=50, ours=ours) == [471]   # ours, but stuck past its lease
    assert fresh.path.exists() and os.stat(fresh.path).st_ino not in looked_at    # not even opened
    assert other.path.exists() and os.stat(other.path).st_ino in looked_at        # not said to be ours: looked at


def test_touch_renews_the_lease_and_reports_a_lost_claim(tmp_path):
    spool.enqueue(tmp_path, "download", 1)
    c = spool.claim(tmp_path, "download", 1)
    old = time.time() - 100
    os.utime(c.path, (old, old))
    assert spool.touch(c)
    assert spool.claims(tmp_path, "download")[0]["age"] < 5
    os.unlink(c.path)
    assert not spool.touch(c)
    spool.finish(c)  # logs, does not raise


def test_stale_temporary_files_are_swept_fresh_ones_kept(tmp_path):
    old, fresh = files.temporary_path(tmp_path / "470.json"), files.temporary_path(tmp_path / "601.json")
    part = tmp_path / ".track.oao.part"
    for p in (old, fresh, part):
        p.write_text("x")
    past = time.time() - 600
    os.utime(old, (past, past))
    os.utime(part, (past, past))
    assert spool.sweep_temporary(tmp_path, 60) == 1
    assert not old.exists() and fresh.exists() and part.exists()  # .part is kept for resume


def test_the_sweep_deletes_only_this_projects_temporary_files(tmp_path):
    # The html folder is the operator's too: their dot-files and *.tmp are not ours to delete.
    theirs = [".htaccess", "backup.tmp", ".index.html.tmp", ".notes.1234.tmp", ".x.1.abcdefgh.motion.tmp",
              ".x.1.a1b2c3d4.motion.tmp.bak", "index.html"]
    for name in theirs:
        (tmp_path / name).write_text("keep me")
    fd, ours = files.create_temporary(tmp_path / "index.html")
    os.close(fd)                               # its writer died: the lock is free
    files.write_json(tmp_path / "status.json", {})
    assert files.is_own_temporary(ours.name)
    assert spool.sweep(tmp_path / "spool", tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(theirs + ["status.json"])


def test_every_writer_leaves_names_the_sweep_recognises(tmp_path, monkeypatch):
    made = []
    real = files.locked_temporary

    def spy(create):
        fd, tmp = real(create)
        made.append(Path(tmp))
        return fd, tmp

    monkeypatch.setattr(files, "locked_temporary", spy)
    monkeypatch.setattr(spool, "locked_temporary", spy)
    files.write_json(tmp_path / "a.json", {})
    spool.enqueue(tmp_path, "inspect", 470)
    assert len(made) == 2 and all(files.is_own_temporary(p.name) for p in made), made
