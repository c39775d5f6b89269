"""A track the device is still writing: `recording`, then fetched whole; `partial` if the device leaves first.

Teams hand devices back still logging. The current log then grows between
logs.json and the download, so the body is longer than the listed size: that
is not a failure, and nothing is ever marked bad for growing. The real logs
show what such a log looks like: no summary (zeros) and a size that grows.

    recording  the device sent more than logs.json listed for a log without a
               summary. The bytes up to the listed size stay in the track's
               .part; the failures counter does not move. Inspect reads
               logs.json again every LOOK_S while the device stays: when the
               size is the same on two looks, or the summary appears, the
               track is wanted again and fetched as usual (resuming the .part).
    partial    the device left while recording. The .part's leading complete,
               intact frames (checked one by one) are copied under the final
               name, and the ledger says so (`partial`: bytes, last fix), so
               no partial file carries a final name unnoticed. The whole track
               replaces it when the device lists it finished.

Planning (follow) is a pure function; mark, look_again and keep_partials
write the ledger under the device's state lock like every other stage, through
jobs.track.ledger's transitions (still_recording, partial_kept).
"""

import hashlib
import os
import time

from jobs import spool
from jobs.device import documents
from jobs.spool import files, layout, locks, state
from jobs.track import ledger, naming

LOOK_S = 5.0    # how soon a device with a log still growing is looked at again
TILE = ledger.STILL_RECORDING


class StillRecording(Exception):
    """The device sent more than logs.json listed for a log without a summary: it is still writing it."""


def grows(track, answer, have):
    """Whether `answer` is a log still being written: no summary in logs.json and the
    device announcing a longer file than it listed (a 200, or a 206 from `have`)."""
    if track.get("summary") is not False:
        return False   # a finished log does not grow: a longer body is a lie, counted as before
    total = announced_total(answer, have)
    return total is not None and total > track["size"]


def announced_total(answer, have):
    """The file length the answer announces: a 200's Content-Length, a 206's
    Content-Range total when the range starts at `have`; None otherwise."""
    if answer.status_code == 200:
        text = answer.headers.get("Content-Length", "")
    elif answer.status_code == 206 and have:
        given = answer.headers.get("Content-Range", "").strip()
        first, _, total = given.removeprefix("bytes ").partition("/")
        if not given.startswith("bytes ") or first.partition("-")[0] != str(have):
            return None
        text = total
    else:
        return None
    # isdigit() alone takes '²' (int() refuses it), and int() refuses 5,000 digits.
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def mark(ctx, device_id, track, log):
    """The device is still writing `track`: recording in the ledger, no failure counted.

    Said as soon as the answer's headers show it (the bytes up to the listed
    size still come), so a device that leaves mid-body keeps them as partial.
    """
    with state.update(ctx.spool, device_id) as doc:
        entry = doc["tracks"].get(track["file"])
        new = entry is not None and ledger.still_recording(entry, TILE, since=time.time())
        doc["progress"] = None
    if new:
        log.info("%s is still being written on the device (it grew past the %d bytes logs.json gave): %s",
                 track["name"], track["size"], TILE)


def recording(tracks):
    """The tracks of a device's ledger (doc["tracks"]) still recording."""
    return [t for t in tracks.values() if isinstance(t, dict) and t.get("status") == ledger.RECORDING]


def look_again(ctx, device_id, expected, log):
    """A device whose log is still growing: back to connected and looked at again in LOOK_S.

    Only from one of `expected` (compare and set). Returns whether it was.
    Queued once its state says connected, as detect does: inspect drops an
    item whose device is not connected. The item's place in line is LOOK_S
    ahead: the runner takes no item before its time.
    """
    with state.update(ctx.spool, device_id) as doc:
        growing = recording(doc["tracks"])
        if doc["status"] not in expected or not growing:
            return False
        state.set_status(doc, "connected", error=None, progress=None)
    spool.enqueue(ctx.spool, "inspect", device_id, enqueued=time.time() + LOOK_S)
    log.debug("%d track%s still recording; looking again in %.0f s", len(growing),
              "" if len(growing) == 1 else "s", LOOK_S)
    return True


def keep_partials(ctx, device_id, log):
    """The device left while recording: keep each recording track's complete frames as `partial`."""
    for file, track in state.read(ctx.spool, device_id)["tracks"].items():
        if not (isinstance(track, dict) and track.get("status") == ledger.RECORDING):
            continue
        try:
            final = naming.final_path(ctx.cfg.paths.tracks, track)
            kept = _keep_frames(layout.part_file(final), final, device_id, _kept_bytes(track))
        except (OSError, ValueError) as exc:
            log.error("%s: nothing kept of a track still recording: %s", track.get("name"), exc)
            continue
        if kept is None:
            continue
        with state.update(ctx.spool, device_id) as doc:
            entry = doc["tracks"].get(file)
            if entry is None or not ledger.partial_kept(entry, kept, partial_reason(kept, ctx.cfg.tz)):
                continue
        log.warning("%s kept as partial: %s", track["name"], partial_reason(kept, ctx.cfg.tz))


def partial_reason(kept, tz):
    """'the device left while recording: 1,234,567 bytes kept up to the last complete frame (last fix 14:02:05)'"""
    last = kept.get("last_fix")
    when = f" (last fix {naming.local_start(last, tz):%H:%M:%S})" if isinstance(last, int) else ""
    return f"the device left while recording: {kept['bytes']:,} bytes kept up to the last complete frame{when}"


def _kept_bytes(track):
    kept = track.get("partial")
    return kept.get("bytes", 0) if isinstance(kept, dict) and isinstance(kept.get("bytes"), int) else 0


def _keep_frames(part, final, device_id, kept_before=0):
    """Copy the .part's leading complete, intact frames under `final`: {bytes, last_fix, sha256, kept_at}.

    None when there is no .part, not one whole fix in it, its header names
    another device, or it holds no more than the `kept_before` bytes already
    kept (a download that started again from 0 must not shrink what is
    kept). The .part is locked while it is read (a download may be writing
    it) and stays for resume.
    """
    from jobs.track import oao   # numpy: only once a device has left with a log still growing

    fd = locks.open_locked(part, os.O_RDONLY) if part.exists() else None
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    owner = oao.header_device(data)
    if owner is not None and owner != device_id & 0xFFFF:   # the header holds the id's low 16 bits
        return None
    length, found = intact_prefix(data)
    if not found or found.get("last_ms") is None or length <= kept_before:
        return None
    files.atomic_write(final, data[:length])
    # The frames' times bounded where they enter (jobs.device.documents): a fix dated 2**62 ms is no time at all.
    return {"bytes": length, "last_fix": documents.frame_time(found["last_ms"]),
            "first_fix": documents.frame_time(found["first_ms"]),
            "sha256": hashlib.sha256(data[:length]).hexdigest(), "kept_at": time.time()}


def intact_prefix(data):
    """(length, what integrity.Verifier found in it) of the leading whole, intact frames of `data`."""
    from jobs.track import integrity, oao

    verifier = integrity.Verifier()
    try:
        verifier.feed(data)
        return len(data), verifier.finish()
    except oao.OAOError as exc:
        length = exc.offset or 0
    if length == 0:
        return 0, None
    again = integrity.Verifier()
    again.feed(data[:length])
    return length, again.finish()
