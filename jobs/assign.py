"""Unassigned tracks find their entrant: a rename, never a second fetch.

A device nobody holds that day (a spare, a buoy, a device swapped during the
week) has its tracks of event days downloaded all the same, verified like any
other, into <tracks>/unassigned/<YYYYMMDD>/<id>_<id>_<YYYYMMDD>_<HHMMSS>.oao.
Once the roster names an entrant for that device and day, the file is renamed
to its entrant's final name and the ledger follows, under the device's state
lock so no two runs move it at once. A run killed between the rename and the
ledger update left the file at its new name and none at the old: seen here as
already moved, and recorded.
"""

import datetime as dt
import os

from jobs import files, layout, state, tracks


def devices_with_unassigned(root):
    """The devices whose ledger holds an unassigned track on disk."""
    return [doc["device"] for doc in state.all_devices(root)
            if any(_waiting(t) for t in doc["tracks"].values() if isinstance(t, dict))]


def assign(root, tracks_root, roster, tz, device, log):
    """Move every unassigned track of `device` that the roster now gives to an entrant.

    Returns the number moved. `log` is the device's logger.
    """
    moved = 0
    with state.update(root, device) as doc:
        for track in doc["tracks"].values():
            if isinstance(track, dict) and _waiting(track) and _move(tracks_root, roster, tz, device, track, log):
                moved += 1
    return moved


def _waiting(track):
    return bool(track.get("unassigned")) and track.get("status") in tracks.ON_DISK


def _move(tracks_root, roster, tz, device, track, log):
    try:
        day = dt.datetime.strptime(track["day"], layout.TRACK_DAY).date()
        who = roster.entrant_for(device, day)
        if who is None:
            return False
        named = dict(track, unassigned=False, entrant=who.entrant, file_id=who.file_id,
                     name=tracks.local_name(who.file_id, device, track["start"], tz))
        source, target = tracks.final_path(tracks_root, track), tracks.final_path(tracks_root, named)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("unassigned track %s not moved: %s", track.get("name"), exc)
        return False
    if target.exists():
        if source.exists():
            log.warning("%s not moved to %s: a file is already there", source.name, target)
            return False
        log.info("%s was already moved to %s; recorded", source.name, target.name)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)
        files.fsync_dir(target.parent)
        files.fsync_dir(source.parent)
        log.info("%s moved to %s/%s: the roster now gives it to entrant %s",
                 source.name, track["day"], target.name, who.entrant)
    track.update(unassigned=False, entrant=named["entrant"], file_id=named["file_id"], name=named["name"])
    return True
