"""A person's word on an entrant's day: the marks `motion-server mark` sets (jobs.ops.mark).

What the server cannot see, a person says: the entrant did not sail, did not
start or did not finish (results need DNC/DNS/DNF), or the device was faulty
or lost (with a note: which, where). A mark is one small JSON file per entrant
and day in <spool>/marks/, written like every other state file (temporary
name, fsync, rename), with who set it and when; the log says so too. The day
states (jobs.day.states.day_states) show it with its note.
"""

import os
import re
import time

from jobs.spool import files, layout

# The states a person sets; the others the server finds itself.
MARKABLE = ("did not sail", "did not start", "did not finish", "device faulty", "device lost")
NEEDS_A_NOTE = ("device faulty", "device lost")
ALIASES = {"dnc": "did not sail", "dns": "did not start", "dnf": "did not finish", "faulty": "device faulty",
           "lost": "device lost"}
SAFE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z", re.ASCII)
NOTE_MAX = 500


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
