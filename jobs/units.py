"""Units and text for people: knots, sizes, rates, ages, durations, cut text.

One home for each, used by the pages, the log lines, `status` and `report`,
so a size reads the same everywhere.
"""

import argparse
import datetime as dt
import re

KNOT_MM_S = 1852 / 3.6      # mm/s in one knot


def knots(mm_per_s):
    """Knots from the devices' mm/s."""
    return mm_per_s / KNOT_MM_S


def mm_per_s(knots_value):
    return round(knots_value * KNOT_MM_S)


def size_text(n):
    """1.3 MB, 125 KB, 12 B; – when unknown."""
    if n is None:
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"
    return f"{n:.0f} B"


def rate_text(bytes_per_s):
    return f"{size_text(bytes_per_s)}/s" if bytes_per_s else "–"


def age_text(seconds):
    """How long ago or how long for: 45 s, 12 min, 2 h 05 min; – when unknown."""
    if seconds is None:
        return "–"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def duration_text(seconds):
    """A track's length: 48 min, 1 h 24; – when unknown."""
    if seconds is None:
        return "–"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d}" if minutes >= 60 else f"{minutes} min"


def cut(text, limit, mark="…"):
    """`text` at most `limit` characters and the mark: device text shown or logged stays bounded."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + mark


# C0 and C1 control characters but the newline: a device's ESC [ 2 J must not reach a terminal.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def printable(text):
    """`text` with every control character (but newlines) shown escaped, as \\x1b: for the log
    and the terminal, where a device's or a roster's text would otherwise move the cursor,
    clear the screen or retitle the window."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", str(text))


# What a spreadsheet takes as the start of a formula (and tab, CR: the same, in some).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?\Z")


def csv_cell(value):
    """A CSV cell safe for spreadsheets: text starting like a formula gets a leading ' (shown as
    text, never run). Plain numbers (-3.5) and a lone '-' are left as they are."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and text != "-" and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text



def date_argument(text):
    """A command's YYYY-MM-DD argument (argparse type): its error names what was given."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a date YYYY-MM-DD") from None


def clock_argument(text):
    """A command's HH:MM argument (argparse type)."""
    try:
        return dt.time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a time of day HH:MM") from None
