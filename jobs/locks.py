"""Non-blocking flock(2) locks on files that are never deleted.

The kernel drops a lock when its process dies, however it dies, so a lock
that can be taken has no owner: no pid files to go stale.
"""

import fcntl
import os
from pathlib import Path


def try_lock(path, note=""):
    """Hold the lock at `path` and return its descriptor, or None if it is held."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    # Who holds it, for `motion-server status`; written only once we hold it.
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {note}\n".encode(), 0)
    return fd


def unlock(fd):
    os.close(fd)


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
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "?"
    finally:
        os.close(fd)
