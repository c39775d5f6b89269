"""Stage download: every wanted track, once, verified, never a partial file under its name.

For each device in the download queue (longest-waiting first; one worker per
device, threads.download devices at once across every download process):

    pending -> downloading
    for each wanted track in the ledger, in start order:
        not started if its bytes would leave less than checks.min_free_gb free
        (it stays wanted; the device gets a "disk" warning and is retried)
        stream it into <tracks>/<day>/.<name>.part, resuming that file when the
        device proves it honours Range, and never past the size logs.json gave
        (nor slower than network.min_rate, over each window and over the whole
        track: a trickle is an error like a stall)
        verify: that byte count, the device id in its header frame, and every
        OAO frame to the last byte
        fsync, rename to <tracks>/<day>/<name>, fsync the folder, record its sha256
    all verified -> logs.json read once more: the listing inspect planned from
                -> completed, "can be disconnected"; another listing (the
                device left and came back with a new track while it waited in
                the queue, unseen: disconnect only watches completed devices)
                -> connected, queued for inspect, which plans the new track
    a log the device is still writing (longer than listed): recording, never a
                failure; the device goes back to inspect, looked at again in
                a few seconds (jobs.track.recording)
    an error -> failed, address forgotten: detect finds the device again, and
                the .part lets the next round carry on where this one stopped
                (our own disk failing is an error too, and the run exits 1)

Why a dot-file beside the final name: a rename within one folder is atomic, so
whoever reads the tracks folder sees a whole verified track or nothing, and a
dot-name is what every sweep and reader treats as work in progress. The one
exception is explicit: a device that leaves while still writing a log gets its
complete frames kept under the final name, and the ledger says `partial`
(jobs.track.recording), until the whole track replaces it.

This module is the stage: which device, which tracks, and the device's
status before and after. Fetching a track (HTTP, verification, the rename,
the ledger) is jobs.track.fetch, imported when a run first has a device to serve.
"""

import json

from jobs import runner, spool
from jobs.spool import layout, state
from jobs.track import assign, ledger, recording


def step(ctx):
    assign_after_a_roster_edit(ctx)
    return runner.serve_queue(ctx, "download", download_device)


def assign_after_a_roster_edit(ctx):
    """Once per roster version (per run): rename the tracks on disk it gives to someone else
    (unassigned ones to the entrant it now names too): jobs.track.assign."""
    roster = ctx.roster()
    if roster is ctx.memory.get("assigned_with"):
        return
    for device_id in assign.devices_with_tracks_on_disk(ctx.spool):
        _assign(ctx, roster, device_id)
    ctx.memory["assigned_with"] = roster


def _assign(ctx, roster, device_id):
    try:
        assign.follow_roster(ctx.spool, ctx.cfg.paths.tracks, roster, ctx.cfg.tz, device_id,
                             ctx.device_log(device_id))
    except OSError as exc:
        ctx.device_log(device_id).error("tracks not renamed after the roster: %s", exc.strerror or exc)
    except state.LockTimeout as exc:
        ctx.device_log(device_id).error("tracks not renamed after the roster: %s", exc)


def download_device(ctx, claim):
    """Fetch every wanted track of one claimed device, then hand it on; then its files
    follow the roster (a track planned before a roster edit was fetched under the old name)."""
    _download_device(ctx, claim)
    _assign(ctx, ctx.roster(), claim.device)


def _download_device(ctx, claim):
    # "downloading" too: a claim taken over from a killed download process
    # comes back with the status its owner left.
    doc = state.transition(ctx.spool, claim.device, ("pending", "downloading"), "downloading", progress=None)
    if doc is None:
        return  # moved on meanwhile (failed, disconnected): not ours to download
    log = ctx.device_log(claim.device)
    wanted = sorted((dict(t, file=file) for file, t in doc["tracks"].items()
                     if isinstance(t, dict) and t.get("status") == ledger.WANTED),
                    key=lambda t: t.get("start") or 0)
    if not doc["address"]:
        state.fail(ctx.spool, claim.device, ("downloading",), "no address to download from", ctx.cfg.intervals.detect)
        log.error("no address to download from; detect will find it again")
        return
    # requests and urllib3 come with jobs.track.fetch: a tenth of a second a run under
    # cron would pay every minute with nothing to download.
    from jobs.track import fetch as fetching
    fetch = fetching.DeviceFetch.to(ctx, claim, doc["address"], log)
    track = None
    waiting = []   # tracks held back for want of disk space: they stay wanted
    try:
        for track in wanted:
            try:
                fetch.track(track)
            except fetching.NoRoom as exc:
                waiting.append(str(exc))
                log.warning("%s", exc)
        relisted = not waiting and listing_changed(ctx, claim.device, doc["address"], fetch.session)
    except spool.ClaimLost:
        log.warning("claim taken over by another worker; leaving the device to it")
        raise
    except runner.Stopping:
        state.transition(ctx.spool, claim.device, ("downloading",), "pending", progress=None)
        raise
    except fetching.FetchError as exc:
        recording.keep_partials(ctx, claim.device, log)   # it may have left: what it was still writing is kept
        state.fail(ctx.spool, claim.device, ("downloading",), f"{track['name']}: {exc}", ctx.cfg.intervals.detect)
        log.error("%s not downloaded: %s", track["name"], exc)
        return
    finally:
        fetch.session.close()
    if waiting:
        _wait_for_room(ctx, claim.device, waiting, log)
        return
    if recording.look_again(ctx, claim.device, ("downloading",), log):
        return   # a log still growing: inspect looks again in a few seconds; never "can be disconnected"
    if relisted:
        inspect_again(ctx, claim.device, log)
        return
    with state.update(ctx.spool, claim.device) as doc:
        if doc["status"] != "downloading":
            return  # another stage moved it on meanwhile; its word stands
        state.mark_completed(doc)
        doc["warnings"] = [w for w in doc["warnings"] if not (isinstance(w, dict) and w.get("kind") == "disk")]
        statuses = [t.get("status") for t in doc["tracks"].values() if isinstance(t, dict)]
    others = "".join(f", {statuses.count(status)} {status}"
                     for status in (ledger.DAMAGED, ledger.BAD) if status in statuses)
    log.info("all wanted tracks in (%d verified%s); can be disconnected", statuses.count(ledger.VERIFIED), others)


def listing_changed(ctx, device_id, address, session):
    """Whether logs.json now says something else than the listing inspect planned from (its cache).

    A device waits in the download queue while the workers serve others; if it
    leaves and comes back meanwhile with a new track, no stage sees it leave
    (disconnect watches completed devices only), and once "completed" it is
    never inspected again while it stays. A device that does not answer now
    is left to disconnect and detect, like any completed device that leaves.
    """
    from jobs.device.api import get_json
    from jobs.device import DeviceError

    try:
        planned = json.loads((layout.cache_dir(ctx.spool, device_id) / "logs.json").read_bytes())
    except FileNotFoundError:
        return False  # no listing kept (a ledger from before the cache): nothing to compare with
    except (OSError, ValueError):
        planned = None  # unreadable: another listing, as far as we can tell; inspect reads it and decides
    try:
        listed = get_json(session, address, ctx.cfg.network.port, "/logs.json", ctx.cfg)
    except DeviceError:
        return False
    return listed != planned


def inspect_again(ctx, device_id, log):
    """Its tracks are in but its listing changed: connected and queued for inspect (as detect does)."""
    with state.update(ctx.spool, device_id) as doc:
        if doc["status"] != "downloading":
            return  # another stage moved it on meanwhile; its word stands
        # The download succeeded: the failure streak ends, as it does when completed.
        state.set_status(doc, "connected", error=None, progress=None, retry={"failures": 0, "next": 0})
    # Queued once its state says connected; a crash in between is healed by detect's stranded requeue.
    spool.enqueue(ctx.spool, "inspect", device_id)
    log.info("wanted tracks in, but logs.json lists something new since it was inspected "
             "(it left and came back while it waited?): inspected again")


def _wait_for_room(ctx, device_id, waiting, log):
    """Tracks wait for disk space: a "disk" warning, failed (detect retries with its backoff), exit 1."""
    why = f"{len(waiting)} track{'s' if len(waiting) > 1 else ''} wait for disk space"
    with state.update(ctx.spool, device_id) as doc:
        others = [w for w in doc["warnings"] if not (isinstance(w, dict) and w.get("kind") == "disk")]
        doc["warnings"] = others + [{"kind": "disk", "text": text} for text in waiting]
        if doc["status"] == "downloading":
            state.mark_failed(doc, why, ctx.cfg.intervals.detect)
    # Our disk, not the device: the operator has to free space, so the run exits 1.
    ctx.local_error = f"{why} (checks.min_free_gb {ctx.cfg.checks.min_free_gb:g} GB on {ctx.cfg.paths.tracks})"
    log.error("%s; free some space: detect will find the device again", ctx.local_error)
