"""The cost of closing a day and handing it over, and of asking whether it reopened.

A real event day: 107 devices, 2 tracks each of about 10 MB (real tracks run
1-26 MB). Measured in wall time (fsync waits included: they are the point),
on files just written (so in the page cache: the first close's hashing is CPU):

    close          the first close (every file hashed), then a second with
                   nothing new (files unchanged since the record are not read
                   again), then one after a late track (one file hashed)
    reopened?      jobs.day.closing.day_status: a stat per file and the marks, what
                   the dashboard and status --json do per closed day, median of 20
    handoff        to a folder on the same disk: the first (every file copied,
                   synced, read back, hashed), then a second with nothing new
                   (every copy at DEST hashed against SHA256SUMS, none copied)

    .venv/bin/python bench/bench_close.py [--files 214] [--mb 10]
"""

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

import common  # noqa: F401 - puts the checkout on sys.path
from jobs import config
from jobs.day import closing
from jobs.ops.handoff import handoff


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=214)
    parser.add_argument("--mb", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-close-") as folder:
        folder = Path(folder)
        path = folder / "motion-server.yaml"
        path.write_text(yaml.safe_dump({"paths": {"spool": "spool", "tracks": "tracks", "html": "html",
                                                  "log": "log/m.log"}}))
        cfg = config.load(path)
        day = dt.date.today()
        day_folder = Path(cfg.paths.tracks) / f"{day:%Y%m%d}"
        day_folder.mkdir(parents=True)
        size = int(args.mb * 1e6)
        for n in range(args.files):
            (day_folder / f"E{n}_{500 + n // 2}_{day:%Y%m%d}_{10 + n % 2}0000.oao").write_bytes(os.urandom(size))
        total = args.files * size / 1e9
        print(f"{args.files} files of {args.mb:g} MB ({total:.2f} GB)")
        timed("close, first", lambda: closing.close(cfg, day, force=True))
        timed("close, nothing new", lambda: closing.close(cfg, day, force=True))
        (day_folder / f"LATE_999_{day:%Y%m%d}_150000.oao").write_bytes(os.urandom(size))
        checks = []
        for _ in range(20):
            started = time.perf_counter()
            closing.day_status(cfg, day)
            checks.append(time.perf_counter() - started)
        print(f"  {'reopened? (day_status)':<24} {statistics.median(checks) * 1000:8.2f} ms "
              f"({min(checks) * 1000:.2f}-{max(checks) * 1000:.2f})")
        timed("close, one late track", lambda: closing.close(cfg, day, force=True))
        dest = folder / "usb"
        dest.mkdir()
        timed("handoff, first", lambda: handoff(cfg, day, dest), total)
        timed("handoff, nothing new", lambda: handoff(cfg, day, dest), total)


def timed(what, work, gigabytes=None):
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    rate = f"  ({gigabytes / seconds:.2f} GB/s)" if gigabytes else ""
    print(f"  {what:<24} {seconds:8.2f} s{rate}")


if __name__ == "__main__":
    main()
