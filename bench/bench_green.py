"""Time to green: from a device joining the WiFi to its tracks verified and the dashboard green.

The session of issues 10 and 12: 40 simulated devices arriving one after the
other over 60 s, each sending at 400 KB/s, each with 1-3 tracks of 1-4 MB
(seeded: the same fleet every run), and 4 of them leaving for good at 90 s
(each chosen so that it could be served in time: its arrival + bytes/rate is
at most 75 s). The stages run as cron runs them, each its own process
(`motion-server <stage> --for ...`), with the shipped defaults (intervals,
timeouts) except threads.download, which is swept.

Per device, from the spool's own records (queue items carry their enqueue
time, finished items their finish time in the file name), the state's
verified_at, the fleet's access log and status.json's mtime:

    detect     arrival (fleet schedule) -> connected (the inspect item's enqueue time)
    inspect    connected -> handed to download (the download item's enqueue time)
    wait       handed on -> first byte (access log: end time - bytes / rate)
    download   handed on -> last track verified (wait + transfer); ideal bytes / rate
    dashboard  last track verified -> status.json first shows the device completed

and for the session: every wanted track verified (leavers included), the time
to the last one against the parallel ideal, max over devices of (arrival +
bytes / rate), and the download process's CPU per GB and peak RSS.

    .venv/bin/python bench/bench_green.py                # the shipped defaults, 5 runs
    .venv/bin/python bench/bench_green.py --workers 4 8 16 32 64 --runs 3   # the sweep of issue 12
    .venv/bin/python bench/bench_green.py --rate 1.0 --segment 1460          # a real WiFi's segments
"""

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import common
from jobs import config
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet, TrackSpec

DEVICES = 40
ARRIVE_OVER_S = 60.0
RATE = 400_000
LEAVERS = (5, 15, 25, 33)        # fleet positions of the devices that leave
LEAVE_AT_S = 90.0
LEAVER_IDEAL_MAX_S = 75.0        # a leaver can be served in time: arrival + bytes/rate at most this
STAGES = ("detect", "inspect", "download", "disconnect", "dashboard")
TZ = "Europe/London"


def session(seed=12, scale=1.0, segment=None):
    """The fleet: DeviceSpecs, the same for every run and every worker count.

    `scale` K > 1 divides every time (arrivals, leave, sizes / rate) by K by
    dividing sizes by K (rates stay 400 KB/s): a quick look, not the figure.
    `segment`: every device writes its tracks that many bytes at a time (1460:
    a TCP segment a write, as a WiFi delivers them) rather than rate / 20.
    """
    rng = random.Random(seed)
    nine = dt.datetime.now(ZoneInfo(TZ)).replace(hour=9, minute=0, second=0, microsecond=0)
    specs = []
    for n in range(DEVICES):
        sizes = [rng.randrange(1_000_000, 4_000_001, 2) for _ in range(rng.randint(1, 3))]
        arrive = round(ARRIVE_OVER_S * n / (DEVICES - 1) / scale, 2)
        leave = None
        if n in LEAVERS:
            leave = LEAVE_AT_S / scale
            while len(sizes) > 1 and arrive + sum(sizes) / scale / RATE > LEAVER_IDEAL_MAX_S / scale:
                sizes.pop()
        tracks = [TrackSpec(start=nine + dt.timedelta(minutes=90 * k), duration_s=3600,
                            size=int(size / scale) // 2 * 2, best500_knots=15.0) for k, size in enumerate(sizes)]
        specs.append(DeviceSpec(id=101 + n, tracks=tracks, rate=RATE, arrive=arrive, leave=leave,
                                faults={"segment": segment} if segment else {}))
    return specs


def shipped_defaults(run, workers):
    """Overrides that undo the sim's short test intervals: the shipped values, but the worker count."""
    net = config.DEFAULTS["network"]
    return {
        "paths.spool": str(run / "spool"), "paths.tracks": str(run / "tracks"),
        "paths.html": str(run / "html"), "paths.log": str(run / "motion-server.log"),
        "intervals": dict(config.DEFAULTS["intervals"]),
        "network": {key: net[key] for key in ("probe_timeout", "json_connect_timeout", "json_read_timeout",
                                              "track_connect_timeout", "track_read_timeout")},
        "disconnect.grace_s": config.DEFAULTS["disconnect"]["grace_s"],
        "threads.download": workers,
        "log.console_level": "ERROR",
    }


class Dashboard:
    """Watches status.json: the first mtime at which each device shows completed."""

    def __init__(self, html):
        self.path = Path(html) / "status.json"
        self.seen_mtime = None
        self.green = {}

    def look(self):
        try:
            with open(self.path, "rb") as f:
                mtime = os.fstat(f.fileno()).st_mtime
                if mtime == self.seen_mtime:
                    return
                doc = json.loads(f.read())
        except (FileNotFoundError, ValueError):
            return
        self.seen_mtime = mtime
        for key, device in doc.get("devices", {}).items():
            if device.get("status") == "completed":
                self.green.setdefault(int(key), mtime)


def done_records(spool, queue):
    """{device: [(enqueued, finished)]} from <spool>/done/<queue>/<day>/<device>.<ns>.json, oldest first."""
    found = {}
    for path in (Path(spool) / "done" / queue).glob("*/*.json"):
        device, ns = path.name.split(".")[:2]
        item = json.loads(path.read_text())
        found.setdefault(int(device), []).append((item.get("enqueued"), int(ns) / 1e9))
    return {device: sorted(records, key=lambda r: r[1]) for device, records in found.items()}


def first_bytes(fleet, t0):
    """{device: time of the first track byte}, from the access log (end time - bytes / rate)."""
    starts = {}
    for access in fleet.accesses(settle=0):
        if access.get("time", 0) < t0 or not str(access.get("path", "")).startswith("/logs/"):
            continue
        started = access["time"] - access["bytes"] / RATE
        device = access["device"]
        starts[device] = min(starts.get(device, started), started)
    return starts


def one_run(base, specs, workers, timeout_s, foreground=False):
    """One session from a fresh spool; per-device rows and the session's figures."""
    run = Path(tempfile.mkdtemp(dir=base, prefix=f"w{workers}-"))
    fleet = Fleet(specs, folder=base / "fleet", timezone=TZ)
    (base / "fleet" / "sim" / "access.jsonl").unlink(missing_ok=True)
    load_before = common.load()
    with fleet:
        t0 = time.time() - (time.monotonic() - fleet.started)   # the fleet's time zero, wall clock
        cfg_path = fleet.write_config(run / "motion-server.yaml", **shipped_defaults(run, workers))
        cfg = config.load(cfg_path)
        if foreground:  # `motion-server run`: every stage in one process
            children = {"run": common.Child([*common.MOTION_SERVER, "--config", str(cfg_path), "run", "--no-serve"],
                                            stderr=open(run / "run.stderr", "wb"))}
        else:
            children = {stage: common.Child(common.stage_argv(cfg_path, stage, "--for", "3600"),
                                            stderr=open(run / f"{stage}.stderr", "wb"))
                        for stage in STAGES}
        dashboard = Dashboard(cfg.paths.html)
        leavers = {s.id for s in specs if s.leave is not None}
        stayers = {s.id for s in specs} - leavers
        leave_at = max((s.leave for s in specs if s.leave is not None), default=0)
        next_sample = 0
        while True:
            dashboard.look()
            now = time.time() - t0
            if now >= next_sample:
                for child in children.values():
                    child.sample()
                next_sample = now + 0.5
            green = set(dashboard.green)
            if green >= stayers | leavers:
                break
            if green >= stayers and now > leave_at + 20:
                break  # the leavers left; what they did not send by then never comes
            if now > timeout_s:
                break
            time.sleep(0.1)
        for child in children.values():
            child.stop()
        load_after = common.load()
        starts = first_bytes(fleet, t0)
    rows, figures = analyse(cfg, specs, t0, dashboard.green, starts, children)
    figures.update(load=f"{load_before} -> {load_after}")
    for stage, child in children.items():
        if child.exit != 0:
            raise SystemExit(f"{stage} exited {child.exit}; see {run}")
    shutil.rmtree(run)
    return rows, figures


def analyse(cfg, specs, t0, green, starts, children):
    inspected = done_records(cfg.paths.spool, "inspect")
    handed = done_records(cfg.paths.spool, "download")
    rows = []
    wanted = verified = 0
    leavers_in = 0
    last_verified = t0
    for spec in specs:
        doc = state.read(cfg.paths.spool, spec.id)
        tracks = list(doc["tracks"].values())
        wanted += len(spec.tracks)
        ok = [t for t in tracks if t["status"] == "verified"]
        verified += len(ok)
        complete = len(ok) == len(spec.tracks)
        if spec.leave is not None and complete:
            leavers_in += 1
        arrival = t0 + spec.arrive
        row = {"device": spec.id, "arrive": spec.arrive, "leaver": spec.leave is not None, "complete": complete,
               "bytes": sum(t.size for t in spec.tracks)}
        row["ideal"] = row["bytes"] / RATE
        connected = inspected[spec.id][0][0] if spec.id in inspected else None
        handed_on = handed[spec.id][0][0] if spec.id in handed else None
        if connected is not None:
            row["detect"] = connected - arrival
            if handed_on is not None:
                row["inspect"] = handed_on - connected
        if handed_on is not None and spec.id in starts:
            row["wait"] = max(0.0, starts[spec.id] - handed_on)
        if complete:
            done = max(t["verified_at"] for t in ok)
            last_verified = max(last_verified, done)
            if handed_on is not None:
                row["download"] = done - handed_on
                row["ratio"] = row["download"] / row["ideal"]
            if spec.id in green:
                row["dashboard"] = green[spec.id] - done
                row["total"] = green[spec.id] - arrival
                row["over"] = row["total"] - row["ideal"]  # what the server adds to the transfer itself
        rows.append(row)
    ideal = max(s.arrive + sum(t.size for t in s.tracks) / RATE for s in specs)
    total_bytes = sum(r["bytes"] for r in rows if r["complete"])
    download = children.get("download") or children["run"]
    figures = {
        "verified": verified, "wanted": wanted, "leavers_in": leavers_in,
        "leavers": sum(1 for s in specs if s.leave is not None),
        "all_in": last_verified - t0, "ideal": ideal, "ratio": (last_verified - t0) / ideal,
        "cpu_per_gb": download.cpu / (total_bytes / 1e9) if total_bytes else None,
        "download_cpu": download.cpu, "download_rss": download.peak_mb,
        "rss": {stage: child.peak_mb for stage, child in children.items()},
        "cpu": {stage: child.cpu for stage, child in children.items()},
    }
    for key in ("detect", "inspect", "wait", "download", "ratio", "dashboard", "total", "over"):
        values = [r[key] for r in rows if key in r]
        figures[f"{key}_median"] = statistics.median(values) if values else None
        figures[f"{key}_p95"] = common.percentile(values, 95)
        figures[f"{key}_max"] = max(values) if values else None
    return rows, figures


def prepare(base, specs):
    """Generate every synthetic track once, before any clock starts (the cache is reused)."""
    resting = [DeviceSpec(**{**spec.__dict__, "arrive": None, "leave": None}) for spec in specs]
    with Fleet(resting, folder=base / "fleet", timezone=TZ) as fleet:
        for spec in specs:
            for log in fleet.logs(spec.id):
                fleet.track_path(spec.id, log["file"])


def column(runs, key, digits=1):
    values = [f[key] for f in runs if f.get(key) is not None]
    return common.spread(values, digits) if values else "–"


def report(workers, runs):
    n = len(runs)
    print(f"\nthreads.download = {workers}: {n} run(s); each figure median (min–max) over the runs")
    verified = ", ".join(f"{f['verified']}/{f['wanted']}" for f in runs)
    leavers = ", ".join(f"{f['leavers_in']}/{f['leavers']}" for f in runs)
    print(f"  tracks verified          {verified}   leavers served: {leavers}")
    print(f"  all tracks in            {column(runs, 'all_in')} s; parallel ideal {runs[0]['ideal']:.1f} s; "
          f"ratio {column(runs, 'ratio', 2)}")
    print(f"  {'per device (s)':<24} {'median':<22} {'p95':<22} max")
    for key, label in (("detect", "detect"), ("inspect", "inspect"), ("wait", "wait for first byte"),
                       ("download", "download (wait+transfer)"), ("ratio", "download / ideal (x)"),
                       ("dashboard", "dashboard"), ("total", "arrival -> green"),
                       ("over", "green - bytes / rate")):
        print(f"  {label:<24} {column(runs, key + '_median'):<22} {column(runs, key + '_p95'):<22} "
              f"{column(runs, key + '_max')}")
    which = "download process" if "download" in runs[0]["cpu"] else "motion-server run"
    print(f"  {which:<24} CPU {column(runs, 'download_cpu')} s, "
          f"{column(runs, 'cpu_per_gb')} s/GB; peak RSS {column(runs, 'download_rss')} MB")
    others = ", ".join(f"{stage} {statistics.median(f['cpu'][stage] for f in runs):.1f} s / "
                       f"{statistics.median(f['rss'][stage] for f in runs):.0f} MB"
                       for stage in runs[0]["cpu"] if stage != "download")
    if others:
        print(f"  {'other processes':<24} (CPU / peak RSS) {others}")
    print(f"  load                     {'; '.join(f['load'] for f in runs)}", flush=True)


def main():
    global RATE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="*", default=[config.DEFAULTS["threads"]["download"]],
                        help="threads.download values to run (default: the shipped one); the sweep: 4 8 16 32 64")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--rows", action="store_true", help="print every device of the last run")
    parser.add_argument("--foreground", action="store_true",
                        help="one `motion-server run` process instead of a process per stage")
    parser.add_argument("--rate", type=float, default=RATE / 2**20, metavar="MIB_S",
                        help="each device's transfer rate, MiB/s (default 400 KB/s; a real device ~0.7)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="K > 1: times and sizes / K, for a quick look (not the figure)")
    parser.add_argument("--segment", type=int, metavar="BYTES",
                        help="devices write this many bytes at a time (1460: a TCP segment, as over WiFi)")
    args = parser.parse_args()
    RATE = round(args.rate * 2**20)
    specs = session(args.seed, args.scale, args.segment)
    common.header(f"time to green: {DEVICES} devices arriving over {ARRIVE_OVER_S:.0f} s at {RATE // 1000} KB/s, "
                  f"{sum(len(s.tracks) for s in specs)} tracks of 1-4 MB "
                  f"({sum(t.size for s in specs for t in s.tracks) / 1e6:.0f} MB), "
                  f"{len(LEAVERS)} leaving for good at {LEAVE_AT_S:.0f} s; shipped intervals "
                  f"(detect {config.DEFAULTS['intervals']['detect']:g} s); "
                  + ("one `motion-server run` process" if args.foreground else "stages as separate processes")
                  + (f"; devices write {args.segment} B at a time" if args.segment else ""))
    with tempfile.TemporaryDirectory(prefix="bench-green-") as folder:
        base = Path(folder)
        prepare(base, specs)
        for workers in args.workers:
            runs = []
            for _ in range(args.runs):
                rows, figures = one_run(base, specs, workers, timeout_s=300, foreground=args.foreground)
                runs.append(figures)
            report(workers, runs)
            if args.rows:
                for row in rows:
                    print("   ", {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()})


if __name__ == "__main__":
    main()
