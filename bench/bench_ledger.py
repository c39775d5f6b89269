"""The state file of a device listing 12,658 tiny tracks, and the CPU of each update to it.

Issue 22's case: a 2 MB logs.json of 12,658 entries (old tracks of earlier
events, or a hostile device) became a 5.5 MB state file, and every state
update (download writes progress once a second) reads, compares and rewrites
all of it. Each reconnection listing new names added as much again.

Three ledgers, each planned by jobs.track.naming.plan and written as a state file:

    uncapped          every entry planned (as before limits.max_log_entries was applied)
    uncapped, again   + a reconnection listing 12,658 new names, the old ones kept
                      (the rule before: every track no longer listed stayed as history)
    capped            the 1,000 most recent (inspect's naming.most_recent), and again after
                      the reconnection (skipped tracks no longer listed are dropped)

For each: the state file's size and the CPU (process time) of one state.update
that records download progress, median of 20 (min-max).

    .venv/bin/python bench/bench_ledger.py [--entries 12658] [--updates 20]
"""

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import common
from jobs import roster
from jobs.device import documents
from jobs.spool import state
from jobs.track import naming

DEVICE = 470
UTC = dt.timezone.utc
ROSTER = ("Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,Craft Type,Status\n"
          "1,1,470,{first},{last},ALD470ANN,Ann,Lee,Windsurf,Active\n")


def logs_document(count, first_name):
    """A logs.json of `count` tiny entries, one every 3 h back from today: ~160 bytes each."""
    now = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    entries = []
    for n in range(count):
        start = now - dt.timedelta(hours=3 * n)
        entries.append({"file": f"/logs/{start:%Y/%m}/{first_name + n:07d}_{start:%Y-%m-%d-%H%M}.oao",
                        "size": 1200 + n % 500, "start_date": int(start.timestamp() * 1000),
                        "end_date": int(start.timestamp() * 1000) + 60_000, "duration": 60_000,
                        "distance": 1000, "500m_best": 0, "timezone": 0})
    return {"logs": entries}


def make_roster(folder):
    today = dt.date.today()
    path = Path(folder) / "motions.csv"
    path.write_text(ROSTER.format(first=today - dt.timedelta(days=6), last=today))
    return roster.load(path)


def plan(entries, who, ledger, cap):
    if cap:
        entries, _ = naming.most_recent(entries, cap)
    return naming.plan(naming.unique(entries)[0], who, DEVICE, 1.0, UTC, ledger)


def measure(spool, ledger, updates):
    """(state file bytes, [CPU seconds of each progress update])."""
    with state.update(spool, DEVICE) as doc:
        doc.update(status="downloading", tracks=ledger)
    size = state.path(spool, DEVICE).stat().st_size
    cpu = []
    for n in range(updates):
        began = time.process_time()
        with state.update(spool, DEVICE) as doc:   # what download's _record_progress does each second
            doc["progress"] = {"file": "/logs/x.oao", "name": "x.oao", "bytes": n, "total": updates,
                               "rate": 1, "started": 0, "updated": time.time()}
        cpu.append(time.process_time() - began)
    return size, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=12_658)
    parser.add_argument("--updates", type=int, default=20)
    args = parser.parse_args()
    common.header(f"bench_ledger: {args.entries} logs.json entries, {args.updates} progress updates each")
    with tempfile.TemporaryDirectory() as folder:
        who = make_roster(folder)
        first = documents.logs(logs_document(args.entries, 0), 200_000_000)
        again = documents.logs(logs_document(args.entries, args.entries), 200_000_000)
        print(f"logs.json: {len(json.dumps(logs_document(args.entries, 0))) / 1e6:.1f} MB")
        uncapped = plan(first, who, {}, None)
        capped = plan(first, who, {}, 1000)
        cases = [("uncapped", uncapped),
                 ("uncapped, again", {**uncapped, **plan(again, who, uncapped, None)}),
                 ("capped", capped),
                 ("capped, again", plan(again, who, capped, 1000))]
        print(f"{'ledger':<18}{'tracks':>8}{'state file':>14}   CPU per update, ms")
        for n, (name, ledger) in enumerate(cases):
            spool = Path(folder) / f"spool{n}"
            size, cpu = measure(spool, ledger, args.updates)
            print(f"{name:<18}{len(ledger):>8}{size / 1e6:>11.2f} MB   {common.spread([c * 1000 for c in cpu], 1)}")


if __name__ == "__main__":
    main()
