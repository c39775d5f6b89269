"""The cost of the community's figures and the verdict at hand-in, against sha256.

A verified download computes, from the GNSS frames its frame check passes
on: the fixes gathered (jobs.track.figures.Fixes), the verdict, and every
category of the whole log (no sessions set), or with a session window the
whole log's 2 s, 10 s, 500 m and distance (the device's own are checked
against them) and every category inside the window. This
measures that CPU for each track, in one run, beside the CPU of one sha256
pass over the same bytes (which the download also does), and their ratio:
the target is at most 3x. The GNSS frames are taken out of the file before
the clock starts: the frame check is the download's either way.

Tracks: the real recordings in $MOTION_RECORDINGS (see bench/common.py), and
synthetic ones of the simulator at 5 Hz and 10 Hz. CPU time (process_time),
median of RUNS runs.

    .venv/bin/python bench/bench_figures.py
"""

import hashlib
import statistics
import time

import common
from jobs.track import figures, oao, integrity

RUNS = 7
SYNTHETIC = (("synthetic 5 Hz, 2 h", 7200, 5), ("synthetic 10 Hz, 2 h", 7200, 10))


def frames_of(data):
    """The GNSS frames of a track, as the frame check hands them on."""
    blocks = []
    verifier = integrity.Verifier(gnss=blocks.append)
    verifier.feed(data)
    verifier.finish()
    return [bytes(block) for block in blocks]


def figures_and_verdict(blocks, window):
    fixes = figures.Fixes()
    for block in blocks:
        fixes.feed(block)
    found = fixes.array()
    if window is None:                  # no sessions: every category of the whole log
        figures.compute(found)
        figures.verdict(found)
        return
    figures.compute(found, only=figures.CHECKED)    # the device's own checked against the whole log's
    figures.verdict(found, [window])
    figures.in_sessions(found, [window])


def cpu(call, *args):
    took = []
    for _ in range(RUNS):
        started = time.process_time()
        call(*args)
        took.append(time.process_time() - started)
    return statistics.median(took)


def tracks():
    for path in sorted(common.recordings()):
        yield path.stem[:28], path.read_bytes()
    for label, seconds, rate in SYNTHETIC:
        yield label, common.synthetic_track(oao.HEADER_SIZE + oao.GNSS_SIZE * seconds * rate, seconds)


def main():
    common.header(f"figures + verdict vs sha256, CPU ms, median of {RUNS}: whole log (no sessions), "
                  "and with a 50-minute session window")
    print(f"{'track':<30}{'MB':>6}{'fixes':>8}{'sha256 ms':>11}{'whole ms':>10}{'ratio':>7}{'session':>10}"
          f"{'ratio':>7}")
    ratios = []
    if not common.recordings():
        print(f"  (no real recordings in {common.RECORDINGS}: the simulator's tracks only)")
    for label, data in tracks():
        blocks = frames_of(data)
        fixes = sum(len(block) for block in blocks) // oao.GNSS_SIZE
        first = int.from_bytes(blocks[0][oao.UTC_OFFSET:oao.UTC_OFFSET + 8], "little") / 1000
        window = ("session", first + 600, first + 3600)
        hashing = cpu(lambda: hashlib.sha256(data).digest())
        whole = cpu(figures_and_verdict, blocks, None)
        inside = cpu(figures_and_verdict, blocks, window)
        ratios.append(max(whole, inside) / hashing)
        print(f"{label:<30}{len(data) / 1e6:>6.1f}{fixes:>8}{hashing * 1000:>11.2f}{whole * 1000:>10.2f}"
              f"{whole / hashing:>7.1f}{inside * 1000:>10.2f}{inside / hashing:>7.1f}", flush=True)
    print(f"  ratio median {statistics.median(ratios):.1f}, worst {max(ratios):.1f} (target: at most 3)")
    print(f"  at end: {common.load()}")


if __name__ == "__main__":
    main()
