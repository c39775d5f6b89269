"""Download throughput against the ideal, and the download process's peak memory.

1. Throughput: 40 simulated devices, each 2 tracks of 2 MB sent at 400 KB/s,
   all queued at once. `motion-server download --once` runs as a subprocess
   with threads.download = 4 and 16; the wall time runs from its start until
   the last track is verified (read from the state files). The ideal is
   total bytes / (workers x rate). Because one worker serves one device start
   to finish, ceil(40 / workers) rounds of one device's time is the best that
   any schedule of whole devices can do: shown too ("whole-device ideal").

2. Memory: 4 devices with one 50 MB track each, 4 workers, unthrottled: peak
   RSS of the download process (VmHWM from /proc/<pid>/status; wait4's
   ru_maxrss would count this process's RSS at fork). Target: under 80 MB.

`--scale K` multiplies the rate by K and divides the sizes by K (K=2 by
default: 800 KB/s and 1 MB tracks), so a run fits in the time a shared
machine allows; the ratio to the ideal is what compares. Each figure is the
median of --runs runs (min and max beside it).

    .venv/bin/python bench/bench_download.py [--scale 2] [--runs 3] [--skip-memory]

3. `--marginal MIB_S`: the CPU per GB that grows with the bytes, at that
   rate per device: the throughput fleet with tracks of 2 MB / scale and 4 x
   that, (CPU difference) / (bytes difference), run by run.

    .venv/bin/python bench/bench_download.py --marginal 1.0 --scale 1 --workers 16 --runs 3
"""

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common
from jobs import config, spool
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet, TrackSpec

DEVICES = 40
TRACKS = 2
TRACK_SIZE = 2_000_000
RATE = 400_000
WORKERS = (4, 16)
BIG_TRACK = 50_000_000
BIG_DEVICES = 4
RSS_TARGET_MB = 80


def queue_fleet(cfg, fleet):
    """What inspect leaves behind: every device pending with every track wanted."""
    for device in fleet.devices:
        with state.update(cfg.paths.spool, device) as doc:
            state.set_status(doc, "pending", address=fleet.address(device))
            for n, log in enumerate(fleet.logs(device)):
                name = f"S{device}X_{device}_20260716_{100000 + n}.oao"   # as naming.NAME wants
                doc["tracks"][log["file"]] = {
                    "file": log["file"], "name": name, "day": "20260716", "start": log["start_date"],
                    "end": log["end_date"], "duration": log["duration"], "distance": log["distance"],
                    "best500": log["500m_best"], "size": log["size"], "entrant": None, "file_id": None,
                    "status": "wanted", "reason": None, "sha256": None, "failures": 0, "verified_at": None}
        spool.enqueue(cfg.paths.spool, "download", device)


def all_verified(cfg, devices):
    for device in devices:
        tracks = state.read(cfg.paths.spool, device)["tracks"].values()
        if not tracks or any(t["status"] != "verified" for t in tracks):
            return False
    return True


def run_stage(fleet, folder, workers, cron=False):
    """One download run on a fresh spool: (seconds to all verified, CPU s, peak RSS MB).

    cron=False: `download --once` (the sim's short test interval); cron=True:
    `download --for 600` with the shipped intervals.download, as cron runs it.
    """
    run = Path(tempfile.mkdtemp(dir=folder))
    overrides = {"threads.download": workers, "paths.spool": str(run / "spool"), "paths.tracks": str(run / "tracks"),
                 "paths.log": str(run / "motion-server.log"), "log.console_level": "ERROR",
                 "network.track_read_timeout": 30.0}
    if cron:
        overrides["intervals.download"] = config.DEFAULTS["intervals"]["download"]
    cfg_path = fleet.write_config(run / "motion-server.yaml", **overrides)
    cfg = config.load(cfg_path)
    queue_fleet(cfg, fleet)
    started = time.monotonic()
    when = ["--for", "600"] if cron else ["--once"]
    job = common.Child(common.stage_argv(cfg_path, "download", *when))
    done_at = None
    while not job.poll():
        if done_at is None and all_verified(cfg, fleet.devices):
            done_at = time.monotonic() - started
            if cron:
                job.stop()  # a cron run would go on waiting for work until its deadline
        time.sleep(0.05)
    if done_at is None and all_verified(cfg, fleet.devices):
        done_at = time.monotonic() - started
    if job.exit != 0 or done_at is None:
        sys.exit(f"download run failed (exit {job.exit}); see {cfg.paths.log}")
    shutil.rmtree(run)
    return done_at, job.cpu, job.peak_mb


def spread(values, unit, digits=1):
    return common.spread(values, digits, unit)


def prepare(fleet):
    for device in fleet.devices:  # generate every synthetic track before the clock starts
        for log in fleet.logs(device):
            fleet.track_path(device, log["file"])


def throughput(folder, scale, runs, cron, worker_counts):
    rate, size = RATE * scale, int(TRACK_SIZE / scale)
    specs = [DeviceSpec(id=100 + n, rate=rate, tracks=[TrackSpec(size=size) for _ in range(TRACKS)])
             for n in range(DEVICES)]
    with Fleet(specs, folder=folder / "fleet") as fleet:
        prepare(fleet)
        total = sum(log["size"] for d in fleet.devices for log in fleet.logs(d))
        how = "download --for, shipped interval" if cron else "download --once"
        print(f"throughput: {DEVICES} devices x {TRACKS} tracks of {size / 1e6:.2f} MB at {rate / 1e3:.0f} KB/s "
              f"({total / 1e6:.0f} MB), {how}, median of {runs}")
        for workers in worker_counts:
            ideal = total / (workers * rate)
            whole = math.ceil(DEVICES / workers) * (total / DEVICES) / rate
            times, cpus, peaks = [], [], []
            for _ in range(runs):
                seconds, cpu, peak = run_stage(fleet, folder, workers, cron)
                times.append(seconds)
                cpus.append(cpu / (total / 1e9))
                peaks.append(peak)
            median = statistics.median(times)
            print(f"  {workers:2d} workers: {spread(times, 's')}; ideal {ideal:.1f} s -> {median / ideal:.2f}x; "
                  f"whole-device ideal {whole:.1f} s -> {median / whole:.2f}x; "
                  f"CPU {spread(cpus, 's/GB')}; peak RSS {spread(peaks, 'MB')}")


def marginal(folder, rate, size, runs, workers):
    """CPU per GB that grows with the bytes: the same fleet with tracks of `size`
    and of 4 x `size` at the same rate; (CPU difference) / (bytes difference)
    leaves out what a run, a device and a track cost whatever their size. Runs
    as cron does (`download --for`, the shipped interval), stopped once all is in."""
    cpus, totals, walls = [], [], []
    for track_size in (size, 4 * size):
        specs = [DeviceSpec(id=300 + n, rate=rate, tracks=[TrackSpec(size=track_size) for _ in range(TRACKS)])
                 for n in range(DEVICES)]
        with Fleet(specs, folder=folder / f"marginal-{track_size}") as fleet:
            prepare(fleet)
            totals.append(sum(log["size"] for d in fleet.devices for log in fleet.logs(d)))
            # the shipped interval: the sim's short one would add a step every 0.2 s
            # to the longer run and count it as CPU per byte
            measured = [run_stage(fleet, folder, workers, cron=True) for _ in range(runs)]
            cpus.append([cpu for _, cpu, _ in measured])
            # whole devices: ceil(devices / workers) rounds of one device's bytes / rate
            ideal = math.ceil(DEVICES / workers) * TRACKS * track_size / rate
            walls.append([seconds / ideal for seconds, _, _ in measured])
    slopes = [(large - small) / ((totals[1] - totals[0]) / 1e9) for small, large in zip(*cpus)]
    print(f"marginal: {DEVICES} devices x {TRACKS} tracks of {size / 1e6:.1f} and {4 * size / 1e6:.1f} MB at "
          f"{rate / 1e3:.0f} KB/s, {workers} workers, download --for at the shipped interval, run by run")
    print(f"  whole run CPU: {spread(cpus[0], 's')} for {totals[0] / 1e6:.0f} MB "
          f"({spread([c / (totals[0] / 1e9) for c in cpus[0]], 's/GB')}); "
          f"{spread(cpus[1], 's')} for {totals[1] / 1e6:.0f} MB "
          f"({spread([c / (totals[1] / 1e9) for c in cpus[1]], 's/GB')})")
    print(f"  CPU per GB more: {spread(slopes, 's/GB')}")
    print(f"  all in, ÷ the whole-device ideal: {spread(walls[0], '×', 2)} and {spread(walls[1], '×', 2)}")


def memory(folder, scale, runs):
    size = int(BIG_TRACK / scale)
    specs = [DeviceSpec(id=200 + n, tracks=[TrackSpec(size=size, duration_s=36000)]) for n in range(BIG_DEVICES)]
    with Fleet(specs, folder=folder / "big") as fleet:
        prepare(fleet)
        peaks, times, cpus = [], [], []
        for _ in range(runs):
            seconds, cpu, peak = run_stage(fleet, folder, BIG_DEVICES)
            peaks.append(peak)
            times.append(seconds)
            cpus.append(cpu / (size * BIG_DEVICES / 1e9))
        verdict = "under" if statistics.median(peaks) < RSS_TARGET_MB else "OVER"
        print(f"memory: {BIG_DEVICES} x {size / 1e6:.0f} MB tracks, {BIG_DEVICES} workers, unthrottled: "
              f"peak RSS {spread(peaks, 'MB')} ({verdict} the {RSS_TARGET_MB} MB target); "
              f"all verified in {spread(times, 's')}; CPU {spread(cpus, 's/GB')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=2.0, help="rate x K, sizes / K (default 2)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--cron", action="store_true",
                        help="run `download --for` at the shipped interval instead of `--once`")
    parser.add_argument("--workers", type=int, nargs="*", default=list(WORKERS))
    parser.add_argument("--marginal", type=float, metavar="MIB_S",
                        help="only the CPU per GB more, at this rate per device (tracks of 2 MB / scale and 4x)")
    args = parser.parse_args()
    common.header("download throughput and memory")
    if args.marginal:
        with tempfile.TemporaryDirectory(prefix="bench-download-") as folder:
            marginal(Path(folder), round(args.marginal * 2**20), int(TRACK_SIZE / args.scale), args.runs,
                     args.workers[-1])
        return
    with tempfile.TemporaryDirectory(prefix="bench-download-") as folder:
        if not args.skip_throughput:
            throughput(Path(folder), args.scale, args.runs, args.cron, args.workers)
        if not args.skip_memory:
            memory(Path(folder), 1.0, args.runs)


if __name__ == "__main__":
    main()
