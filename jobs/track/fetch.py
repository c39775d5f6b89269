"""Bringing one claimed device's tracks in: fetch, verify, rename into place, record.

The download stage (jobs.stages.download) claims a device and hands each of
its wanted tracks to a DeviceFetch. This is the half of the stage that talks
HTTP (jobs.device.api, and with it requests and urllib3: a tenth of a second to
import), so it is a module of its own, imported only by a run that has a
device to serve: an idle download run under cron does not pay for it.
"""

import datetime as dt
import errno
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass

from jobs import config, device, runner, spool, units
from jobs.device import api, documents
from jobs.spool import files, layout, locks, state
from jobs.track import figures, hand_in, ledger, recording, integrity, naming
from jobs.log import quoted
from jobs.track.integrity import BadData, Damaged

CHUNK = 1024 * 1024      # the most one read takes from the socket: more than GATHER
# Over WiFi a read brings one TCP segment (~1.5 KB), and each read costs as much
# Python, and as many thread switches, as 512 KB: 700 reads a second at 1 MiB/s.
# After a smaller piece the worker pauses while the socket gathers about GATHER
# bytes: never more than half its receive buffer holds (api.gather_limit: a
# longer pause would slow the device to a buffer a pause), never longer than the
# rest of the track should take, at most PAUSE_MAX_S: ~2 reads a second a
# device. Reads of 64 KB (the old pauses of at most 0.1 s) cost 2x the CPU per
# GB at 1 MiB/s (CHANGES.md, issue 20; BENCHMARKS.md section 5 today).
GATHER = 512 * 1024
PAUSE_MAX_S = 0.5
PROGRESS_EVERY_S = 5.0   # the dashboard looks every few seconds; each is a state write (an fsync)
LEASE_EVERY_S = 5.0      # renew the claim well inside any sane spool.lease_s


class FetchError(Exception):
    """This round could not bring the track in; the message says why."""


class NoRoom(Exception):
    """Fetching this track would leave less free space than checks.min_free_gb: it waits, wanted."""


@dataclass
class DeviceFetch:
    """Bringing one claimed device's tracks in: what every step of a fetch needs.

    Whatever goes wrong leaves a track's fetch as one of: BadData (the device's
    bytes are not the track: counted, the third time marks it bad), FetchError
    (this round failed: the network, named by jobs.device.api, or our own disk),
    NoRoom, spool.ClaimLost or runner.Stopping. A network error becomes a FetchError
    where it happens (_get, _copy_body), so an OSError met later is our disk's.
    """

    ctx: runner.Context
    claim: spool.Claim
    session: object             # a requests.Session from api.session()
    base_url: str               # http://<address>:<port>: a track's path goes after it
    log: object                 # the device's logger

    @classmethod
    def to(cls, ctx, claim, address, log):
        """A fetch of the claimed device's tracks from `address`, with a session of its own."""
        return cls(ctx, claim, api.session(), device.base_url(address, ctx.cfg.network.port), log)

    @property
    def device(self):
        return self.claim.device

    def track(self, track):
        """Bring one track to <tracks>/<day>/<name>, verified, and record it."""
        ctx, log = self.ctx, self.log
        if ctx.stop.is_set():
            raise runner.Stopping()
        problem = _ledger_problem(track)
        if problem:
            _record_failure(ctx, self.device, track["file"], problem, give_up=True)
            log.error("track %s marked bad: %s", quoted(track.get("file")), problem)
            return
        final = naming.final_path(ctx.cfg.paths.tracks, track)
        folder = final.parent
        part = layout.part_file(final)
        if _in_place(ctx, self.device, track, final, log):
            return
        for fetch in (1, 2):
            started = time.monotonic()
            try:
                folder.mkdir(parents=True, exist_ok=True)
                _make_room(ctx, folder, part, track)
                sha256, damage, fetched, check = self._fetch_into_place(track, part, final)
                files.fsync_dir(folder)
            except recording.StillRecording:   # never a failure: the .part keeps what was listed
                recording.mark(ctx, self.device, track, log)
                return
            except BadData as exc:
                if isinstance(exc, Damaged) and fetch == 1:
                    # A second complete fetch tells damage in transfer from damage on the device.
                    log.warning("%s does not verify (%s); fetching it again to compare", track["name"], exc)
                    continue
                why = f"{exc}; two complete fetches differ" if isinstance(exc, Damaged) else str(exc)
                _bad_data(ctx, self.device, track, why, log)
                return
            except OSError as exc:
                # Our disk, not the device. Only this track's own .part was deleted (on a
                # full disk the state and the log need the room more); the other workers'
                # are theirs. The device retries with its backoff, the run exits 1.
                ctx.local_error = _disk_cause(exc, exc.filename or folder)
                raise FetchError(ctx.local_error) from None
            if damage:
                _record_damaged(ctx, self.device, track, final, sha256, damage, log)
            else:
                _record_verified(ctx, self.device, track["file"], sha256, check, log)
                log.info("%s", _summary(track, time.monotonic() - started, fetched))
            return

    def _fetch_into_place(self, track, part, final):
        """Fetch into the locked .part, verify, rename to `final`:
        (sha256, damage or None, bytes fetched, the TrackCheck: the figures computed from its frames).

        The .part is renamed or unlinked by name only while its lock is held: the
        name is then still this file's, not one another worker has made since.
        """
        with _locked_part(part) as out:
            try:
                check, fetched = self._fetch(track, out)
                sha256, damage = _verify_or_keep(self.ctx, self.device, out, check, track)
                target = final if damage else _identity_place(self.ctx, self.device, track, check, final)
                out.flush()
                os.fsync(out.fileno())  # the bytes are on disk before the name says "done"
                os.rename(part, target)
            except (BadData, OSError):
                # Not the bytes, or our disk failed: thrown away. (After a network
                # error, a FetchError, what arrived is kept for resume.)
                _discard(part)
                raise
        return sha256, damage, fetched, check

    def _fetch(self, track, out):
        """Fill `out` with the track's bytes; (its TrackCheck, bytes fetched now)."""
        size = track["size"]
        have = os.fstat(out.fileno()).st_size
        if have == size and not track.get("recording_since"):
            return self._check_file(out), 0  # complete before a stop or a kill: just verify it
        if have >= size:
            # Longer: start over. A log that was still growing whose size stood still on two
            # looks: the device must say the file is that long now (jobs.track.recording), so its
            # last byte is asked for again: one byte, not the whole log, each time it pauses.
            have = size - 1 if have == size else 0
        # The whole track's deadline: a device just above the window's floor, or
        # pausing and bursting, must not hold a worker for hours either.
        min_rate = self.ctx.cfg.network.min_rate
        deadline = time.monotonic() + size / min_rate + api.TRACK_GRACE_S
        # The same deadline and rate floor, on the socket: a read blocked inside
        # the HTTP library (chunk lines, trailers) ends there too.
        with api.answer_within(deadline - time.monotonic() + 1.0,
                                  f"not all {size} bytes within {size / min_rate + api.TRACK_GRACE_S:.0f} s "
                                  f"(size / network.min_rate + {api.TRACK_GRACE_S:g} s)",
                                  api.RATE_WINDOW_S, f"no bytes of the body for {api.RATE_WINDOW_S:g} s "
                                  f"(at least {min_rate} bytes/s needed)") as guard, \
                self._get(track["file"], {"Range": f"bytes={have}-"} if have else {}) as answer:
            guard.moved(time.monotonic())
            growing = recording.grows(track, answer, have)   # then only the listed bytes are taken
            if growing:
                recording.mark(self.ctx, self.device, track, self.log)
            have = (have if answer.status_code == 206 else 0) if growing else \
                _start_at(answer, have, size, out, track["name"], self.log)
            out.truncate(have)
            check = self._check_file(out, have)  # a resumed file's checks cover what it had
            received = self._copy_body(answer, out, check, track, have, deadline)
        if received < size:
            raise FetchError(f"body ended after {received} of {size} bytes")
        return check, received - have

    def _check_file(self, out, length=None):
        """A TrackCheck fed what the .part holds, computing the figures in the same pass as the checks."""
        return integrity.check_file(out, length, self.device, figures=self.ctx.cfg.checks.max_speed_accuracy)

    def _get(self, file, headers):
        """The device's streamed answer for `file`; FetchError when none comes."""
        net = self.ctx.cfg.network
        try:
            return self.session.get(self.base_url + file, headers=headers, stream=True, allow_redirects=False,
                                    timeout=(net.track_connect_timeout, net.track_read_timeout))
        except api.NETWORK_ERRORS as exc:
            raise FetchError(api.network_cause(exc, net)) from None

    def _copy_body(self, answer, out, check, track, received, deadline):
        """Append the body to `out` chunk by chunk; the file's length when the body ends."""
        size, min_rate = track["size"], self.ctx.cfg.network.min_rate
        fetched_from = received
        started, started_mono = time.time(), time.monotonic()   # the record's, the rate's (no clock step in it)
        next_progress = next_lease = 0.0
        window = (time.monotonic(), received)  # the rate floor's window: its start and the length then
        gather = api.gather_limit(answer, GATHER)   # a pause must not outlast the socket's buffer
        body = api.pieces(answer, CHUNK)
        while True:
            try:
                chunk = next(body, None)
            except api.NETWORK_ERRORS as exc:  # what arrived stays in the .part for resume
                cause = api.network_cause(exc, self.ctx.cfg.network)
                raise FetchError(f"{cause} after {received} of {size} bytes") from None
            if chunk is None:
                break
            if received + len(chunk) > size:
                if track.get("summary") is False:   # a log still being written: keep what was listed
                    out.write(chunk[:size - received])
                    out.flush()
                    raise recording.StillRecording(track["name"])
                raise BadData(f"the device sent more than the {size} bytes logs.json announced")
            check.take(chunk)
            out.write(chunk)
            received += len(chunk)
            if self.ctx.stop.is_set():
                out.flush()
                os.fsync(out.fileno())  # what we keep for resume is really on disk
                raise runner.Stopping()
            now = time.monotonic()
            window = _above_the_floor(window, now, received, size, min_rate)
            if now > deadline:
                raise FetchError(f"too slow: not all {size} bytes within "
                                 f"{size / min_rate + api.TRACK_GRACE_S:.0f} s "
                                 f"(size / network.min_rate + {api.TRACK_GRACE_S:g} s) after {received} bytes")
            if now >= next_lease:
                spool.renew(self.claim)
                next_lease = now + LEASE_EVERY_S
            if now >= next_progress:
                _record_progress(self.ctx, self.device, track, received, received - fetched_from, started)
                next_progress = now + PROGRESS_EVERY_S
            if len(chunk) < gather and received < size:   # the last piece in: no wait for it to be checked
                rate = (received - fetched_from) / max(time.monotonic() - started_mono, 1e-3)
                self.ctx.stop.wait(gather_pause(size - received, rate, gather))
        return received


def gather_pause(left, rate, gather=GATHER):
    """Seconds to let the socket gather the next `gather` bytes, `left` bytes still
    to come at `rate` bytes/s: never longer than they should take, so the last
    ones are not left waiting, and at most PAUSE_MAX_S."""
    return min(PAUSE_MAX_S, min(gather, left) / max(rate, 1.0))


def _make_room(ctx, folder, part, track):
    """NoRoom when the rest of the track would leave less than checks.min_free_gb free.

    A device announcing a terabyte with a matching Content-Length would
    otherwise fill the disk, and every worker's next write would fail.
    """
    try:
        have = os.stat(part).st_size
    except FileNotFoundError:
        have = 0
    missing = track["size"] - min(have, track["size"])
    free = shutil.disk_usage(folder).free
    keep = ctx.cfg.checks.min_free_gb
    if files.short_of_space(free, missing, keep):
        raise NoRoom(f"{track['name']} not started: it needs {missing / 1e9:.2f} GB, {free / 1e9:.1f} GB are free "
                     f"on {folder}, and checks.min_free_gb keeps {keep:g} GB free")


def _bad_data(ctx, device_id, track, why, log):
    """Count a body that was not the track; FetchError until the third, which marks it bad."""
    failures = _record_failure(ctx, device_id, track["file"], why)
    if failures < ledger.BAD_AFTER:
        raise FetchError(f"verification failed ({failures} of {ledger.BAD_AFTER}): {why}")
    log.error("%s marked bad after %d failed verifications: %s", track["name"], failures, why)


def _verify_or_keep(ctx, device_id, out, check, track):
    """(sha256, None) for a verified body; (sha256, the damage) for a body damaged on the device.

    A complete body whose frames fail is kept only when an earlier complete
    fetch gave the very same bytes: then it is the device's own copy, the only
    one of that session. Otherwise Damaged: fetch it again.
    """
    try:
        return _verify(out, check, track), None
    except Damaged as exc:
        if _seen_before(ctx, device_id, track["file"], exc.sha256):
            return exc.sha256, str(exc)
        raise


def _seen_before(ctx, device_id, file, sha256):
    """Whether an earlier complete fetch of `file` gave `sha256`; remembers this one."""
    with state.update(ctx.spool, device_id) as doc:
        entry = doc["tracks"].get(file)
        return entry is not None and ledger.suspect_seen(entry, sha256)


def _ledger_problem(track):
    """Why this ledger entry cannot be fetched safely, or None.

    Inspect built the name and day from the roster and checked the file path;
    they are checked again because they become a local path and a URL here.
    """
    if not isinstance(track.get("name"), str) or not naming.NAME.fullmatch(track["name"]):
        return f"local name {quoted(track.get('name'))} is not a plain file name"
    if not isinstance(track.get("day"), str) or not naming.DAY.fullmatch(track["day"]):
        return f"day {quoted(track.get('day'))} is not YYYYMMDD"
    size = track.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        return f"size {quoted(size)} from logs.json is not a positive number of bytes"
    return device.track_path_problem(track.get("file"))


def _in_place(ctx, device_id, track, final, log):
    """True when there is nothing to fetch: no longer wanted, or already renamed into place.

    A file under a final name was verified before its rename (nothing else
    writes final names), so a process killed between that rename and the
    ledger update left a good track: check it again and record it, unfetched.
    """
    current = state.read(ctx.spool, device_id)["tracks"].get(track["file"], {})
    if current.get("status") != ledger.WANTED:
        return True  # verified (or given up) meanwhile: never fetched again
    if not final.exists():
        return False
    if current.get("partial") and final.stat().st_size != track["size"]:
        return False   # what was kept while it was still recording: the whole track replaces it
    try:
        with open(final, "rb") as f:
            check = integrity.check_file(f, device_id=device_id, figures=ctx.cfg.checks.max_speed_accuracy)
            sha256 = _verify(f, check, track)
        aside = _identity_place(ctx, device_id, track, check, final)
    except Damaged as exc:
        if exc.sha256 not in (current.get("suspects") or []):
            log.warning("%s is in place but does not verify (%s); fetching it again", track["name"], exc)
            return False
        # Only a twice-fetched, identical body is renamed into place: this is the device's copy.
        _record_damaged(ctx, device_id, track, final, exc.sha256, str(exc), log)
        return True
    except (BadData, OSError) as exc:
        log.warning("%s is in place but does not verify (%s); fetching it again", track["name"], exc)
        return False
    if aside != final:
        os.rename(final, aside)
    _record_verified(ctx, device_id, track["file"], sha256, check, log)
    log.info("%s was already in place and verifies; recorded without fetching", track["name"])
    return True


@contextmanager
def _locked_part(part):
    """The .part file, open for update and flock'ed: one writer per track.

    The claim already gives a device to one worker; the lock covers the rare
    claim taken over from a worker that hung and then woke up. The name is
    checked again once the lock is held: the file opened may meanwhile have
    been renamed into place or unlinked by the worker that held it, and this
    one must not write into a final name or an orphan.
    """
    fd = locks.open_locked(part, os.O_RDWR | os.O_CREAT)
    if fd is None:
        raise spool.ClaimLost()
    # Unbuffered beyond a piece: what arrived is in the page cache at once, so a
    # killed worker's successor resumes from the last byte read, not 256 KB earlier.
    with os.fdopen(fd, "r+b") as out:
        yield out


def _start_at(answer, have, size, out, name, log):
    """Where the answer's body goes in the .part: `have` for a proven resume, else 0."""
    status = answer.status_code
    if status == 200:
        if have:
            log.info("%s: the device ignored Range; starting over", name)
        declared = answer.headers.get("Content-Length", "")
        # Shorter is a lie too: the body would end early every round and the
        # device's later tracks would wait for it for ever.
        # isdigit() alone takes '²' (int() refuses it) and int() refuses 5,000 digits.
        if declared and not (declared.isascii() and declared.isdigit() and len(declared) <= 18
                             and int(declared) == size):
            raise BadData(f"the device announces {declared[:20]} bytes, logs.json says {size}")
        return 0
    if status == 404:
        raise BadData("logs.json lists it but the device answers HTTP 404")
    if status == 206 and have:
        expected = f"bytes {have}-{size - 1}/{size}"
        given = answer.headers.get("Content-Range", "")
        if given.strip() == expected:
            log.info("resuming %s at byte %d of %d", name, have, size)
            return have
        out.truncate(0)  # this device's ranges cannot be trusted: the next round starts over
        raise FetchError(f"resume refused: Content-Range {quoted(given)}, expected {expected!r}")
    if status == 416:
        out.truncate(0)
    raise FetchError(f"HTTP {status}")


def _above_the_floor(window, now, received, size, min_rate):
    """The next window once this one is over; FetchError if it brought too little.

    Each read has its timeout, but a device sending a byte a second never trips
    it: averaged over a window, less than network.min_rate gives the track up for
    this round (what came stays in the .part for resume).
    """
    start, at_start = window
    elapsed = now - start
    if elapsed < api.RATE_WINDOW_S:
        return window
    rate = (received - at_start) / elapsed
    if rate < min_rate:
        raise FetchError(f"too slow: {rate:.0f} bytes/s over {elapsed:.0f} s (at least {min_rate} needed) "
                         f"after {received} of {size} bytes")
    return now, received


def _verify(f, check, track):
    """The byte count logs.json gave, on disk and as checked, and every OAO frame: the sha256."""
    f.flush()
    on_disk = os.fstat(f.fileno()).st_size
    if on_disk != track["size"]:
        raise BadData(f"{on_disk} bytes on disk, logs.json says {track['size']}")
    return check.finish(track["size"])


def _discard(part):
    try:
        os.unlink(part)
    except (FileNotFoundError, NotADirectoryError):  # never made: its folder could not be
        pass


def _record_progress(ctx, device_id, track, received, fetched, started):
    now = time.time()
    # The folder not synced: a crash may lose a progress figure (the next replaces it), never the file.
    with state.update(ctx.spool, device_id, sync=False) as doc:
        if doc["status"] == "downloading":
            doc["progress"] = {"file": track["file"], "name": track["name"], "bytes": received,
                               "total": track["size"], "rate": round(fetched / max(now - started, 1e-3)),
                               "started": started, "updated": now}


def _record_verified(ctx, device_id, file, sha256, check, log):
    """The track is in place and verified; `check` (its TrackCheck) computed its figures in the same pass."""
    windows = _windows(ctx, device_id, file)
    # With session windows the whole log's figures only check the device's own: the rest rank inside.
    found = check.figures_result(figures.CHECKED if windows else None)
    if found is None:
        log.warning("%s: figures not computed from its frames: %s", file, check.figures_failed)
    inside = _session_fields(ctx, file, check.fixes(), windows, log) if found is not None else {}
    verdict, why = check.identity()
    with state.update(ctx.spool, device_id) as doc:
        entry = doc["tracks"].get(file)
        if entry is not None:
            ledger.verified(entry, sha256, **_figure_fields(found), **inside)
            if verdict == "aside":
                ledger.kept_aside(entry, _aside(ctx, device_id, entry), why)
                doc["warnings"] = [*doc["warnings"], identity_warning(entry)]
            elif verdict == "not checked":
                ledger.identity_not_checked(entry, why)
        doc["progress"] = None
    if verdict == "aside":
        log.warning("%s: %s: not taken as this device's, kept aside as %s/%s for a person to judge",
                    quoted(file), why, layout.UNASSIGNED, (entry or {}).get("name"))
    elif verdict == "not checked":
        log.info("%s: %s (kept as the device's)", quoted(file), why)


def identity_warning(track):
    """The device's warning about a track kept aside: the dashboard lists it for a person."""
    return {"kind": "identity", "text": f"{track.get('name')}: {track.get('identity')}: not taken as this "
                                        f"device's, kept aside in {layout.UNASSIGNED}/ for a person to judge"}


def _aside(ctx, device_id, track):
    """Where a track whose identity was stepped round is kept: unassigned, under the device's own id."""
    return {"unassigned": True, "entrant": None, "file_id": str(device_id),
            "name": naming.local_name(str(device_id), device_id, track["start"], ctx.cfg.tz)}


def _identity_place(ctx, device_id, track, check, final):
    """`final`, or the place aside when the track's frames do not show it is this device's."""
    if check.identity()[0] != "aside":
        return final
    aside = naming.final_path(ctx.cfg.paths.tracks, {**track, **_aside(ctx, device_id, track)})
    if aside != final and aside.exists():
        raise BadData(f"{check.identity()[1]}: to be kept aside as {aside.name}, but a file is already there")
    aside.parent.mkdir(parents=True, exist_ok=True)
    return aside


# (ledger field, jobs.track.figures category) of the figures ranked inside the sessions.
SESSION_FIELDS = (("best2s", "2s"), ("best10s", "10s"), ("best5x10", "5x10s"), ("best500", "500m"),
                  ("best1852", "1852m"), ("best1h", "1h"), ("alpha500", "alpha500"))


def _windows(ctx, device_id, file):
    """[(label, start s, end s)] of the session windows of the day the track belongs to."""
    entry = (state.read(ctx.spool, device_id).get("tracks") or {}).get(file) or {}
    try:
        day = dt.datetime.strptime(str(entry.get("day")), layout.TRACK_DAY).date()
    except ValueError:
        return []
    return [(_window_label(start, end, ctx.cfg.tz), start, end) for start, end in config.session_windows(ctx.cfg, day)]


def _session_fields(ctx, file, fixes, windows, log):
    """{"verdict": the data's quality at hand-in (figures.verdict), "session": {field: {"speed",
    "start", "end", "window"}}, "session_windows": [labels]}: the community's figures of the fixes
    inside the track's day's session windows (and the course), from its `fixes`; no
    "session" when no window is set for that day."""
    cfg = ctx.cfg
    fields = {}
    try:
        fields["verdict"] = _verdict_fields(figures.verdict(fixes, windows, cfg.checks.max_speed_accuracy,
                                                            cfg.checks.max_filtered_share))
        if fields["verdict"]["flagged"]:
            log.warning("%s: worth a look before the sailor leaves: %s", file,
                        hand_in.verdict_text(fields["verdict"], cfg.tz))
    except Exception as exc:  # the frames are the device's: never a reason to lose its track
        log.warning("%s: no verdict on its data: %s: %s", file, type(exc).__name__, exc)
    if not windows:
        return fields
    try:
        best = figures.in_sessions(fixes, windows, cfg.event.course, cfg.checks.max_speed_accuracy)
    except Exception as exc:  # the frames are the device's: never a reason to lose its track
        log.warning("%s: figures inside the sessions not computed: %s: %s", file, type(exc).__name__, exc)
        return fields
    shown = {}
    for field, key in SESSION_FIELDS:
        value = best.get(key)
        speed = documents.frame_speed(value["mm_s"]) if value else None
        if speed:
            shown[field] = {"speed": round(speed, 3), "start": documents.frame_time(value["start_ms"]),
                            "end": documents.frame_time(value["end_ms"]), "window": value["window"]}
    return {**fields, "session": shown, "session_windows": [label for label, _, _ in windows]}


def _verdict_fields(found):
    """The verdict for the ledger, its device numbers bounded (jobs.device.documents)."""
    gap = found["longest_gap"]
    return {"fixes": found["fixes"], "filtered": found["filtered"], "reasons": found["reasons"],
            "longest_gap": None if gap is None else {"s": gap["s"], "start": documents.frame_time(gap["start_ms"]),
                                                    "end": documents.frame_time(gap["end_ms"])},
            "median_satellites": found["median_satellites"], "median_speed_accuracy": found["median_speed_accuracy"],
            "suspect": [{"why": s["why"], "start": documents.frame_time(s["start_ms"]),
                         "end": documents.frame_time(s["end_ms"])} for s in found["suspect"]],
            "suspect_count": found.get("suspect_count", len(found["suspect"])), "flagged": found["flagged"]}


def _window_label(start, end, tz):
    return "-".join(dt.datetime.fromtimestamp(t, tz).strftime("%H:%M") for t in (start, end))


def _figure_fields(found):
    """The ledger's fields for the community's figures computed from the frames (mm/s) and
    the first and last fix (ms): checked against the device's figures, and the figures of a
    log without a summary."""
    if found is None:
        return {}
    # Bounded here, where the frames' numbers enter the ledger (jobs.device.documents): pages never see 2**62 ms.
    computed = {field: documents.frame_speed(found[key]) for field, key in COMPUTED_FIELDS}
    computed["distance"] = found["distance"] if 0 <= found["distance"] <= DISTANCE_MM_MAX else None
    return {"computed": computed,
            "first_fix": documents.frame_time(found["first_ms"]), "last_fix": documents.frame_time(found["last_ms"])}


# (ledger field, jobs.track.figures.summary key): the ledger names the device's figures so (jobs/track/naming.py).
COMPUTED_FIELDS = (("best2s", "2s_best"), ("best10s", "10s_best"), ("best500", "500m_best"),
                   ("best1852", "1852m_best"), ("alpha500", "a500m_best"), ("best1h", "1h_best"),
                   ("best5x10", "5x10s_best"))
DISTANCE_MM_MAX = 10**10   # 10,000 km: beyond any day's log


def _record_damaged(ctx, device_id, track, final, sha256, why, log):
    """The device's own copy is in place, damaged: recorded with where the damage is."""
    try:
        damage = integrity.survey(final)
    except OSError as exc:
        damage = {"first_bad": None, "good_frames": None, "bad_frames": None, "bad_bytes": None}
        log.warning("%s: cannot survey its damage: %s", track["name"], exc.strerror or exc)
    reason = (f"damaged on the device: first bad frame at byte {damage['first_bad']} "
              f"({damage['good_frames']} good frames, {damage['bad_frames']} bad)")
    found = _damaged_figures(ctx, device_id, track["file"], final, log)
    with state.update(ctx.spool, device_id) as doc:
        entry = doc["tracks"].get(track["file"])
        if entry is not None:
            ledger.damaged(entry, sha256, reason, damage, **found)
        doc["progress"] = None
    log.warning("%s kept as the device holds it, byte for byte: %s (%s)", track["name"], reason, why)


def _damaged_figures(ctx, device_id, file, final, log):
    """The figures, verdict and session figures of a damaged track's intact frames, as the
    analysers take them (the file is read again: the download's pass stopped at the damage).
    {} when they cannot be had."""
    try:
        fixes, _ = figures.intact_fixes_of(final)
        windows = _windows(ctx, device_id, file)
        found = figures.summary(figures.compute(fixes, ctx.cfg.checks.max_speed_accuracy,
                                                only=figures.CHECKED if windows else figures.CATEGORIES))
    except Exception as exc:  # the frames are the device's: never a reason to lose its track
        log.warning("%s: figures of its intact frames not computed: %s: %s", quoted(file), type(exc).__name__, exc)
        return {}
    if not len(fixes):
        return {}
    times = fixes["utc_ms"]
    found.update(first_ms=int(times[0]), last_ms=int(times[-1]))
    return {**_figure_fields(found), **_session_fields(ctx, file, fixes, windows, log)}


def _record_failure(ctx, device_id, file, why, give_up=False):
    """Count a verification failure in a row; the third marks the track bad. Returns the count."""
    with state.update(ctx.spool, device_id) as doc:
        entry = doc["tracks"].get(file)
        if entry is None:
            return ledger.BAD_AFTER
        return ledger.failure_counted(entry, why, give_up)


def _disk_cause(exc, where):
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full writing {where}: free some space (the partial download was deleted)"
    return f"cannot write {where}: {exc.strerror or exc}"


def _summary(track, seconds, fetched):
    """ALD470ANN_470_20220716_130240.oao 1.3 MB 1.4 h 18.7 km 19.6 kn in 3.4 s (390 KB/s)"""
    seconds = max(seconds, 1e-3)
    knots = units.knots(track.get("best500") or 0)
    return (f"{track['name']} {units.size_text(track['size'])} {(track.get('duration') or 0) / 3.6e6:.1f} h "
            f"{(track.get('distance') or 0) / 1e6:.1f} km {knots:.1f} kn in {seconds:.1f} s "
            f"({fetched / seconds / 1000:.0f} KB/s)")
