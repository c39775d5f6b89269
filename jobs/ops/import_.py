"""motion-server import FILE... --entrant ID [--day YYYY-MM-DD] [--start HH:MM]: backup files.

The command: each file named is imported into the entrant's day (jobs.day.backup:
copied by a temporary name, checked, recorded once per sha256); what was
imported, and what was not and why, is printed and logged with who ran it.
"""

import sys

from jobs import log, roster
from jobs.day import backup
from jobs.config import ConfigError
from jobs.units import clock_argument, date_argument

STAGE = "import"


def configure(parser):
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="backup files: " + ", ".join(f".{f}" for f in backup.FORMATS))
    parser.add_argument("--entrant", required=True, metavar="ID", help="the roster's Entrant ID")
    parser.add_argument("--day", type=date_argument, metavar="YYYY-MM-DD",
                        help="the event day (default: the file's start day, else today in event.timezone)")
    parser.add_argument("--start", type=clock_argument, metavar="HH:MM",
                        help="the session's local start, for formats that do not give it (.sbp .sbn .gpy .ubx)")


def main(cfg, args):
    log.setup(cfg, console=False, errors_to_stderr=False)   # it prints what it did itself
    logger = log.get(STAGE)
    try:
        entries = roster.load(cfg.event.roster, cfg.event.shared_devices) if cfg.event.roster else roster.NO_ROSTER
    except ConfigError as exc:
        print(f"motion-server: {exc}", file=sys.stderr)
        return 2
    person, failed = log.who(), 0
    for source in args.files:
        try:
            record, new = backup.import_file(cfg, entries, source, args.entrant, args.day, args.start, person)
        except (backup.NotImported, OSError) as exc:
            failed += 1
            text = str(exc) if isinstance(exc, backup.NotImported) else f"{source}: {exc.strerror or exc}"
            print(f"motion-server: import: {text}", file=sys.stderr)
            logger.error("not imported: %s", text)
            continue
        where = f"{record['folder']}/{record['name']}"
        if new:
            logger.info("%s imported for entrant %s as %s by %s (start from %s; checked: %s; sha256 %s)",
                        record["source"], record["entrant"], where, person, record["start_from"],
                        record["checked"], record["sha256"])
            print(f"{source}: imported as {where} ({record['checked']} checked)")
        else:
            print(f"{source}: already imported as {where} (the same bytes)")
    return 1 if failed else 0
