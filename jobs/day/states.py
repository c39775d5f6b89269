"""Every roster row's day: its tracks, found through the current roster, and its one state.

`day_states(cfg, docs, roster, day)` is THE day-state computation: the
accounted-for board, `report --accounted`, `status --json` (and `close`) call it.

A track belongs to a device and a day; who it belongs to is whatever the
roster says now, never the entrant recorded when it was downloaded (the
results team corrects the roster many times a week). The row holding the
device that day (jobs.roster.Roster.entrant_for) has the device's tracks of
that day, and so has every shared row naming the same device
(event.shared_devices): "shared with <holder> on device 806". A second row
given the same device on the same day (a roster warning: the first row wins)
has none.

Each row sailing on a day is in exactly one state (STATES), first match wins:
  a person's mark (jobs.day.marks): did not sail / start / finish, device faulty / lost
  recording   a track of the day is still being written on the device (ledger status)
  partial     the device left while recording: the bytes up to the last frame are kept
  backup      a backup file was imported for the entrant that day (jobs.day.backup)
  collected   a verified or kept (damaged) track of its device that day
  shared      a shared row whose device's track is collected (event.shared_devices)
  missing     none of these: a person must look (red, at the top)
"""

import datetime as dt

from jobs.day import backup, marks
from jobs.spool import layout
from jobs.track import ledger

STATES = ("missing", "recording", "partial", "collected", "shared", "backup", *marks.MARKABLE)
UNSETTLED = ("missing", "recording", "partial")   # states a day cannot be closed with; shown first
ACCOUNTED_BY_A_PERSON = ("backup", *marks.MARKABLE)   # a device not seen is no longer news


def holds(roster, entry, day):
    """Whether `entry` is the row holding its physical device on `day` (its tracks are stored under its name)."""
    return entry.device > 0 and roster.entrant_for(entry.on_device, day) is entry


def shared_with(roster, entry, day):
    """The row holding the device `entry` shares on `day`, or None when `entry` holds it or shares nothing."""
    if entry.device <= 0 or not entry.shared:
        return None
    holder = roster.entrant_for(entry.on_device, day)
    return None if holder is None or holder is entry else holder


def has_tracks(roster, entry, day):
    """Whether the device's tracks of `day` are `entry`'s: it holds the device, or shares it."""
    return entry.device > 0 and (entry.shared or holds(roster, entry, day))


def sharing_text(roster, entry, day):
    """'shared with Ann Alder (1101) on device 806', or '' when `entry` shares no other row's device."""
    holder = shared_with(roster, entry, day)
    if holder is None:
        return ""
    return f"shared with {holder.name or holder.entrant} ({holder.entrant}) on device {entry.on_device}"


def tracks_of(roster, entry, doc, key, day):
    """`entry`'s ledger tracks of `day` (`key` its YYYYMMDD) in the device's state `doc`, by start."""
    if doc is None or not has_tracks(roster, entry, day):
        return []
    found = [t for t in (doc.get("tracks") or {}).values() if isinstance(t, dict) and t.get("day") == key]
    return sorted(found, key=lambda t: t.get("start") or 0)


def day_states(cfg, docs, roster, day, marks_of_day=None, imports_of_day=None):
    """[{entrant, name, device, motion_id, state, note, shared, counts, imported, mark}] for every
    roster row sailing on `day`: missing first, then recording, partial, then the others in roster
    order. `docs`: the devices' states; marks and imports are read from the spool unless given."""
    return sorted(in_roster_order(cfg, docs, roster, day, marks_of_day, imports_of_day),
                  key=lambda line: rank(line["state"]))


def in_roster_order(cfg, docs, roster, day, marks_of_day=None, imports_of_day=None):
    """day_states' lines in the order of roster.on(day)."""
    spool = cfg.paths.spool
    marked = marks.read_marks(spool, day) if marks_of_day is None else marks_of_day
    imported = backup.read_imports(spool, day) if imports_of_day is None else imports_of_day
    by_device = {doc["device"]: doc for doc in docs if isinstance(doc, dict)}
    key = day.strftime(layout.TRACK_DAY)
    midnight = dt.datetime.combine(day, dt.time(), cfg.tz).timestamp()
    return [_state_line(roster, entry, by_device.get(entry.on_device), key, day, midnight,
                        marked.get(entry.entrant), imported.get(entry.entrant, []))
            for entry in roster.on(day)]


def rank(state):
    """Where a state sorts: missing, recording, partial first, then the settled ones."""
    return UNSETTLED.index(state) if state in UNSETTLED else len(UNSETTLED)


def _state_line(roster, entry, doc, key, day, midnight, mark, imported):
    found = tracks_of(roster, entry, doc, key, day)
    counts = {status: sum(t.get("status") == status for t in found)
              for status in ledger.LOGGED}
    holder = shared_with(roster, entry, day)
    line = {"entrant": entry.entrant, "name": entry.name, "device": entry.on_device if entry.device > 0 else None,
            "motion_id": entry.device if entry.device > 0 else None, "shared": sharing_text(roster, entry, day),
            "counts": counts, "mark": mark,
            "imported": [{"name": r.get("name"), "source": r.get("source")} for r in imported]}
    state, note = _state(counts, holder, imported, mark)
    if state == "missing":
        note = _why_missing(roster, entry, doc, counts, day, midnight)
    line.update(state=state, note=note)
    return line


def _state(counts, holder, imported, mark):
    if mark:
        return mark["state"], mark.get("note") or ""
    if counts["recording"]:
        return "recording", "still recording: stop the device to finish its session"
    if counts["partial"]:
        return "partial", "the device left while recording: part of the session kept"
    if imported:
        return "backup", ", ".join(f"{r.get('name')} from {r.get('source')}" for r in imported)
    if counts["verified"] or counts["damaged"]:
        return ("shared", "") if holder is not None else ("collected", "")
    return "missing", ""


def _why_missing(roster, entry, doc, counts, day, midnight):
    if entry.device <= 0:
        return "no device"
    if not has_tracks(roster, entry, day):
        return f"device {entry.on_device} is another entrant's this day (roster warning)"
    if counts["wanted"]:
        return f"{counts['wanted']} track(s) still wanted"
    if counts["bad"]:
        return f"{counts['bad']} bad track(s): see report"
    if entry.shared:
        return f"no track on device {entry.on_device} this day"
    seen = [t for t in ((doc or {}).get("history"), (doc or {}).get("last_seen")) if isinstance(t, (int, float))]
    if not seen or max(seen) < midnight:
        return f"device {entry.on_device} not seen this day"
    return f"device {entry.on_device} seen, no track this day"
