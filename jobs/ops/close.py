"""motion-server close DAY [--force]: the day is complete; its package is written (jobs.day.closing).

Refused, listing them, while an entrant of the day is missing, still
recording, partial, or has a track still wanted; --force closes anyway and
the record says so. Run again after anything new (the dashboard says
"reopened"): the package is rewritten; with nothing new, nothing changes.
"""

import datetime as dt
import sys

from jobs import log
from jobs.day import closing
from jobs.spool import layout, locks
from jobs.config import ConfigError
from jobs.units import date_argument

STAGE = "close"


def configure(parser):
    parser.add_argument("day", type=date_argument, metavar="DAY", help="the event day, YYYY-MM-DD")
    parser.add_argument("--force", action="store_true",
                        help="close although some entrant is missing, recording or has a track still wanted")


def main(cfg, args):
    log.setup(cfg, console=False, errors_to_stderr=False)   # it prints what it did itself
    logger = log.get(STAGE)
    try:
        record, blocking, changed = closing.close(cfg, args.day, force=args.force, by=log.who())
    except ConfigError as exc:
        print(f"motion-server: close: {exc}", file=sys.stderr)
        return 2
    except locks.LockTimeout as exc:   # another close or handoff of the day
        print(f"motion-server: close: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:   # our disk: full, read-only, a folder where a file goes
        print(f"motion-server: close: {args.day} not closed: {exc}", file=sys.stderr)
        logger.error("%s not closed: %s", args.day, exc)
        return 1
    folder = layout.track_day_dir(cfg.paths.tracks, args.day.strftime(layout.TRACK_DAY))
    if record is None:
        print(f"{args.day} not closed: {len(blocking)} entrant(s) not accounted for:")
        for line in blocking:
            print(f"  {_line(line)}")
        print("mark them (motion-server mark), import their backup files, wait for their tracks, "
              "or close anyway with --force")
        logger.warning("%s not closed: %d entrant(s) not accounted for", args.day, len(blocking))
        return 1
    clock = dt.datetime.fromtimestamp(record["closed_at"], cfg.tz).strftime("%H:%M")
    if not changed:
        print(f"{args.day} was closed at {clock}; nothing new since: the package is unchanged")
        return 0
    states = ", ".join(f"{n} {state}" for state, n in sorted(record["counts"]["states"].items()))
    print(f"{args.day} closed at {clock}{' (FORCED)' if record['forced'] else ''}: "
          f"{record['counts']['files']} file(s), {record['counts']['entrants']} entrant(s)"
          + (f" ({states})" if states else "") + f"; {folder / closing.SUMS}, {folder / closing.ENTRANTS}")
    for line in blocking:
        print(f"  closed with: {_line(line)}")
    logger.info("%s closed by %s%s: %d file(s), %d entrant(s)", args.day, record["by"],
                " (forced)" if record["forced"] else "", record["counts"]["files"], record["counts"]["entrants"])
    return 0


def _line(line):
    note = f" ({line['note']})" if line["note"] else ""
    wanted = line["counts"].get("wanted")
    extra = f", {wanted} track(s) still wanted" if wanted and "still wanted" not in line["note"] else ""
    return f"{line['entrant']} {line['name']}: {line['state']}{note}{extra}"
