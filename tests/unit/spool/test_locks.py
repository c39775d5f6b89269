"""The two kinds of lock: on a file that moves, and on a lock file that stays."""

import os
import time

import pytest

from jobs.spool import locks


def test_a_lock_file_is_taken_once_and_names_its_holder_while_held(tmp_path):
    path = tmp_path / "locks" / "stage-detect.lock"
    held = locks.take(path, "4711 detect")
    assert locks.take(path, "4712 detect") is None          # flock: even another descriptor of ours waits
    assert locks.holder(path) == "4711 detect"
    locks.release(held)
    assert locks.holder(path) is None and path.exists()      # never deleted
    locks.release(locks.take(path, "4713 detect"))


def test_a_bounded_wait_gives_up_naming_the_lock_and_its_last_holder(tmp_path):
    path = tmp_path / "470.lock"
    held = locks.take(path, "pid 1@host thread download_0")
    started = time.monotonic()
    with pytest.raises(locks.LockTimeout) as caught:
        with locks.holding(path, "pid 2@host", wait_s=0.3, what="state lock"):
            pytest.fail("held twice")
    assert 0.3 <= time.monotonic() - started < 2
    assert str(caught.value) == (f"state lock {path} still held after 0.3 s"
                                 " (last taken by pid 1@host thread download_0)")
    locks.release(held)
    with locks.holding(path, "pid 2@host", wait_s=0.3):
        assert locks.holder(path) == "pid 2@host"


def test_a_moving_file_is_locked_only_while_its_name_still_names_it(tmp_path):
    item = tmp_path / "470.json"
    item.write_text("{}")
    fd = locks.open_locked(item, os.O_RDONLY)
    assert fd is not None and locks.open_locked(item, os.O_RDONLY) is None   # held
    os.rename(item, tmp_path / "470.claimed.json")
    assert locks.still_named(tmp_path / "470.claimed.json", fd)              # the lock went with it
    assert locks.open_locked(tmp_path / "470.claimed.json", os.O_RDONLY) is None
    os.close(fd)
    assert locks.open_locked(item, os.O_RDONLY) is None                      # nothing there
