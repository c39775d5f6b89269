"""The event roster (motions.csv): who sails with which device on which day.

Read once per run and checked whole: an error names the file, the line and the
column; the same device given to two entrants on one day is a warning and the
first row wins.

Shared devices (event.shared_devices): an entrant who sails two crafts on one
device has a second row whose Motion ID is "virtual", named by a rule from the
physical device's: `offset: 1000` (1806 is device 806) or `factor: 10` (8060
is device 806). No device answers as a virtual ID: such a row is never looked
for; it shares the physical device's tracks of its days. Under `factor` an ID
is virtual only when the device it names is on another row of the roster (else
every ID ending in 0 would be one).
"""

import csv
import datetime as dt
import os
import re
from collections import namedtuple

from jobs.config import ConfigError

COLUMNS = ("Entrant ID", "Tally", "Motion ID", "Start Date", "End Date", "File ID",
           "First Name", "Family Name", "Craft Type", "Status")
# File IDs become part of track file names: nothing that can leave the day folder.
FILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")  # \Z: "$" passes a final newline


# A namedtuple, not a dataclass: dataclasses imports inspect (~10 ms), a tenth
# of every cron run's start-up. class_name is the optional Class column (e.g. Foil).
# physical: the device the row's Motion ID names (event.shared_devices); None: the Motion ID itself.
_EntryFields = namedtuple("_EntryFields", "path line entrant device start end file_id first_name family_name craft "
                                          "status class_name physical", defaults=("", None))


class Entry(_EntryFields):
    """One roster row (immutable): who sails with which device from start to end."""
    __slots__ = ()

    @property
    def name(self):
        return f"{self.first_name} {self.family_name}".strip()

    def sails_on(self, day):
        return self.start <= day <= self.end

    @property
    def on_device(self):
        """The physical device the row sails with: its Motion ID, or the one a virtual ID names."""
        return self.device if self.physical is None else self.physical

    @property
    def shared(self):
        """Whether the row's Motion ID is virtual: a second entry on another row's device."""
        return self.physical is not None and self.physical != self.device


class Roster:
    """The roster's rows in file order, and the warnings reading them gave."""

    def __init__(self, path, entries=None, warnings=None, shared_rule=None):
        self.path = path
        self.entries = [] if entries is None else entries
        self.warnings = [] if warnings is None else warnings
        self.shared_rule = shared_rule   # event.shared_devices: {"offset": n} or {"factor": n}, or None

    def __repr__(self):
        return f"Roster({self.path!r}, {len(self.entries)} entries)"

    def devices(self):
        """Every physical device the roster names: the ones to watch on the network (never a virtual ID)."""
        return sorted({e.on_device for e in self.entries if e.device > 0})

    def watched(self, extra=()):
        """The devices to look for: the roster's and the event's extra ones (spares, buoys),
        never a Motion ID the roster uses as a virtual one (event.shared_devices)."""
        virtual = {e.device for e in self.shared_rows()}
        return sorted(set(self.devices()).union(extra) - virtual)

    def entrant_for(self, device, day):
        """The entry that holds physical `device` on `day`, or None: its tracks are stored under
        this row's File ID. The first row with the device's own Motion ID, else the first
        shared row naming it (event.shared_devices)."""
        physical = shared = None
        for entry in self.entries:
            if entry.on_device == device and entry.device > 0 and entry.sails_on(day):
                if not entry.shared:
                    physical = physical or entry
                    break
                shared = shared or entry
        return physical or shared

    def sharing(self, device, day):
        """Every row sailing with physical `device` on `day`, in roster order (the holder, shared rows)."""
        return [e for e in self.entries if e.device > 0 and e.on_device == device and e.sails_on(day)]

    def shared_rows(self):
        """The rows whose Motion ID is virtual (event.shared_devices), in roster order."""
        return [e for e in self.entries if e.shared]

    def on(self, day):
        """Entries sailing on `day`, in roster order, with or without a device."""
        return [e for e in self.entries if e.sails_on(day)]

    def without_device(self):
        return [e for e in self.entries if e.device <= 0]

    def first_day(self):
        return min((e.start for e in self.entries), default=None)

    def last_day(self):
        return max((e.end for e in self.entries), default=None)


def _parse_date(text, path, line, column):
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{path}: line {line}, column {column}: found {text!r}, expected a date YYYY-MM-DD") from None


def _parse_row(row, path, line):
    try:
        device = int(row["Motion ID"].strip() or "0")
    except ValueError:
        raise ConfigError(f"{path}: line {line}, column Motion ID: found {row['Motion ID']!r}, expected a number") from None
    start = _parse_date(row["Start Date"], path, line, "Start Date")
    end = _parse_date(row["End Date"], path, line, "End Date")
    if end < start:
        raise ConfigError(f"{path}: line {line}, column End Date: {end} is before Start Date {start}")
    file_id = row["File ID"].strip()
    if not FILE_ID.match(file_id):
        raise ConfigError(f"{path}: line {line}, column File ID: found {file_id!r}, "
                          "expected 1 to 64 letters, digits, '-' or '_' (it names track files)")
    return Entry(path=str(path), line=line, entrant=row["Entrant ID"].strip(), device=device, start=start,
                 end=end, file_id=file_id, first_name=row["First Name"].strip(),
                 family_name=row["Family Name"].strip(), craft=row["Craft Type"].strip(),
                 status=row["Status"].strip(), class_name=(row.get("Class") or "").strip())


def _overlaps(roster):
    """Warn about a device given to two entrants on the same day (first wins)."""
    seen = {}
    for entry in roster.entries:
        if entry.device <= 0:
            continue
        for other in seen.get(entry.device, []):
            if entry.start <= other.end and other.start <= entry.end and entry.entrant != other.entrant:
                there = f"line {other.line}" if other.path == entry.path else f"{other.path} line {other.line}"
                roster.warnings.append(
                    f"{entry.path}: line {entry.line}: device {entry.device} is also given to entrant "
                    f"{other.entrant} on {there} on overlapping days; {there} wins")
                break
        seen.setdefault(entry.device, []).append(entry)


def load(paths, shared=None):
    """The roster in `paths` (one file or a list, read in order, the first row wins).

    ConfigError names the file, line and column when one is wrong. Columns are
    read by name, so extra ones (Class, Entry Type, anything) are fine.
    `shared` is event.shared_devices: the rule naming a physical device by a virtual ID.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    roster = Roster(path=", ".join(str(p) for p in paths), shared_rule=shared or None)
    for path in paths:
        roster.entries.extend(_load_file(path))
    roster.entries = apply_rule(roster.entries, shared)
    _overlaps(roster)
    return roster


def physical_device(motion_id, rule, known=None):
    """The physical device a virtual Motion ID names under `rule`, or None when it is a real one.

    offset n: every ID above n (1806 -> 806 with offset 1000). factor n: an ID
    divisible by n whose quotient is in `known` (the roster's other Motion IDs).
    """
    if not rule or motion_id <= 0:
        return None
    if "offset" in rule:
        return motion_id - rule["offset"] if motion_id > rule["offset"] else None
    factor = rule["factor"]
    quotient, rest = divmod(motion_id, factor)
    if rest or quotient <= 0 or (known is not None and quotient not in known):
        return None
    return quotient


def apply_rule(entries, rule):
    """The entries with `physical` set: the device each row's Motion ID names under `rule`."""
    if not rule:
        return list(entries)
    known = {e.device for e in entries if e.device > 0}
    return [e._replace(physical=physical_device(e.device, rule, known)) for e in entries]


def _load_file(path):
    entries = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise ConfigError(f"{path}: line 1: missing column {missing[0]!r} (expected {', '.join(COLUMNS)})")
            reader.fieldnames = header
            for row in reader:
                line = reader.line_num
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue
                if None in row.values():
                    raise ConfigError(f"{path}: line {line}: {len([v for v in row.values() if v is not None])} "
                                      f"fields, expected {len(header)}")
                entries.append(_parse_row(row, path, line))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the roster: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the roster as CSV UTF-8") from None
    except csv.Error as exc:
        raise ConfigError(f"{path}: line {reader.line_num}: not valid CSV ({exc})") from None
    return entries


_cache = {}
NO_ROSTER = Roster(path="")


def current(path, shared=None):
    """The roster at `path`, read again only when the file changed.

    Long runs pick up the results team's edits; a broken edit keeps the last
    good roster and raises, so the caller can log it once and go on.
    """
    if not path:
        return NO_ROSTER
    paths = (path,) if isinstance(path, (str, os.PathLike)) else tuple(path)
    try:
        key = tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in map(os.stat, paths))
    except OSError:
        return load(paths, shared)  # gone or unreadable: load names the file in a ConfigError
    cached = _cache.get(_cache_key(paths, shared))
    if cached and cached[0] == key:
        return cached[1]
    roster = load(paths, shared)
    _cache[_cache_key(paths, shared)] = (key, roster)
    return roster


def _cache_key(paths, shared):
    return paths, tuple(sorted((shared or {}).items()))


def cached(path, shared=None):
    """The last good roster `current` read for `path`, or None."""
    paths = (path,) if isinstance(path, (str, os.PathLike)) else tuple(path or ())
    found = _cache.get(_cache_key(paths, shared))
    return found[1] if found else None


def of(cfg):
    """The event's roster (event.roster read with event.shared_devices), re-read when it changed;
    NO_ROSTER when there is none. ConfigError when it cannot be read."""
    return current(cfg.event.roster, cfg.event.shared_devices) if cfg.event.roster else NO_ROSTER
