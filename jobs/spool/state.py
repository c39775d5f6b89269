"""One JSON file per device: what the server knows about it.

    <spool>/state/470.json   status, address, history, info, warnings, tracks
    <spool>/locks/470.lock   flock(2) taken around every read-modify-write
    <spool>/locks/470.holder who took it last: pid@host, thread, when

A writer waits at most LOCK_WAIT_S for the lock, then raises LockTimeout
naming the lock and its holder: a stopped (kill -STOP) or hung holder must
not block every stage that touches the device, silently, for ever.

Readers that only look (dashboard, status) read without the lock: every write
is an atomic replace, so they see the old file or the new one. Writers change
a device only inside `update`, and move its status only from the status they
expect (compare and set), so a stage never undoes another's newer decision.
Lock files are never deleted: deleting one while another process waits on it
would let two processes hold "the" lock at once.
"""

import datetime as dt
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from jobs.spool import layout, locks
from jobs.spool.files import write_json

LOCK_WAIT_S = 30.0  # an update takes milliseconds: a holder this long is stopped or hung


# A device's state lock was held by someone else for longer than LOCK_WAIT_S.
LockTimeout = locks.LockTimeout


STATUSES = ("unknown", "connected", "pending", "downloading", "completed", "disconnected", "failed")
# Statuses in which a device is on the network and some stage owns it.
ACTIVE = ("connected", "pending", "downloading", "completed")


def new(device):
    return {
        "device": device,
        "status": "unknown",
        "address": None,
        "history": None,    # time of the latest connection: the dashboard's order
        "since": None,      # time of the latest status change
        "last_seen": None,
        "info": {},         # summary of info.json: firmware, battery, storage, username
        "warnings": [],
        "error": None,
        "retry": {"failures": 0, "next": 0},
        "tracks": {},       # ledger: the device's file path -> what we know of that track (jobs.track.ledger)
        "progress": None,   # the download in flight: file, bytes, total, rate
        "absent_since": None,  # disconnect's grace: first failed probe of a completed device
        # Where it answered today: {day, address, at, previous: {address, at} or None}.
        "addresses_today": None,
        "updated": None,
    }


def path(root, device):
    return Path(layout.state_file(root, device))


def lock(root, device):
    """The device's lock held for the body; LockTimeout after LOCK_WAIT_S of waiting."""
    note = (f"pid {os.getpid()}@{socket.gethostname()} thread {threading.current_thread().name} "
            f"since {time.strftime('%H:%M:%S')}")
    return locks.holding(layout.device_lock(root, device), note, LOCK_WAIT_S, what="state lock")


def read(root, device):
    """The device's state as last written (a fresh one if never seen)."""
    try:
        # A str path: pathlib costs more than the read when a sweep reads hundreds.
        with open(layout.state_file(root, device), "rb") as f:
            doc = json.loads(f.read())
    except FileNotFoundError:
        return new(device)
    return {**new(device), **doc}


@contextmanager
def update(root, device, sync=True):
    """Read, change and write one device's state under its lock.

    The body changes the dict it is given; it is written only if it changed.
    LockTimeout if another holder keeps the lock beyond LOCK_WAIT_S. With
    sync=False the folder is not synced after the rename: a crash may lose the
    write (a download's progress, written every few seconds), never the file
    (its data is synced before the rename, so it is the old one or the new).
    """
    with lock(root, device):
        doc = read(root, device)
        before = json.dumps(doc, sort_keys=True)
        yield doc
        if json.dumps(doc, sort_keys=True) != before:
            doc["updated"] = time.time()
            _write(layout.state_file(root, device), doc, sync)


def _write(where, doc, sync):
    try:
        write_json(where, doc, sync_folder=sync)
    except FileNotFoundError:  # a new spool: its state folder is made by the first write
        os.makedirs(os.path.dirname(where), exist_ok=True)
        write_json(where, doc, sync_folder=sync)


def set_status(doc, status, **fields):
    """Move a state dict (inside `update`) to `status`, stamping the change."""
    assert status in STATUSES, status
    if doc["status"] != status:
        doc["since"] = time.time()
    doc["status"] = status
    doc.update(fields)


def transition(root, device, expected, status, **fields):
    """Compare and set: move to `status` only from one of `expected`.

    Returns the new state, or None when the device had moved on meanwhile.
    """
    with update(root, device) as doc:
        if doc["status"] not in expected:
            return None
        set_status(doc, status, **fields)
        return dict(doc)


def all_devices(root, shared=False):
    """Every device's state, in no particular order (no locks taken).

    shared=True: through read_shared, for a loop that looks every few seconds
    and only reads (the docs are shared between calls: never change them).
    """
    docs = []
    try:
        names = os.listdir(layout.state_dir(root))
    except FileNotFoundError:
        return docs
    reader = read_shared if shared else read
    for name in names:
        stem, dot, ext = name.partition(".")
        if ext == "json" and stem.isdigit():
            try:
                docs.append(reader(root, int(stem)))
            except (OSError, ValueError):
                continue
    return docs


# Each state file as this process last read it, by its identity (inode, mtime,
# size): a loop every few seconds would otherwise open and parse every device's
# file to find it unchanged. State files are only ever replaced by a rename, so
# a changed file is a new inode.
_read_before = {}


def read_shared(root, device):
    """read(), from memory while the file is the one read last time. The doc is
    shared with every later call that finds the file unchanged: never change it."""
    where = layout.state_file(root, device)
    try:
        info = os.stat(where)
    except FileNotFoundError:
        _read_before.pop(where, None)
        return new(device)
    identity = (info.st_ino, info.st_mtime_ns, info.st_size)
    last = _read_before.get(where)
    if last is not None and last[0] == identity:
        return last[1]
    doc = read(root, device)  # stat before read: a file replaced meanwhile is read again next time
    _read_before[where] = (identity, doc)
    return doc


RETRY_MAX_S = 300.0


def mark_failed(doc, why, base_interval):
    """Inside `update`: the device failed; forget its address and back off.

    Detect tries it again after base_interval, doubling with each failure in
    a row up to 5 minutes, so a broken device is not hammered every sweep.
    """
    failures = doc["retry"].get("failures", 0) + 1
    wait = min(RETRY_MAX_S, base_interval * 2 ** (failures - 1))
    set_status(doc, "failed", error=why, address=None, progress=None,
               retry={"failures": failures, "next": time.time() + wait, "wait": wait})


def retry_due(doc, now):
    """Whether a failed device's backoff is over at `now` (time.time()).

    The record is on the wall clock (it outlives the process), so the wait
    left is never taken as longer than the backoff itself: after the clock is
    set back an hour, the device is looked for after its backoff, not an hour
    and its backoff.
    """
    retry = doc.get("retry") if isinstance(doc.get("retry"), dict) else {}
    left = retry.get("next", 0) - now
    wait = retry.get("wait", RETRY_MAX_S)
    if not isinstance(left, (int, float)) or not isinstance(wait, (int, float)):
        return True
    return left <= 0 or left > max(wait, 0) + 1.0


def note_address(doc, address, now, tz):
    """Inside `update`: record that the device answers from `address`.

    Returns {address, at} of the address it answered from earlier the same
    event day when that was another one, else None; the device then carries
    an "address" warning for the rest of the day. Anything on the WiFi can
    take the name motion-<id>: a second address the same day is worth a look.
    """
    day = dt.datetime.fromtimestamp(now, tz).date().isoformat()
    seen = doc.get("addresses_today")
    if not isinstance(seen, dict) or seen.get("day") != day:
        seen = {"day": day, "address": None, "at": None, "previous": None}
        doc["warnings"] = _without(doc["warnings"], "address")
    moved = seen["address"] not in (None, address)
    if moved:
        seen["previous"] = {"address": seen["address"], "at": seen["at"]}
        text = f"answers from {address}, earlier today from {seen['address']}"
        doc["warnings"] = _without(doc["warnings"], "address") + [{"kind": "address", "text": text}]
    seen.update(address=address, at=now)
    doc["addresses_today"] = seen
    return seen["previous"] if moved else None


def _without(warnings, kind):
    return [w for w in warnings if not (isinstance(w, dict) and w.get("kind") == kind)]


def fail(root, device, expected, why, base_interval):
    """Compare and set: failed (address forgotten, backing off) only from one of `expected`.

    Returns None when it failed the device, else the status it had moved on to
    (another stage's newer word stands).
    """
    with update(root, device) as doc:
        if doc["status"] not in expected:
            return doc["status"]
        mark_failed(doc, why, base_interval)
    return None


def mark_completed(doc):
    """Inside `update`: everything wanted is verified; the failure streak ends."""
    set_status(doc, "completed", error=None, progress=None, retry={"failures": 0, "next": 0})
