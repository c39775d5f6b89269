"""A track's entry in its device's ledger: the words for where it stands, and the only ways it moves.

A device's state (jobs.spool.state) keeps a ledger, `doc["tracks"]`: the device's
file path -> what we know of that track (its status, reason, failures counted,
sha256, final name, ...). Planning (jobs.track.naming.plan) makes the entries from
the device's listing. After that an entry changes only through the
transitions below, each called on the entry inside `state.update` of its
device, so under the device's lock, the way a device's status moves only
through jobs.spool.state.set_status. A transition that must not undo a newer word
says so and refuses (returns False): only a bad track is wanted again (by
`retry`), only a track still recording is kept partial.

The groups of statuses (on disk, settled, logged that day, ...) are named here
once: every module asks them by these names, never by a tuple of its own, so
a new status is added in one place. The entries are the JSON of a running
event: the words, and the fields each transition writes, are the ones always
written.
"""

import time

VERIFIED = "verified"     # on disk under its final name, its sha256 recorded: never fetched twice
DAMAGED = "damaged"       # on disk as the device holds it, byte for byte, though some frames fail
WANTED = "wanted"         # to be fetched
SKIPPED = "skipped"       # not to be fetched, with the reason (too slow, before the event, no longer listed...)
BAD = "bad"               # could not be fetched safely, or failed verification three times: a person looks
RECORDING = "recording"   # the device is still writing it (jobs.track.recording): fetched whole once it stops
PARTIAL = "partial"       # the device left while recording: its complete frames kept under the final name
STATUSES = (VERIFIED, DAMAGED, WANTED, SKIPPED, BAD, RECORDING, PARTIAL)

# The whole track is on disk under its final name with its sha256 (a damaged one is the device's own copy).
ON_DISK = (VERIFIED, DAMAGED)
# A file is under the track's final name: the whole track, or what was kept of one still recording.
WITH_FILE = (*ON_DISK, PARTIAL)
# Planning never touches such a track again (unless the device lists another track at its path).
SETTLED = (VERIFIED, DAMAGED, BAD)
# A log still being written, and what was kept of it.
GROWING = (RECORDING, PARTIAL)
# Still to come from the device: a track that stops being listed is then skipped, no longer on the device.
TO_COME = (WANTED, RECORDING)

# Why a track is recording, on its tile: what the team can do about it.
STILL_RECORDING = "still recording: stop the device to finish its session"
# The tracks that count as logged on their day: every status but skipped, in the boards' order.
LOGGED = (VERIFIED, DAMAGED, WANTED, BAD, RECORDING, PARTIAL)

BAD_AFTER = 3            # verification failures in a row before a track is given up
SUSPECTS_KEPT = 4        # sha256 of complete bodies that failed, kept to recognise the device's own damage
# The fields that say where a track's file is and whose it is: a rename changes these and nothing else.
PLACE = ("unassigned", "entrant", "file_id", "name")


def kept_sha256(entry):
    """The sha256 of the file a track has under its final name, or None if it has none:
    verified and damaged tracks have theirs, a partial one (the device left while recording) its kept part's."""
    if entry.get("status") in ON_DISK:
        return entry.get("sha256") or None
    kept = entry.get("partial")
    if entry.get("status") == PARTIAL and isinstance(kept, dict):
        return kept.get("sha256") or None
    return None


def _move(entry, status, **fields):
    # The one place a track's status is written: a word the readers do not know would strand the track.
    assert status in STATUSES, status
    entry.update(status=status, **fields)


def skipped(entry, reason):
    """Not to be fetched, and why (planning's word, or a wanted track no longer on the device)."""
    _move(entry, SKIPPED, reason=reason)


def verified(entry, sha256, **found):
    """Fetched whole and verified, under its final name: the failure count ends, and what was kept
    of it while it was still recording (`partial`) is replaced. `found`: its figures."""
    _move(entry, VERIFIED, sha256=sha256, verified_at=time.time(), failures=0, reason=None, **found)
    entry.pop("partial", None)


def damaged(entry, sha256, reason, damage, **found):
    """The device's own copy kept byte for byte, though some frames fail; `damage` says where.
    `found`: the figures of its intact frames."""
    _move(entry, DAMAGED, sha256=sha256, verified_at=time.time(), reason=reason, damage=damage, failures=0,
          **found)


def failure_counted(entry, why, give_up=False):
    """A verification failure in a row; the BAD_AFTER-th (or one that cannot be retried: give_up)
    marks the track bad. Returns the count."""
    entry["failures"] = entry.get("failures", 0) + 1
    if give_up or entry["failures"] >= BAD_AFTER:
        _move(entry, BAD, reason=why)
    return entry["failures"]


def suspect_seen(entry, sha256):
    """A complete body of the track failed with this sha256: True when an earlier one gave the same
    bytes (the device's own damage), else it is remembered (the latest SUSPECTS_KEPT) and False."""
    suspects = entry.get("suspects") or []
    if sha256 in suspects:
        return True
    entry["suspects"] = (suspects + [sha256])[-SUSPECTS_KEPT:]
    return False


def wanted_again(entry):
    """A bad track is fetched again (`retry`), its failures forgotten. Refused (False) for any other."""
    if entry.get("status") != BAD:
        return False
    _move(entry, WANTED, failures=0, reason=None)
    return True


def still_recording(entry, reason, since=None):
    """The device is still writing the track: recording, no failure counted. False when it already
    was (its `recording_since` stays the first one's). `since`: when this was first seen."""
    if entry.get("status") == RECORDING:
        return False
    _move(entry, RECORDING, reason=reason)
    if since is not None:
        entry.setdefault("recording_since", since)
    return True


def follow_growing(track, old):
    """The ledger track for a log that was recording (or kept partial) at the last look
    (jobs.track.naming.plan: `track` is what planning decided from this listing).

    Still growing and without a summary: recording, with the new size. The same size as at the
    last look, or a summary: as planned (wanted, fetched as usual). What was
    kept under the final name (`partial`) is carried until the whole track
    replaces it.
    """
    kept = {key: old[key] for key in ("partial", "recording_since") if old.get(key)}
    track = {**track, **kept}
    if track["status"] != WANTED or track.get("summary") or not track.get("size"):
        return track
    if track["size"] > (old.get("size") or 0):
        still_recording(track, STILL_RECORDING)
    return track


def partial_kept(entry, kept, reason):
    """The device left while recording: `kept` ({bytes, last_fix, sha256, ...}) is under the final
    name. Only from recording (False otherwise): a track fetched whole meanwhile is not made partial."""
    if entry.get("status") != RECORDING:
        return False
    # last_fix: where the boards' hours end for it, as for a verified log without a summary.
    _move(entry, PARTIAL, partial=kept, last_fix=kept["last_fix"], reason=reason)
    return True


def renamed(entry, place):
    """The track's file has the name `place` gives it (its PLACE fields): its entrant's, or unassigned."""
    entry.update({key: place[key] for key in PLACE})


def kept_aside(entry, place, why):
    """Its frames do not show it is this device's: renamed to `place` (unassigned) and held for a person."""
    renamed(entry, place)
    entry.update(identity=why, held=f"{why}: kept aside")


def identity_not_checked(entry, why):
    """Its frames could not say whose it is: kept as the device's, and why it was not checked."""
    entry["identity"] = why


def copied(entry, place, sha256):
    """The replica holds this very file at `place` (jobs.stages.replicate)."""
    entry["replica"] = {"path": place, "sha256": sha256, "at": time.time()}
