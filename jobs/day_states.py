"""Every roster row's tracks of a day, found through the current roster.

A track belongs to a device and a day; who it belongs to is whatever the
roster says now, never the entrant recorded when it was downloaded (the
results team corrects the roster many times a week). The row holding the
device that day (jobs.roster.Roster.entrant_for) has the device's tracks of
that day, and so has every shared row naming the same device
(event.shared_devices): "shared with <holder> on device 806". A second row
given the same device on the same day (a roster warning: the first row wins)
has none.
"""


def holds(roster, entry, day):
    """Whether `entry` is the row holding its physical device on `day` (its tracks are stored under its name)."""
    return entry.device > 0 and roster.entrant_for(entry.on_device, day) is entry


def shared_with(roster, entry, day):
    """The row holding the device `entry` shares on `day`, or None when `entry` holds it or shares nothing."""
    if entry.device <= 0 or not entry.shared:
        return None
    holder = roster.entrant_for(entry.on_device, day)
    return None if holder is None or holder is entry else holder


def has_tracks(roster, entry, day):
    """Whether the device's tracks of `day` are `entry`'s: it holds the device, or shares it."""
    return entry.device > 0 and (entry.shared or holds(roster, entry, day))


def sharing_text(roster, entry, day):
    """'shared with Ann Alder (1101) on device 806', or '' when `entry` shares no other row's device."""
    holder = shared_with(roster, entry, day)
    if holder is None:
        return ""
    return f"shared with {holder.name or holder.entrant} ({holder.entrant}) on device {entry.on_device}"


def tracks_of(roster, entry, doc, key, day):
    """`entry`'s ledger tracks of `day` (`key` its YYYYMMDD) in the device's state `doc`, by start."""
    if doc is None or not has_tracks(roster, entry, day):
        return []
    found = [t for t in (doc.get("tracks") or {}).values() if isinstance(t, dict) and t.get("day") == key]
    return sorted(found, key=lambda t: t.get("start") or 0)
