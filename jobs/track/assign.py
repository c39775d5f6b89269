"""The roster is the truth, also afterwards: tracks on disk follow it by rename, never a second fetch.

A track's file is named after the row holding its device on its day
(jobs.roster.Roster.entrant_for): <tracks>/<YYYYMMDD>/<File ID>_<id>_..., or
<tracks>/unassigned/<YYYYMMDD>/<id>_<id>_... when no row holds the device
that day (a spare, a buoy, a device swapped during the week). The results
team edits the roster many times a week: whenever it now gives a device and
day to someone else, the files already there are renamed to the new holder's
name and the ledger follows, under the device's state lock so no two runs move
one at once. Moving an unassigned track to its entrant is one case of this.

A rename never overwrites: the file is linked under its new name (which fails
if a file is there) and only then unlinked from the old one. A clash is
refused, logged, and kept as a "rename" warning on the device until it is
gone. A run killed between the link and the unlink left both names on one
file: seen here as already moved, and recorded.
"""

import datetime as dt
import os

from jobs.spool import files, layout, state
from jobs.track import ledger, naming

RENAME = "rename"   # the kind of a device warning about a rename refused


def devices_with_tracks_on_disk(root):
    """The devices whose ledger holds a track on disk (verified, damaged or partial)."""
    return [doc["device"] for doc in state.all_devices(root)
            if any(_on_disk(t) for t in doc["tracks"].values() if isinstance(t, dict))]


def devices_with_unassigned(root):
    """The devices whose ledger holds an unassigned track on disk."""
    return [doc["device"] for doc in state.all_devices(root)
            if any(_on_disk(t) and t.get("unassigned") for t in doc["tracks"].values() if isinstance(t, dict))]


def follow_roster(root, tracks_root, roster, tz, device, log):
    """Rename every track of `device` on disk whose name the roster no longer gives it.

    Returns the number moved. `log` is the device's logger.
    """
    if not roster.entries:
        return 0   # no roster (or an empty one) names nobody: nothing to follow
    moved, refused = 0, []
    with state.update(root, device) as doc:
        for track in doc["tracks"].values():
            if not isinstance(track, dict) or not _on_disk(track) or track.get("held"):
                continue   # (held: kept unassigned until a person judges whose it is)
            outcome = _follow(tracks_root, roster, tz, device, track, log)
            moved += outcome is True
            if isinstance(outcome, str):
                refused.append({"kind": RENAME, "text": outcome})
        kept = [w for w in doc["warnings"] if not (isinstance(w, dict) and w.get("kind") == RENAME)]
        doc["warnings"] = kept + refused
    return moved


# The old name: the unassigned-to-assigned move is one case of following the roster.
assign = follow_roster


def _on_disk(track):
    # A partial track's kept frames are under its final name too (jobs.track.recording).
    return track.get("status") in ledger.WITH_FILE


def _follow(tracks_root, roster, tz, device, track, log):
    """True when moved, a warning's text when a file is in the way, else None."""
    try:
        day = dt.datetime.strptime(track["day"], layout.TRACK_DAY).date()
        named = dict(track, **_place(roster.entrant_for(device, day), device, track, tz))
        if _place_of(named) == _place_of(track):
            return None
        source, target = naming.final_path(tracks_root, track), naming.final_path(tracks_root, named)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("track %s not renamed after the roster: %s", track.get("name"), exc)
        return None
    where = f"{layout.UNASSIGNED}/{track['day']}" if named["unassigned"] else track["day"]
    try:
        moved = _move(source, target, ledger.kept_sha256(track))
    except FileNotFoundError:
        log.warning("%s not renamed to %s/%s: it is not on disk (verify says more)", source, where, target.name)
        return None
    if not moved:
        text = f"{source.name} not renamed to {where}/{target.name}: a file is already there"
        log.warning("%s", text)
        return text
    holder = f"entrant {named['entrant']}" if named["entrant"] else "no entrant"
    log.info("%s renamed to %s/%s: the roster now gives device %s on %s to %s",
             source.name, where, target.name, device, day, holder)
    ledger.renamed(track, named)
    return True


def _holds(path, sha256):
    return sha256 is None or files.sha256_of(path) == sha256


def _place(holder, device, track, tz):
    file_id = str(device) if holder is None else holder.file_id
    return {"unassigned": holder is None, "entrant": None if holder is None else holder.entrant,
            "file_id": file_id, "name": _renamed(track, file_id, device, tz)}


def _renamed(track, file_id, device, tz):
    """The track's name with `file_id` in front: only the File ID changes (the rest was made
    when it was planned, in the event's zone of the time), else a name made afresh."""
    name, old = track.get("name"), track.get("file_id")
    if isinstance(name, str) and isinstance(old, str) and name.startswith(f"{old}_{device}_"):
        renamed = f"{file_id}{name[len(old):]}"
        if naming.NAME.fullmatch(renamed):
            return renamed
    return naming.local_name(file_id, device, track["start"], tz)


def _place_of(track):
    return bool(track.get("unassigned")), track.get("file_id"), track.get("entrant")


def _move(source, target, sha256=None):
    """Give the file at `source` the name `target`, never overwriting; False when a file is in the way.

    With nothing at the old name, a file already at the new one is taken as this track's
    (an earlier run moved it and was killed before the ledger) only when it hashes as the
    ledger's `sha256`: a file removed by hand must not hand the ledger someone else's."""
    if source == target:
        return True
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except FileExistsError:
        if not (source.exists() and os.path.samefile(source, target)):
            # Nothing at the old name: an earlier run moved it and was killed before the ledger.
            return not source.exists() and _holds(target, sha256)
    except FileNotFoundError:
        if not target.exists():
            raise
        return _holds(target, sha256)      # moved by an earlier run killed before the ledger update
    os.unlink(source)
    files.fsync_dir(target.parent)
    files.fsync_dir(source.parent)
    return True
