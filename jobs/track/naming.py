"""Which of a device's tracks to fetch, and what they are called here.

Pure functions, no I/O: the inspect stage feeds them logs.json (checked by
jobs.device.documents), the roster and the device's ledger, and stores what they return.

A track belongs to the event day on which it starts in the event's time zone
(zoneinfo, so summer time is right whatever zone the server's clock is in).
Its local name is `<File ID>_<Motion ID>_<YYYYMMDD>_<HHMMSS>.oao`, date and
time being that local start, in the day folder `<YYYYMMDD>/`. Nothing from the
device goes into a local path: the date comes from a checked number, the File
ID from the checked roster.
"""

import datetime as dt
import re
from pathlib import PurePosixPath

from jobs.spool import layout
from jobs.device import track_path_problem
# Names, not the module: `ledger` here is a device's ledger, the dict these words describe.
from jobs.track.ledger import (GROWING, ON_DISK, SETTLED, SKIPPED, TO_COME, WANTED, follow_growing, kept_sha256,
                               skipped)
from jobs.roster import FILE_ID
from jobs.units import knots

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
FAR = dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)   # the latest start jobs.device.documents takes from logs.json
DAY = re.compile(r"^\d{8}\Z", re.ASCII)  # \Z, ASCII: no final newline, no other digits
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}_\d{1,9}_\d{8}_\d{6}\.oao\Z", re.ASCII)
# The device's own file name: ..._YYYY-MM-DD-HHMM.oao, the time being the device's local start.
DEVICE_NAME_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d{2})(\d{2})\.oao", re.ASCII)
NO_SUMMARY = "no summary on the device"
BESTS = ("best2s", "best10s", "best1852", "alpha500", "best1h")
GONE = "no longer on the device"   # the reason of a wanted track the device stopped listing
GONE_KEPT = 100          # such tracks a device's ledger keeps (the latest): see bound_gone


def local_start(start_ms, tz):
    """The track's start (epoch ms UTC) as an aware datetime in the event zone."""
    # Integer milliseconds from the epoch: exact, no float rounding of the second.
    return (EPOCH + dt.timedelta(milliseconds=start_ms)).astimezone(tz)


def event_day(start_ms, tz):
    """The local date the track belongs to."""
    return local_start(start_ms, tz).date()


def day_folder(start_ms, tz):
    return local_start(start_ms, tz).strftime(layout.TRACK_DAY)


def local_name(file_id, device, start_ms, tz):
    """`ALD470ANN_470_20220716_130240.oao` for File ID ALD470ANN, device 470."""
    # The roster already refuses such File IDs; checked again because this builds a path.
    if not FILE_ID.match(file_id) or not isinstance(device, int) or device <= 0:
        raise ValueError(f"no safe local name from File ID {file_id!r} and device {device!r}")
    return f"{file_id}_{device}_{local_start(start_ms, tz).strftime('%Y%m%d_%H%M%S')}.oao"


def final_path(tracks_root, track):
    """<tracks>/<day>/<name>, or <tracks>/unassigned/<day>/<name> for an unassigned
    ledger track; ValueError if its day or name is not ours."""
    day, name = track.get("day"), track.get("name")
    if not isinstance(day, str) or not DAY.fullmatch(day) or not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"ledger track has no safe local name (day {day!r}, name {name!r})")
    return layout.track_day_dir(tracks_root, day, bool(track.get("unassigned"))) / name


def place(track):
    """A ledger track's path inside the track folder, the same in the replica: 20260716/<name>,
    or unassigned/20260716/<name>; ValueError if not ours."""
    return final_path(PurePosixPath(), track).as_posix()


def replicated(track):
    """Whether the replica holds this very file: the ledger's copy record has its place and sha256."""
    copy, sha256 = track.get("replica"), kept_sha256(track)
    if not isinstance(copy, dict) or not sha256 or copy.get("sha256") != sha256:
        return False
    try:
        return copy.get("path") == place(track)
    except ValueError:
        return False


def event_days(roster, first_day=None, last_day=None):
    """(first, last) dates of the event: the config's, else the roster's; None if unknown."""
    first = dt.date.fromisoformat(first_day) if first_day else roster.first_day()
    last = dt.date.fromisoformat(last_day) if last_day else roster.last_day()
    return (first, last) if first and last else None


def has_summary(entry):
    """False when the device never wrote the log's summary: zeros mean unknown, not slow."""
    bests = [entry.get(key) or 0 for key in ("best500", "best2s", "best10s", "best1852", "alpha500", "best1h")]
    return bool(entry["end"] and entry["duration"] and any(bests))


def start_from_name(entry):
    """Epoch ms of the start from the device's file name (its local time), or None."""
    found = DEVICE_NAME_TIME.search(entry["file"].rsplit("/", 1)[-1])
    if not found:
        return None
    try:
        local = dt.datetime(*map(int, found.groups()), tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    offset = dt.timedelta(minutes=entry.get("timezone") or 0)
    if not EPOCH + offset < local < FAR + offset:   # year 0001 less an hour is no date at all
        return None
    return (local - offset - EPOCH) // dt.timedelta(milliseconds=1)


def unique(logs):
    """(entries with the first of each `file`, [files listed again]): the first listing wins."""
    seen, first, again = set(), [], []
    for entry in logs:
        if entry["file"] in seen:
            again.append(entry["file"])
        else:
            seen.add(entry["file"])
            first.append(entry)
    return first, again


def most_recent(logs, limit):
    """(the `limit` entries with the latest start, how many others): a device's listing bounded.

    Devices keep tracks of earlier events for years, and a hostile one lists
    thousands: every entry becomes a ledger track that each state update (one
    a second while downloading) rewrites. The event's tracks are the recent
    ones. The start is start_date, else the file name's date; an entry with
    neither (or a problem) counts as the oldest. The device's order is kept.
    """
    if len(logs) <= limit:
        return list(logs), 0

    def start(numbered):
        entry = numbered[1]
        if entry.get("problem") or entry.get("file") is None:
            return 0
        return entry.get("start") or start_from_name(entry) or 0

    kept = sorted(sorted(enumerate(logs), key=start, reverse=True)[:limit])
    return [entry for _, entry in kept], len(logs) - limit


def plan(logs, roster, device, min_knots, tz, ledger, days=None, doubted=None):
    """The device's new ledger: every track on the device, wanted or skipped with a reason.

    `days` is the event's (first, last) date (default: the roster's span).
    Settled tracks (verified, damaged, bad) are kept as they are. A track that
    was wanted and is no longer on the device is skipped, so nobody tries to
    fetch it. Those stay in the ledger as its history; a track that was only
    ever skipped and is no longer listed is dropped (a device listing new names
    at each reconnection would otherwise grow the ledger without end).

    A track is what it holds, not where: a settled path listed again with
    another size or start is another track, planned again (a track on disk
    keeps its entry under another key, see `earlier_key`). `doubted` (why this
    device's answers are in doubt: another address answered as it earlier
    today) plans its new tracks as unassigned and held for a person: both
    devices' tracks are kept, neither is given to the entrant unseen.
    """
    days = days or event_days(roster)
    new = {file: dict(track) for file, track in ledger.items()}
    # Local names already in use: a second track with the same start second
    # would overwrite the first one's file.
    taken = {_place(t): t["file"] for t in ledger.values() if t.get("status") in ON_DISK and t.get("name")}
    listed = set()
    for entry in unique(logs)[0]:
        listed.add(entry["file"])
        old = ledger.get(entry["file"])
        replaced = None
        if old is not None and old.get("status") in SETTLED:
            if same_track(old, entry):
                continue
            if old.get("status") in ON_DISK:   # kept, under a key of its own; its file stays
                key = earlier_key(entry["file"], new)
                new[key] = old
                replaced = _place(old)
                taken[replaced] = key
            old = None
        track = decide(entry, roster, device, min_knots, tz, old, {k: v for k, v in taken.items() if k != replaced},
                       days)
        # Held once, held until a person acts; where the earlier track's file is, the new one goes aside.
        why = (old or {}).get("held") or doubted or (
            f"the device lists {entry['file']} again with another size or start" if _place(track) == replaced else None)
        if track["status"] == WANTED and why:
            track = _held(track, device, tz, why, taken)
        if old is not None and old.get("status") in GROWING:
            track = follow_growing(track, old)
        if track["status"] == WANTED:
            taken[_place(track)] = track["file"]
        new[entry["file"]] = track
    for file, track in list(new.items()):
        if file in listed:
            continue
        if track.get("status") in TO_COME:
            skipped(track, GONE)
        elif track.get("status") == SKIPPED and track.get("reason") != GONE:
            del new[file]
    return new


def _place(track):
    return bool(track.get("unassigned")), track["name"]


def bound_gone(ledger, most=GONE_KEPT):
    """(the ledger, how many entries it lost): at most `most` tracks "no longer on the device",
    those that started latest; the others are dropped. A device listing 1,000 new names at each
    visit grew its ledger by 1,000 a visit, and every state update rewrites all of it."""
    gone = [file for file, track in ledger.items() if track.get("status") == SKIPPED and track.get("reason") == GONE]
    if len(gone) <= most:
        return ledger, 0
    gone.sort(key=lambda file: (ledger[file].get("start") or 0, file))
    dropped = set(gone[:len(gone) - most])
    return {file: track for file, track in ledger.items() if file not in dropped}, len(dropped)


def same_track(old, entry):
    """Whether a logs.json entry is the track a ledger entry holds: its size and start.

    An entry the planner cannot use (a problem) changes nothing settled.
    """
    if entry.get("problem"):
        return True
    return old.get("size") == entry["size"] and old.get("start") == (entry["start"] or start_from_name(entry))


def earlier_key(file, ledger):
    """A ledger key for the settled track that was at `file` before another track took the path.

    Never a path a device may list (jobs.device.track_path_problem refuses a
    '#'), so it is never fetched again.
    """
    n = 1
    while f"{file}#earlier-{n}" in ledger:
        n += 1
    return f"{file}#earlier-{n}"


def _held(track, device, tz, why, taken):
    """The planned track as unassigned and held for a person (jobs.track.assign leaves it there)."""
    aside = dict(track, unassigned=True, entrant=None, file_id=str(device), held=why, identity=why,
                 name=local_name(str(device), device, track["start"], tz))
    if _place(aside) in taken:
        return _skip(aside, f"same local name as {taken[_place(aside)]}")
    taken[_place(aside)] = aside["file"]
    return aside


def decide(entry, roster, device, min_knots, tz, old=None, taken=(), days=None):
    """One ledger track for a logs.json entry: wanted, or skipped with the reason.

    A track of an event day that no roster row gives to an entrant is wanted
    all the same, as unassigned: the device may be a spare or a swapped one,
    and its session exists nowhere else.
    """
    if entry.get("problem"):
        return _skip({"file": entry["file"], "name": None, "day": None, "start": None, "end": None,
                      "duration": None, "distance": None, "best500": None, "size": None, "summary": None,
                      "unassigned": False, "entrant": None, "file_id": None, "status": SKIPPED,
                      "sha256": None, "failures": 0, "verified_at": None}, entry["problem"])
    summary = has_summary(entry)
    start_ms = entry["start"] or start_from_name(entry)
    track = {
        "file": entry["file"], "name": None, "day": None,
        "start": start_ms, "end": entry["end"], "duration": entry["duration"],
        "distance": entry["distance"], "best500": entry["best500"], "size": entry["size"],
        # The device's other bests (mm/s, 0 unknown): the provisional "fastest today" board.
        **{key: entry.get(key, 0) for key in BESTS},
        "summary": summary, "unassigned": False,
        "entrant": None, "file_id": None, "status": WANTED, "reason": None,
        "sha256": None, "failures": (old or {}).get("failures", 0), "verified_at": None,
    }
    problem = track_path_problem(entry["file"])
    if problem:
        return _skip(track, problem)
    if not start_ms:
        return _skip(track, "no start: start_date is 0 and the file name holds no date")
    day = local_start(start_ms, tz).date()
    track["day"] = day.strftime(layout.TRACK_DAY)
    if days is None:
        return _skip(track, "the event's days are unknown (no roster, no event.first_day/last_day)")
    if not days[0] <= day <= days[1]:
        return _skip(track, "before the event" if day < days[0] else "after the event")
    if not entry["size"]:
        return _skip(track, "empty on the device (0 bytes)")
    who = roster.entrant_for(device, day)
    if who is None:
        track.update(unassigned=True, file_id=str(device), name=local_name(str(device), device, start_ms, tz))
    else:
        track.update(entrant=who.entrant, file_id=who.file_id, name=local_name(who.file_id, device, start_ms, tz))
    speed = knots(entry["best500"])
    # A 500 m best of 0 is unknown (no summary, or no 500 m run): never "too slow".
    if summary and entry["best500"] and speed < min_knots:
        return _skip(track, f"too slow: {_speed(speed, min_knots)} kn < {min_knots:g} kn")
    if _place(track) in taken:
        return _skip(track, f"same local name as {taken[_place(track)]}")
    return track


def _skip(track, reason):
    skipped(track, reason)
    return track


def _speed(value, limit):
    # 4.96 kn must not read "5.0 kn < 5 kn": show more digits when rounding hides the gap.
    for digits in (1, 2, 3):
        text = f"{value:.{digits}f}"
        if float(text) < limit:
            return text
    return f"{value:.3f}"
