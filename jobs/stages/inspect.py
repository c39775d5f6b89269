"""inspect: read each connected device, warn about what is wrong, decide what to fetch.

For each device in the inspect queue (detect put it there when it joined):
  - fetch info.json, settings.json and logs.json from its recorded address,
    check their shapes and keep a copy in <spool>/cache/<id>/;
  - the device must say it is the device we looked up;
  - warn about firmware, storage, battery and settings (jobs.device.warnings;
    the device still goes on);
  - plan its tracks (the limits.max_log_entries most recent of logs.json):
    wanted, skipped with a reason, or already verified;
  - wanted tracks left: status pending and into the download queue;
    none: status completed, it can be disconnected; none but a log the device
    is still writing (jobs.track.recording): still connected, looked at again soon.
Any failure: status failed and the address forgotten; detect finds it again.
The claim is renewed before each document and before the plan: a slow device
must not let the lease run out and a second worker start the same inspection.
"""

import threading
import time
from collections import Counter

from jobs import runner, spool, units
from jobs.spool import files, layout, state
from jobs.track import ledger, naming, recording
from jobs.track.ledger import SKIPPED, WANTED
from jobs.device import DeviceError, documents, warnings as device_warnings
from jobs.log import quoted

# jobs.device.api brings requests and urllib3 (~0.13 s of CPU): it is imported when a
# device is first inspected, not at start-up, since an idle run under cron has
# no device to talk to.

# Read in this order: info.json first, so a wrong device is refused before the rest.
READERS = ("info", "settings", "logs")
LINES_MAX = 50           # lines about one device's tracks per inspection
_local = threading.local()


def step(ctx):
    return runner.serve_queue(ctx, "inspect", inspect_device)


def inspect_device(ctx, claim):
    device, log = claim.device, ctx.device_log(claim.device)
    doc = state.read(ctx.spool, device)
    if doc["status"] != "connected":
        log.info("status is %s, not connected: nothing to inspect", doc["status"])
        return
    try:
        info, settings, logs = read_device(ctx, device, doc["address"], claim)
    except DeviceError as exc:
        fail(ctx, device, str(exc))
        return
    except spool.ClaimLost:
        log.warning("claim taken over by another worker; leaving the device to it")
        raise
    warnings = device_warnings.found_in(info, settings, ctx.cfg.checks)
    for warning in warnings:
        log.warning("%s", warning["text"])
    logs = _bounded(log, logs, ctx.cfg.limits.max_log_entries)
    spool.renew(claim)
    unusable = [entry["problem"] for entry in logs if entry["file"] is None]
    _log_some(log, [("%s: not planned", problem) for problem in unusable])
    entries, again = naming.unique([entry for entry in logs if entry["file"] is not None])
    _log_some(log, [("logs.json lists %s more than once; the first listing counts", quoted(file)) for file in again])
    hand_on(ctx, device, info, warnings, entries)


def _bounded(log, logs, limit):
    """The `limit` most recent entries of logs.json; one line says how many were left out."""
    kept, ignored = naming.most_recent(logs, limit)
    if ignored:
        log.warning("logs.json lists %d tracks: the %d oldest by start_date are ignored "
                    "(limits.max_log_entries %d)", len(logs), ignored, limit)
    return kept


def read_device(ctx, device, address, claim=None):
    """The device's three documents, checked and cached; DeviceError says what is wrong."""
    from jobs.device.api import get_json   # requests, only once there is a device to ask

    if not address:
        raise DeviceError("no address recorded")
    raw, clean = {}, {}
    for name in READERS:
        reader = getattr(documents, name)
        if ctx.stop.is_set():
            raise runner.Stopping()
        if claim is not None:
            spool.renew(claim)  # each document may take up to its deadline
        raw[name] = get_json(_session(), address, ctx.cfg.network.port, f"/{name}.json", ctx.cfg)
        clean[name] = reader(raw[name], ctx.cfg.limits.max_track_bytes) if name == "logs" else reader(raw[name])
        if name == "info" and clean[name]["identifier"] != device:
            raise DeviceError(f"info.json says identifier {clean[name]['identifier']}, expected {device}: "
                              f"another device answers on motion-{device}")
    # Kept as the device sent them, for an operator asking "what did it say?"
    cache = layout.cache_dir(ctx.spool, device)
    cache.mkdir(parents=True, exist_ok=True)
    for name, document in raw.items():
        files.write_json(cache / f"{name}.json", document)
    return clean["info"], clean["settings"], clean["logs"]


def _session():
    # One requests session per worker thread: sessions are not promised to be
    # thread-safe, and a device that keeps connections alive is spared new ones.
    if not hasattr(_local, "session"):
        from jobs.device.api import session

        _local.session = session()
    return _local.session


def summary(info):
    """What the dashboard shows of info.json."""
    keys = ("username", "hardware", "firmware_name", "firmware_code", "battery", "charging", "storage")
    return {key: info[key] for key in keys}


def hand_on(ctx, device, info, warnings, entries):
    """Record what was found and pass the device on, if it is still ours to move."""
    log = ctx.device_log(device)
    cfg = ctx.cfg
    roster = ctx.roster()
    with state.update(ctx.spool, device) as doc:
        if doc["status"] != "connected":
            log.info("status became %s meanwhile; leaving it", doc["status"])
            return
        before = doc["tracks"]
        days = naming.event_days(roster, cfg.event.first_day, cfg.event.last_day)
        ledger = naming.plan(entries, roster, device, cfg.filters.min_500m_knots, cfg.tz, before, days,
                             doubted=_doubted(doc))
        ledger, forgotten = naming.bound_gone(ledger)
        if forgotten:
            doc["gone_forgotten"] = (doc.get("gone_forgotten") or 0) + forgotten
            log.info("%d tracks no longer on the device forgotten (the ledger keeps the latest %d; %d so far)",
                     forgotten, naming.GONE_KEPT, doc["gone_forgotten"])
        # Detect's warnings (a device answering from a new address today) outlive an inspection.
        kept = [w for w in doc["warnings"]
                if isinstance(w, dict) and w.get("kind") in device_warnings.KEPT_BY_INSPECTION]
        doc.update(info=summary(info), warnings=warnings + kept, tracks=ledger, last_seen=time.time())
        wanted = [t for t in ledger.values() if t["status"] == WANTED]
        if wanted:
            # Queued before the state says pending (the state is written when
            # this block ends): a crash in between leaves a device that is
            # still connected and still claimed, so the next run redoes it.
            spool.enqueue(ctx.spool, "download", device)
            state.set_status(doc, "pending", error=None)
        elif not recording.recording(ledger):
            state.mark_completed(doc)
    _log_decisions(log, before, ledger)
    _log_outcome(log, ledger)
    if not wanted:
        recording.look_again(ctx, device, ("connected",), log)   # a log still growing: stays connected


def _doubted(doc):
    """Why the device's answers are in doubt today, or None: another address answered as it earlier
    the same day (jobs.spool.state.note_address). Two devices may take one name: keep both, judge later."""
    seen = doc.get("addresses_today") if isinstance(doc.get("addresses_today"), dict) else {}
    earlier = seen.get("previous") if isinstance(seen.get("previous"), dict) else None
    if not earlier:
        return None
    return f"another device answered as this one today: from {earlier.get('address')}, now from {seen.get('address')}"


def _log_outcome(log, ledger):
    wanted = [t for t in ledger.values() if t["status"] == WANTED]
    others = _count(t for t in ledger.values() if t["status"] != WANTED)
    if wanted:
        size = units.size_text(sum(t["size"] for t in wanted))     # MB, as the dashboard says it
        plural = "" if len(wanted) == 1 else "s"
        log.info("%d track%s to download (%s)%s", len(wanted), plural, size, f"; {others}" if others else "")
    elif recording.recording(ledger):
        log.debug("nothing to download yet (%s): looking again in %.0f s", others, recording.LOOK_S)
    else:
        log.info("nothing to download (%s); can be disconnected", others or "no tracks")


def _count(ledger_tracks):
    """'2 skipped, 1 verified': how the device's other tracks stand."""
    counts = Counter(track["status"] for track in ledger_tracks)
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _log_decisions(log, before, after):
    """One line per track whose decision is new: reconnects do not repeat the old ones."""
    lines = []
    for file, track in after.items():
        old = before.get(file, {})
        if (old.get("status"), old.get("reason")) == (track["status"], track["reason"]):
            continue
        if track["status"] == SKIPPED:
            lines.append(("skipped %s: %s", quoted(file), track["reason"]))
        elif track["status"] == WANTED:
            where = f"{layout.UNASSIGNED}/{track['day']}" if track.get("unassigned") else track["day"]
            lines.append(("wanted %s as %s/%s", quoted(file), where, track["name"]))
        elif track["status"] == ledger.RECORDING:
            lines.append(("%s %s: its size grows (%d bytes listed, no summary); looking again every %.0f s",
                          recording.TILE, quoted(file), track["size"], recording.LOOK_S))
    _log_some(log, lines)


def _log_some(log, lines):
    """The first LINES_MAX of (format, args...) lines, then how many more there were.

    A device listing thousands of tracks must not flood the log every job shares.
    """
    for line in lines[:LINES_MAX]:
        log.info(*line)
    if len(lines) > LINES_MAX:
        log.info("... and %d more like these, not logged (the state file has every track)", len(lines) - LINES_MAX)


def fail(ctx, device, why):
    """The device misbehaved or went away: failed, address forgotten, detect retries.
    A log it was still writing keeps its complete frames as `partial` (jobs.track.recording)."""
    recording.keep_partials(ctx, device, ctx.device_log(device))
    moved_on = state.fail(ctx.spool, device, ("connected",), why, ctx.cfg.intervals.detect)
    if moved_on:
        ctx.device_log(device).info("failed (%s), but its status became %s meanwhile", why, moved_on)
    else:
        ctx.device_log(device).error("failed: %s; address forgotten, detect will retry", why)
