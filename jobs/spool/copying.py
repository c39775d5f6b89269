"""Copying a finished file to another disk, checked: the replica and the handoff.

The copy is written beside its target under a temporary name (ours, see
jobs.spool.files.OWN_TEMPORARY, so a sweep may remove one left by a killed copy),
synced, read back from the disk and hashed, and only then renamed to its
name and the folder synced. Whoever reads the target folder sees a whole,
checked file or none, never a half-copied one under the final name.
"""

import hashlib
import os
import signal
from pathlib import Path

from jobs.spool.files import fsync_dir, sha256_of, temporary_beside

CHUNK = 1024 * 1024


KILL_AT = "MOTION_TEST_KILL_AT"   # tests: SIGKILL this process at the named step


def step_done(name):
    """A step of a copy, close or handoff is done; a test may have this process killed right here."""
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class CopyMismatch(Exception):
    """The copy read back does not hash as expected: nothing was renamed into place."""



def copy_checked(source, target, expected=None):
    """Copy `source` to `target` (temporary name, fsync, read back, rename, fsync the folder).

    `expected`: the sha256 the copy must have (the ledger's); without one, the
    source's own as read while copying. Returns the copy's sha256. CopyMismatch
    when the copy read back from the disk differs; OSError from either disk.
    """
    target = Path(target)
    with temporary_beside(target, 0o644) as (fd, tmp):
        read = hashlib.sha256()
        with open(source, "rb") as src:
            while chunk := src.read(CHUNK):
                read.update(chunk)
                _write_all(fd, chunk)
        os.fsync(fd)
        want = expected or read.hexdigest()
        written = _read_back(fd, tmp)
        if written != want:
            raise CopyMismatch(f"{target.name}: the copy hashes {written}, expected {want}")
        step_done("copy-checked")
        os.replace(tmp, target)
    fsync_dir(target.parent)
    return written


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_back(fd, tmp):
    """The sha256 of what the disk holds: the synced pages let go of first, so they are read from the disk."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return sha256_of(tmp)
