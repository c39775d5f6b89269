"""The results team's two boards: who is accounted for, and a provisional "fastest today".

Pure functions of the devices' states, the roster and the day; the dashboard
renders them (accounted.html, fastest.html, status.json) and `report
--accounted` / `--fastest` prints and writes them as CSV.

Accounted for: one line per entrant sailing that day, what a results team
checks by hand at the end of a day: has the device come back and been
downloaded, is anything still wanted, damaged or unassigned, how many hours do
the day's logs cover, and do they cover the event's session without a gap.
Sorted so that what needs a person comes first.

Fastest today: the devices' own figures of the day's tracks on disk, top 10
per figure, overall and per craft type, fleet (Status) and class. The devices'
own figures, not results: the page says so. A figure of 0 is unknown (a log
without a summary), never shown as 0.
"""

import datetime as dt

from jobs import config, units
from jobs.day import states
from jobs.device import documents
from jobs.spool import layout
from jobs.track import hand_in, ledger

GAP_S = 15 * 60         # a gap in the day's logs longer than this is flagged
DISAGREE = 0.05         # a device's figure this far from the frames' is flagged
TOP = 10
# (key in the ledger, label): the devices' bests, mm/s.
FIGURES = (("best500", "500 m"), ("best2s", "2 s"), ("best10s", "10 s"), ("best1852", "nautical mile"),
           ("alpha500", "alpha 500"), ("best5x10", "5x10 s"), ("best1h", "1 hour"))
WHOLE_LOGS = "ranks whole logs (no event.sessions): the drive home counts, not to be trusted for results"
GROUPS = (("craft", "Craft Type"), ("status", "Status"), ("class_name", "Class"))
NEEDS_A_PERSON = ("not seen today", "failed", "still wanted", "bad", "damaged", "suspect data", "unassigned", "gap",
                  "short", "still recording", "partial")


# --- accounted for ---------------------------------------------------------------------

def accounted(cfg, docs, roster, day):
    """[{entrant, name, device, seen, downloaded, wanted, damaged, bad, unassigned, hours,
    coverage, flags}] for the entrants sailing on `day`, those needing a person first."""
    by_device = {doc["device"]: doc for doc in docs}
    key = day.strftime(layout.TRACK_DAY)
    midnight = dt.datetime.combine(day, dt.time(), cfg.tz).timestamp()
    session = _session(cfg, day)
    lines = [_line(entry, by_device.get(entry.on_device), key, midnight, session, cfg.tz,
                   states.has_tracks(roster, entry, day), states.sharing_text(roster, entry, day))
             for entry in roster.on(day)]
    # Each entrant's one state of the day (and its note): missing ones first.
    for line, said in zip(lines, states.in_roster_order(cfg, docs, roster, day)):
        line.update(state=said["state"], state_note=said["note"], imported=said["imported"], mark=said["mark"])
        if said["state"] in states.ACCOUNTED_BY_A_PERSON:   # a mark or a backup file says where they are
            line["flags"] = [flag for flag in line["flags"] if flag != "not seen today"]
    return sorted(lines, key=_urgency)


def _line(entry, doc, key, midnight, session, tz, has_tracks=True, shared=""):
    """One entrant's line. `has_tracks`: the device's tracks that day are the entrant's (found
    through the roster as it is now); `shared`: "shared with <holder> on device 806", or ''."""
    line = {"entrant": entry.entrant, "name": entry.name, "device": entry.on_device if entry.device > 0 else None,
            "motion_id": entry.device if entry.device > 0 else None, "shared": shared, "shared_row": entry.shared,
            "craft": entry.craft, "seen": False, "downloaded": False, "verified": 0, "wanted": 0, "damaged": 0,
            "bad": 0, "unassigned": 0, "hours": 0.0, "first": None, "last": None, "flags": []}
    if entry.device <= 0:
        line["flags"].append("no device")
        return line
    doc = doc or {}
    seen = [t for t in (doc.get("history"), doc.get("last_seen")) if isinstance(t, (int, float))]
    line["seen"] = bool(seen) and max(seen) >= midnight
    todays = [t for t in (doc.get("tracks") or {}).values()
              if isinstance(t, dict) and t.get("day") == key and t.get("status") in ledger.LOGGED]
    mine = todays if has_tracks else []
    for status in ledger.LOGGED:
        line[status] = sum(t.get("status") == status for t in mine)
    line["unassigned"] = sum(bool(t.get("unassigned")) for t in todays)
    line["downloaded"] = bool(mine) and line["wanted"] == 0 and line["bad"] == 0 \
        and not line["recording"] and not line["partial"]
    spans = sorted(filter(None, (_span(t) for t in mine)))
    line["hours"] = round(sum(end - start for start, end in spans) / 3600, 2)
    if spans:
        line["first"], line["last"] = _clock(spans[0][0], tz), _clock(max(end for _, end in spans), tz)
    line["suspect"] = [f"suspect data: {hand_in.verdict_text(t['verdict'], tz)}" for t in mine
                       if isinstance(t.get("verdict"), dict) and t["verdict"].get("flagged")]
    line["flags"] = _flags(line, doc, spans, session, tz)
    return line


def _flags(line, doc, spans, session, tz):
    flags = []
    if not line["seen"] and not line["shared_row"]:   # a virtual Motion ID is never "not seen": its device is
        flags.append("not seen today")
    if doc.get("status") == "failed":
        flags.append("failed")
    if line["wanted"]:
        flags.append("still wanted")
    if line["damaged"]:
        flags.append("damaged")
    if line["bad"]:
        flags.append("bad")
    for status, flag in ((ledger.RECORDING, "still recording"), (ledger.PARTIAL, "partial")):
        if line.get(status):
            flags.append(flag)
    if line["unassigned"]:
        flags.append("unassigned")
    flags += line.pop("suspect", [])
    if session and line["seen"]:
        flags += _coverage(spans, session, tz)
    return flags


def _coverage(spans, session, tz):
    """'short: ...' when the logs start late or end early; 'gap ...' for each gap over GAP_S."""
    start, end = session
    inside = [(max(a, start), min(b, end)) for a, b in spans if b > start and a < end]
    if not inside:
        return [f"short: no log between {_clock(start, tz)} and {_clock(end, tz)}"]
    found = []
    if inside[0][0] - start > GAP_S or end - max(b for _, b in inside) > GAP_S:
        found.append(f"short: logs cover {_clock(inside[0][0], tz)}–{_clock(max(b for _, b in inside), tz)} "
                     f"of {_clock(start, tz)}–{_clock(end, tz)}")
    reach = inside[0][1]
    for a, b in inside[1:]:
        if a - reach > GAP_S:
            found.append(f"gap {_clock(reach, tz)}–{_clock(a, tz)}")
        reach = max(reach, b)
    return found


def _span(track):
    """(start, end) epoch seconds of a track, or None when its end is unknown.

    A log without a summary has no end in logs.json: its verified file's last
    fix (recorded at verification) says when it ended.
    """
    start, end = track.get("start"), track.get("end") or track.get("last_fix")
    if not isinstance(start, int) or not isinstance(end, int) or end <= start or documents.frame_time(end) is None:
        return None   # (a record written before frame times were bounded may hold 2**62 ms)
    return start / 1000, end / 1000


def _session(cfg, day):
    """(start, end) epoch s the day's logs should cover: from the first session window's
    start to the last one's end (event.sessions, else event.session); None when unset."""
    windows = config.session_windows(cfg, day)
    if not windows:
        return None
    return windows[0][0], max(end for _, end in windows)


def _clock(t, tz):
    return dt.datetime.fromtimestamp(t, tz).strftime("%H:%M")


def _urgency(line):
    flags = " ".join(line["flags"])
    rank = next((i for i, word in enumerate(NEEDS_A_PERSON) if word in flags), len(NEEDS_A_PERSON))
    return states.rank(line.get("state")), rank, line["device"] or 0, line["entrant"]


# --- fastest today --------------------------------------------------------------------

def fastest(docs, roster, day, cfg=None):
    """{figure: {"label", "ranks", "trusted", "boards": [{"group", "value", "rows": [top rows]}]}}
    of the day's tracks on disk.

    With session windows for the day (cfg: event.sessions or event.session)
    a track ranks by the community's figure of its fixes inside them (and the
    course), computed at verification; otherwise by the whole log's, computed
    from its frames, and "ranks" says it cannot be trusted. A device's own
    figure is never ranked. The first board of each figure is everyone ("All"); then one
    per craft type, fleet (Status) and class. A row: entrant, name, device,
    knots, its window and time of day, the device's own figure beside (a
    reference, never ranked inside the sessions), track.
    """
    windows = config.session_windows(cfg, day) if cfg is not None else []
    tz = cfg.tz if cfg is not None else None
    key = day.strftime(layout.TRACK_DAY)
    candidates = []
    for doc in docs:
        # The device's holder as the roster says now (a shared row's runs are the holder's here).
        entry = roster.entrant_for(doc["device"], day)
        for track in (doc.get("tracks") or {}).values():
            if not isinstance(track, dict) or track.get("day") != key or track.get("status") not in ledger.ON_DISK:
                continue
            if entry is not None:
                candidates.append((entry, doc["device"], track))
    ranks = "inside the sessions" if windows else WHOLE_LOGS
    labels = [_window_text(start, end, tz) for start, end in windows]
    # Tracks verified under other windows (or before any was set) keep those figures: said, not hidden.
    other = sum(track.get("session_windows") != labels for _, _, track in candidates) if windows else 0
    return {figure: {"label": label, "ranks": ranks, "trusted": bool(windows), "other_windows": other,
                     "boards": _boards(candidates, figure, bool(windows), tz)} for figure, label in FIGURES}


def _window_text(start, end, tz):
    """'10:00-16:00' of a window in epoch seconds, as the download labels it."""
    return "-".join(dt.datetime.fromtimestamp(t, tz).strftime("%H:%M") for t in (start, end))


def _boards(candidates, figure, in_sessions=False, tz=None):
    rows = [_row(entry, device, track, figure, in_sessions, tz) for entry, device, track in candidates]
    rows = [row for row in rows if row["knots"]]
    boards = [{"group": "All", "value": "", "rows": _top(rows)}]
    for attribute, group in GROUPS:
        for value in sorted({row[attribute] for row in rows if row[attribute]}):
            boards.append({"group": group, "value": value, "rows": _top([r for r in rows if r[attribute] == value])})
    return boards


def _row(entry, device, track, figure, in_sessions=False, tz=None):
    window = when = ""
    if in_sessions:
        found = (track.get("session") or {}).get(figure)
        speed = found.get("speed") if isinstance(found, dict) else None
        speed = speed if _speed_ok(speed) else None
        computed = True
        if speed is not None:
            window = str(found.get("window") or "")
            when = _time_of_day(found.get("start"), found.get("end"), tz)
    else:
        speed, computed = whole_log_figure(track, figure)
    own = track.get(figure)
    known = speed is not None
    name = track.get("name") or ""
    clock = name[-10:-6] if len(name) > 10 else ""   # ..._HHMMSS.oao: the track's local start
    return {"entrant": entry.entrant, "name": entry.name, "device": device, "craft": entry.craft,
            "status": entry.status, "class_name": entry.class_name, "track": track.get("name"),
            "track_time": f"{clock[:2]}:{clock[2:]}" if clock.isdigit() else "",
            "knots": round(units.knots(speed), 2) if known else None, "computed": computed,
            "window": window, "time": when,
            "device_knots": round(units.knots(own), 2) if _speed_ok(own) else None}


def whole_log_figure(track, figure):
    """(mm/s, True): the community's figure of the whole log, computed from its frames at
    verification; (None, False) without one. A device's own figure is never ranked."""
    speed = (track.get("computed") or {}).get(figure)
    return (speed, True) if _speed_ok(speed) else (None, False)


def _speed_ok(speed):
    return isinstance(speed, (int, float)) and not isinstance(speed, bool) and 0 < speed < 1e6


def _time_of_day(start, end, tz):
    """'12:32:26–12:33:11' in event local time, from epoch ms; '' when unknown."""
    if tz is None or not all(isinstance(t, int) and 0 < t < 4_102_444_800_000 for t in (start, end)):
        return ""
    return "–".join(dt.datetime.fromtimestamp(t / 1000, tz).strftime("%H:%M:%S") for t in (start, end))


def figure_of(track, figure):
    """(mm/s, computed?) of a track's figure: the device's, else the one computed from
    its frames at verification (a log without a summary), else (None, False)."""
    for speed, computed in ((track.get(figure), False), ((track.get("computed") or {}).get(figure), True)):
        if isinstance(speed, (int, float)) and not isinstance(speed, bool) and 0 < speed < 1e6:
            return speed, computed
    return None, False


def disagreements(track):
    """'500 m: device 25.9 kn, frames 24.1 kn' for each figure the two differ on by more than 5 %.

    Only the 500 m, 2 s and 10 s: the firmwares compute those the community's way (to
    0.2 mm/s); their other bests are theirs, shown for what they are, not checked."""
    computed = track.get("computed") or {}
    found = []
    for figure, label in FIGURES[:3]:
        said, measured = track.get(figure), computed.get(figure)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e6 for v in (said, measured)) \
                and abs(said - measured) > DISAGREE * measured:
            found.append(f"{label}: device {units.knots(said):.1f} kn, frames {units.knots(measured):.1f} kn")
    return found


def _top(rows):
    """The best TOP, one row per entrant (their best track), fastest first."""
    best = {}
    for row in rows:
        if row["entrant"] not in best or row["knots"] > best[row["entrant"]]["knots"]:
            best[row["entrant"]] = row
    ranked = sorted(best.values(), key=lambda r: (-r["knots"], r["entrant"]))[:TOP]
    return [{**row, "rank": n} for n, row in enumerate(ranked, 1)]
