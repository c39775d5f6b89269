"""Backup files: a session taken from another device (`motion-server import`).

Each import is recorded in <spool>/imports/<sha256>.json: the same bytes
imported twice are one import.
"""

import os

from jobs import files, layout


def read_imports(spool, day=None):
    """Every import record (of `day`, a date, when given), by entrant: {entrant: [records]}."""
    found = {}
    try:
        names = sorted(os.listdir(layout.imports_dir(spool)))
    except FileNotFoundError:
        return found
    key = day.isoformat() if day else None
    for name in names:
        if not name.endswith(".json") or files.is_temporary(name):
            continue
        try:
            record = files.read_json(layout.imports_dir(spool) / name)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("entrant"), str) and (
                key is None or record.get("day") == key):
            found.setdefault(record["entrant"], []).append(record)
    return found
