"""Idle cost: what the crontab costs the machine when there is nothing to do.

1. One `motion-server <stage> --once` of each stage with nothing to do, as a
   subprocess: wall time and CPU time (getrusage(RUSAGE_CHILDREN) around it,
   so Python's start-up and every import are included), median of 5 runs.
   Target: under 0.2 s CPU per idle run. `python -c pass` and the bare imports
   are shown beside it: the floor that no stage code can go under.
2. CPU per minute of the whole crontab when idle: every stage `--for 60` at
   once, as cron starts them, with the shipped intervals; the CPU of each
   process (wait4) and their sum. Median of --minutes runs.

Two idle events:
    empty    no roster, no state: the pure cost of a run
    quiet    300 roster devices and 600 extra IDs (event.extra_devices), all away
             (the router answers its "not found" address for every name, as a
             hosts file here: no DNS is asked); each roster device with
             yesterday's state and 2 verified tracks: an evening after a session

    .venv/bin/python bench/bench_idle.py [--runs 5] [--minutes 5] [--skip-minute] [--tree DIR]
    .venv/bin/python bench/bench_idle.py --compare DIR --skip-minute

--tree DIR runs the stages from another checkout (PYTHONPATH=DIR), to measure
a change before it is made here; --compare DIR measures both, interleaved.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from jobs import config
from jobs.spool import state
from jobs.spool.files import write_json

STAGES = ("detect", "inspect", "download", "disconnect", "dashboard", "expire")
ROSTER = 300
EXTRA_FIRST, EXTRA = 5001, 600   # event.extra_devices: spares and swapped devices, never seen
MINUTE_STAGES = ("detect", "inspect", "download", "disconnect", "dashboard")  # expire runs hourly


def write_event(folder, kind, extra=EXTRA):
    if kind == "empty":
        (folder / "c.yaml").write_text("paths: {spool: spool, tracks: tracks, html: html, log: log/m.log}\n"
                                       "log: {console_level: ERROR}\n")
        return folder / "c.yaml"
    rows = ["Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,Craft Type,Status"]
    rows += [f"{1000 + d},{d},{d},2020-01-01,2099-12-31,F{d}X,First{d},Family{d},Sailboard,Pro"
             for d in range(1, ROSTER + 1)]
    (folder / "motions.csv").write_text("\n".join(rows) + "\n")
    extras = range(EXTRA_FIRST, EXTRA_FIRST + extra)
    (folder / "hosts").write_text("".join(f"10.10.10.10 motion-{d}\n" for d in [*range(1, ROSTER + 1), *extras]))
    listed = f"['{extras[0]}-{extras[-1]}']" if extra else "[]"
    (folder / "c.yaml").write_text(
        f"event: {{roster: motions.csv, timezone: Europe/London, extra_devices: {listed}}}\n"
        "paths: {spool: spool, tracks: tracks, html: html, log: log/m.log}\n"
        "network: {hosts_file: hosts}\nlog: {console_level: ERROR}\n")
    cfg = config.load(folder / "c.yaml")
    yesterday = time.time() - 86400
    (Path(cfg.paths.spool) / "state").mkdir(parents=True)
    for d in range(1, ROSTER + 1):
        doc = state.new(d)
        doc.update(status="disconnected", history=yesterday, since=yesterday + 3600, last_seen=yesterday + 3600,
                   info={"username": f"K{d}", "hardware": "Wireless Mini M10", "firmware_name":
                         "9009 Weymouth SW (3232)", "firmware_code": 3232, "battery": 80, "charging": False,
                         "storage": 10})
        for k in range(2):
            start = int((yesterday - 7200 + k * 3600) * 1000)
            day = time.strftime("%Y%m%d", time.localtime(start / 1000))
            file = f"/logs/{d:04d}_{k}.oao"
            doc["tracks"][file] = {"file": file, "name": f"F{d}X_{d}_{k}.oao", "day": day, "start": start,
                                   "end": start + 3_000_000, "duration": 3_000_000, "distance": 20_000_000,
                                   "best500": 9000, "size": 2_000_000, "entrant": str(1000 + d),
                                   "file_id": f"F{d}X", "status": "verified", "reason": None,
                                   "sha256": "0" * 64, "failures": 0, "verified_at": yesterday}
        write_json(state.path(cfg.paths.spool, d), doc, sync=False)
    return folder / "c.yaml"


def environment(tree):
    """Popen keywords that run `python -m jobs` from `tree` (its folder first on sys.path)."""
    if not tree:
        return {}
    return {"env": {**os.environ, "PYTHONPATH": str(tree)}, "cwd": str(tree)}


def once(cfg_path, runs, tree):
    rows = {}
    env = environment(tree)
    floors = {"python -c pass": [sys.executable, "-c", "pass"],
              "import the core (config, log, runner)": [sys.executable, "-c",
                                                         "import jobs.config, jobs.log, jobs.runner"]}
    for label, argv in floors.items():
        rows[label] = [common.run_child(argv, **env) for _ in range(runs)]
    for stage in STAGES:
        argv = common.stage_argv(cfg_path, stage, "--once")
        common.run_child(argv, stderr=subprocess.DEVNULL, **env)  # first run creates the folders
        rows[stage] = [common.run_child(argv, stderr=subprocess.DEVNULL, **env) for _ in range(runs)]
        failed = [r[2] for r in rows[stage] if r[2] != 0]
        if failed:
            raise SystemExit(f"{stage} --once exited {failed[0]}")
    print(f"  {'one run, nothing to do':<40} {'CPU s':<22} wall s")
    for label, results in rows.items():
        print(f"  {label:<40} {common.spread([r[1] for r in results], 3):<22} "
              f"{common.spread([r[0] for r in results], 3)}")


def compare(cfg_path, runs, tree):
    """--once CPU of this checkout and of `tree`, their runs interleaved (the machine's mood is shared)."""
    trees = {"this checkout": {}, str(tree): environment(tree)}
    print(f"  {'one run, nothing to do: CPU s':<32} " + "".join(f"{name:<24}" for name in trees))
    for stage in STAGES:
        argv = common.stage_argv(cfg_path, stage, "--once")
        results = {name: [] for name in trees}
        for name, env in trees.items():
            common.run_child(argv, stderr=subprocess.DEVNULL, **env)  # folders made, caches warm
        for _ in range(runs):
            for name, env in trees.items():
                results[name].append(common.run_child(argv, stderr=subprocess.DEVNULL, **env)[1])
        print(f"  {stage:<32} " + "".join(f"{common.spread(r, 3):<24}" for r in results.values()))


def minute(cfg_path, runs, tree, stages=MINUTE_STAGES):
    env = environment(tree)
    per_stage = {stage: [] for stage in stages}
    totals = []
    for _ in range(runs):
        children = {stage: common.Child(common.stage_argv(cfg_path, stage, "--for", "60"),
                                        stderr=subprocess.DEVNULL, **env) for stage in stages}
        for child in children.values():
            child.wait(timeout=180)
        for stage, child in children.items():
            per_stage[stage].append(child.cpu)
        totals.append(sum(child.cpu for child in children.values()))
    print(f"  {'60 s of the crontab (--for 60)':<40} CPU s per minute")
    for stage, values in per_stage.items():
        print(f"  {stage:<40} {common.spread(values, 2)}")
    print(f"  {'all of them':<40} {common.spread(totals, 2)}  "
          f"= {statistics.median(totals) / 60 * 100:.1f} % of one CPU; expire adds one --once an hour")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minutes", type=int, default=5, help="runs of the one-minute figure")
    parser.add_argument("--skip-minute", action="store_true")
    parser.add_argument("--events", nargs="*", default=["empty", "quiet"])
    parser.add_argument("--tree", help="a checkout to run the stages from instead of this one")
    parser.add_argument("--stages", nargs="*", default=list(MINUTE_STAGES), help="stages of the one-minute figure")
    parser.add_argument("--skip-once", action="store_true")
    parser.add_argument("--compare", help="a checkout whose --once figures are measured beside this one's")
    args = parser.parse_args()
    common.header(f"idle cost: median (min–max) of {args.runs} runs"
                  + (f"; stages from {args.tree}" if args.tree else ""))
    for kind in args.events:
        with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
            cfg_path = write_event(Path(tmp), kind)
            print(f"\n{kind} event")
            if args.compare:
                compare(cfg_path, args.runs, args.compare)
            elif not args.skip_once:
                once(cfg_path, args.runs, args.tree)
            if not args.skip_minute:
                minute(cfg_path, args.minutes, args.tree, args.stages)
    print(f"\n  at end: {common.load()}")


if __name__ == "__main__":
    main()
