"""The dashboard's facts: plain data gathered from the state, the roster and the queues.

Pure functions of what is on disk (the caller reads it): the same facts feed
every page and status.json. Nothing here is remembered between calls but by
the TrackFactsMemo a caller passes in (the dashboard's renderer owns one).

Everything a device sent is cut to TEXT_MAX and every number checked
(`_number`) before it becomes a fact: a broken or hostile record shows as
"unreadable" on its own tile, never as a blank page.
"""

import datetime as dt
import time
from collections import Counter

from jobs import spool, units
from jobs.dashboard import boards
from jobs.day import backup, states
from jobs.device import warnings as device_warnings
from jobs.spool import layout
from jobs.track import hand_in, ledger
from jobs.spool.files import read_json
from jobs.track.naming import DAY, replicated

TEXT_MAX = 120          # longest device string shown; the rest is cut with "…"
# How each status looks beside its word and colour: readable without colour too.
SYMBOLS = {"completed": "✔", "downloading": "↓", "pending": "◷", "connected": "●",
           "failed": "✘", "disconnected": "○", "unknown": "?"}
# The ledger's statuses as the pages count them, with the one in flight ("downloading") beside them.
TRACK_STATES = (*ledger.ON_DISK, "downloading", ledger.WANTED, ledger.SKIPPED, ledger.BAD, *ledger.GROWING)
TRACKS_SHOWN = 20   # tracks on a device's tile; the tracks page has them all


def waiting(root):
    """{device: (queue, enqueued_at)} for devices waiting for a worker; download wins."""
    queued = {}
    now = time.time()
    for queue in ("inspect", "download"):
        for device, enqueued in spool.pending(root, queue):
            if enqueued <= now:   # one set ahead is not waiting: a log still growing, looked at later
                queued[device] = (queue, enqueued)
    return queued



# ---- the facts: plain data, the same for the pages and status.json ----------------

def gather(cfg, docs, roster, queued, now, day, memo=None, notes=None):
    """Every fact the pages show. `memo` (a TrackFactsMemo) spares working out again the
    facts of tracks unchanged since the previous gather; without one, nothing is remembered."""
    memo = TrackFactsMemo() if memo is None else memo
    memo.next_gather()
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=cfg.tz).timestamp()
    today = day.strftime(layout.TRACK_DAY)
    serving = {}
    for entry in roster.on(day):
        if entry.device > 0:
            # Two entrants on one device on one day is a roster warning: the first row wins.
            # A shared row (event.shared_devices) is no clash: it shares the device's tracks.
            clash = not entry.shared and any(not e["shared"] for e in serving.get(entry.on_device, []))
            serving.setdefault(entry.on_device, []).append(
                {**_entrant(entry), "clash": clash, "shared": states.sharing_text(roster, entry, day),
                 "motion_id": entry.device})
    ledgers = {doc["device"]: guarded_ledger_facts(doc, today, cfg.tz, memo) for doc in docs}
    unreadable_ledgers = {device for device, ledger in ledgers.items() if ledger is None}
    ledgers = {device: ledger or [] for device, ledger in ledgers.items()}
    shown = [doc for doc in docs if _number(doc.get("history")) is not None]
    shown.sort(key=lambda doc: doc["history"], reverse=True)
    devices = [unreadable(doc, "its tracks cannot be read", serving) if doc["device"] in unreadable_ledgers
               else guarded_device_facts(cfg, doc, ledgers[doc["device"]], serving, queued, now, today, midnight)
               for doc in shown]
    failed = {}   # {part: why it could not be shown}: its pages say so, the others are written
    warnings = guarded_part(failed, "warnings", lambda: warning_lists(devices, roster), {"roster": []})
    return {
        "accounted": guarded_part(failed, "accounted", lambda: boards.accounted(cfg, docs, roster, day), []),
        "fastest": guarded_part(failed, "fastest", lambda: boards.fastest(docs, roster, day, cfg), {}),
        "failed": failed,
        "session": cfg.event.session,
        "tv": guarded_part(failed, "tv", lambda: tv_layout([d for d in devices if d["seen_today"]]), {}),
        "event": cfg.event.name,
        "day": day.isoformat(),
        "day_text": day.strftime("%A %-d %B %Y"),
        "today": today,
        "devices": devices,
        "totals": guarded_part(failed, "totals", lambda: totals(devices, ledgers, today), {}),
        "not_seen": guarded_part(failed, "not_seen",
                                 lambda: not_seen(roster, day, {d["device"]: d for d in docs}, midnight, cfg.tz), []),
        "warnings": warnings,
        "warning_count": sum(len(rows) for rows in warnings.values()),
        "days": guarded_part(failed, "days", lambda: with_imports(verified_by_day(ledgers),
                                                                  backup.read_imports(cfg.paths.spool), cfg.tz,
                                                                  (notes or {}).get("replica_imports")), {}),
        "names": {e.entrant: e.name for e in roster.entries},
        "replica": (notes or {}).get("replica"),
        "closed": (notes or {}).get("closed") or {},
        "thresholds": {"battery_min": cfg.checks.battery_min_percent,
                       "storage_max": cfg.checks.storage_max_percent},
    }


def guarded_part(failed, name, build, empty):
    """build(), or `empty` with failed[name] saying why: a board built from every device's
    records must not keep the other pages from being written."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - whatever the records hold, the other pages are written
        failed[name] = could_not_show(exc)
        return empty


def could_not_show(exc):
    """What a page shows in place of a part that could not be built."""
    return f"could not show this: {_text(f'{type(exc).__name__}: {exc}')}"


def guarded_device_facts(cfg, doc, ledger, serving, queued, now, today, midnight):
    """device_facts, or an "unreadable record" tile: one bad state file never blanks a page."""
    try:
        return device_facts(cfg, doc, ledger, serving, queued, now, today, midnight)
    except Exception as exc:  # noqa: BLE001 - whatever a record holds, the other devices are shown
        return unreadable(doc, exc, serving)


def guarded_ledger_facts(doc, today, tz, memo):
    """ledger_facts, or None when the record cannot be read (its tile says so)."""
    try:
        return ledger_facts(doc, today, tz, memo)
    except Exception:  # noqa: BLE001 - whatever a record holds, the other devices are shown
        return None


def unreadable(doc, exc, serving):
    device = doc["device"]
    return {"id": device, "status": "unknown", "unreadable": f"unreadable record: {_text(exc)}",
            "since": None, "history": _number(doc.get("history")) or 0, "seen_today": False, "last_seen": None,
            "last_seen_text": "–", "address": None, "entrants": serving.get(device, []), "username": None,
            "firmware": None, "battery": None, "battery_low": False, "charging": False, "storage": None,
            "storage_full": False, "firmware_warning": False, "warnings": [], "error": None, "queue": None,
            "enqueued": None, "waiting_s": None, "absent_since": None, "absent_s": None, "tracks": [],
            "more_tracks": 0, "counts": {status: 0 for status in TRACK_STATES}, "progress": None,
            "gone_forgotten": 0}


def device_facts(cfg, doc, ledger, serving, queued, now, today, midnight):
    device = doc["device"]
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    listed = doc.get("warnings") if isinstance(doc.get("warnings"), list) else []
    warnings = [{"kind": _text(w.get("kind")), "text": _text(w.get("text"))} for w in listed if isinstance(w, dict)]
    kinds = {w["kind"] for w in warnings}
    battery, storage = _number(info.get("battery")), _number(info.get("storage"))
    facts = {
        "id": device,
        "status": doc["status"] if doc.get("status") in SYMBOLS else "unknown",
        "since": _number(doc.get("since")),
        "history": doc["history"],
        "seen_today": max(_number(doc.get("history")) or 0, _number(doc.get("last_seen")) or 0) >= midnight,
        "last_seen": _number(doc.get("last_seen")) or doc["history"],
        "last_seen_text": _clock(_number(doc.get("last_seen")) or doc["history"], cfg.tz, today),
        "address": _text(doc.get("address")),
        "entrants": serving.get(device, []),
        "username": _text(info.get("username")),
        "firmware": _text(info.get("firmware_name") or info.get("firmware_code")),
        "battery": battery,
        "battery_low": battery is not None and device_warnings.battery_low(battery, cfg.checks) or "battery" in kinds,
        "charging": info.get("charging") is True,
        "storage": storage,
        "storage_full": storage is not None and device_warnings.storage_full(storage, cfg.checks) or "storage" in kinds,
        "firmware_warning": "firmware" in kinds,
        "warnings": warnings,
        "error": _text(doc.get("error")) if doc.get("status") == "failed" else None,
        "unreadable": None,
        "queue": None, "enqueued": None, "waiting_s": None,
        "absent_since": None, "absent_s": None,
    }
    if device in queued:
        queue, enqueued = queued[device]
        facts.update(queue=queue, enqueued=enqueued, waiting_s=max(0, round(now - enqueued)))
    absent = _number(doc.get("absent_since"))
    if absent is not None and facts["status"] == "completed":
        facts.update(absent_since=absent, absent_s=max(0, round(now - absent)))
    # The day's tracks, and other days' still to fetch (a device back after a day away).
    tracks = [t for t in ledger if not t["other_day"] or t["status"] in ("wanted", "downloading")]
    shown = Counter(t["status"] for t in tracks)
    facts["counts"] = {status: shown.get(status, 0) for status in TRACK_STATES}
    facts["progress"] = next((t["progress"] for t in tracks if t["progress"]), None)
    # A device listing thousands of tracks must not make every screen reload megabytes:
    # the ones that need a person and the latest, then "and N more" (the tracks page).
    facts["tracks"] = _most_telling(tracks, TRACKS_SHOWN)
    facts["more_tracks"] = len(tracks) - len(facts["tracks"])
    facts["gone_forgotten"] = _number(doc.get("gone_forgotten")) or 0   # (jobs.track.naming.bound_gone)
    return facts


def ledger_facts(doc, today, tz, memo):
    """The device's tracks that some page shows (today's, wanted, verified), by start."""
    progress = doc.get("progress") if doc.get("status") == "downloading" else None
    in_flight = progress.get("file") if isinstance(progress, dict) else None
    shown = []
    for track in _ledger(doc):
        status, file = track.get("status"), track.get("file")
        if file == in_flight:
            facts = {**memo.track_facts(doc["device"], track, tz, today), "status": "downloading",
                     "progress": progress_facts(progress, _number(track.get("size")))}
        elif track.get("day") == today or status in (ledger.WANTED, *ledger.ON_DISK):
            facts = memo.track_facts(doc["device"], track, tz, today)
        else:
            continue
        shown.append(facts)
    shown.sort(key=lambda t: t["start"] or 0)
    return shown


class TrackFactsMemo:
    """Track facts of the previous and of this gather: a long run shows the same tracks
    every 5 s, and a track's facts depend only on its ledger entry and the day."""

    def __init__(self):
        self.last, self.this = {}, {}

    def next_gather(self):
        """What this gather found becomes the previous one's: tracks gone are forgotten."""
        self.last, self.this = self.this, {}

    def track_facts(self, device, track, tz, today):
        file = track.get("file")
        if not isinstance(file, str):
            return track_facts(device, track, tz, today)
        key = (device, file, today)
        last = self.this.get(key) or self.last.get(key)
        facts = last[1] if last is not None and last[0] == track else track_facts(device, track, tz, today)
        self.this[key] = (track, facts)
        return facts


def track_facts(device, track, tz, today=None):
    start = _number(track.get("start"))
    local = _local(start / 1000, tz) if start is not None else None
    duration, distance, best = _number(track.get("duration")), _number(track.get("distance")), \
        _number(track.get("best500"))
    summary = track.get("summary") is not False
    if not summary:   # zeros where the device's summary should be: unknown, not 0
        duration = distance = best = None
    status = track.get("status")
    damage = track.get("damage") if isinstance(track.get("damage"), dict) else {}
    return {
        "device": device,
        "file": _text(track.get("file")),
        "name": _text(track.get("name")),
        "day": _text(track.get("day")),
        "other_day": track.get("day") != today,
        "start": start,
        "start_text": f"{local.hour:02d}:{local.minute:02d}" if local else "–",
        "date_text": f"{local:%a} {local.day} {local:%b}" if local and track.get("day") != today else "",
        "duration_s": round(duration / 1000) if duration is not None else None,
        "distance_km": round(distance / 1e6, 2) if distance is not None else None,
        "best500_kn": round(units.knots(best), 2) if best else None,
        "summary": summary,
        "unassigned": track.get("unassigned") is True,
        "first_bad": _number(damage.get("first_bad")),
        "disagrees": [_text(text) for text in boards.disagreements(track)],
        "suspect": _suspect(track, tz),
        "verdict": _verdict(track),
        "identity": _text(track.get("identity")) if track.get("identity") else "",   # (jobs.track.fetch: not checked, aside)
        "computed_500_kn": _knots(boards.figure_of(track, "best500")) if not best else None,
        "size": _number(track.get("size")),
        "entrant": _text(track.get("entrant")),
        "status": status if status in ledger.STATUSES else ledger.WANTED,
        "partial_bytes": _number((track.get("partial") or {}).get("bytes")) if status == "partial" else None,
        "last_fix_text": _fix_clock((track.get("partial") or {}).get("last_fix"), tz) if status == "partial" else "",
        "reason": _text(track.get("reason")),
        "failures": _number(track.get("failures")) or 0,
        "sha256": _text(track.get("sha256")),
        "replicated": replicated(track),
        "progress": None,
    }


def _suspect(track, tz):
    """'hAcc over 2.5 m 13:26:56–13:27:02; ...' when the verdict at verification flagged the
    track's data (jobs.track.figures.verdict), else ''."""
    found = track.get("verdict")
    if not isinstance(found, dict) or not found.get("flagged"):
        return ""
    return _text(hand_in.verdict_text(found, tz))


def _verdict(track):
    """The verdict at verification for programs (status.json): numbers and short texts only."""
    found = track.get("verdict")
    if not isinstance(found, dict):
        return None
    gap = found.get("longest_gap") if isinstance(found.get("longest_gap"), dict) else {}
    reasons = found.get("reasons") if isinstance(found.get("reasons"), dict) else {}
    suspect = found.get("suspect") if isinstance(found.get("suspect"), list) else []
    return {"flagged": found.get("flagged") is True, "filtered": _number(found.get("filtered")),
            "reasons": {_text(k, 40): _number(v) for k, v in list(reasons.items())[:8]},
            "longest_gap_s": _number(gap.get("s")), "median_satellites": _number(found.get("median_satellites")),
            "median_speed_accuracy": _number(found.get("median_speed_accuracy")),
            "suspect": [{"why": _text(s.get("why"), 60), "start": _number(s.get("start")), "end": _number(s.get("end"))}
                        for s in suspect[:10] if isinstance(s, dict)]}


def _knots(figure):
    speed, _ = figure
    return round(units.knots(speed), 2) if speed is not None else None


def progress_facts(progress, size):
    done = _number(progress.get("bytes")) or 0
    total = _number(progress.get("total")) or size or 0
    rate = _number(progress.get("rate")) or 0
    percent = min(100.0, max(0.0, 100.0 * done / total)) if total > 0 else 0.0
    left = (total - done) / rate if rate > 0 and total > done else None
    return {"bytes": done, "total": total, "rate": rate, "percent": round(percent, 1),
            "left_s": round(left) if left is not None else None}


def totals(devices, ledgers, today):
    seen = [d for d in devices if d["seen_today"]]
    counts = Counter(d["status"] for d in seen)
    todays = [t for ledger in ledgers.values() for t in ledger if not t["other_day"]]
    verified = [t for t in todays if t["status"] == "verified"]
    tracks = Counter(t["status"] for t in todays)
    return {
        "seen": len(seen),
        **{status: counts.get(status, 0) for status in
           ("completed", "downloading", "pending", "connected", "failed", "disconnected")},
        "tracks_verified": len(verified),
        "bytes_verified": sum(t["size"] or 0 for t in verified),
        "tracks_wanted": tracks.get("wanted", 0) + tracks.get("downloading", 0),
        "tracks_skipped": tracks.get("skipped", 0),
        "tracks_bad": tracks.get("bad", 0),
        "tracks_damaged": tracks.get("damaged", 0),
        "tracks_recording": tracks.get("recording", 0),
        "tracks_partial": tracks.get("partial", 0),
        "tracks_unassigned": sum(1 for t in todays if t["unassigned"] and t["status"] != "skipped"),
    }


def read_notes(cfg, root, day):
    """What the spool's notes say for the pages (gather's `notes`): the replica's health,
    the closed days (jobs.day.closing: closed at, or reopened since)."""
    from jobs.day import closing

    try:
        replica_imports = read_json(layout.replica_files(root), {}) if cfg.paths.replica else {}
    except (OSError, ValueError):
        replica_imports = {}
    return {"replica": replica_facts(cfg, root), "closed": closing.closed_days(cfg),
            "replica_imports": replica_imports if isinstance(replica_imports, dict) else {}}


def replica_facts(cfg, root):
    """None without paths.replica; else its folder and what replicate last found wrong with it (or None)."""
    if not cfg.paths.replica:
        return None
    try:
        health = read_json(layout.replica_health(root), {})
    except (OSError, ValueError):
        health = {}
    problem = health.get("problem") if isinstance(health, dict) else None
    return {"folder": _text(cfg.paths.replica), "problem": _text(problem) if problem else None}


def not_seen(roster, day, docs, midnight, tz):
    """Today's entrants whose device has not connected today, and those with no device."""
    missing = []
    for entry in roster.on(day):
        if entry.shared:
            continue   # a virtual Motion ID: never looked for, never "not seen" (its device's row is)
        doc = docs.get(entry.on_device) if entry.device > 0 else None
        last = None
        if doc is not None:
            last = max(_number(doc.get("history")) or 0, _number(doc.get("last_seen")) or 0) or None
        if entry.device > 0 and last is not None and last >= midnight:
            continue
        missing.append({**_entrant(entry), "device": entry.on_device if entry.device > 0 else None,
                        "last_seen": last,
                        "last_seen_text": _clock(last, tz, day.strftime(layout.TRACK_DAY)) if last else None})
    return missing


def warning_lists(devices, roster):
    """Warnings by kind, each naming its device: what the warnings page lists."""
    lists = {kind: [] for kind in device_warnings.SECTIONS}
    for device in devices:
        for warning in device["warnings"]:
            kind = warning["kind"] if warning["kind"] in device_warnings.SECTIONS else "other"
            lists[kind].append({"device": device["id"], "entrants": device["entrants"], "text": warning["text"],
                                "last_seen": device["last_seen"]})
    lists["roster"] = [_text(w, 400) for w in roster.warnings]
    lists["failed"] = [{"device": d["id"], "entrants": d["entrants"], "text": d["error"]}
                       for d in devices if d["status"] == "failed"]
    lists["bad"] = [{"device": d["id"], "entrants": d["entrants"], "track": t}
                    for d in devices for t in d["tracks"] if t["status"] == "bad"]
    lists["damaged"] = [{"device": d["id"], "entrants": d["entrants"], "track": t}
                        for d in devices for t in d["tracks"] if t["status"] == "damaged"]
    lists["unreadable"] = [{"device": d["id"], "entrants": d["entrants"], "text": d["unreadable"]}
                           for d in devices if d["unreadable"]]
    return lists


# The TV page: a screen across the tent, read from 5 m. As the day's devices
# grow from a dozen to 130, the tiles shrink and drop detail (number, symbol
# and colour stay); the latest connections and every device needing a person
# keep a large tile of four cells. Sizes by the count of tiles, largest first.
TV_SIZES = ((12, "large"), (30, "medium"), (64, "small"))   # more: "tiny"
TV_RECENT = 6            # the latest connections shown large on a crowded screen
TV_AREA = 1640 / 960     # width ÷ height of the tiles' area on a 1920×1080 screen
TV_TILE = 1.35           # a tile's width ÷ height that leaves room for a 3-digit number
TV_ROWS = {"medium": 6, "small": 9, "tiny": 12}   # rows of small tiles that fit 1080 px, number over symbol
TV_NOT_SEEN = {"large": 14, "medium": 14, "small": 30, "tiny": 30}   # names listed beside the tiles


def tv_layout(seen):
    """How the TV page lays out today's devices (most recent first): size, featured ids, columns."""
    size = next((name for most, name in TV_SIZES if len(seen) <= most), "tiny")
    if size == "large":
        return {"size": size, "featured": [], "columns": 0, "not_seen_max": TV_NOT_SEEN[size]}
    featured = [d["id"] for i, d in enumerate(seen) if i < TV_RECENT or needs_attention(d)]
    cells = len(seen) + 3 * len(featured)
    columns = max(4, round((cells * TV_AREA / TV_TILE) ** 0.5), -(-cells // TV_ROWS[size]))
    return {"size": size, "featured": featured, "columns": columns, "not_seen_max": TV_NOT_SEEN[size]}


def needs_attention(device):
    """A device a person must look at: failed, warned about, unreadable, or with a bad, damaged
    or suspect track."""
    counts = device["counts"]
    return (device["status"] == "failed" or bool(device["warnings"]) or bool(device["unreadable"])
            or counts["bad"] > 0 or counts["damaged"] > 0 or any(counts.get(s, 0) for s in ledger.GROWING)
            or any(t.get("suspect") for t in device.get("tracks") or ()))


def _most_telling(tracks, limit):
    """At most `limit` tracks, in start order: first those a person must look at
    (in flight, wanted, damaged, bad), then the latest."""
    if len(tracks) <= limit:
        return tracks
    urgent = ("downloading", ledger.WANTED, ledger.DAMAGED, ledger.BAD, *ledger.GROWING)
    ranked = sorted(range(len(tracks)), key=lambda i: (tracks[i]["status"] not in urgent, -i))
    return [tracks[i] for i in sorted(ranked[:limit])]


def verified_by_day(ledgers):
    """{YYYYMMDD: [tracks on disk: verified or damaged]} over every ledger: the tracks pages."""
    days = {}
    for device_tracks in ledgers.values():
        for track in device_tracks:
            if track["status"] in ledger.WITH_FILE and track["day"] and DAY.fullmatch(track["day"]):
                days.setdefault(track["day"], []).append(track)
    for listed in days.values():
        listed.sort(key=lambda t: (t["start"] or 0, t["device"]))
    return days


def _fix_clock(ms, tz):
    """14:02:05: the time of a fix (epoch ms), or '' when there is none."""
    when = _local(ms / 1000, tz) if _number(ms) is not None else None
    return f"{when:%H:%M:%S}" if when else ""


def with_imports(days, imported, tz, replicated_imports=None):
    """`days` (verified_by_day's) with the backup files imported (`import`) listed too, by start.
    `replicated_imports`: {<day>/<name>: sha256} of those copied to paths.replica."""
    replicated_imports = replicated_imports or {}
    for records in imported.values():
        for record in records:
            day, start = record.get("folder"), _number(record.get("start"))
            if not isinstance(day, str) or not DAY.fullmatch(day):
                continue
            local = _local(start / 1000, tz) if start is not None else None
            days.setdefault(day, []).append({
                "device": _number(record.get("motion_id")) or "–", "name": _text(record.get("name")), "day": day,
                "start": start, "start_text": f"{local:%H:%M}" if local else "–", "duration_s": None,
                "best500_kn": None, "size": _number(record.get("size")), "entrant": _text(record.get("entrant")),
                "status": "imported", "summary": True, "unassigned": False, "sha256": _text(record.get("sha256")),
                "source": _text(record.get("source")),
                "replicated": replicated_imports.get(f"{day}/{record.get('name')}") == record.get("sha256")})
    for listed in days.values():
        listed.sort(key=lambda t: (t["start"] or 0, str(t["device"])))
    return days


def _clock(t, tz, today):
    """13:05 on the day shown, or "Fri 15 Jul 13:05" on another day."""
    when = _local(t, tz)
    if when is None:
        return "–"
    return when.strftime("%H:%M" if when.strftime(layout.TRACK_DAY) == today else "%a %-d %b %H:%M")


def _local(t, tz):
    try:
        return dt.datetime.fromtimestamp(t, tz)
    except (OverflowError, OSError, ValueError):  # a time no clock shows: not ours
        return None


def _ledger(doc):
    tracks = doc.get("tracks")
    return [t for t in tracks.values() if isinstance(t, dict)] if isinstance(tracks, dict) else []


def _entrant(entry):
    return {"entrant": entry.entrant, "name": entry.name, "file_id": entry.file_id, "craft": entry.craft,
            "class_name": entry.class_name}


NUMBER_MAX = 1e15   # beyond any size, time (ms) or distance a Motion can mean


def _number(value):
    """A finite int or float from the state within NUMBER_MAX, else None (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return value if abs(value) <= NUMBER_MAX else None   # NaN compares False: None too
    except OverflowError:   # an int too large to compare with a float
        return None


def _text(value, limit=TEXT_MAX):
    return None if value is None else units.cut(value, limit)

