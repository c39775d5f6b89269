"""CPU per GB of jobs.track.oao's hot paths, this checkout beside an earlier one, in one run.

The download stage pays for the frame check (Verifier), the sha256 beside it
(TrackCheck) and the figures of every track, so these set its CPU per GB:

- Verifier fed a track (the largest real recording of $MOTION_RECORDINGS, see
  bench/common.py, else a synthetic 5 MB one) in pieces of 64 KB and of 1460 B (a TCP segment);
- TrackCheck (sha256 + Verifier), 64 KB pieces, without and with the figures
  computed in the same pass (TrackCheck(figures=...) and figures_result(), as the
  download does, where the revision has them);
- figures(path) of each real recording and of two synthetic tracks.

Each figure is the median (min–max) of RUNS process_time measurements; the
baseline and this checkout run alternately, so a change in the machine's load
hits both. The baseline is jobs/track/oao.py at a git revision, loaded as a module,
with that revision's jobs/track/figures.py where it has one (before, the baseline's
figures were this checkout's own, so a change to jobs/track/figures.py measured
nothing). A revision before jobs/track/figures.py computed other figures (the
firmware's 2 s, 10 s and 500 m): its figures rows say DIFFERENT by design.

    .venv/bin/python bench/bench_oao.py [--baseline-rev a8318e3] [--runs 5]
"""

import argparse
import importlib.util
import inspect
import subprocess
import tempfile
import time
import types
from pathlib import Path

import common
from jobs.track import figures, integrity

# This checkout's names for what a baseline jobs/track/oao.py held alone (the format, the
# check and the logs.json figures were one module until issue 34 carved it in three).
CURRENT = types.ModuleType("this checkout")
CURRENT.__dict__.update(Verifier=integrity.Verifier, TrackCheck=integrity.TrackCheck,
                        SPEED_ACCURACY_MAX=figures.SPEED_ACCURACY_MAX, figures=figures.summary_of_file)

SYNTHETIC = (("1 MB at 5 Hz", 1_000_000, 3840), ("5 MB at 27 Hz", 5_000_000, 3600))


def baseline_module(rev, folder):
    # The modules moved into jobs/track/ (issue 34): a baseline from before has them at the top.
    source = shown_at(rev, "jobs/track/oao.py", "jobs/oao.py")
    if source.returncode:
        raise SystemExit(f"bench_oao: no jobs/track/oao.py or jobs/oao.py at {rev}")
    module = load_module(source.stdout, "oao_baseline", folder)
    shown = shown_at(rev, "jobs/track/figures.py", "jobs/figures.py")
    if shown.returncode == 0 and hasattr(module, "_figures"):
        figures = load_module(shown.stdout.replace("from jobs import oao\n", ""), "figures_baseline", folder,
                              oao=module)
        module._figures = lambda: figures
    return module


def shown_at(rev, *paths):
    """`git show` of the first of `paths` that `rev` has."""
    for path in paths:
        shown = subprocess.run(["git", "-C", str(common.REPO), "show", f"{rev}:{path}"], capture_output=True, text=True)
        if shown.returncode == 0:
            break
    return shown


def load_module(source, name, folder, **given):
    path = Path(folder) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__dict__.update(given)
    spec.loader.exec_module(module)
    return module


def verifier(module, pieces):
    check = module.Verifier()
    for piece in pieces:
        check.feed(piece)
    check.finish()


def checked(module, pieces, size, **figures):
    check = module.TrackCheck(470, **figures)
    for piece in pieces:
        check.take(piece)
    check.finish(size)
    if figures and hasattr(check, "figures_result"):     # as the download records a verified track
        check.figures_result()


def per_gb(call, size):
    started = time.process_time()
    call()
    return (time.process_time() - started) / size * 1e9


def compare(label, calls, size, runs):
    """One row: each call's s/GB, the calls run alternately `runs` times."""
    took = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            if call is not None:
                took[name].append(per_gb(call, size))
    cells = "".join(f"{common.spread(took[name], 1):>22}" for name in calls)
    print(f"  {label:<42}{cells}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-rev", default="a8318e3", help="git revision of the baseline jobs/track/oao.py")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        old = baseline_module(args.baseline_rev, folder)
        common.header(f"jobs.track.oao CPU s/GB, median (min–max) of {args.runs}; baseline {args.baseline_rev}")
        print(f"  {'':<42}{'baseline':>22}{'this checkout':>22}")
        recorded = common.recordings()   # largest first; a synthetic 5 MB track when there are none
        data = recorded[0].read_bytes() if recorded else common.synthetic_track(*SYNTHETIC[1][1:])
        size = len(data)
        for piece in (65536, 1460):
            pieces = [data[at:at + piece] for at in range(0, size, piece)]
            compare(f"Verifier, {piece} B pieces", {m: (lambda m=m: verifier(m, pieces)) for m in (old, CURRENT)},
                    size, args.runs)
        pieces = [data[at:at + 65536] for at in range(0, size, 65536)]
        compare("TrackCheck (sha256 + Verifier), 64 KB", {m: (lambda m=m: checked(m, pieces, size))
                                                          for m in (old, CURRENT)}, size, args.runs)
        compare("TrackCheck with figures (one pass), 64 KB",
                {m: (lambda m=m: checked(m, pieces, size, figures=m.SPEED_ACCURACY_MAX))
                 if "figures" in inspect.signature(m.TrackCheck).parameters else None for m in (old, CURRENT)},
                size, args.runs)
        paths = list(recorded)
        for label, synthetic_size, seconds in SYNTHETIC:
            path = Path(folder) / f"{label.split()[0]}MB.oao"
            path.write_bytes(common.synthetic_track(synthetic_size, seconds))
            paths.append(path)
        for path in paths:
            same = old.figures(path) == CURRENT.figures(path)
            compare(f"figures {path.name[:30]}{'' if same else ' (DIFFERENT)'}",
                    {m: (lambda m=m: m.figures(path)) for m in (old, CURRENT)}, path.stat().st_size, args.runs)
    print(f"  at end: {common.load()}")


if __name__ == "__main__":
    main()
