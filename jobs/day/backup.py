"""Backup files imported into an entrant's day: `motion-server import` (jobs.ops.import_).

When a Motion fails or is forgotten, the team takes the session from the
sailor's own device: GT-31 or GW-52/60 (.sbp, .sbn), ESP-GPS (.gpy, .oao),
watches (.fit, .gpx), u-blox loggers (.ubx), a personal Motion (.oao). Each file
is copied into the day folder the results software reads, as

    <tracks>/<YYYYMMDD>/<File ID>_<Motion ID or 0>_<YYYYMMDD>_<HHMMSS>.<ext>

the start being the file's own where its format gives it (.oao, .gpx, .fit),
else --start. The copy is written under a temporary name, fsync'ed, checked
(an .oao frame by frame like a download; the others by size and sha256
against the source) and only then given its name, which it never takes from
another file. The source is only read: a time keeper may ask for it, unchanged,
for a year. Each import is recorded in <spool>/imports/<sha256>.json, with the
source's name: the same bytes imported twice are one import. The entrant's day
state becomes `backup` (jobs.day.states).
"""

import datetime as dt
import os
import re
import struct
import time
from pathlib import Path

from jobs.device import documents
from jobs.spool import files, layout

FORMATS = ("oao", "sbp", "sbn", "gpy", "fit", "gpx", "ubx")
CHUNK = 1024 * 1024
# <File ID>_<Motion ID or 0>_<YYYYMMDD>_<HHMMSS>.<ext>: what an imported file is called.
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}_\d{1,9}_\d{8}_\d{6}\.(?:" + "|".join(FORMATS) + r")\Z", re.ASCII)
FIT_EPOCH = 631065600          # 1989-12-31 00:00 UTC, where FIT times count from
GPX_TIME = re.compile(rb"<(?:\w+:)?trkpt\b.*?<(?:\w+:)?time>\s*([^<\s]+)\s*</(?:\w+:)?time>", re.S)
GPX_READ = 4 * 1024 * 1024     # a GPX file's first fix is near its top


class NotImported(Exception):
    """This file cannot be imported; the message names it and says why."""


# --- the start a file gives ------------------------------------------------------------

def file_start(path, fmt):
    """The session's start (aware UTC datetime) as the file gives it, or None when its format does not."""
    if fmt == "oao":
        from jobs.track import integrity, oao   # numpy: only when an .oao is imported
        try:
            first = integrity.verify_file(path)["first_ms"]
        except oao.OAOError as exc:
            raise NotImported(f"{path}: not an intact OAO track: {str(exc).split(': ', 1)[-1]}") from None
        first = documents.frame_time(first)   # the file's own clock: 2**62 ms is no date
        return dt.datetime.fromtimestamp(first / 1000, dt.timezone.utc) if first else None
    if fmt == "gpx":
        with open(path, "rb") as f:
            found = GPX_TIME.search(f.read(GPX_READ))
        return _iso(found.group(1).decode("ascii", "replace")) if found else None
    if fmt == "fit":
        with open(path, "rb") as f:
            try:
                seconds = fit_start(f.read())
            except (struct.error, IndexError):   # cut short or not FIT: no start from it
                seconds = None
        return dt.datetime.fromtimestamp(FIT_EPOCH + seconds, dt.timezone.utc) if seconds else None
    return None


EARLIEST_START = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
LATEST_START = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)


def _iso(text):
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def fit_start(data):
    """Seconds since FIT_EPOCH of a FIT file's start: file_id's time_created, else the first
    timestamp of a record; None when there is neither (or the file is not FIT)."""
    if len(data) < 12 or data[8:12] != b".FIT":
        return None
    pos, end = data[0], min(len(data), data[0] + struct.unpack_from("<I", data, 4)[0])
    layouts = {}
    while pos < end:
        head = data[pos]
        pos += 1
        if head & 0x80:                      # compressed timestamp header: a data message
            local, found = (head >> 5) & 0x3, None
        elif head & 0x40:                    # a definition message
            if pos + 5 > end:
                return None
            big = data[pos + 1] == 1
            number = struct.unpack_from(">H" if big else "<H", data, pos + 2)[0]
            count = data[pos + 4]
            fields = [tuple(data[pos + 5 + 3 * i: pos + 8 + 3 * i]) for i in range(count)]
            pos += 5 + 3 * count
            if head & 0x20:                  # developer fields: sizes only
                developer = data[pos]
                fields += [(None, data[pos + 2 + 3 * i], 0) for i in range(developer)]
                pos += 1 + 3 * developer
            layouts[head & 0x0F] = (number, big, fields)
            continue
        else:
            local = head & 0x0F
        if local not in layouts:
            return None
        number, big, fields = layouts[local]
        for field, size, _ in fields:
            if (number, field) in ((0, 4), (20, 253)) and size == 4:
                value = struct.unpack_from(">I" if big else "<I", data, pos)[0]
                if value not in (0, 0xFFFFFFFF):
                    return value
            pos += size
    return None


# --- the copy ---------------------------------------------------------------------------

def read_imports(spool, day=None):
    """Every import record (of `day`, a date, when given), by entrant: {entrant: [records]}."""
    found = {}
    try:
        names = sorted(os.listdir(layout.imports_dir(spool)))
    except FileNotFoundError:
        return found
    key = day.isoformat() if day else None
    for name in names:
        if not name.endswith(".json") or files.is_temporary(name):
            continue
        try:
            record = files.read_json(layout.imports_dir(spool) / name)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("entrant"), str) and (
                key is None or record.get("day") == key):
            found.setdefault(record["entrant"], []).append(record)
    return found


def import_file(cfg, entries, source, entrant, day=None, start=None, by="?"):
    """Import one backup file: (the record, whether it was new). NotImported says why not."""
    source = Path(source)
    fmt = source.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise NotImported(f"{source}: not a backup file this server takes ({', '.join('.' + f for f in FORMATS)})")
    if not source.is_file():
        raise NotImported(f"{source}: no such file")
    digest = files.sha256_of(source)
    earlier = files.read_note(layout.import_file(cfg.paths.spool, digest))
    if isinstance(earlier, dict):
        if earlier.get("entrant") != entrant:
            raise NotImported(f"{source}: the same bytes were imported for entrant {earlier.get('entrant')} "
                              f"as {earlier.get('name')}")
        if _in_place(cfg, earlier):
            return earlier, False
        # Recorded, but the file is gone from the day folder: imported again.
    when, start_from = _when(cfg, source, fmt, day, start)
    row = _sailing(entries, entrant, when.date())
    motion = row.device if row.device > 0 else 0
    name = f"{row.file_id}_{motion}_{when:%Y%m%d_%H%M%S}.{fmt}"
    if not NAME.fullmatch(name):   # the roster's File IDs are checked; this builds a path
        raise NotImported(f"{source}: no safe local name from File ID {row.file_id!r}")
    key = when.strftime(layout.TRACK_DAY)
    target = layout.track_day_dir(cfg.paths.tracks, key) / name
    checked = _copy(source, target, fmt, digest)
    record = {"sha256": digest, "size": source.stat().st_size, "entrant": entrant, "file_id": row.file_id,
              "motion_id": motion, "day": when.date().isoformat(), "folder": key, "name": name,
              "source": source.name, "source_path": str(source.resolve()), "format": fmt,
              "start": int(when.timestamp() * 1000), "start_from": start_from, "checked": checked,
              "imported_at": time.time(), "by": by}
    where = layout.import_file(cfg.paths.spool, digest)
    where.parent.mkdir(parents=True, exist_ok=True)
    files.write_json(where, record)
    return record, True


def _in_place(cfg, record):
    folder, name = record.get("folder"), record.get("name")
    if not isinstance(folder, str) or not isinstance(name, str) or not NAME.fullmatch(name) \
            or not re.fullmatch(r"\d{8}", folder, re.ASCII):
        return False
    return (layout.track_day_dir(cfg.paths.tracks, folder) / name).is_file()


def _when(cfg, source, fmt, day, start):
    """(local start datetime, where it came from)."""
    found = file_start(source, fmt)
    if found is not None and not EARLIEST_START <= found < LATEST_START:
        if start is None:   # year 1 or 9999 in a GPX: no day to file it under, and beyond what a zone converts
            raise NotImported(f"{source}: the file says it starts on {found:%Y-%m-%d}, which no device records: "
                              "give --start HH:MM (the session's local start)")
        found = None
    if found is not None:
        local = found.astimezone(cfg.tz)
        if day is not None and local.date() != day:
            raise NotImported(f"{source}: the file starts on {local:%Y-%m-%d %H:%M} ({cfg.event.timezone}), "
                              f"not on --day {day}")
        return local, "file"
    if start is None:
        raise NotImported(f"{source}: a .{fmt} file does not say when it starts here: give --start HH:MM "
                          "(the session's local start)")
    day = day or dt.datetime.now(cfg.tz).date()
    return dt.datetime.combine(day, start, cfg.tz), "--start"


def _sailing(entries, entrant, day):
    rows = [e for e in entries.entries if e.entrant == entrant]
    if not rows:
        raise NotImported(f"entrant {entrant!r} is not on the roster ({entries.path or 'no event.roster'})")
    sailing = [e for e in rows if e.sails_on(day)]
    if not sailing:
        raise NotImported(f"entrant {entrant!r} does not sail on {day} "
                          f"(roster: {', '.join(f'{e.start} to {e.end}' for e in rows)})")
    return sailing[0]


def _copy(source, target, fmt, digest):
    """Copy `source` to `target` by a temporary name: checked, fsync'ed, then linked (never over a
    file). What was checked, in words. A target already holding the same bytes is that import."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        if files.sha256_of(target) == digest:
            return "already in place with the same sha256"
        raise NotImported(f"{source}: {target} is already there with other bytes: not overwritten")
    fd, tmp = files.locked_temporary(lambda: files.create_temporary(target))
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb", closefd=False) as out:
            while chunk := src.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        checked = _check(tmp, source, fmt, digest)
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise NotImported(f"{source}: {target} appeared meanwhile: not overwritten") from None
        files.fsync_dir(target.parent)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.close(fd)
    return checked


def _check(copy, source, fmt, digest):
    if files.sha256_of(copy) != digest or os.stat(copy).st_size != os.stat(source).st_size:
        raise NotImported(f"{source}: the copy differs from the source (size or sha256): not imported")
    if fmt != "oao":
        return "size and sha256"
    from jobs.track import integrity, oao
    try:
        found = integrity.verify_file(copy)
    except oao.OAOError as exc:
        raise NotImported(f"{source}: not an intact OAO track: {str(exc).split(': ', 1)[-1]}") from None
    return f"every frame ({sum(found['frames'].values())} frames) and sha256"
