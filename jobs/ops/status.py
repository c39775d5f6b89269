"""motion-server status: queues, claims, stage runs and devices, like mailq."""

import datetime as dt
import json
import time
from collections import Counter
from pathlib import Path

from jobs import roster, spool
from jobs.day import closing, states as day_states
from jobs.spool import layout, locks, state
from jobs.config import ConfigError, STAGES
from jobs.units import age_text, printable


def configure(parser):
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _tracks(doc):
    """Tracks by status (verified, damaged, wanted, skipped, bad), and how many of
    them wait for the roster to name an entrant (unassigned)."""
    ledger = doc.get("tracks", {}).values()
    counts = Counter(track.get("status", "?") for track in ledger)
    unassigned = sum(1 for track in ledger if track.get("unassigned") and track.get("status") != "skipped")
    return {**counts, **({"unassigned": unassigned} if unassigned else {})}


def collect(cfg):
    """Everything `status` shows, as plain data (also the --json output)."""
    root = Path(cfg.paths.spool)
    now = time.time()
    waiting_for = {}
    queues = {}
    for queue in spool.QUEUES:
        # An item set ahead (a device looked at again later: jobs.track.recording) waits 0 s so far.
        items = [{"device": d, "waiting_s": round(max(now - t, 0.0), 1),
                  **({"due_in_s": round(t - now, 1)} if t > now else {})} for d, t in spool.pending(root, queue)]
        queues[queue] = items
        for item in items:
            waiting_for[item["device"]] = (queue, item["waiting_s"], item.get("due_in_s"))
    claims = {queue: [{"device": c["device"], "pid": c["pid"], "host": c["host"], "age_s": round(c["age"], 1)}
                      for c in spool.claims(root, queue)] for queue in spool.QUEUES}
    stages = {name: locks.holder(layout.stage_lock(root, name)) for name in STAGES}
    docs = {doc["device"]: doc for doc in state.all_devices(root)}
    try:
        entries = roster.load(cfg.event.roster, cfg.event.shared_devices) if cfg.event.roster else roster.NO_ROSTER
    except ConfigError:
        entries = roster.NO_ROSTER
    watched = entries.devices()
    devices = {}
    for device in sorted(set(docs) | set(watched)):
        doc = docs.get(device) or state.new(device)
        entry = {
            "id": device,
            "status": doc["status"],
            "since": doc["since"],
            "address": doc["address"],
            "tracks": _tracks(doc),
            "error": doc["error"],
            "warnings": doc["warnings"],
        }
        if device in waiting_for:
            entry["queue"], entry["waiting_s"], due = waiting_for[device]
            if due is not None:
                entry["due_in_s"] = due
        devices[str(device)] = entry
    return {"time": now, "spool": str(root), "queues": queues, "claims": claims,
            "stages": {k: v for k, v in stages.items() if v}, "devices": devices,
            "entrants": entrants(cfg, list(docs.values()), entries, now),
            "days": closing.closed_days(cfg)}


def entrants(cfg, docs, entries, now):
    """Today's day state of every roster row sailing today (jobs.day.states), and how many are in each."""
    day = dt.datetime.fromtimestamp(now, cfg.tz).date()
    states = day_states.day_states(cfg, docs, entries, day)
    return {"day": day.isoformat(), "counts": dict(Counter(line["state"] for line in states)), "states": states}


def render(facts):
    now = facts["time"]
    lines = [f"Spool {facts['spool']}", "", "Queues"]
    for queue, items in facts["queues"].items():
        shown = ", ".join(f"{i['device']} ({age_text(i['waiting_s'])})" for i in items[:20])
        more = f" and {len(items) - 20} more" if len(items) > 20 else ""
        lines.append(f"  {queue:<10} {len(items):>3} waiting{': ' + shown + more if items else ''}")
    lines += ["", "Claims"]
    held = [(q, c) for q, cs in facts["claims"].items() for c in cs]
    for queue, c in held:
        lines.append(f"  {queue:<10} {c['device']:>5}  pid {c['pid']}@{c['host']}  for {age_text(c['age_s'])}")
    if not held:
        lines.append("  none")
    lines += ["", "Stage runs"]
    for name, holder in facts["stages"].items():
        lines.append(f"  {name:<10} pid {holder.split()[0]}")
    if not facts["stages"]:
        lines.append("  none running")
    lines += ["", f"Devices ({len(facts['devices'])})",
              f"  {'id':>5}  {'status':<12} {'since':>8}  {'address':<15} tracks"]
    order = {s: i for i, s in enumerate(state.STATUSES)}
    for entry in sorted(facts["devices"].values(), key=lambda e: (order.get(e["status"], 99), e["id"])):
        since = age_text(now - entry["since"]) if entry["since"] else "-"
        tracks = " ".join(f"{n} {s}" for s, n in sorted(entry["tracks"].items())) or "-"
        note = ""
        if "queue" in entry:
            note = f"  waiting {age_text(entry['waiting_s'])} in {entry['queue']}"
            if "due_in_s" in entry:   # a log still growing (jobs.track.recording)
                note = f"  looked at again in {age_text(entry['due_in_s'])} ({entry['queue']})"
        elif entry["error"] and entry["status"] == "failed":
            note = f"  {entry['error']}"
        lines.append(f"  {entry['id']:>5}  {entry['status']:<12} {since:>8}  {entry['address'] or '-':<15} "
                     f"{tracks}{note}")
    lines += _entrant_lines(facts["entrants"])
    if facts.get("days"):
        lines += ["", "Days closed"] + [f"  {day}  {found['text']}" for day, found in sorted(facts["days"].items())]
    return "\n".join(lines)


def _entrant_lines(found, shown=20):
    counts = ", ".join(f"{n} {state}" for state, n in sorted(found["counts"].items(),
                                                               key=lambda item: day_states.rank(item[0])))
    lines = ["", f"Entrants on {found['day']}: {counts or 'nobody on the roster'}"]
    unsettled = [line for line in found["states"] if line["state"] in day_states.UNSETTLED]
    for line in unsettled[:shown]:
        lines.append(f"  {line['state']:<10} {line['entrant']:<8} {line['name'][:30]:<30} {line['note']}")
    if len(unsettled) > shown:
        lines.append(f"  and {len(unsettled) - shown} more (report --accounted)")
    return lines


def main(cfg, args):
    facts = collect(cfg)
    print(json.dumps(facts, indent=1) if args.json else printable(render(facts)))
    return 0
