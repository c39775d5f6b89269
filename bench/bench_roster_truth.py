"""The cost of a real roster's day: the day states of every entrant, and the renames after a roster edit.

A real event's size (results-team.md): 130 roster rows for 107 devices (23
rows are shared Motion IDs under `offset: 1000`), 2 tracks a device on disk
for the day. Measured, in process time (fsync waits not counted):

    day states     jobs.day.states.day_states over every row (what the
                   accounted-for board, report --accounted and status --json
                   each compute), median of 20 (min-max)
    roster edit    jobs.track.assign.follow_roster over every device after an edit
                   giving 10 devices to other entrants (20 files renamed, the
                   ledgers rewritten), then the same over the unchanged roster
                   (nothing to rename: what each later roster version costs)

    .venv/bin/python bench/bench_roster_truth.py [--devices 107] [--shared 23]
"""

import argparse
import datetime as dt
import logging
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import common  # noqa: F401 - puts the checkout on sys.path
from jobs import roster
from jobs.day import states
from jobs.spool import state
from jobs.track import assign, naming
from jobs.spool.files import write_json

TZ = ZoneInfo("Europe/London")
DAY = dt.date(2026, 7, 16)
HEADER = "Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,Craft Type,Status\n"
LOG = logging.LoggerAdapter(logging.getLogger("bench"), {"device": 0})


def roster_text(devices, shared, edited=0):
    rows = [f"{1000 + d},{d},{100 + d},{DAY},{DAY},F{d}{'X' if d < edited else ''}_,A,B,Kite,OK" for d in range(devices)]
    rows += [f"{5000 + d},{d},{1100 + d},{DAY},{DAY},S{d},A,B,Foil,OK" for d in range(shared)]
    return HEADER + "\n".join(rows) + "\n"


def setup(folder, devices):
    spool, root = folder / "spool", folder / "tracks"
    state.path(spool, 0).parent.mkdir(parents=True)
    (root / f"{DAY:%Y%m%d}").mkdir(parents=True)
    for d in range(devices):
        ledger = {}
        for hour in (11, 14):
            start = int(dt.datetime.combine(DAY, dt.time(hour), TZ).timestamp() * 1000)
            name = naming.local_name(f"F{d}_", 100 + d, start, TZ)
            ledger[f"/{hour}.oao"] = {"file": f"/{hour}.oao", "name": name, "day": f"{DAY:%Y%m%d}", "start": start,
                                      "status": "verified", "size": 1, "unassigned": False,
                                      "entrant": str(1000 + d), "file_id": f"F{d}_"}
            (root / f"{DAY:%Y%m%d}" / name).write_bytes(b"x")
        write_json(state.path(spool, 100 + d), {**state.new(100 + d), "tracks": ledger})
    return spool, root


def cpu(work):
    began = time.process_time()
    result = work()
    return time.process_time() - began, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=107)
    parser.add_argument("--shared", type=int, default=23)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spool, root = setup(folder, args.devices)
        path = folder / "motions.csv"
        path.write_text(roster_text(args.devices, args.shared))
        entries = roster.load(path, {"offset": 1000})
        cfg = SimpleNamespace(tz=TZ, paths=SimpleNamespace(spool=str(spool), tracks=str(root)))
        docs = state.all_devices(spool)
        times = [cpu(lambda: states.day_states(cfg, docs, entries, DAY))[0] for _ in range(20)]
        print(f"day states of {len(entries.on(DAY))} rows ({len(entries.shared_rows())} shared): "
              f"{statistics.median(times) * 1000:.1f} ms ({min(times) * 1000:.1f}-{max(times) * 1000:.1f})")
        path.write_text(roster_text(args.devices, args.shared, edited=10))
        edited = roster.load(path, {"offset": 1000})
        for what in ("after an edit giving 10 devices to others", "the same roster again"):
            spent, moved = cpu(lambda: sum(assign.follow_roster(spool, root, edited, TZ, 100 + d, LOG)
                                           for d in range(args.devices)))
            print(f"follow_roster over {args.devices} devices, {what}: {moved} files renamed, {spent * 1000:.0f} ms")


if __name__ == "__main__":
    main()
