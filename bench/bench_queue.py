"""Spool and state operations' cost per item as the queue grows: it must stay flat.

For a queue of 10, 100 and 1,000 items, each the median of 5 runs (min and max):

    enqueue      spool.enqueue of every item (write, fsync, link, fsync the folder)
    pending      one spool.pending() call over the whole queue (a scandir and a stat each),
                 per item listed
    claim        spool.claim of each item, oldest first (lock, link, unlink, two folder fsyncs)
    finish       spool.finish of that claim before the next is taken (rename into done/, fsync)
    serve_queue  every item claimed and finished through runner.serve_queue, as the
                 download stage does it (`--once`, threads.download workers, work that
                 returns at once): what the queue costs a stage per device served
    state        state.update of one device among N state files (lock, read, write, fsync),
                 200 of them, once the N files are on disk

    .venv/bin/python bench/bench_queue.py [--sizes 10 100 1000] [--runs 5]
"""

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import common
from jobs import config, runner, spool
from jobs.spool import state


def timed(function):
    began = time.perf_counter()
    function()
    return time.perf_counter() - began


def cfg_for(folder, workers):
    path = folder / "c.yaml"
    path.write_text(f"paths: {{spool: spool, log: log/m.log}}\nthreads: {{download: {workers}}}\n")
    return config.load(path)


def one_run(size, workers):
    """µs per item for each operation on a fresh spool of `size` items."""
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        folder = Path(tmp)
        cfg = cfg_for(folder, workers)
        root = cfg.paths.spool
        devices = list(range(1, size + 1))
        figures = {}
        figures["enqueue"] = timed(lambda: [spool.enqueue(root, "download", d) for d in devices]) / size
        figures["pending"] = timed(lambda: spool.pending(root, "download")) / size
        claiming = finishing = 0.0
        for d, _ in spool.pending(root, "download"):
            began = time.perf_counter()
            held = spool.claim(root, "download", d)
            claimed = time.perf_counter()
            spool.finish(held)  # one claim held at a time, as a worker holds it
            claiming += claimed - began
            finishing += time.perf_counter() - claimed
        figures["claim"], figures["finish"] = claiming / size, finishing / size
        for d in devices:
            spool.enqueue(root, "download", d)
        served = []
        stage = lambda ctx: runner.serve_queue(ctx, "download", lambda ctx, claim: served.append(claim.device))
        figures["serve_queue"] = timed(lambda: runner.run(cfg, "download", stage, once=True,
                                                          stop=threading.Event())) / size
        assert len(served) == size, (len(served), size)
        for d in devices:
            with state.update(root, d) as doc:
                state.set_status(doc, "completed", address="127.0.1.1")
        os.sync()  # the N files just written are on disk: what is timed is one update, not their write-back
        time.sleep(1)
        rounds = 200
        figures["state"] = timed(lambda: [_touch_state(root, 1 + k * 7919 % size) for k in range(rounds)]) / rounds
    return {key: value * 1e6 for key, value in figures.items()}


def _touch_state(root, device):
    with state.update(root, device) as doc:
        doc["last_seen"] = time.time()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=config.DEFAULTS["threads"]["download"])
    args = parser.parse_args()
    common.header(f"spool and state cost per item (µs), median (min–max) of {args.runs} runs; "
                  f"serve_queue with {args.workers} workers")
    keys = ("enqueue", "pending", "claim", "finish", "serve_queue", "state")
    print(f"  {'items':>6}  " + "  ".join(f"{k:<22}" for k in keys))
    for size in args.sizes:
        runs = [one_run(size, args.workers) for _ in range(args.runs)]
        print(f"  {size:>6}  " + "  ".join(f"{common.spread([r[k] for r in runs], 0):<22}" for k in keys),
              flush=True)
    print(f"  at end: {common.load()}")


if __name__ == "__main__":
    main()
