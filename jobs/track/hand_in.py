"""The verdict at hand-in as the results team reads it: one line of words and clock times.

jobs.track.figures computes the verdict (suspect stretches, the share of fixes
filtered and why) in the download's pass and the ledger keeps it; this reads
it back for the tile, the boards, the report and the log. It imports no numpy:
the dashboard and the report run every minute and must not pay for it.
"""

import datetime as dt


def verdict_text(found, tz):
    """'hAcc over 2.5 m 13:26:56–13:27:02; 2 more suspect stretches; 8 % of fixes filtered (satellites 300)'."""
    parts = []
    suspect = found.get("suspect") or []
    if suspect:
        first = suspect[0]
        parts.append(f"{first['why']} {_fix_clock(first['start'], tz)}–{_fix_clock(first['end'], tz)}")
        more = (found.get("suspect_count") or len(suspect)) - 1
        if more > 0:
            parts.append(f"{more} more suspect stretch{'es' if more > 1 else ''}")
    share = found.get("filtered") or 0
    if share:
        why = ", ".join(f"{key} {count}" for key, count in (found.get("reasons") or {}).items())
        parts.append(f"{share * 100:.1f} % of fixes filtered ({why})")
    return "; ".join(parts) or "nothing suspect"


def _fix_clock(ms, tz):
    return dt.datetime.fromtimestamp(ms / 1000, tz).strftime("%H:%M:%S") if isinstance(ms, int) else "?"
