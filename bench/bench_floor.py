"""What the download's CPU is made of: the floor under a target per GB of a session.

A session's download CPU is (roughly) a run's start + its bytes x the checks'
cost per GB + its tracks x a track's own cost. This measures each part alone:

1. The start: CPU of a fresh `python -c "import jobs.track.fetch"` (what a download
   run imports once it has a device: requests, numpy), beside `import jobs.cli`
   (what every stage run imports).
2. The checks, one thread, no network: sha256 alone, then TrackCheck (sha256 +
   frame check) without and with the fixes gathered for the figures (their
   computation is a track's own cost, bench_figures.py), of the real tracks in
   $MOTION_RECORDINGS (bench/common.py; a synthetic track of jobs.sim when there
   are none), fed in 512 KB pieces as a download reads them, after a first pass
   that is not counted (it cost up to 2x a later one).
3. A track's own cost: 40 simulated devices x 2 tracks of 32 KB at 4 MiB/s,
   `download --for` at the shipped interval with 1 and 16 workers; (the run's
   CPU - the start) / 80. The bytes are 2.6 MB: their checks are in the noise.

Then the floor of the bench_green session (194 MB, 74 tracks), from these.

    .venv/bin/python bench/bench_floor.py [--runs 5]
"""

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import bench_download
import common
from jobs.track import figures, integrity
from jobs.sim import DeviceSpec, Fleet, TrackSpec

PIECE = 512 * 1024
SESSION_BYTES, SESSION_TRACKS = 194e6, 74   # bench_green's 40-device session


def import_cpu(statement, runs):
    """CPU seconds of a fresh interpreter running `statement`, each run."""
    took = []
    for _ in range(runs):
        _, cpu, status = common.run_child([*common.MOTION_SERVER[:1], "-c", statement], cwd=common.REPO)
        if status != 0:
            raise SystemExit(f"{statement!r} failed")
        took.append(cpu)
    return took


def tracks():
    return [path.read_bytes() for path in sorted(common.recordings())] or [common.synthetic_track(2_000_000, 3600)]


def check(datas, with_figures):
    for data in datas:
        taking = integrity.TrackCheck(figures=figures.SPEED_ACCURACY_MAX if with_figures else None)
        view = memoryview(data)   # the checks' cost, not that of copying pieces
        for at in range(0, len(data), PIECE):
            taking.take(view[at:at + PIECE])
        taking.finish(len(data))


def per_gb(call, size, runs):
    call()   # warm: the first pass pays for numpy's first allocations and the caches
    took = []
    for _ in range(runs):
        started = time.process_time()
        call()
        took.append((time.process_time() - started) / size * 1e9)
    return took


def track_cost(folder, workers, runs, start):
    """ms of CPU a track, with its share of its device's, at `workers` workers."""
    specs = [DeviceSpec(id=300 + n, rate=4 * 2**20, tracks=[TrackSpec(size=32768) for _ in range(2)])
             for n in range(40)]
    with Fleet(specs, folder=folder / f"tiny-{workers}") as fleet:
        bench_download.prepare(fleet)
        cpus = [bench_download.run_stage(fleet, folder, workers, cron=True)[1] for _ in range(runs)]
    return [(cpu - start) / 80 * 1e3 for cpu in cpus]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    common.header(f"the floor of the download's CPU, median (min–max) of {args.runs}")
    base, full = import_cpu("import jobs.cli", args.runs), import_cpu("import jobs.track.fetch", args.runs)
    start = statistics.median(full)
    print(f"  start: import jobs.cli {common.spread(base, 2, ' s')}; import jobs.track.fetch {common.spread(full, 2, ' s')}")
    datas = tracks()
    size = sum(map(len, datas))
    sha = per_gb(lambda: [hashlib.sha256(data).digest() for data in datas], size, args.runs)
    plain = per_gb(lambda: check(datas, False), size, args.runs)
    figured = per_gb(lambda: check(datas, True), size, args.runs)
    print(f"  checks, one thread, {size / 1e6:.1f} MB in {PIECE // 1024} KB pieces: "
          f"sha256 {common.spread(sha, 2, ' s/GB')}; + frame check {common.spread(plain, 2, ' s/GB')}; "
          f"+ fixes gathered {common.spread(figured, 2, ' s/GB')}")
    with tempfile.TemporaryDirectory() as folder:
        costs = {workers: track_cost(Path(folder), workers, args.runs, start) for workers in (1, 16)}
    for workers, cost in costs.items():
        print(f"  a track's own cost, {workers:2d} worker(s): {common.spread(cost, 1, ' ms')}")
    checks, track = statistics.median(figured), statistics.median(costs[1]) / 1e3
    floor = start + SESSION_BYTES / 1e9 * checks + SESSION_TRACKS * track
    print(f"  the session ({SESSION_BYTES / 1e6:.0f} MB, {SESSION_TRACKS} tracks) cannot cost less than "
          f"{start:.2f} + {SESSION_BYTES / 1e9 * checks:.2f} + {SESSION_TRACKS * track:.2f} = {floor:.2f} s "
          f"= {floor / (SESSION_BYTES / 1e9):.1f} s/GB, before the kernel's copies and the threads' switches")
    print(f"  at end: {common.load()}")


if __name__ == "__main__":
    main()
