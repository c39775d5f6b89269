"""Scale: 300 devices, 900 tracks of 2 MB over loopback at full speed.

Every device is there from the start with 3 tracks and no throttle, so the
machine, not the WiFi, is the limit. The stages run as cron runs them, each
its own process (`--for`), with the shipped defaults (intervals, threads,
timeouts). Figures: the wall time from the fleet's start to the last track
verified (the state's verified_at), the CPU of each process per GB verified,
and the peak RSS of each process (VmHWM, read while it runs). The
fleet runs in this process: its CPU is shown apart (serving 1.8 GB of HTTP).

    .venv/bin/python bench/bench_scale.py [--devices 300] [--tracks 3] [--runs 3]
"""

import argparse
import datetime as dt
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import common
from jobs import config
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet, TrackSpec

STAGES = ("detect", "inspect", "download", "disconnect", "dashboard")
SIZE = 2_000_000
TZ = "Europe/London"


def fleet_specs(devices, tracks):
    nine = dt.datetime.now(ZoneInfo(TZ)).replace(hour=9, minute=0, second=0, microsecond=0)
    return [DeviceSpec(id=1000 + n, arrive=0.0,
                       tracks=[TrackSpec(start=nine + dt.timedelta(minutes=90 * k), duration_s=3600, size=SIZE,
                                         best500_knots=15.0) for k in range(tracks)])
            for n in range(devices)]


def shipped(run):
    net = config.DEFAULTS["network"]
    return {"paths.spool": str(run / "spool"), "paths.tracks": str(run / "tracks"),
            "paths.html": str(run / "html"), "paths.log": str(run / "motion-server.log"),
            "intervals": dict(config.DEFAULTS["intervals"]),
            "network": {key: net[key] for key in ("probe_timeout", "json_connect_timeout", "json_read_timeout",
                                                  "track_connect_timeout", "track_read_timeout")},
            "disconnect.grace_s": config.DEFAULTS["disconnect"]["grace_s"], "log.console_level": "ERROR"}


def verified_on_dashboard(html):
    try:
        return json.loads((Path(html) / "status.json").read_text())["totals"]["tracks_verified"]
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def one_run(base, specs, timeout_s=900):
    run = Path(tempfile.mkdtemp(dir=base, prefix="run-"))
    expected = sum(len(s.tracks) for s in specs)
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    with Fleet(specs, folder=base / "fleet", timezone=TZ) as fleet:
        t0 = time.time() - (time.monotonic() - fleet.started)
        cfg_path = fleet.write_config(run / "motion-server.yaml", **shipped(run))
        cfg = config.load(cfg_path)
        children = {stage: common.Child(common.stage_argv(cfg_path, stage, "--for", "3600"),
                                        stderr=open(run / f"{stage}.stderr", "wb")) for stage in STAGES}
        while verified_on_dashboard(cfg.paths.html) < expected and time.time() - t0 < timeout_s:
            for child in children.values():
                child.sample()
            time.sleep(0.5)
        for child in children.values():
            child.stop()
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    docs = [state.read(cfg.paths.spool, s.id) for s in specs]
    verified = [t for doc in docs for t in doc["tracks"].values() if t["status"] == "verified"]
    gigabytes = sum(t["size"] for t in verified) / 1e9
    figures = {"verified": len(verified), "expected": expected,
               "wall": max(t["verified_at"] for t in verified) - t0 if verified else None,
               "cpu_per_gb": {stage: child.cpu / gigabytes for stage, child in children.items()},
               "rss": {stage: child.peak_mb for stage, child in children.items()},
               "fleet_cpu_per_gb": ((own_after.ru_utime + own_after.ru_stime)
                                    - (own_before.ru_utime + own_before.ru_stime)) / gigabytes}
    figures["cpu_per_gb"]["all stages"] = sum(figures["cpu_per_gb"].values())
    for stage, child in children.items():
        if child.exit != 0:
            raise SystemExit(f"{stage} exited {child.exit}; see {run}")
    shutil.rmtree(run)
    return figures


def prepare(base, specs):
    resting = [DeviceSpec(**{**spec.__dict__, "arrive": None}) for spec in specs]
    began = time.monotonic()
    with Fleet(resting, folder=base / "fleet", timezone=TZ) as fleet:
        for spec in specs:
            for log in fleet.logs(spec.id):
                fleet.track_path(spec.id, log["file"])
    return time.monotonic() - began


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--tracks", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    specs = fleet_specs(args.devices, args.tracks)
    total = args.devices * args.tracks * SIZE
    common.header(f"scale: {args.devices} devices, {args.devices * args.tracks} tracks of {SIZE / 1e6:.0f} MB "
                  f"({total / 1e9:.2f} GB) over loopback, unthrottled; shipped defaults "
                  f"(threads.download {config.DEFAULTS['threads']['download']}); median (min–max) of {args.runs} runs")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        base = Path(folder)
        print(f"  tracks generated in {prepare(base, specs):.0f} s (before the clock starts)", flush=True)
        runs = [one_run(base, specs) for _ in range(args.runs)]
    verified = ", ".join(f"{r['verified']}/{r['expected']}" for r in runs)
    print(f"  tracks verified: {verified}")
    print(f"  wall time to the last track verified: {common.spread([r['wall'] for r in runs], 1)} s "
          f"= {common.spread([total / 1e6 / r['wall'] for r in runs], 1)} MB/s")
    print(f"  {'process':<14} {'CPU s per GB':<22} peak RSS MB")
    for stage in (*STAGES, "all stages"):
        rss = common.spread([r["rss"][stage] for r in runs], 0) if stage in STAGES else ""
        print(f"  {stage:<14} {common.spread([r['cpu_per_gb'][stage] for r in runs], 1):<22} {rss}")
    print(f"  {'(the fleet)':<14} {common.spread([r['fleet_cpu_per_gb'] for r in runs], 1):<22} "
          f"(this process: the simulated devices' servers)")
    print(f"  at end: {common.load()}")


if __name__ == "__main__":
    main()
