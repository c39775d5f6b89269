"""motion-server report: the day's outcome per entrant, for the results team.

In roster order, one line per track: the entrant, the device, the track's
local name, local start, duration, 500 m best, and what became of it —
verified (and on disk), skipped and why, wanted but not yet downloaded, bad.
A track damaged on the device says where; an unassigned track (a device no
entrant held that day) and a log without a summary say so too.
An entrant whose device was not seen that day, or who has no device, gets a
line too. Read from the devices' ledgers and checked against the tracks
folder; nothing is changed. Exit status 1 when a track the ledger calls
verified is not on disk as recorded, so a script notices.
"""

import csv
import datetime as dt
import sys

from jobs import config, roster, units
from jobs.dashboard import boards, facts
from jobs.day import backup, states
from jobs.spool import layout, state
from jobs.track import hand_in, ledger, naming
from jobs.config import ConfigError
from jobs.spool.files import is_temporary
from jobs.log import quoted
from jobs.units import csv_cell, printable, date_argument

COLUMNS = ("Entrant", "Name", "Device", "Track", "Start", "Duration", "500 m kn", "Outcome")
# Terminal widths; the last column is never cut.
WIDTHS = {"Name": 24, "Track": 40}


def configure(parser):
    parser.add_argument("--date", type=date_argument, metavar="YYYY-MM-DD",
                        help="the event day to report (default: today in event.timezone)")
    parser.add_argument("--csv", metavar="FILE",
                        help="also write the rows to FILE (CSV, UTF-8, header row) for a spreadsheet")
    board = parser.add_mutually_exclusive_group()
    board.add_argument("--accounted", action="store_true",
                       help="one line per entrant sailing that day: seen, downloaded, hours logged, gaps")
    board.add_argument("--fastest", action="store_true",
                       help="provisional top 10 per figure, craft, fleet and class: the community's figures "
                            "inside event.sessions (whole logs without them)")


# --- what happened that day -------------------------------------------------

def collect(cfg, day, entries):
    """(rows, alarms): one dict per line of the report, and the verified tracks not on disk."""
    spool, key = cfg.paths.spool, day.strftime(layout.TRACK_DAY)
    rows, alarms = [], []
    sailing = entries.on(day)
    imported = backup.read_imports(spool, day)
    for entry in sailing:
        who = {"Entrant": entry.entrant, "Name": entry.name}
        # Backup files imported for the entrant (`import`), with their source's name: once per entrant.
        rows += [_imported_row(cfg, who, record) for record in imported.pop(entry.entrant, [])]
        if entry.device <= 0:
            rows.append(_row(who, Outcome="no device"))
            continue
        doc = state.read(spool, entry.on_device)
        # Found by device and day through the roster as it is now; a device given to two
        # entrants that day (a roster warning) is the first row's.
        mine = states.tracks_of(entries, entry, doc, key, day)
        shared = states.sharing_text(entries, entry, day)
        device = _device_text(entry)
        if not mine:
            absence = _absence(cfg, doc, day) if states.has_tracks(entries, entry, day) else \
                f"device {entry.on_device} is another entrant's this day (roster warning)"
            if entry.shared:   # a virtual Motion ID is never "not seen": its device's row says so
                absence = f"no track on device {entry.on_device} this day"
            rows.append(_row(who, Device=device, Outcome="; ".join(filter(None, (absence, shared)))))
        rows += [_shared(track_row(cfg, who, doc, t, alarms), device, shared) for t in mine]
    # Tracks of that day from devices nobody had on the roster: the roster may need a line.
    on_roster = {e.on_device for e in sailing}
    for doc in sorted(state.all_devices(spool), key=lambda d: d["device"]):
        if doc["device"] not in on_roster:
            who = {"Entrant": "-", "Name": "(no entrant this day)"}
            rows += [track_row(cfg, who, doc, t, alarms) for t in tracks_of_day(doc, key)]
    return rows, alarms


def _imported_row(cfg, who, record):
    start = record.get("start")
    return _row(who, Device=str(record.get("motion_id") or "-"), Track=str(record.get("name")),
                Start=naming.local_start(start, cfg.tz).strftime("%H:%M:%S") if isinstance(start, int) else "?",
                Duration="?", **{"500 m kn": "?"},
                Outcome=f"backup: imported from {quoted(record.get('source'), 60)} ({record.get('checked')} checked)")


def _device_text(entry):
    """'806', or '1806 (806)' for a shared row: the roster's Motion ID and the device it names."""
    return f"{entry.device} ({entry.on_device})" if entry.shared else str(entry.device)


def _shared(row, device, shared):
    row["Device"] = device
    if shared:
        row["Outcome"] = f"{row['Outcome']}; {shared}"
    return row


def tracks_of_day(doc, key):
    found = [t for t in doc.get("tracks", {}).values() if isinstance(t, dict) and t.get("day") == key]
    return sorted(found, key=lambda t: t.get("start") or 0)


def _row(who, **fields):
    row = dict.fromkeys(COLUMNS, "")
    row.update(who, **fields)
    return row


def track_row(cfg, who, doc, track, alarms):
    start = track.get("start")
    return _row(who, Device=str(doc["device"]),
                Track=track.get("name") or f"(on the device: {quoted(track.get('file'), 60)})",
                Start=naming.local_start(start, cfg.tz).strftime("%H:%M:%S") if isinstance(start, int) else "?",
                Duration=_duration(track.get("duration")) if track.get("summary") is not False else "–",
                **{"500 m kn": _best500(track)},
                Outcome=outcome(cfg, doc, track, alarms))


def outcome(cfg, doc, track, alarms):
    """What became of the track, with what a results team must know beside it."""
    said = _outcome(cfg, doc, track, alarms)
    verdict = track.get("verdict") if isinstance(track.get("verdict"), dict) else {}
    notes = [note for flag, note in ((track.get("unassigned") and track.get("status") != "skipped",
                                      "unassigned: no entrant holds the device that day"),
                                     (track.get("summary") is False, naming.NO_SUMMARY),
                                     (verdict.get("flagged"), f"suspect data: {hand_in.verdict_text(verdict, cfg.tz)}"))
             if flag]
    return "; ".join([said, *notes])


def _outcome(cfg, doc, track, alarms):
    status, reason = track.get("status"), track.get("reason")
    if status in ledger.ON_DISK:
        problem = _on_disk_problem(cfg, track)
        if problem:
            alarms.append(f"device {doc['device']}: {problem}")
            what, _, where = problem.partition(": ")
            return f"{status.upper()} BUT {what.upper()}: {where}"
        return reason if status == "damaged" else "verified"
    if status == "skipped":
        return f"skipped: {reason}"
    if status == "bad":
        return f"bad: {reason}" if reason else "bad"
    if status == "recording":   # never a failure: the whole track comes once the device is stopped
        return reason or "still recording: stop the device to finish its session"
    if status == "partial":
        return f"partial: {reason}"
    if status == "wanted":
        progress = doc.get("progress") or {}
        if progress.get("file") == track.get("file") and progress.get("total"):
            return f"downloading: {100 * progress.get('bytes', 0) // progress['total']} %"
        note = f" (device {doc['status']}: {doc.get('error')})" if doc.get("status") == "failed" else ""
        return "wanted: not downloaded yet" + note
    return str(status)


def _on_disk_problem(cfg, track):
    """Why the file of a verified track is not on disk as the ledger says, or None."""
    try:
        path = naming.final_path(cfg.paths.tracks, track)
    except ValueError as exc:
        return str(exc)
    if not path.is_file():
        return f"file missing: {path}"
    size = path.stat().st_size
    if size != track.get("size"):
        return f"{size} bytes on disk, {track.get('size')} in the ledger: {path}"
    return None


def _absence(cfg, doc, day):
    """Outcome for a device with no track that day: not seen, or seen with none."""
    times = [t for t in (doc.get("history"), doc.get("last_seen")) if isinstance(t, (int, float))]
    if not times:
        return "not seen: never connected"
    last = dt.datetime.fromtimestamp(max(times), cfg.tz)
    if last.date() < day:
        return f"not seen: last connected {last:%Y-%m-%d %H:%M}"
    if last.date() == day:
        error = f": {doc.get('error')}" if doc.get("status") == "failed" else ""
        return f"seen, no track this day (now {doc.get('status')}{error})"
    return f"no track this day (last seen {last:%Y-%m-%d %H:%M})"


def _duration(ms):
    if not isinstance(ms, int) or ms < 0:
        return "?"
    seconds = ms // 1000
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _knots(mm_per_s):
    return f"{units.knots(mm_per_s):.1f}" if isinstance(mm_per_s, (int, float)) else "?"


def _best500(track):
    """As the dashboard shows it: the device's figure; else the one computed from the frames, marked ≈;
    else – (a log without a summary says 0, which is unknown, not 0 kn)."""
    speed, computed = boards.figure_of(track, "best500")
    if speed is None:
        return "–" if track.get("summary") is False or track.get("best500") == 0 else _knots(track.get("best500"))
    return f"≈{_knots(speed)}" if computed else _knots(speed)


def strays(cfg, day):
    """Files in the day folder that no ledger names as verified (copied by hand, or an old run)."""
    key = day.strftime(layout.TRACK_DAY)
    folder = layout.track_day_dir(cfg.paths.tracks, key)
    try:
        names = {p.name for p in folder.iterdir() if p.is_file() and not is_temporary(p.name)}
        names -= {"SHA256SUMS", "entrants.csv"}   # a closed day's package (jobs.day.closing)
    except FileNotFoundError:
        return []
    known = {t.get("name") for doc in state.all_devices(cfg.paths.spool)
             for t in tracks_of_day(doc, key) if t.get("status") in ledger.ON_DISK or t.get("partial")}
    known |= {r.get("name") for records in backup.read_imports(cfg.paths.spool, day).values() for r in records}
    return sorted(names - known)


# --- the table and the CSV --------------------------------------------------

def summary(rows):
    # A shared row's lines show another row's tracks: counted once, under the holder.
    outcomes = [r["Outcome"] for r in rows if "; shared with " not in r["Outcome"]]

    def count(*starts):
        return sum(o.startswith(starts) for o in outcomes)

    entrants = len({r["Entrant"] for r in rows if r["Entrant"] != "-"})
    unassigned = sum("unassigned:" in o for o in outcomes)
    return (f"{entrants} entrants; tracks: {count('verified')} verified, {count('damaged on the device')} damaged "
            f"on the device (kept as they are), {count('skipped')} skipped, {count('wanted', 'downloading')} still "
            f"wanted, {count('bad')} bad, {count('VERIFIED BUT', 'DAMAGED BUT')} not on disk, {unassigned} "
            f"unassigned; entrants: {count('not seen')} not seen, {count('no device')} without a device"
            + _growing(count('still recording'), count('partial'))
            + (f"; backup files imported: {count('backup')}" if count('backup') else ""))


def _growing(recording, partial):
    """'; 1 still recording, 1 partial' when a device was handed back still logging, else ''."""
    return f"; tracks still recording: {recording}, partial: {partial}" if recording or partial else ""


def table(rows, columns=COLUMNS):
    def cut(text, width):
        return text if width is None or len(text) <= width else text[:width - 1] + "…"

    widths = {c: min(max([len(c)] + [len(r[c]) for r in rows]), WIDTHS.get(c, 10**6)) for c in columns}
    lines = ["  ".join(f"{c:<{widths[c]}}" for c in columns).rstrip()]
    lines.append("  ".join("-" * min(widths[c], 40) for c in columns))
    for row in rows:
        lines.append("  ".join(f"{cut(row[c], widths[c]):<{widths[c]}}" for c in columns).rstrip())
    return "\n".join(lines)


def write_csv(path, day, rows, columns=COLUMNS):
    # utf-8-sig: the byte order mark makes spreadsheets read the names as UTF-8.
    with open(path, "w", newline="", encoding="utf-8-sig") as f:
        out = csv.writer(f)
        out.writerow(("Date",) + columns)
        for row in rows:
            out.writerow([day.isoformat()] + [csv_cell(row[c]) for c in columns])


def main(cfg, args):
    day = args.date or dt.datetime.now(cfg.tz).date()
    try:
        entries = roster.load(cfg.event.roster, cfg.event.shared_devices) if cfg.event.roster else roster.NO_ROSTER
    except ConfigError as exc:
        print(f"motion-server: {exc}", file=sys.stderr)
        return 2
    if args.csv and not _writable(args.csv):
        return 2
    if args.accounted or args.fastest:
        return max(board_report(cfg, day, entries, args), _no_roster(cfg))
    try:
        rows, alarms = collect(cfg, day, entries)
    except Exception as exc:  # noqa: BLE001 - the devices' records, not the operator: say what, and stop
        print(f"motion-server: {facts.could_not_show(exc)}", file=sys.stderr)
        return 1
    print(f"{cfg.event.name}: {day} ({cfg.event.timezone}), tracks in {cfg.paths.tracks}")
    print()
    print(printable(table(rows)) if rows else "nobody on the roster this day")
    print()
    print(summary(rows))
    extra = strays(cfg, day)
    if extra:
        print(f"{len(extra)} file(s) in {layout.track_day_dir(cfg.paths.tracks, day.strftime(layout.TRACK_DAY))} that no ledger names: "
              + ", ".join(extra))
    if args.csv:
        try:
            write_csv(args.csv, day, rows)
        except OSError as exc:
            print(f"motion-server: cannot write {args.csv}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"written to {args.csv}")
    for alarm in alarms:
        print(f"motion-server: VERIFIED TRACK NOT ON DISK: {alarm}", file=sys.stderr)
    return max(1 if alarms else 0, _no_roster(cfg))


def _no_roster(cfg):
    """1, said on stderr, when there is no roster: `check` marks that ✘, and a script must notice."""
    if cfg.event.roster:
        return 0
    print("motion-server: no roster (event.roster is not set): no entrant to report on", file=sys.stderr)
    return 1


def _writable(path):
    """Whether the CSV can be written, found before anything is printed: a bad --csv is a usage error."""
    try:
        with open(path, "a", encoding="utf-8"):
            return True
    except OSError as exc:
        print(f"motion-server: cannot write {path}: {exc.strerror}", file=sys.stderr)
        return False


# --- the boards ------------------------------------------------------------------

ACCOUNTED_COLUMNS = ("Entrant", "Name", "Device", "State", "Seen", "Downloaded", "Verified", "Wanted", "Damaged",
                     "Unassigned", "Hours", "First", "Last", "Needs", "Note")
FASTEST_COLUMNS = ("Figure", "Group", "Value", "Rank", "Entrant", "Name", "Device", "Knots", "Window", "Time",
                   "Device kn", "Track")


def accounted_rows(cfg, day, entries):
    docs = state.all_devices(cfg.paths.spool)
    return [{"Entrant": line["entrant"], "Name": line["name"], "Device": _board_device(line),
             "State": line["state"].upper() if line["state"] == "missing" else line["state"],
             "Seen": "yes" if line["seen"] else "no", "Downloaded": "yes" if line["downloaded"] else "no",
             "Verified": str(line["verified"]), "Wanted": str(line["wanted"]), "Damaged": str(line["damaged"]),
             "Unassigned": str(line["unassigned"]), "Hours": f"{line['hours']:.2f}", "First": line["first"] or "",
             "Last": line["last"] or "", "Needs": "; ".join(line["flags"]),
             "Note": "; ".join(filter(None, (line["state_note"], line["shared"], _marked_by(line["mark"], cfg.tz))))}
            for line in boards.accounted(cfg, docs, entries, day)]


def _board_device(line):
    if not line["device"]:
        return "-"
    return f"{line['motion_id']} ({line['device']})" if line["motion_id"] != line["device"] else str(line["device"])


def _marked_by(mark, tz):
    if not mark:
        return ""
    at = mark.get("at")
    when = dt.datetime.fromtimestamp(at, tz).strftime("%Y-%m-%d %H:%M") if isinstance(at, (int, float)) else "?"
    return f"marked by {mark.get('by')} at {when}"


def _fastest_title(cfg, day):
    if config.session_windows(cfg, day):
        return "provisional fastest: the community's figures inside the sessions (device kn: a reference only)"
    return f"provisional fastest: {boards.WHOLE_LOGS}"


def fastest_rows(cfg, day, entries):
    rows = []
    for figure in boards.fastest(state.all_devices(cfg.paths.spool), entries, day, cfg).values():
        for board in figure["boards"]:
            rows += [{"Figure": figure["label"], "Group": board["group"], "Value": board["value"],
                      "Rank": str(row["rank"]), "Entrant": row["entrant"], "Name": row["name"],
                      "Device": str(row["device"]), "Knots": f"{row['knots']:.2f}", "Window": row["window"],
                      "Time": row["time"],
                      "Device kn": "" if row["device_knots"] is None else f"{row['device_knots']:.2f}",
                      "Track": row["track"] or ""}
                     for row in board["rows"]]
    return rows


def board_report(cfg, day, entries, args):
    title = "accounted for" if args.accounted else _fastest_title(cfg, day)
    try:
        if args.accounted:
            columns, rows = ACCOUNTED_COLUMNS, accounted_rows(cfg, day, entries)
        else:
            columns, rows = FASTEST_COLUMNS, fastest_rows(cfg, day, entries)
    except Exception as exc:  # noqa: BLE001 - the device's records, not the operator: say what, and go on
        print(f"{cfg.event.name}: {day} ({cfg.event.timezone}), {title}")
        print(f"motion-server: {facts.could_not_show(exc)}", file=sys.stderr)
        return 1
    print(f"{cfg.event.name}: {day} ({cfg.event.timezone}), {title}")
    print()
    print(printable(table(rows, columns)) if rows else "nothing to show for this day")
    if args.csv:
        try:
            write_csv(args.csv, day, rows, columns)
        except OSError as exc:
            print(f"motion-server: cannot write {args.csv}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"written to {args.csv}")
    return 0
