"""A closed day: its package in the day folder, its record in the spool, and whether it reopened.

`motion-server close DAY` writes, in <tracks>/<YYYYMMDD>/:

    entrants.csv   every roster row sailing that day: entrant, names, craft,
                   class, state (jobs.day.states), note, its file names
    SHA256SUMS     every file of the day, in the format `sha256sum -c` reads:
                   downloaded, kept damaged or partial, imported, entrants.csv,
                   and the day's unassigned tracks as ../unassigned/<day>/<name>

and records the close in <spool>/notes/closed-<YYYYMMDD>.json: when, who,
the counts, whether forced, and every file with its size, mtime and sha256.

The package changes as a whole. Both files are written under temporary names
and synced, then the record is written as pending (naming them and their
sha256), then they are renamed into place, then the record is marked done.
A close killed before the pending record leaves the old package (its
temporaries are overwritten next time); after it, the next `close` or
`handoff`, or the dashboard's next look, finishes the renames first
(`recover`): the new package. Until then (seconds, with the dashboard
running) the day folder may hold the new entrants.csv beside the old
SHA256SUMS, which `sha256sum -c` reports as a FAILED entrants.csv: never a
mix that passes for a package.

A closed day reopens when anything that makes the package changes after the
close: a file of the day new, changed or gone (a late track, an import, a
partial replaced by the whole), or a person's mark. `reopened` counts them
with a stat per file, cheap enough for the dashboard every second.
"""

import csv
import datetime as dt
import hashlib
import io
import os
import re
import time
from pathlib import Path

from jobs import roster
from jobs.day import states as day_states, marks
from jobs.spool import copying, files, layout, locks, state
from jobs.track import ledger, naming
from jobs.spool.files import is_temporary
from jobs.units import csv_cell

SUMS, ENTRANTS = "SHA256SUMS", "entrants.csv"
PACKAGE = (SUMS, ENTRANTS)
COLUMNS = ("Entrant", "First Name", "Family Name", "Craft Type", "Class", "Motion ID", "State", "Note", "Files")
KILL_AT = copying.KILL_AT
step_done = copying.step_done


def _staged(folder, name):
    """The fixed temporary name a package file waits under between its write and its rename."""
    return folder / f".{name}.close.tmp"


# --- the day's files ---------------------------------------------------------------

def day_files(tracks_root, key):
    """{path relative to the day folder: os.stat_result} of every file of the day, the package's own but."""
    found = {}
    for folder, prefix in ((layout.track_day_dir(tracks_root, key), ""),
                           (layout.track_day_dir(tracks_root, key, unassigned=True), f"../{layout.UNASSIGNED}/{key}/")):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if is_temporary(entry.name) or (not prefix and entry.name in PACKAGE):
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    found[prefix + entry.name] = entry.stat()
            except FileNotFoundError:
                continue
    return found


def _identity(info):
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "ino": info.st_ino}



def hashed(day_folder, found, earlier):
    """{relative path: {size, mtime_ns, ino, sha256}}; a file unchanged since `earlier` (the last
    record's files) is not read again."""
    result = {}
    for rel, info in sorted(found.items()):
        known = earlier.get(rel) if isinstance(earlier, dict) else None
        identity = _identity(info)
        if isinstance(known, dict) and all(known.get(k) == v for k, v in identity.items()) and known.get("sha256"):
            result[rel] = {**identity, "sha256": known["sha256"]}
        else:
            result[rel] = {**identity, "sha256": files.sha256_of(day_folder / rel)}
    return result


def sums_text(listed):
    """SHA256SUMS: `<sha256>  <path>` per file, as sha256sum writes and -c reads. A name with a
    backslash or a line break (a file copied in by hand) is escaped the way sha256sum does it:
    a backslash before the line, and \\ \n \r in the name."""
    lines = []
    for rel, entry in sorted(listed.items()):
        if any(c in rel for c in "\\\n\r"):
            escaped = rel.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            lines.append(f"\\{entry['sha256']}  {escaped}\n")
        else:
            lines.append(f"{entry['sha256']}  {rel}\n")
    return "".join(lines)


def parse_sums(text):
    """{path: sha256} from SHA256SUMS text (sums_text's escapes undone)."""
    found = {}
    for line in text.split("\n"):
        escaped = line.startswith("\\")
        digest, sep, rel = line[escaped:].partition("  ")
        if not sep or len(digest) != 64:
            continue
        if escaped:
            rel = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), rel)
        found[rel] = digest
    return found


# --- entrants.csv --------------------------------------------------------------------

def entrant_rows(cfg, docs, entries, day):
    """(rows for entrants.csv, the day-state lines) of every roster row sailing on `day`, in roster order."""
    key = day.strftime(layout.TRACK_DAY)
    lines = day_states.in_roster_order(cfg, docs, entries, day)
    by_device = {doc["device"]: doc for doc in docs}
    rows = []
    for entry, line in zip(entries.on(day), lines):
        held = day_states.tracks_of(entries, entry, by_device.get(entry.on_device), key, day)
        names = [t["name"] for t in held if ledger.kept_sha256(t) and isinstance(t.get("name"), str)]
        names += [r["name"] for r in line["imported"] if r.get("name")]
        rows.append({"Entrant": entry.entrant, "First Name": entry.first_name, "Family Name": entry.family_name,
                     "Craft Type": entry.craft, "Class": entry.class_name,
                     "Motion ID": entry.device if entry.device > 0 else "", "State": line["state"],
                     "Note": line["note"], "Files": " ".join(names)})
    return rows, lines


def csv_text(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        # A cell a spreadsheet would run as a formula (tab and CR too) is quoted as text: jobs.units.csv_cell.
        writer.writerow({k: csv_cell(v) if isinstance(v, str) else v for k, v in row.items()})
    return out.getvalue()


def blockers(lines):
    """The day-state lines a day cannot be closed with: missing, recording, partial, or a track still wanted."""
    return [line for line in lines if line["state"] in day_states.UNSETTLED or line["counts"].get("wanted")]


# --- the record ------------------------------------------------------------------------

def read_record(spool, key):
    try:
        found = files.read_json(layout.close_record(spool, key))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def marks_digest(spool, day):
    """The marks of `day` as one sha256: a mark set, changed or removed changes it."""
    found = marks.read_marks(spool, day)
    text = repr(sorted((entrant, mark.get("state"), mark.get("note")) for entrant, mark in found.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def recover(cfg, key):
    """Finish a close killed after its pending record: rename the staged package files into place."""
    record = read_record(cfg.paths.spool, key)
    if not record or not record.get("pending"):
        return record
    folder = layout.track_day_dir(cfg.paths.tracks, key)
    for name in PACKAGE:
        staged = _staged(folder, name)
        if staged.exists():
            os.replace(staged, folder / name)
    files.fsync_dir(folder)
    record["pending"] = False
    files.write_json(layout.close_record(cfg.paths.spool, key), record)
    return record


DAY_LOCK_WAIT_S = 30.0


def day_locked(cfg, key, what):
    """The day's lock held for the body (LockTimeout after DAY_LOCK_WAIT_S): one close or handoff at a time."""
    note = f"pid {os.getpid()} {what} since {time.strftime('%H:%M:%S')}"
    return locks.holding(layout.day_lock(cfg.paths.spool, key), note, DAY_LOCK_WAIT_S, what=f"lock of day {key}")


def close(cfg, day, force=False, by="?"):
    """Close `day`: (the record, [blocking lines], changed). Not closed (None) while some
    entrant blocks it, unless forced; `changed` False when the package was already this one."""
    with day_locked(cfg, day.strftime(layout.TRACK_DAY), "close"):
        return _close(cfg, day, force, by)


def _close(cfg, day, force, by):
    key = day.strftime(layout.TRACK_DAY)
    spool = Path(cfg.paths.spool)
    earlier = recover(cfg, key)
    entries = roster.load(cfg.event.roster, cfg.event.shared_devices) if cfg.event.roster else roster.NO_ROSTER
    docs = [doc for doc in state.all_devices(spool) if isinstance(doc.get("device"), int)]
    rows, lines = entrant_rows(cfg, docs, entries, day)
    stopping = blockers(lines)
    if stopping and not force:
        return None, stopping, False
    folder = layout.track_day_dir(cfg.paths.tracks, key)
    folder.mkdir(parents=True, exist_ok=True)
    entrants = csv_text(rows).encode("utf-8")
    listed = hashed(folder, day_files(cfg.paths.tracks, key), (earlier or {}).get("files") or {})
    package = {**listed, ENTRANTS: {"sha256": hashlib.sha256(entrants).hexdigest(), "size": len(entrants)}}
    sums = sums_text(package).encode("utf-8")
    marks_now = marks_digest(spool, day)
    if earlier and bool(earlier.get("forced")) == bool(stopping) and _same(folder, earlier, sums, entrants, marks_now):
        if earlier.get("files") != listed:   # touched, same bytes: the package stands, the reopen check follows
            earlier["files"] = listed
            files.write_json(layout.close_record(spool, key), earlier)
        return earlier, stopping, False
    states = {}
    for line in lines:
        states[line["state"]] = states.get(line["state"], 0) + 1
    record = {"day": day.isoformat(), "closed_at": time.time(), "by": by, "forced": bool(stopping),
              "blockers": [f"{line['entrant']} {line['name']}: {line['state']}"
                           + (f" ({line['note']})" if line["note"] else "") for line in stopping],
              "counts": {"files": len(listed), "entrants": len(lines), "states": states},
              "files": listed, "marks": marks_now, "package": {SUMS: hashlib.sha256(sums).hexdigest(),
                                                              ENTRANTS: package[ENTRANTS]["sha256"]},
              "pending": True}
    _stage(folder, ENTRANTS, entrants)
    step_done("staged-entrants")
    _stage(folder, SUMS, sums)
    step_done("staged-sums")
    layout.notes_dir(spool).mkdir(parents=True, exist_ok=True)
    files.write_json(layout.close_record(spool, key), record)
    step_done("pending-record")
    os.replace(_staged(folder, ENTRANTS), folder / ENTRANTS)
    step_done("renamed-entrants")
    os.replace(_staged(folder, SUMS), folder / SUMS)
    files.fsync_dir(folder)
    step_done("renamed-sums")
    record["pending"] = False
    files.write_json(layout.close_record(spool, key), record)
    return record, stopping, True


def _same(folder, earlier, sums, entrants, marks_now):
    """Whether the package in place is byte for byte what this close would write."""
    try:
        return (earlier.get("marks") == marks_now and (folder / SUMS).read_bytes() == sums
                and (folder / ENTRANTS).read_bytes() == entrants)
    except FileNotFoundError:
        return False


def _stage(folder, name, data):
    """Write a package file under its fixed temporary name, synced."""
    path = _staged(folder, name)
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


# --- reopened? ---------------------------------------------------------------------------

def reopened(cfg, day, record=None):
    """What changed the closed `day` since its close: {files, marks, since}; None if nothing or not closed."""
    key = day.strftime(layout.TRACK_DAY)
    record = record or read_record(cfg.paths.spool, key)
    if not record or not isinstance(record.get("files"), dict):
        return None
    before, now = record["files"], day_files(cfg.paths.tracks, key)
    changed = sum(1 for rel, info in now.items()
                  if not isinstance(before.get(rel), dict) or any(before[rel].get(k) != v
                                                                 for k, v in _identity(info).items()))
    changed += sum(1 for rel in before if rel not in now)
    mark_changes = int(record.get("marks") != marks_digest(cfg.paths.spool, day))
    if not changed and not mark_changes:
        return None
    return {"files": changed, "marks": mark_changes, "since": record.get("closed_at")}


def day_status(cfg, day):
    """For the pages and `status --json`: None if `day` was never closed, else
    {closed_at, closed_text, forced, reopened, text} where text is what to show."""
    key = day.strftime(layout.TRACK_DAY)
    record = read_record(cfg.paths.spool, key)
    if not record or not isinstance(record.get("closed_at"), (int, float)):
        return None
    clock = dt.datetime.fromtimestamp(record["closed_at"], cfg.tz).strftime("%H:%M")
    changes = reopened(cfg, day, record)
    if changes:
        parts = []
        if changes["files"]:
            parts.append(f"{changes['files']} file{'s' if changes['files'] != 1 else ''}")
        if changes["marks"]:
            parts.append("a mark changed")
        text = f"reopened: {' and '.join(parts)} since the close at {clock}"
    else:
        text = f"closed at {clock}" + (" (forced)" if record.get("forced") else "")
    return {"closed_at": record["closed_at"], "closed_text": f"closed at {clock}", "forced": bool(record.get("forced")),
            "reopened": changes, "text": text, "pending": bool(record.get("pending"))}



def closed_days(cfg):
    """{YYYY-MM-DD: day_status} of every day with a close record."""
    found = {}
    try:
        names = sorted(os.listdir(layout.notes_dir(cfg.paths.spool)))
    except FileNotFoundError:
        return found
    for name in names:
        key = name[len("closed-"):-len(".json")] if name.startswith("closed-") and name.endswith(".json") else ""
        if not naming.DAY.fullmatch(key):
            continue
        day = dt.datetime.strptime(key, layout.TRACK_DAY).date()
        status = day_status(cfg, day)
        if status is not None:
            found[day.isoformat()] = status
    return found


def recover_killed(cfg, closed):
    """recover() every day of `closed` (closed_days()) whose close was killed after its pending record:
    the dashboard does it at its next look, so the package is whole again within seconds."""
    for iso, status in closed.items():
        key = iso.replace("-", "")
        held = status.get("pending") and locks.take(layout.day_lock(cfg.paths.spool, key), f"pid {os.getpid()} recover")
        if held:   # not held: the close or handoff holding it finishes the job itself
            try:
                recover(cfg, key)
            finally:
                locks.release(held)


def log_reopened(cfg, closed, log):
    """Say in the log, once, that a closed day reopened (`closed`: closed_days()); its text is kept in
    notes/reopened-<YYYYMMDD>.json so the next run does not say it again."""
    for iso, status in closed.items():
        key = iso.replace("-", "")
        path = layout.notes_dir(cfg.paths.spool) / f"reopened-{key}.json"
        said = files.read_note(path, {}) if path.exists() else None
        text = status["text"] if status.get("reopened") else None
        if text is None:
            if said is not None:
                path.unlink(missing_ok=True)
            continue
        if not isinstance(said, dict) or said.get("text") != text:
            files.write_json(path, {"text": text, "at": time.time()})
            log.warning("%s %s", iso, text)
