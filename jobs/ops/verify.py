"""motion-server verify [--date DAY]: every kept track still is what was verified,
like restic's `check`.

Re-hashes each track the ledgers record as verified (or damaged: kept byte for
byte with its sha256) and compares it with the sha256 recorded when it was
written. One line per file that is missing or differs; exit status 1 if any.
It only reads: a state file is replaced atomically and a track only ever
appears under its final name by rename, so no lock is needed and no stage is
held up while large files are hashed.

With paths.replica set, each track's copy there is hashed too: a copy the
ledger records that is missing or differs is a problem like the track's own;
a track not copied yet (the replica disk away, replicate behind) is counted.
"""

from pathlib import Path

from jobs import log
from jobs.day import backup
from jobs.spool import files, layout, state
from jobs.track import ledger, naming
from jobs.units import printable, date_argument

STAGE = "verify"


def configure(parser):
    parser.add_argument("--date", type=date_argument, metavar="YYYY-MM-DD", help="only the tracks of this local day")


def main(cfg, args):
    # It prints what it found itself, and logs it only where a log already is.
    log.setup(cfg, console=False, errors_to_stderr=False, make_folder=False)
    logger = log.get(STAGE)
    day = args.date.strftime(layout.TRACK_DAY) if args.date else None
    checked, problems, copies, not_copied = 0, 0, 0, 0
    replica = cfg.paths.replica
    copied_files = files.read_json(layout.replica_files(cfg.paths.spool), {}) if replica else {}
    for doc in sorted(state.all_devices(Path(cfg.paths.spool)), key=lambda d: d["device"]):
        for file, track in sorted(doc["tracks"].items()):
            if track.get("status") not in ledger.WITH_FILE or (day and track.get("day") != day):
                continue
            checked += 1
            found = [check(cfg.paths.tracks, track)]
            if replica:
                copied = check_replica(replica, track)
                not_copied += copied == NOT_COPIED
                copies += copied != NOT_COPIED
                found.append(None if copied == NOT_COPIED else copied)
            for problem in filter(None, found):
                problems += 1
                print(printable(f"{doc['device']} {file}: {problem}"))
                logger.error("%s: %s", log.quoted(file), problem, extra={"device": doc["device"]})
    # Backup files imported (`import`): the same check against the sha256 recorded at import.
    for records in backup.read_imports(cfg.paths.spool, args.date).values():
        for record in records:
            checked += 1
            found = [check_imported(cfg.paths.tracks, record)]
            if replica:
                place = f"{record.get('folder')}/{record.get('name')}"
                copied = NOT_COPIED if copied_files.get(place) != record.get("sha256") else \
                    _hash_problem(Path(replica) / place, record.get("sha256"), "recorded", "REPLICA ")
                not_copied += copied == NOT_COPIED
                copies += copied != NOT_COPIED
                found.append(None if copied == NOT_COPIED else copied)
            for problem in filter(None, found):
                problems += 1
                print(f"import {record.get('source')!r}: {problem}")
                logger.error("imported %s: %s", log.quoted(record.get("source")), problem)
    summary = f"{checked} track(s) checked{' of ' + args.date.isoformat() if day else ''}, {problems} problem(s)"
    if replica:
        summary += f"; replica {replica}: {copies} copies checked, {not_copied} not copied yet"
    print(summary)
    (logger.error if problems else logger.info)("%s", summary)
    return 1 if problems else 0


def check(tracks_root, track):
    """What is wrong with a kept track's file, or None if it hashes as recorded."""
    try:
        path = naming.final_path(tracks_root, track)
    except ValueError as exc:
        return str(exc)
    partial = track.get("status") == ledger.PARTIAL
    recorded = (track.get("partial") or {}).get("sha256") if partial else track.get("sha256")
    return _hash_problem(path, recorded, "ledger")


def check_imported(tracks_root, record):
    """What is wrong with an imported backup file, or None if it hashes as recorded."""
    folder, name = record.get("folder"), record.get("name")
    if not isinstance(folder, str) or not naming.DAY.fullmatch(folder) or not isinstance(name, str) \
            or not backup.NAME.fullmatch(name):
        return f"import record has no safe local name (folder {folder!r}, name {name!r})"
    path = layout.track_day_dir(tracks_root, folder) / name
    return _hash_problem(path, record.get("sha256"), "recorded at import")


NOT_COPIED = "not copied yet"


def check_replica(replica, track):
    """What is wrong with a track's copy in the replica, NOT_COPIED if the ledger records none, or None."""
    if not naming.replicated(track):
        return NOT_COPIED
    return _hash_problem(Path(replica) / naming.place(track), ledger.kept_sha256(track), "recorded", "REPLICA ")


def _hash_problem(path, sha256, recorded_as, which=""):
    """What is wrong with the file at `path` that should hash as `sha256` (MISSING, UNREADABLE,
    MISMATCH, each after `which`), or None."""
    try:
        digest = files.sha256_of(path)
    except FileNotFoundError:
        return f"{which}MISSING {path}"
    except OSError as exc:
        return f"{which}UNREADABLE {path}: {exc.strerror}"
    if digest != sha256:
        return f"{which}MISMATCH {path}: sha256 {digest}, {recorded_as} {sha256}"
    return None


