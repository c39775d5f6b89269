"""Atomic file writes: the Maildir rule for every file another process may read.

Write beside the target under a dot-name, fsync, rename over the target, fsync
the folder. A reader sees the old file or the new one, never half of either,
and after a power loss the rename is either there or not.

A writer holds flock(2) on its temporary file until the rename, so a temporary
file whose lock can be taken was left by a writer that died (kill -9, power
loss): jobs.spool.sweep_temporary deletes those, the way Maildir sweeps tmp/,
without trusting ages or pids.
"""

import contextlib
import hashlib
import json
import os
import re
from pathlib import Path

from jobs.spool import locks

# `.<name>.<pid>.<8 hex>.motion.tmp`: the only names the sweep may delete. An
# operator's `.htaccess` or `backup.tmp` in the html folder is not ours.
OWN_TEMPORARY = re.compile(r"\.[^/]+\.\d+\.[0-9a-f]{8}\.motion\.tmp\Z", re.ASCII)


def fsync_dir(folder):
    # The rename lives in the folder's entries; without this a power loss can
    # forget it even though the file's own bytes were synced.
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data, mode=0o644, sync=True, sync_folder=None):
    """Replace `path` with `data` (bytes or str) so no reader sees a partial file.

    sync: the data reaches the disk before the rename, and the folder after it.
    sync_folder=False (with sync): the data is synced, so a crash leaves the old
    file or the new one, never an empty one, but the rename itself may be lost."""
    sync_folder = sync if sync_folder is None else sync_folder
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with temporary_beside(path) as (fd, tmp):
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(data)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    if sync_folder:
        fsync_dir(path.parent)


def temporary_path(path):
    """A new temporary name beside `path`, recognisable as ours (see OWN_TEMPORARY)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.motion.tmp")


def create_temporary(path, mode=0o600):
    """(fd, temporary path) of a new empty file beside `path`, created exclusively."""
    while True:
        tmp = temporary_path(path)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def temporary_beside(path, mode=0o600):
    """(fd, path) of a new temporary file beside `path`, flock'ed by this process, for the block
    to fill and rename into place. If the block fails, the file is deleted; the descriptor, and
    with it the lock, is let go only when the block ends: until its rename the file is ours, and
    no sweep takes it (see OWN_TEMPORARY)."""
    fd, tmp = locked_temporary(lambda: create_temporary(path, mode))
    try:
        yield fd, tmp
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    finally:
        os.close(fd)


def locked_temporary(create):
    """(fd, path) of a new temporary file from `create()`, flock'ed by this process.

    A sweeper may take the lock in the instant between the file's creation and
    ours and delete it; then the file at that name is no longer ours and a new
    one is made.
    """
    while True:
        fd, tmp = create()
        locks.lock_open_file(fd, wait=True)
        if locks.still_named(tmp, fd):
            return fd, tmp
        os.close(fd)


def write_json(path, obj, sync=True, sync_folder=None):
    # One line: json's C encoder does not indent, and a device's state is
    # written several times a track (indented, its Python encoder cost 3.5x).
    atomic_write(path, json.dumps(obj, sort_keys=True) + "\n", sync=sync, sync_folder=sync_folder)


def read_json(path, default=None):
    """The JSON at `path`, or `default` when there is no such file."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def read_note(path, default=None):
    """A small JSON note of the spool, or `default` when it is missing or damaged (not JSON:
    a disk full mid-edit, a hand edit): a note only saves work, so a bad one counts as none."""
    try:
        return read_json(path, default)
    except ValueError:
        return default


def sha256_of(path):
    """The hex sha256 of a whole file, read in pieces (hashlib.file_digest)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def is_temporary(name):
    """Names that are never a finished file: dot-files, `*.tmp`, `*.part` (not served, not listed)."""
    return name.startswith(".") or name.endswith((".tmp", ".part"))


def is_own_temporary(name):
    """A temporary file of this project's atomic writers: the only kind the sweep deletes."""
    return OWN_TEMPORARY.match(name) is not None


def short_of_space(free_bytes, adding, min_free_gb):
    """Whether writing `adding` more bytes would leave less than `min_free_gb` free.

    The one rule for the tracks filesystem: download does not start a track
    that breaks it, and `check` reports it (with nothing to add) the same way.
    Decimal GB, as `check` prints them.
    """
    return free_bytes - adding < min_free_gb * 1e9
