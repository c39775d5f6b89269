"""Stage replicate: a second copy of every track on another disk, as it happens.

With paths.replica set, every file a ledger holds under its final name in the
track folder (verified or damaged, assigned or unassigned) is copied to the
same place under paths.replica:

    <tracks>/20260716/ALD470ANN_470_20260716_130240.oao
    <replica>/20260716/ALD470ANN_470_20260716_130240.oao

Each step reads the ledgers (no locks: state files are replaced atomically)
and queues every device with a file the replica lacks; a worker claims the
device, copies each such file (jobs.spool.copying: temporary name, fsync, read back
and compared with the ledger's sha256, rename) and records the copy in the
ledger as `replica: {path, sha256, at}`. A track moved from unassigned to its
entrant is copied under its new name and the old copy removed. The files no
ledger holds are copied the same way by the queue item 0 (no device has that
number) and listed in <spool>/notes/replica-files.json: backup files brought
in by `import` (checked against the sha256 recorded at import) and each closed
day's SHA256SUMS and entrants.csv (against the close record's), so that
`sha256sum -c SHA256SUMS` runs in the replica's day folder too.

Download never waits for this stage: it runs in its own processes, on its own
queue. A replica folder that is missing (the disk unplugged) or full is a
warning in <spool>/notes/replica.json, which the dashboard shows, and in the
log once; the files wait in the ledgers until the disk is back.
"""

import errno
import os
import re
import threading
import time
from pathlib import Path

from jobs import runner, spool
from jobs.day import backup
from jobs.spool import copying, files, layout, state
from jobs.track import ledger, naming

QUEUE = "replicate"
OTHERS = 0  # the queue item standing for the files no ledger holds: imports, closed days' packages
# A file that could not be copied (not in the track folder, a bad copy), or a
# replica disk that failed a copy (full, read-only), is tried again after this.
RETRY_S = 60.0
_health_lock = threading.Lock()


def step(ctx):
    replica = ctx.cfg.paths.replica
    if not replica:
        return False
    if not Path(replica).is_dir():
        note(ctx, f"replica folder {replica} is missing (disk not mounted?): files wait to be copied", kind="missing")
        return False
    if _last_problem(ctx.spool, "missing"):
        note(ctx, None)  # the disk is back
    if not ctx.memory.get("swept"):
        try:
            ctx.memory["swept"] = sweep_replica(Path(replica))
        except OSError as exc:   # not readable: the copies will say so too
            ctx.log.warning("replica %s not swept of temporary files: %s", replica, exc.strerror or exc)
            ctx.memory["swept"] = True
    if ctx.memory.get("disk_retry", 0) > time.time():
        return False  # the replica's disk failed a copy: not hammered every step
    queue_behind(ctx)
    return runner.serve_queue(ctx, QUEUE, replicate_device)


def sweep_replica(replica):
    """Delete the temporary files of copies killed half-way (jobs.spool.sweep_temporary: only
    ours, only those whose writer is gone); True once done."""
    folders = [p for p in replica.iterdir() if p.is_dir() and naming.DAY.fullmatch(p.name)]
    unassigned = replica / layout.UNASSIGNED
    if unassigned.is_dir():
        folders += [p for p in unassigned.iterdir() if p.is_dir() and naming.DAY.fullmatch(p.name)]
    for folder in folders:
        spool.sweep_temporary(folder)
    return True


def behind(track):
    """Whether a ledger track is on disk under a name of ours and the replica lacks this very file."""
    if not isinstance(track, dict) or not ledger.kept_sha256(track):
        return False
    try:
        naming.place(track)
    except ValueError:
        return False
    return not naming.replicated(track)


def queue_behind(ctx):
    """Queue every device with a file to copy that is neither queued, claimed nor waiting to be retried."""
    retry = ctx.memory.setdefault("retry", {})
    now = time.time()
    taken = {d for d, _ in spool.pending(ctx.spool, QUEUE)} | {c["device"] for c in spool.claims(ctx.spool, QUEUE)}
    for doc in state.all_devices(ctx.spool, shared=True):
        device = doc["device"]
        if device in taken or not isinstance(doc.get("tracks"), dict):
            continue
        if any(behind(t) and retry.get(_key(device, t), 0) <= now for t in doc["tracks"].values()):
            spool.enqueue(ctx.spool, QUEUE, device)
    if OTHERS not in taken and any(retry.get((OTHERS, *found), 0) <= now for found in others_behind(ctx.spool)):
        spool.enqueue(ctx.spool, QUEUE, OTHERS)


def _key(device, track):
    return device, track.get("file"), ledger.kept_sha256(track), track.get("name"), bool(track.get("unassigned"))


def others_behind(root):
    """[(place, sha256)] of the files no ledger holds that the replica lacks: imported backup
    files, and each closed day's package (entrants.csv before SHA256SUMS, which names it)."""
    copied = files.read_note(layout.replica_files(root), {})
    wanted = [_import_place(record) for records in backup.read_imports(root).values() for record in records]
    for name in sorted(os.listdir(layout.notes_dir(root))) if layout.notes_dir(root).is_dir() else []:
        record = files.read_note(layout.notes_dir(root) / name, {}) if CLOSED.fullmatch(name) else None
        package = record.get("package") if isinstance(record, dict) and not record.get("pending") else None
        if isinstance(package, dict):
            key = name[len("closed-"):-len(".json")]
            wanted += [(f"{key}/{file}", package.get(file)) for file in ("entrants.csv", "SHA256SUMS")]
    return [(place, sha256) for place, sha256 in filter(None, wanted)
            if isinstance(sha256, str) and copied.get(place) != sha256]


CLOSED = re.compile(r"closed-\d{8}\.json\Z", re.ASCII)


def _import_place(record):
    """(<YYYYMMDD>/<name>, sha256) of an imported file, or None if the record does not name one of ours."""
    folder, name = record.get("folder"), record.get("name")
    if isinstance(folder, str) and naming.DAY.fullmatch(folder) and isinstance(name, str) and \
            backup.NAME.fullmatch(name) and isinstance(record.get("sha256"), str):
        return f"{folder}/{name}", record["sha256"]
    return None


def replicate_others(ctx, claim):
    log = ctx.device_log(OTHERS)
    for where, sha256 in others_behind(ctx.spool):
        if ctx.stop.is_set():
            raise runner.Stopping()
        spool.renew(claim)
        done = _copy(ctx, where, sha256, (OTHERS, where, sha256), log)
        if done is None:
            return
        if not done:
            continue
        copied = files.read_note(layout.replica_files(ctx.spool), {})
        layout.notes_dir(ctx.spool).mkdir(parents=True, exist_ok=True)
        files.write_json(layout.replica_files(ctx.spool), {**copied, where: sha256})
        log.info("%s replicated to %s", where, ctx.cfg.paths.replica)
        if _last_problem(ctx.spool):
            note(ctx, None, log)


def replicate_device(ctx, claim):
    """Copy each of the claimed device's files the replica lacks; stop at the first error of the replica's disk."""
    if claim.device == OTHERS:
        return replicate_others(ctx, claim)
    doc = state.read(ctx.spool, claim.device)
    for file, track in sorted(doc["tracks"].items()):
        if ctx.stop.is_set():
            raise runner.Stopping()
        if not behind(track):
            continue
        # Renewed before each file: a device's many files may take longer than spool.lease_s to
        # copy, and a claim another run took over meanwhile is no longer ours to copy under.
        spool.renew(claim)
        if not copy_track(ctx, claim.device, file, track):
            return


def copy_track(ctx, device, file, track):
    """Copy one file and record it; False when the replica's disk failed (the device's other files wait)."""
    log = ctx.device_log(device)
    replica, where, sha256 = Path(ctx.cfg.paths.replica), naming.place(track), ledger.kept_sha256(track)
    done = _copy(ctx, where, sha256, _key(device, track), log)
    if not done:
        return done is not None
    earlier = _record(ctx, device, file, track, where, sha256)
    if earlier and earlier != where:
        (replica / earlier).unlink(missing_ok=True)  # its unassigned name, now moved to its entrant
    log.info("%s replicated to %s", where, replica)
    if _last_problem(ctx.spool):
        note(ctx, None, log)
    return True


def _copy(ctx, where, sha256, key, log):
    """Copy <tracks>/<where> to <replica>/<where>, checked against `sha256`.

    True when copied; False when this file failed and waits RETRY_S (the others
    go on); None when the replica's disk failed (full, read-only, gone).
    """
    replica = Path(ctx.cfg.paths.replica)
    source, target = Path(ctx.cfg.paths.tracks) / where, replica / where
    try:
        _make_folders(replica, Path(where).parent)
        copying.copy_checked(source, target, sha256)
        return True
    except copying.CopyMismatch as exc:
        why = str(exc)
    except OSError as exc:
        if exc.filename is None or Path(exc.filename) != source:
            problem = f"replica {replica}: {exc.strerror or exc}"
            if exc.errno in runner.LOCAL_ERRORS and exc.errno != errno.ENOTDIR:
                ctx.local_error = problem  # full or read-only: the run exits 1, cron tells someone
            note(ctx, problem, log)
            ctx.memory["disk_retry"] = time.time() + RETRY_S
            return None
        why = f"{exc.strerror}: {source}"
    log.error("%s not replicated: %s; tried again in %.0f s", where, why, RETRY_S)
    ctx.memory.setdefault("retry", {})[key] = time.time() + RETRY_S
    return False


def _make_folders(root, inside):
    """Create the folders of `inside` under `root`, never `root` itself: a missing disk stays missing."""
    folder = root
    for part in inside.parts:
        folder = folder / part
        try:
            folder.mkdir()
        except FileExistsError:
            pass


def _record(ctx, device, file, track, where, sha256):
    """The copy in the ledger, if the track is still that file; the place of the copy it replaces."""
    with state.update(ctx.spool, device) as doc:
        entry = doc["tracks"].get(file)
        if not isinstance(entry, dict) or ledger.kept_sha256(entry) != sha256 or naming.place(entry) != where:
            return None  # moved or replaced meanwhile: the next step copies what it is now
        earlier = entry.get("replica") if isinstance(entry.get("replica"), dict) else {}
        ledger.copied(entry, where, sha256)
    return earlier.get("path")


def _last_problem(root, kind=None):
    health = health_of(root)
    return bool(health.get("problem")) and (kind is None or health.get("kind") == kind)


def health_of(root):
    """What replicate last saw of the replica: {problem: text or None, kind, since}."""
    try:
        found = files.read_json(layout.replica_health(root), {})
    except ValueError:
        found = {}
    return found if isinstance(found, dict) else {}


def note(ctx, problem, log=None, kind="error"):
    """Record the replica's health when it changed, and say so once in the log."""
    log = log or ctx.log
    with _health_lock:
        if health_of(ctx.spool).get("problem") == problem:
            return
        folder = layout.notes_dir(ctx.spool)
        folder.mkdir(parents=True, exist_ok=True)
        files.write_json(layout.replica_health(ctx.spool), {"problem": problem, "kind": kind if problem else None, "since": time.time()})
    if problem is None:
        log.info("replica %s usable again", ctx.cfg.paths.replica)
    else:
        log.warning("%s", problem)
