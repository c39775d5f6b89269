"""Stage expire: housekeeping of what the other stages leave behind.

Cached device JSON, finished queue records, rotated log files and partial
downloads (.part) whose device never came back, older than
retention.days, are renamed into <spool>/trash/ first — a rename is instant and
atomic, so no stage ever waits on a slow delete or sees half a folder — and
the trash is emptied afterwards. Killed half-way, the next run empties the
rest. Tracks are expired only when retention.tracks says so; device state is
never expired (it remembers which tracks were verified).
"""

import datetime as dt
import errno
import os
import shutil
import time
from pathlib import Path

from jobs.spool import layout


def step(ctx):
    cutoff = time.time() - ctx.cfg.retention.days * 86400
    trash = layout.trash_dir(ctx.spool)
    for path in expired(ctx, cutoff):
        to_trash(ctx, path, trash)
    empty(ctx, trash)


def expired(ctx, cutoff):
    """Everything past retention, oldest folders as whole units."""
    found = []
    for folder in _children(layout.cache_root(ctx.spool)):
        if _newest(folder) < cutoff:
            found.append(folder)
    for queue in _children(layout.done_queues(ctx.spool)):
        found += [day for day in _children(queue) if _day_before(day.name, layout.DONE_DAY, cutoff)]
    # The shipped logrotate file names them motion-server.log.YYYYMMDD[.gz]; "-" is
    # logrotate's own dateext (a logrotate file of older releases).
    log_file = Path(ctx.cfg.paths.log)
    for rotated in [*log_file.parent.glob(log_file.name + ".*"), *log_file.parent.glob(log_file.name + "-*")]:
        if rotated.stat().st_mtime < cutoff:
            found.append(rotated)
    found += abandoned_parts(ctx, cutoff)
    if ctx.cfg.retention.tracks:
        found += [day for day in _children(Path(ctx.cfg.paths.tracks)) if _day_before(day.name, layout.TRACK_DAY, cutoff)]
    return found


def _children(folder):
    try:
        return [p for p in folder.iterdir() if not p.name.startswith(".")]
    except FileNotFoundError:
        return []


def _newest(folder):
    times = [p.stat().st_mtime for p in folder.iterdir()] if folder.is_dir() else []
    return max(times, default=folder.stat().st_mtime)


def _day_before(name, pattern, cutoff):
    try:
        day = dt.datetime.strptime(name, pattern)
    except ValueError:
        return False  # not a day folder: not ours to expire
    return (day + dt.timedelta(days=1)).timestamp() < cutoff


def to_trash(ctx, path, trash):
    trash.mkdir(parents=True, exist_ok=True)
    target = trash / f"{time.time_ns()}-{path.parent.name}-{path.name}"
    try:
        os.rename(path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # Another filesystem (tracks on a data disk): no instant rename, delete in place.
        _delete(path)
    ctx.log.info("expired %s", path)


def empty(ctx, trash):
    for entry in _children(trash) + [p for p in trash.glob(".*")] if trash.exists() else []:
        _delete(entry)


def _delete(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def abandoned_parts(ctx, cutoff):
    """Partial downloads (.part) untouched since the cutoff: their device never came back."""
    return [part for day in _children(Path(ctx.cfg.paths.tracks))
            for part in day.glob(layout.PARTS) if part.stat().st_mtime < cutoff]
