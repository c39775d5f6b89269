"""The spool: queues of devices as files, claimed by rename, never lost.

    <spool>/inspect/470.json                      queued: waiting for a worker
    <spool>/claimed/inspect/470.4711@host.json    claimed by pid 4711 on host
    <spool>/done/inspect/2026-07-16/470.<t>.json  finished (expired later)
    <spool>/corrupt/                              items that could not be read

An item is a small JSON file named by its device: {"device": 470, "enqueued": t}.
The rules that make it safe (Postfix's queue manager and Maildir):

- enqueue writes a temporary file and hard-links it to its name; the link fails
  if the device is already queued, so enqueueing twice is a no-op, atomically.
- a claimer opens the item and takes flock(2) on it before moving it, so two
  claimers never both win; the lock stays with the file (the inode) through
  the rename and is released by the kernel when the owner dies, even by
  SIGKILL. A claim whose lock can be taken therefore has no owner: take_over
  puts it back in the queue. No pid is trusted for that (pids are reused).
- a device is claimed at most once per queue: a second item for it waits.

The lease (spool.lease_s): an owner renews its claim while it works (`renew`:
the claim file's mtime, which every process reads, and the holder's own
monotonic clock, which its run reads: take_over's `ours`). A claim not renewed
for longer than the lease is taken over even if its owner still lives (hung):
its item goes back to the queue as a new file. The claim's name decides: once
no file has it, the claim was taken over and `renew` raises ClaimLost; another
worker has the device, and the holder stops without finishing it (the runner
lets go of the claim as after a stop). So a holder renews well inside the
lease, before each step that may take a device's time: download every few
seconds of a body (jobs.track.fetch.LEASE_EVERY_S), inspect before each document
and before its plan.
"""

import datetime as dt
import json
import logging
import os
import re
import socket
import time
from pathlib import Path

from jobs.spool import layout, locks
from jobs.spool.files import create_temporary, fsync_dir, is_own_temporary, locked_temporary

QUEUES = layout.QUEUES
ITEM = re.compile(r"^(\d+)\.json\Z", re.ASCII)  # int() reads any script's digits: ASCII only
CLAIM = re.compile(r"^(\d+)\.(\d+)@(.+)\.json\Z", re.ASCII)
HOST = socket.gethostname().replace("/", "_")
log = logging.getLogger("motion.spool")


class Claim:
    """A claimed queue item: its path in the claims folder and the descriptor holding its flock."""

    def __init__(self, queue, device, path, fd, item=None):
        self.queue, self.device, self.path, self.fd = queue, device, path, fd
        self.item = {} if item is None else item
        self.renewed = time.monotonic()   # the last renewal by its holder, on a clock no one sets

    def __repr__(self):
        return f"Claim({self.queue!r}, {self.device}, {str(self.path)!r})"




def _scan(folder):
    """Entries of `folder`; none if it does not exist yet (readers create nothing)."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def enqueue(root, queue, device, **extra):
    """Queue `device`; False if it was queued already (then nothing changes)."""
    folder = layout.queue_dir(root, queue)
    folder.mkdir(parents=True, exist_ok=True)
    item = {"device": device, "enqueued": time.time(), **extra}
    name = layout.queue_item(root, queue, device)
    fd, tmp = locked_temporary(lambda: create_temporary(name, 0o644))
    try:
        os.write(fd, json.dumps(item).encode())
        os.fsync(fd)
        os.utime(tmp, (item["enqueued"], item["enqueued"]))  # the place in line
        try:
            os.link(tmp, name)
            added = True
        except FileExistsError:
            added = False
        finally:
            os.unlink(tmp)
    finally:
        os.close(fd)  # held until the temporary name is gone: see sweep_temporary
    fsync_dir(folder)
    return added


def pending(root, queue):
    """[(device, enqueued_at)] waiting in `queue`, the longest-waiting first.

    Enqueue time is the item's mtime (release puts it back), so one scandir
    orders the queue whatever order the folder lists its files in.
    """
    items = []
    for entry in _scan(layout.queue_dir(root, queue)):
        match = ITEM.match(entry.name)
        if match:
            try:
                items.append((entry.stat().st_mtime, int(match.group(1))))
            except FileNotFoundError:
                continue
    return [(device, mtime) for mtime, device in sorted(items)]


def claims(root, queue):
    """Claims held in `queue`: device, pid, host, age in seconds, path."""
    found = []
    now = time.time()
    for entry in _scan(layout.claims_dir(root, queue)):
        match = CLAIM.match(entry.name)
        if not match:
            continue
        try:
            age = now - entry.stat().st_mtime
        except FileNotFoundError:
            continue
        found.append({"device": int(match.group(1)), "pid": int(match.group(2)), "host": match.group(3),
                      "age": age, "path": Path(entry.path)})
    return sorted(found, key=lambda c: c["device"])


def _claimed(root, queue, device):
    """Whether `device` has a claim in `queue` (what claims() lists, without a stat per claim)."""
    prefix = f"{device}."
    return any(entry.name.startswith(prefix) and CLAIM.match(entry.name)
               for entry in _scan(layout.claims_dir(root, queue)))


def claim(root, queue, device):
    """Take `device` from `queue` for this process, or None if someone else has it."""
    path = layout.queue_item(root, queue, device)
    # Locked and still the file at that name: only a lock holder moves an
    # item, so from here on nobody else can take it.
    fd = locks.open_locked(path, os.O_RDONLY)
    if fd is None:
        return None
    try:
        if _claimed(root, queue, device):
            os.close(fd)  # one worker per device: the new item waits for the old one
            return None
        claim_path = layout.claim_file(root, queue, device, os.getpid(), HOST)
        claim_path.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, claim_path)
        os.unlink(path)
        os.utime(claim_path)  # the claim time, and the lease's heartbeat from now on
        fsync_dir(path.parent)
        fsync_dir(claim_path.parent)
    except (FileNotFoundError, FileExistsError):
        os.close(fd)
        return None
    try:
        item = json.loads(os.read(fd, 65536) or b"{}")
        if not isinstance(item, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        _quarantine(root, claim_path, f"unreadable queue item ({exc})")
        os.close(fd)
        return None
    return Claim(queue=queue, device=device, path=claim_path, fd=fd, item=item)


def _quarantine(root, path, why):
    corrupt = layout.corrupt_dir(root)
    corrupt.mkdir(parents=True, exist_ok=True)
    target = corrupt / f"{path.name}.{time.time_ns()}"
    os.replace(path, target)
    log.error("moved %s to %s: %s", path, target, why)


def touch(claim):
    """Renew the lease; False if the claim was taken over meanwhile."""
    try:
        os.utime(claim.path)
        claim.renewed = time.monotonic()
        return True
    except FileNotFoundError:
        return False


class ClaimLost(Exception):
    """Our claim was taken over (the lease ran out): another worker has the device."""


def renew(claim):
    """Renew the claim's lease; ClaimLost if it was taken over meanwhile."""
    if not touch(claim):
        raise ClaimLost()


def finish(claim):
    """The work is done: file the item under done/<queue>/<day>/ for the record."""
    done = layout.done_dir(layout.spool_of_claim(claim.path), claim.queue, dt.date.today())
    done.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(claim.path, done / f"{claim.device}.{time.time_ns()}.json")
        fsync_dir(claim.path.parent)
    except FileNotFoundError:
        log.warning("claim %s was taken over before it finished", claim.path.name)
    finally:
        os.close(claim.fd)


def _requeue(root, queue, device, path, item):
    """Put a claimed item back under its queue name, keeping its place in line."""
    enqueued = item.get("enqueued")
    if isinstance(enqueued, (int, float)):
        os.utime(path, (enqueued, enqueued))
    target = layout.queue_item(root, queue, device)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, target)
    except FileExistsError:
        pass  # queued again meanwhile: that item stands for this one
    os.unlink(path)
    fsync_dir(target.parent)
    fsync_dir(path.parent)


def release(claim):
    """Give the item back unfinished (a clean stop): the next worker takes it."""
    try:
        _requeue(layout.spool_of_claim(claim.path), claim.queue, claim.device, claim.path, claim.item)
    except FileNotFoundError:
        pass
    finally:
        os.close(claim.fd)


def take_over(root, queue, lease_s, ours=()):
    """Requeue claims whose owner died or whose lease ran out; [devices] requeued.

    `ours`: names of claims the caller holds and renews itself: within their
    lease they are alive by definition, and a busy download's 16 of them would
    otherwise cost an open, a lock and a stat each, every step. Given as
    {name: Claim}, their age is the holder's own, on the monotonic clock: a
    wall clock stepped forward an hour made each look an hour old, and the run
    took its own live claims from under its workers.
    """
    returned = []
    for held in claims(root, queue):
        path = held["path"]
        if path.name in ours and _own_age(ours, path.name, held["age"]) <= lease_s:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            # The inode decides, not the name: the file we opened may have been
            # finished meanwhile (its lock let go) and its owner may hold a new
            # claim under the same name, which must not be put back from under it.
            if locks.lock_open_file(fd):
                item = _read_item(fd)
                if locks.still_named(path, fd):
                    _requeue(root, queue, held["device"], path, item)
                    log.warning("took over the claim of dead pid %s on %s", held["pid"], held["device"],
                                extra={"device": held["device"], "stage": queue})
                    returned.append(held["device"])
            elif time.time() - os.fstat(fd).st_mtime > lease_s:
                # The owner lives but is stuck. Its inode stays locked, so the
                # item goes back as a new file that a new worker can lock.
                item = _read_item(fd)
                if not locks.still_named(path, fd):
                    continue
                os.unlink(path)
                enqueue(root, queue, held["device"], **{k: v for k, v in item.items() if k != "device"})
                log.warning("took over the claim of pid %s after %.0f s without progress", held["pid"],
                            held["age"], extra={"device": held["device"], "stage": queue})
                returned.append(held["device"])
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    return returned


def _own_age(ours, name, wall_age):
    """Seconds since the caller last renewed its claim `name`: monotonic when it says, else the file's."""
    claim = ours.get(name) if isinstance(ours, dict) else None
    renewed = getattr(claim, "renewed", None)
    return wall_age if renewed is None else time.monotonic() - renewed


def _read_item(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        item = json.loads(os.read(fd, 65536) or b"{}")
        return item if isinstance(item, dict) else {}
    except ValueError:
        return {}


def sweep_temporary(folder, max_age=0):
    """Delete temporary files older than `max_age` s whose writer died; how many.

    Writers hold flock(2) on a temporary file until it is renamed or unlinked
    (jobs.spool.files.locked_temporary), so one whose lock can be taken was left by
    a killed writer and nobody else will ever remove it. Only our own names
    (jobs.spool.files.OWN_TEMPORARY) are touched: an operator's `.htaccess` or
    `backup.tmp` is not, nor a `.part` (a download waiting to be resumed).
    """
    removed = 0
    cutoff = time.time() - max_age
    for entry in _scan(folder):
        if not is_own_temporary(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if entry.stat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue  # renamed into place meanwhile
        # None also when the writer renamed it into place (and let go) between our open and our lock.
        fd = locks.open_locked(entry.path, os.O_RDONLY)
        if fd is None:
            continue
        try:
            os.unlink(entry.path)
            removed += 1
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    return removed


def sweep(root, *more):
    """Sweep the spool's folders (and `more`, e.g. the dashboard's) of dead writers' temporary files."""
    folders = [*layout.device_folders(root).values(), layout.notes_dir(root),
               *(Path(entry.path) for entry in _scan(layout.cache_root(root)) if entry.is_dir()), *map(Path, more)]
    removed = sum(sweep_temporary(folder) for folder in folders)
    if removed:
        log.info("deleted %d temporary file%s left by killed writers", removed, "" if removed == 1 else "s")
    return removed
