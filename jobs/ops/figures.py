"""motion-server figures FILE...: the community's figures of any .oao track.

Every category per file (see jobs.track.figures), as mm/s and knots (distance in
metres), each with where it lies. --json prints one JSON object per file and
line: {"file", "2s", "10s", "5x10s", "500m", "1852m", "1h", "alpha500",
"distance"}, each category {"mm_s" (distance: "m"), "start", "end"} in ISO
UTC, or null when the track has none. --from/--to keep the fixes between two
times of day (event.timezone) on the day the track starts. A damaged file (a
half-written frame, a cut end) gives the figures of its intact frames, said
on stderr, as the analysers skip "corrupt records".
"""

import datetime as dt
import json
import sys

from jobs import units
from jobs.track import figures
from jobs.units import clock_argument


def configure(parser):
    parser.add_argument("files", nargs="+", metavar="FILE", help="OAO track files")
    parser.add_argument("--json", action="store_true", help="one JSON object per file and line")
    parser.add_argument("--from", dest="start", type=clock_argument, metavar="HH:MM",
                        help="only fixes from this time of day (event.timezone) on the track's first day")
    parser.add_argument("--to", dest="end", type=clock_argument, metavar="HH:MM", help="only fixes before this time of day")


def main(cfg, args):
    if (args.start is None) != (args.end is None) or (args.start and args.start >= args.end):
        print("motion-server figures: --from and --to go together, --from before --to", file=sys.stderr)
        return 2
    failed = 0
    for path in args.files:
        try:
            fixes, damaged = figures.intact_fixes_of(path)
        except OSError as exc:
            print(f"motion-server figures: {path}: {exc.strerror or exc}", file=sys.stderr)
            failed = 1
            continue
        if damaged:     # the device's only copy: its intact frames still give figures
            print(f"motion-server figures: {path}: damaged ({damaged} bad stretch{'es' if damaged > 1 else ''}): "
                  "figures from its intact frames", file=sys.stderr)
        if args.start is not None:
            fixes = figures.between(fixes, *_window(fixes, args.start, args.end, cfg.tz))
        found = figures.compute(fixes, cfg.checks.max_speed_accuracy)
        if args.json:
            print(json.dumps({"file": path, **figures.as_json(found)}))
        else:
            print(text(path, found))
    return failed


def _window(fixes, start, end, tz):
    """(first ms, end ms) of start-end local time on the local day of the first fix."""
    if not len(fixes):
        return 0, 0
    day = dt.datetime.fromtimestamp(int(fixes["utc_ms"][0]) / 1000, tz).date()
    return tuple(int(dt.datetime.combine(day, t, tz).timestamp() * 1000) for t in (start, end))


def text(path, found):
    lines = [path]
    for key in figures.CATEGORIES:
        value = found.get(key)
        label = figures.LABELS[key]
        if value is None:
            lines.append(f"  {label:<14}-")
            continue
        where = f"{figures.iso(value['start_ms'])[11:21]}-{figures.iso(value['end_ms'])[11:21]} UTC"
        if key == "distance":
            lines.append(f"  {label:<14}{value['m']:>10.1f} m    {value['m'] / 1852:>7.2f} NM  {where}")
        else:
            lines.append(f"  {label:<14}{value['mm_s']:>10.1f} mm/s {units.knots(value['mm_s']):>7.2f} kn  {where}")
    return "\n".join(lines)
