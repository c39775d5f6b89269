"""Which of a device's tracks to fetch, and what they are called here.

Pure functions, no I/O: the inspect stage feeds them logs.json (checked by
jobs.shapes), the roster and the device's ledger, and stores what they return.

A track belongs to the event day on which it starts in the event's time zone
(zoneinfo, so summer time is right whatever zone the server's clock is in).
Its local name is `<File ID>_<Motion ID>_<YYYYMMDD>_<HHMMSS>.oao`, date and
time being that local start, in the day folder `<YYYYMMDD>/`. Nothing from the
device goes into a local path: the date comes from a checked number, the File
ID from the checked roster.
"""

import datetime as dt
import re
from pathlib import Path

from jobs.device import track_path_problem
from jobs.roster import FILE_ID

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
DAY = re.compile(r"^\d{8}\Z", re.ASCII)  # \Z, ASCII: no final newline, no other digits
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}_\d{1,9}_\d{8}_\d{6}\.oao\Z", re.ASCII)
# A track in one of these states is settled: planning never touches it again.
# verified: on disk under its final name, never fetched twice.
# bad: failed verification three times; an operator looks at it.
SETTLED = ("verified", "bad")


def knots(mm_per_s):
    return mm_per_s * 3.6 / 1852


def local_start(start_ms, tz):
    """The track's start (epoch ms UTC) as an aware datetime in the event zone."""
    # Integer milliseconds from the epoch: exact, no float rounding of the second.
    return (EPOCH + dt.timedelta(milliseconds=start_ms)).astimezone(tz)


def event_day(start_ms, tz):
    """The local date the track belongs to."""
    return local_start(start_ms, tz).date()


def day_folder(start_ms, tz):
    return local_start(start_ms, tz).strftime("%Y%m%d")


def local_name(file_id, device, start_ms, tz):
    """`ALD470ANN_470_20220716_130240.oao` for File ID ALD470ANN, device 470."""
    # The roster already refuses such File IDs; checked again because this builds a path.
    if not FILE_ID.match(file_id) or not isinstance(device, int) or device <= 0:
        raise ValueError(f"no safe local name from File ID {file_id!r} and device {device!r}")
    return f"{file_id}_{device}_{local_start(start_ms, tz).strftime('%Y%m%d_%H%M%S')}.oao"


def final_path(tracks_root, track):
    """<tracks>/<day>/<name> of a ledger track; ValueError if its day or name is not ours."""
    day, name = track.get("day"), track.get("name")
    if not isinstance(day, str) or not DAY.match(day) or not isinstance(name, str) or not NAME.match(name):
        raise ValueError(f"ledger track has no safe local name (day {day!r}, name {name!r})")
    return Path(tracks_root) / day / name


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


def plan(logs, roster, device, min_knots, tz, ledger):
    """The device's new ledger: every track on the device, wanted or skipped with a reason.

    Settled tracks (verified, bad) are kept as they are. A track that was wanted
    and is no longer on the device is skipped, so nobody tries to fetch it.
    Tracks the device no longer lists stay in the ledger: they are its history.
    """
    new = {file: dict(track) for file, track in ledger.items()}
    # Local names already in use: a second track with the same start second
    # would overwrite the first one's file.
    taken = {t["name"]: t["file"] for t in ledger.values() if t.get("status") == "verified" and t.get("name")}
    listed = set()
    for entry in unique(logs)[0]:
        listed.add(entry["file"])
        old = ledger.get(entry["file"])
        if old is not None and old.get("status") in SETTLED:
            continue
        track = decide(entry, roster, device, min_knots, tz, old, taken)
        if track["status"] == "wanted":
            taken[track["name"]] = track["file"]
        new[entry["file"]] = track
    for file, track in new.items():
        if file not in listed and track.get("status") == "wanted":
            track.update(status="skipped", reason="no longer on the device")
    return new


def decide(entry, roster, device, min_knots, tz, old=None, taken=()):
    """One ledger track for a logs.json entry: wanted, or skipped with the reason."""
    start = local_start(entry["start"], tz)
    track = {
        "file": entry["file"], "name": None, "day": start.strftime("%Y%m%d"),
        "start": entry["start"], "end": entry["end"], "duration": entry["duration"],
        "distance": entry["distance"], "best500": entry["best500"], "size": entry["size"],
        "entrant": None, "file_id": None, "status": "wanted", "reason": None,
        "sha256": None, "failures": (old or {}).get("failures", 0), "verified_at": None,
    }
    problem = track_path_problem(entry["file"])
    if problem:
        return _skip(track, problem)
    who = roster.entrant_for(device, start.date())
    if who is None:
        return _skip(track, f"no entrant for device {device} on {start.date().isoformat()}")
    track.update(entrant=who.entrant, file_id=who.file_id,
                 name=local_name(who.file_id, device, entry["start"], tz))
    speed = knots(entry["best500"])
    if speed < min_knots:
        return _skip(track, f"too slow: {_speed(speed, min_knots)} kn < {min_knots:g} kn")
    if track["name"] in taken:
        return _skip(track, f"same local name as {taken[track['name']]}")
    return track


def _skip(track, reason):
    track.update(status="skipped", reason=reason)
    return track


def _speed(value, limit):
    # 4.96 kn must not read "5.0 kn < 5 kn": show more digits when rounding hides the gap.
    for digits in (1, 2, 3):
        text = f"{value:.{digits}f}"
        if float(text) < limit:
            return text
    return f"{value:.3f}"
