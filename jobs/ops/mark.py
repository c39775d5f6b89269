"""motion-server mark DAY ENTRANT STATE [--note TEXT] / unmark DAY ENTRANT: a person's word on an entrant's day.

The command: it checks what a person typed (the entrant sails that day, a
state word, a note where one is needed), then sets or clears the entrant's
mark (jobs.day.marks) and logs who did it.
"""

import argparse
import sys

from jobs import log, roster
from jobs.day import marks
from jobs.config import ConfigError
from jobs.units import date_argument

STAGE = "mark"


def configure(parser):
    parser.add_argument("day", type=date_argument, metavar="DAY", help="the event day, YYYY-MM-DD")
    parser.add_argument("entrant", metavar="ENTRANT", help="the roster's Entrant ID")
    if parser.prog.split()[-1] == "mark":
        parser.add_argument("state", type=state_word, metavar="STATE",
                            help="; ".join(marks.MARKABLE) + " (or dnc, dns, dnf, faulty, lost; quote the words)")
        parser.add_argument("--note", default="", help="what a person should know (required for device faulty/lost)")


def state_word(text):
    """One of MARKABLE from what a person typed ("did-not-start", "DNS", "device lost")."""
    word = " ".join(text.replace("-", " ").replace("_", " ").lower().split())
    word = marks.ALIASES.get(word, word)
    if word not in marks.MARKABLE:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(marks.MARKABLE)}")
    return word


def _sailing(cfg, day, entrant):
    """The entrant's row sailing on `day`, or an error message."""
    try:
        entries = roster.load(cfg.event.roster, cfg.event.shared_devices) if cfg.event.roster else roster.NO_ROSTER
    except ConfigError as exc:
        return None, str(exc)
    rows = [e for e in entries.entries if e.entrant == entrant]
    if not rows:
        return None, f"entrant {entrant!r} is not on the roster ({entries.path or 'no event.roster'})"
    if not any(e.sails_on(day) for e in rows):
        spans = ", ".join(f"{e.start} to {e.end}" for e in rows)
        return None, f"entrant {entrant!r} does not sail on {day} (roster: {spans})"
    return rows, None


def main(cfg, args):
    log.setup(cfg, console=False, errors_to_stderr=False)   # it prints what it did itself
    logger = log.get(STAGE)
    rows, problem = _sailing(cfg, args.day, args.entrant)
    if problem:
        print(f"motion-server: {args.command}: {problem}", file=sys.stderr)
        return 2
    person = log.who()
    if args.command == "unmark":
        mark = marks.clear_mark(cfg.paths.spool, args.day, args.entrant)
        if mark is None:
            print(f"motion-server: unmark: entrant {args.entrant} has no mark on {args.day}", file=sys.stderr)
            return 1
        logger.info("entrant %s on %s: mark %r cleared by %s", args.entrant, args.day, mark.get("state"), person)
        print(f"{args.day} {args.entrant}: mark {mark.get('state')!r} cleared")
        return 0
    note = " ".join(args.note.split())[:marks.NOTE_MAX]
    if args.state in marks.NEEDS_A_NOTE and not note:
        print(f"motion-server: mark: {args.state} needs a --note (which device, what happened)", file=sys.stderr)
        return 2
    marks.set_mark(cfg.paths.spool, args.day, args.entrant, args.state, note, person)
    logger.info("entrant %s on %s marked %r by %s%s", args.entrant, args.day, args.state, person,
                f": {note}" if note else "")
    print(f"{args.day} {args.entrant}: {args.state}" + (f" ({note})" if note else "") + f", set by {person}")
    return 0
