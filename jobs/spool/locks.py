"""Every lock of the project: flock(2), of two kinds.

The kernel drops a flock when its process dies, however it dies, so a lock
that can be taken has no owner: no pid files to go stale, no pid trusted.

1. A lock on a file that moves: a spool item (claimed, finished, requeued by
   rename), a download's `.part` (renamed into place) and an atomic writer's
   temporary file (renamed over its target). The lock is on the open file, the
   inode, so it travels with the file through the rename; a lock file beside it
   would stay behind under the old name. Taken without waiting, and the name
   is checked again once it is held: the file opened may have been renamed or
   unlinked meanwhile by the holder that just let go. `open_locked`,
   `lock_open_file`, `still_named`.

2. A lock file that never moves and is never deleted, in <spool>/locks/
   (jobs.spool.layout names them): one run of a stage at a time (stage-<stage>.lock),
   the worker slots of a stage (<stage>.slot<n>.lock) and a device's state
   (<device>.lock). Deleting one while another process waits on it would let two
   processes hold "the" lock at once. `take` waits at most `wait_s`: no wait for
   the stage and slot locks (a busy one means "someone else does it"), a bounded
   wait for the state lock (an update takes milliseconds; a holder that keeps it
   for LOCK_WAIT_S is stopped or hung, and `holding` raises LockTimeout naming it).
   A wait uses the project's filelock package; a single try is one flock, because
   every stage run takes its stage lock at start and importing filelock costs
   ~55 ms of CPU, half of a stage's start-up. Both are flock(2) on the same file.
   Who holds a lock is noted beside it (<lock>.holder), not in it: filelock may
   truncate the lock file when it opens it. `take`, `release`, `holding`, `holder`.
"""

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


# --- 1. a lock on a file that moves ------------------------------------------------

def lock_open_file(fd, wait=False):
    """Lock the open file `fd` (its inode, wherever it is renamed); False if another holds it.

    `wait` only for a file this process just created, which a sweeper may hold
    for an instant (jobs.spool.files.locked_temporary)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def still_named(path, fd):
    """Whether `path` still names the file open as `fd`."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_ino, named.st_dev) == (held.st_ino, held.st_dev)


def open_locked(path, flags, mode=0o644):
    """The file at `path` opened with `flags` and locked, or None if it is held, was
    renamed or unlinked before the lock was ours, or (without O_CREAT) is not there."""
    try:
        fd = os.open(path, flags, mode)
    except FileNotFoundError:
        return None
    try:
        if lock_open_file(fd) and still_named(path, fd):
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


# --- 2. a lock file that stays --------------------------------------------------------

class LockTimeout(Exception):
    """A lock file was held by someone else for longer than the caller would wait."""

    def __init__(self, lock_path, holder, waited_s, what="lock"):
        self.lock_path, self.holder = str(lock_path), holder
        super().__init__(f"{what} {lock_path} still held after {waited_s:g} s"
                         f" (last taken by {holder or 'an unknown process'})")


class Held:
    """A lock file held: by our descriptor (a single try) or by filelock's lock (a bounded wait)."""

    def __init__(self, path, fd=None, waited=None):
        self.path, self.fd, self.waited = path, fd, waited


def take(path, note, wait_s=0.0):
    """Hold the lock file `path` (noting `note` as its holder), or None if another
    process still holds it after `wait_s` seconds."""
    held = _try(path)  # the usual case, nobody holds it: one flock, no filelock
    if held is None and wait_s > 0:
        held = _wait(path, wait_s)
    if held is not None:
        try:
            _note(path, note)  # only once we hold it
        except BaseException:
            release(held)
            raise
    return held


def _try(path):
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:  # the first lock of a new spool: its folder is made once
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if lock_open_file(fd):
        return Held(Path(path), fd=fd)
    os.close(fd)
    return None


def _wait(path, wait_s):
    # Imported only to wait: see the module's docstring.
    from filelock import FileLock, Timeout

    waited = FileLock(path, timeout=wait_s)
    try:
        waited.acquire()
    except Timeout:
        return None
    return Held(path, waited=waited)


def release(held):
    if held.waited is not None:
        held.waited.release()
    else:
        os.close(held.fd)


@contextmanager
def holding(path, note, wait_s, what="lock"):
    """The lock file `path` held for the body; LockTimeout naming the last holder after `wait_s`."""
    held = take(path, note, wait_s)
    if held is None:
        raise LockTimeout(path, last_holder(path), wait_s, what)
    try:
        yield held
    finally:
        release(held)


def _holder_path(path):
    return os.path.splitext(path)[0] + ".holder"


NOTE_WIDTH = 200   # every note is padded to it: written over the last one, no truncate (a journal write)


def _note(path, note):
    fd = os.open(_holder_path(path), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        text = note.encode(errors="replace")[:NOTE_WIDTH - 1]
        os.pwrite(fd, text.ljust(NOTE_WIDTH - 1) + b"\n", 0)
    finally:
        os.close(fd)


def last_holder(path):
    """Who took the lock last, or None: only a hint (the note stays after release)."""
    try:
        with open(_holder_path(path), encoding="utf-8", errors="replace") as f:
            return f.read().strip()[:NOTE_WIDTH] or None
    except OSError:
        return None


def holder(path):
    """The note of the live process that holds `path`, or None if nobody does."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return last_holder(path) or "?"
    finally:
        os.close(fd)
