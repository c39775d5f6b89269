"""CPU per GB of computing a track's figures from its frames, beside verifying it.

The 2 s, 10 s and 500 m bests (jobs.oao.figures) run once over each verified
track; they are compared with the device's own. Synthetic tracks of 1, 5 and
20 MB at 5 Hz and at the simulator's denser rates; CPU time (process_time),
median of 5 runs, for figures and for verify_file on the same file, and their
ratio.

    .venv/bin/python bench/bench_figures.py
"""

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import common
from jobs import oao
from jobs.sim import tracks as simtracks

RUNS = 5
CASES = (("1 MB at 5 Hz", 1_000_000, 3840),
         ("5 MB at 27 Hz", 5_000_000, 3600), ("20 MB at 36 Hz", 20_000_000, 3 * 3600))


def cpu_per_gb(call, path, size):
    took = []
    for _ in range(RUNS):
        started = time.process_time()
        call(path)
        took.append(time.process_time() - started)
    return statistics.median(took) / size * 1e9


def main():
    common.header(f"figures vs verify, CPU s per GB, median of {RUNS}")
    print(f"{'track':<22}{'figures s/GB':>14}{'verify s/GB':>13}{'ratio':>8}   figures (mm/s)")
    with tempfile.TemporaryDirectory() as folder:
        for label, size, seconds in CASES:
            spec = simtracks.TrackSpec(start=dt.datetime(2026, 7, 16, 10, tzinfo=dt.timezone.utc),
                                       duration_s=seconds, size=size, best500_knots=24.0)
            path = Path(folder) / "t.oao"
            path.write_bytes(b"".join(simtracks.synthetic_blocks(spec, 301, "K")))
            figures = cpu_per_gb(oao.figures, path, size)
            verify = cpu_per_gb(oao.verify_file, path, size)
            print(f"{label:<22}{figures:>14.1f}{verify:>13.1f}{figures / verify:>8.2f}   {oao.figures(path)}",
                  flush=True)
    print(f"  at end: {common.load()}")


if __name__ == "__main__":
    main()
