"""motion-server mark DAY ENTRANT STATE [--note TEXT] / unmark DAY ENTRANT: a person's word on an entrant's day.

What the server cannot see, a person says: the entrant did not sail, did not
start or did not finish (results need DNC/DNS/DNF), or the device was faulty
or lost (with a note: which, where). A mark is one small JSON file per entrant
and day in <spool>/marks/, written like every other state file (temporary
name, fsync, rename), with who set it and when; the log says so too. The day
states (jobs.day_states.day_states) show it with its note.
"""

import argparse
import getpass
import os
import re
import sys
import time

from jobs import files, layout, log, roster
from jobs.config import ConfigError
from jobs.units import date_argument

STAGE = "mark"
# The states a person sets; the others the server finds itself.
MARKABLE = ("did not sail", "did not start", "did not finish", "device faulty", "device lost")
NEEDS_A_NOTE = ("device faulty", "device lost")
ALIASES = {"dnc": "did not sail", "dns": "did not start", "dnf": "did not finish", "faulty": "device faulty",
           "lost": "device lost"}
SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z", re.ASCII)
NOTE_MAX = 500


def configure(parser):
    parser.add_argument("day", type=date_argument, metavar="DAY", help="the event day, YYYY-MM-DD")
    parser.add_argument("entrant", metavar="ENTRANT", help="the roster's Entrant ID")
    if parser.prog.split()[-1] == "mark":
        parser.add_argument("state", type=state_word, metavar="STATE",
                            help="; ".join(MARKABLE) + " (or dnc, dns, dnf, faulty, lost; quote the words)")
        parser.add_argument("--note", default="", help="what a person should know (required for device faulty/lost)")


def state_word(text):
    """One of MARKABLE from what a person typed ("did-not-start", "DNS", "device lost")."""
    word = " ".join(text.replace("-", " ").replace("_", " ").lower().split())
    word = ALIASES.get(word, word)
    if word not in MARKABLE:
        raise argparse.ArgumentTypeError(f"{text!r}: expected one of {', '.join(MARKABLE)}")
    return word


def entrant_key(entrant):
    """A file name part for an Entrant ID: itself when plain, else '=' and its UTF-8 in hex
    (no plain ID has a '=', so the two never meet)."""
    return entrant if SAFE.match(entrant) else "=" + entrant.encode("utf-8").hex()


def read_marks(spool, day):
    """{entrant: mark} of `day`: {state, note, by, at}. An unreadable file is skipped."""
    found = {}
    prefix = f"{day.isoformat()}."
    try:
        names = os.listdir(layout.marks_dir(spool))
    except FileNotFoundError:
        return found
    for name in names:
        if not name.startswith(prefix) or not name.endswith(".json") or files.is_temporary(name):
            continue
        try:
            mark = files.read_json(layout.marks_dir(spool) / name)
        except (OSError, ValueError):
            continue
        if isinstance(mark, dict) and isinstance(mark.get("entrant"), str) and mark.get("state") in MARKABLE:
            # Written by set_mark; a file edited by hand still shows as text and a time.
            found[mark["entrant"]] = {**mark, "note": str(mark.get("note") or "")[:NOTE_MAX],
                                      "by": str(mark.get("by") or "?")[:64],
                                      "at": mark.get("at") if isinstance(mark.get("at"), (int, float)) else None}
    return found


def set_mark(spool, day, entrant, word, note, by):
    """Write the mark (atomically); the mark written."""
    mark = {"day": day.isoformat(), "entrant": entrant, "state": word, "note": note, "by": by, "at": time.time()}
    path = layout.mark_file(spool, day, entrant_key(entrant))
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_json(path, mark)
    return mark


def clear_mark(spool, day, entrant):
    """Remove the entrant's mark of `day`; the mark removed, or None when there was none."""
    path = layout.mark_file(spool, day, entrant_key(entrant))
    try:
        mark = files.read_json(path)
    except ValueError:   # damaged: shown nowhere already, and removed all the same
        mark = {}
    if mark is None:
        return None
    os.unlink(path)
    files.fsync_dir(path.parent)
    return mark


def who():
    """The person at the keyboard: $USER, else the login name."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):   # no such user in the password database (a container)
        return f"uid {os.getuid()}"


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
    person = who()
    if args.command == "unmark":
        mark = clear_mark(cfg.paths.spool, args.day, args.entrant)
        if mark is None:
            print(f"motion-server: unmark: entrant {args.entrant} has no mark on {args.day}", file=sys.stderr)
            return 1
        logger.info("entrant %s on %s: mark %r cleared by %s", args.entrant, args.day, mark.get("state"), person)
        print(f"{args.day} {args.entrant}: mark {mark.get('state')!r} cleared")
        return 0
    note = " ".join(args.note.split())[:NOTE_MAX]
    if args.state in NEEDS_A_NOTE and not note:
        print(f"motion-server: mark: {args.state} needs a --note (which device, what happened)", file=sys.stderr)
        return 2
    set_mark(cfg.paths.spool, args.day, args.entrant, args.state, note, person)
    logger.info("entrant %s on %s marked %r by %s%s", args.entrant, args.day, args.state, person,
                f": {note}" if note else "")
    print(f"{args.day} {args.entrant}: {args.state}" + (f" ({note})" if note else "") + f", set by {person}")
    return 0
