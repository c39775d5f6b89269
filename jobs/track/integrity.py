"""The check of a track: a download is proven complete only when its bytes parse
to the last one as whole OAO frames with every checksum right (Verifier, fed
pieces of any size as they arrive; TrackCheck adds the sha256 and the device's
identity, and gathers the fixes for jobs.track.figures in the same pass), and a
damaged track is surveyed the way the analysers skip "corrupt records" (survey,
next_intact_frame). Nothing here writes a file or decides a track's fate: the
download stage (jobs.stages.download, through jobs.track.fetch) does, from what this says.

Reading a track's frames is this check with checksums off, for a file verified
already (jobs.track.figures reads its fixes so).
"""

import hashlib
import mmap
import struct
from collections import Counter

from jobs.track import oao
from jobs.track.oao import FRAME_LENGTHS, GNSS, GNSS_SIZE, HEADER, HEADER_OPENING, PADDING, UTC_OFFSET, OAOError

MAX_RUN = 32768          # GNSS frames parsed in one bulk step (~1.7 MB)
READ_SIZE = 4 << 20
FEED_BATCH = 64 * 1024   # bytes gathered from small pieces before they are parsed

# Low byte of a GNSS mode -> 1, anything else -> 0 (to find where a run of GNSS frames ends).
_GNSS_LOW = bytes(1 if b in (0xD4, 0xD5) else 0 for b in range(256))


class Verifier:
    """Checks an OAO byte stream fed in pieces of any size (e.g. during a download).

    feed() raises OAOError at the first bad frame; finish() raises if the stream
    ended inside a frame and returns the summary verify_file() documents.

    `gnss`, when given, is called with each run of whole GNSS frames (bytes) once
    it is checked, in stream order: a frame that fails its checksum never
    reaches it. Unlike feed's on_gnss, it leaves the gathering of small pieces on.
    """

    def __init__(self, checksums=True, gnss=None):
        self.checksums = checksums
        self.gnss = gnss
        self.size = 0          # bytes consumed into whole frames
        self.frames = Counter()
        self.first_ms = None
        self.last_ms = None
        self._tail = b""
        self._scan = 64        # adaptive GNSS scan window (frames)
        self._gathered = bytearray()

    def feed(self, data, on_gnss=None):
        """Check the next bytes of the stream.

        Small pieces are gathered up to FEED_BATCH bytes before they are parsed:
        a download over WiFi arrives in pieces of 1-4 KB, and parsing each on
        its own cost three times the CPU of parsing 64 KB at once. A bad frame
        is still reported, at most FEED_BATCH bytes later. With `on_gnss` every
        piece is parsed at once (the caller reads the fixes after each feed).
        """
        if on_gnss is None and len(self._gathered) + len(data) < FEED_BATCH:
            self._gathered += data
            return
        if self._gathered:
            self._gathered += data
            data, self._gathered = self._gathered, bytearray()
        self._parse(data, on_gnss)

    def _parse(self, data, on_gnss):
        on_gnss = self.gnss if on_gnss is None else on_gnss
        buf = self._tail + bytes(data) if self._tail else bytes(data)
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            mode = buf[pos] | buf[pos + 1] << 8
            if mode in GNSS:
                used = self._gnss_run(buf, pos, on_gnss)
                if not used:
                    break
                pos += used
                continue
            length = FRAME_LENGTHS.get(mode)
            if length is None:
                raise OAOError(f"unknown frame mode 0x{mode:04X} at byte {self.size + pos}", self.size + pos)
            if end - pos < length:
                break
            if mode != PADDING and self.checksums:
                frame = buf[pos:pos + length]
                if oao.frame_checksum(frame) != (frame[2], frame[3]):
                    raise OAOError(f"bad checksum in frame 0x{mode:04X} at byte {self.size + pos}", self.size + pos)
            self.frames[mode] += 1
            pos += length
        self.size += pos
        self._tail = buf[pos:]

    def _gnss_run(self, buf, pos, on_gnss):
        """Check the run of whole GNSS frames at `pos`; return the bytes it used."""
        fit = min((len(buf) - pos) // GNSS_SIZE, self._scan)
        if fit == 0:
            return 0
        stop = pos + fit * GNSS_SIZE
        low = buf[pos:stop:GNSS_SIZE].translate(_GNSS_LOW)
        high = buf[pos + 1:stop:GNSS_SIZE]
        count = min(fit if low.find(0) < 0 else low.find(0), len(high) - len(high.lstrip(b"\x0a")))
        self._scan = min(self._scan * 2, MAX_RUN) if count == fit else 64
        block = memoryview(buf)[pos:pos + count * GNSS_SIZE]   # no copy: the run can be 1.7 MB
        if self.checksums:
            first = oao.first_bad_frame(block, count)
            if first is not None:
                at = pos + first * GNSS_SIZE
                mode = buf[at] | buf[at + 1] << 8
                self._count_gnss(buf, pos, first)  # the frames before it are good
                raise OAOError(f"bad checksum in frame 0x{mode:04X} at byte {self.size + at}", self.size + at)
        self._count_gnss(buf, pos, count)
        if self.first_ms is None:
            self.first_ms = struct.unpack_from("<Q", block, UTC_OFFSET)[0]
        self.last_ms = struct.unpack_from("<Q", block, (count - 1) * GNSS_SIZE + UTC_OFFSET)[0]
        if on_gnss is not None:
            on_gnss(block)
        return count * GNSS_SIZE

    def _count_gnss(self, buf, pos, count):
        d4 = buf[pos:pos + count * GNSS_SIZE:GNSS_SIZE].count(0xD4)
        self.frames[0x0AD4] += d4
        self.frames[0x0AD5] += count - d4

    def finish(self):
        if self._gathered:
            data, self._gathered = self._gathered, bytearray()
            self._parse(data, None)
        if self._tail:
            left = len(self._tail)
            if left < 2:
                raise OAOError(f"truncated: frame at byte {self.size} needs at least 2 bytes, {left} left", self.size)
            mode = self._tail[0] | self._tail[1] << 8
            raise OAOError(f"truncated: frame at byte {self.size} needs {FRAME_LENGTHS[mode]} bytes, {left} left",
                           self.size)
        if self.size == 0:
            raise OAOError("empty: no frames", 0)
        return {"size": self.size,
                "frames": {f"0x{mode:04X}": n for mode, n in sorted(self.frames.items())},
                "first_ms": self.first_ms, "last_ms": self.last_ms}


def read_through(path, verifier, on_gnss=None):
    """verifier.finish() once fed the file at `path` (on_gnss as Verifier.feed's); an
    OAOError names the file."""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(READ_SIZE):
                verifier.feed(chunk, on_gnss)
    except OAOError as exc:
        raise OAOError(f"{path}: {exc}") from None
    try:
        return verifier.finish()
    except OAOError as exc:
        raise OAOError(f"{path}: {exc}") from None


def verify_file(path):
    """Parse `path` to its last byte, every checksum checked.

    Returns {"size", "frames": {"0x0AD4": n, ...}, "first_ms", "last_ms"}
    (first/last GNSS time, None without GNSS frames); raises OAOError naming
    the file, the byte and what is wrong.
    """
    return read_through(path, Verifier())


def survey(path):
    """Where a damaged track is damaged: {"first_bad", "good_frames", "bad_frames", "bad_bytes"}.

    A Motion that restarts after a crash goes on logging in the same file,
    leaving a half-written frame; the tools that compute results skip such
    "corrupt records". This counts them the same way: after each bad stretch
    it looks for the next place where whole, intact frames start again.
    first_bad is None for an intact file.
    """
    good = stretches = bad_bytes = 0
    first_bad = None
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        pos, end = 0, len(data)
        while pos < end:
            verifier = Verifier()
            try:
                for at in range(pos, end, READ_SIZE):
                    verifier.feed(data[at:min(at + READ_SIZE, end)])
                verifier.finish()
                good += verifier.frames.total()
                break
            except OAOError as exc:
                good += verifier.frames.total()
                bad_at = pos + (exc.offset or 0)
                first_bad = bad_at if first_bad is None else first_bad
                pos = next_intact_frame(data, bad_at + 1)
                stretches += 1
                bad_bytes += pos - bad_at
    return {"first_bad": first_bad, "good_frames": good, "bad_frames": stretches, "bad_bytes": bad_bytes}


def _intact_frame_at(data, pos):
    """The length of an intact frame at `pos`, or 0."""
    if len(data) - pos < 2:
        return 0
    mode = data[pos] | data[pos + 1] << 8
    length = FRAME_LENGTHS.get(mode)
    if length is None or pos + length > len(data):
        return 0
    if mode != PADDING:
        frame = data[pos:pos + length]
        if oao.frame_checksum(frame) != (frame[2], frame[3]):
            return 0
    return length


def next_intact_frame(data, pos):
    """The first offset from `pos` where two intact frames (or one, then the end) follow."""
    end = len(data)
    for at in range(pos, end):
        length = _intact_frame_at(data, at)
        if length and (at + length == end or _intact_frame_at(data, at + length)):
            return at
    return end


def _figures():
    # jobs.track.figures reads frames with this module: imported at first use, not at import time.
    from jobs.track import figures
    return figures


# --- a downloaded track, checked as its bytes arrive ---------------------------------

CHECK_READ = 64 * 1024   # bytes read at a time when a file on disk is checked
# Bytes gathered before they are hashed and checked: a WiFi brings 1.5-64 KB a
# read, and each step of the checks costs the same whatever its size; beyond
# 256 KB a step's arrays leave the CPU's cache (1 MB cost 40 % more).
TAKE_BATCH = 256 * 1024
# Verified GNSS frames gathered before the figures take them: each feed is a few
# numpy steps whatever its size.
FIGURES_BATCH = 256 * 1024


class BadData(Exception):
    """The device's bytes are not the track logs.json announced: they are thrown away."""


class Damaged(BadData):
    """A complete body (exactly the listed size) whose frames fail: damaged in transfer,
    or on the device itself. `sha256` tells the two apart: the device's own damage
    comes back byte for byte."""

    def __init__(self, message, sha256):
        super().__init__(message)
        self.sha256 = sha256


class TrackCheck:
    """The sha256 and the OAO frame check of one track, fed its bytes in order.

    Checking as the bytes arrive (Verifier, the reader behind
    verify_file), TAKE_BATCH at a time, keeps a worker's memory at a few
    hundred KB: re-reading a finished 50 MB file cost ~10 MB a worker.

    With `device_id`, a track whose header frame names another device is
    refused as its first bytes come: anything on the WiFi can take the name
    motion-<id>, but not put the entrant's device id into a forged track.

    With `figures` (the max_speed_accuracy of jobs.track.figures.summary_of_file), the track's figures
    are computed in the same pass from the GNSS frames as they verify, so the
    finished file need not be read again: figures_result() once finish()
    returned. They do not depend on how the bytes arrive: on resume, check_file
    feeds the bytes already in the .part first, then the download goes on
    feeding, so it is still one ordered pass over the whole track.
    """

    def __init__(self, device_id=None, figures=None):
        self.sha256 = hashlib.sha256()
        self.max_speed_accuracy = figures
        self.figures = None if figures is None else _figures().Fixes()
        self.figures_failed = None   # why the figures were given up, if they were
        self._fixes = bytearray()   # verified GNSS frames the figures have not taken yet
        self.frames = Verifier(gnss=None if figures is None else self._gather_fixes)
        self.length = 0
        self.finished = False    # finish() returned: the track is whole and intact
        self.damage = None       # the first bad frame, once seen: the rest is only hashed
        self.device_id = device_id
        self._opening = b""      # the first bytes, until the header's device id is in them
        self.first_mode = None   # the mode of the first frame: whose track it is starts there
        self._taken = bytearray()   # bytes taken and not yet checked (at most TAKE_BATCH)

    def take(self, block):
        if self._opening is not None:
            self._check_owner(block)
        self.length += len(block)
        if not self._taken and len(block) >= TAKE_BATCH:
            whole = len(block) - len(block) % TAKE_BATCH
            view = memoryview(block)
            for at in range(0, whole, TAKE_BATCH):   # a large read is checked in place, a batch at a time
                self._check(view[at:at + TAKE_BATCH])
            self._taken += view[whole:]
            return
        self._taken += block
        if len(self._taken) >= TAKE_BATCH:
            self._check_taken()

    def _check_taken(self):
        block, self._taken = self._taken, bytearray()
        self._check(block)

    def _check(self, block):
        self.sha256.update(block)
        if self.damage is None:
            try:
                self.frames.feed(block)
            except OAOError as exc:
                self.damage = exc

    def _gather_fixes(self, frames):
        self._fixes += frames
        if len(self._fixes) >= FIGURES_BATCH:
            self._feed_figures()

    def _feed_figures(self):
        fixes, self._fixes = self._fixes, bytearray()
        if self.figures is None:
            return
        try:
            self.figures.feed(fixes)
        except Exception as exc:  # a check on the device's own figures: never a reason to lose its track
            self.figures, self.figures_failed = None, f"{type(exc).__name__}: {exc}"

    def _check_owner(self, block):
        """BadData when the opening header frame names another device (none: nothing to check)."""
        self._opening += bytes(block[:HEADER_OPENING.size])
        if len(self._opening) < HEADER_OPENING.size:
            return
        owner = oao.header_device(self._opening)
        self.first_mode = self._opening[0] | self._opening[1] << 8
        self._opening = None
        # The header holds the id's low 16 bits (real ids are 3 or 4 digits).
        if owner is not None and self.device_id is not None and owner != self.device_id & 0xFFFF:
            raise BadData(f"track of another device (header says {owner})")

    def finish(self, size):
        """The sha256 (hex) once the byte count matches `size` and every frame is whole.

        BadData when the byte count is wrong; Damaged when it is right but a
        frame is not (the whole body was taken, so its sha256 can be compared).
        """
        if self._taken:
            self._check_taken()
        if self.length != size:
            raise BadData(f"{self.length} bytes, logs.json says {size}")
        if self.damage is None:
            try:
                self.frames.finish()
            except OAOError as exc:
                self.damage = exc
        if self.damage is not None:
            raise Damaged(str(self.damage), self.sha256.hexdigest())
        if self._fixes:
            self._feed_figures()
        self.finished = True
        return self.sha256.hexdigest()

    def fixes(self):
        """The track's fixes gathered in this pass (jobs.track.figures.Fixes.array); None without
        `figures`, when they were given up, or before finish() returned (a damaged track)."""
        if self.figures is None or not self.finished:
            return None
        return self.figures.array()

    def identity(self):
        """Whether the whole track shows it is this device's, once finish() returned:
        ("checked", None) when it opens with a header frame naming it (one naming
        another device was refused as it came); ("not checked", why) for a track
        with no header frame at all (older firmware, other loggers): kept, marked;
        ("aside", why) when the header check was stepped round (something before
        the header, a header that is not first, no GNSS fix at all): never taken
        as this device's, kept aside for a person to judge."""
        headers = self.frames.frames[HEADER]
        gnss = self.frames.frames[GNSS[0]] + self.frames.frames[GNSS[1]]
        if gnss == 0:
            return "aside", "no GNSS fix in it"
        if self.first_mode == PADDING:
            return "aside", "padding before its first frame"
        if headers and self.first_mode != HEADER:
            return "aside", "its header frame is not first"
        if headers > 1:
            return "aside", f"{headers} header frames"
        if not headers:
            return "not checked", "identity not checked: no header frame"
        return "checked", None

    def figures_result(self, only=None):
        """What jobs.track.figures.summary_of_file gives for the file, from this pass (`only` those categories of
        jobs.track.figures, the others 0); None without `figures` or before finish() returned
        (a damaged track has no figures)."""
        fixes = self.fixes()
        if fixes is None:
            return None
        try:
            found = _figures().summary(_figures().compute(fixes, self.max_speed_accuracy,
                                                          only=only or _figures().CATEGORIES))
        except Exception as exc:  # a check on the device's own figures: never a reason to lose its track
            self.figures_failed = f"{type(exc).__name__}: {exc}"
            return None
        return {**found, "first_ms": self.frames.first_ms, "last_ms": self.frames.last_ms}


def check_file(f, length=None, device_id=None, figures=None):
    """A TrackCheck (of `device_id`'s track, computing `figures` if given) fed the
    first `length` bytes of open file `f` (all by default); f left there."""
    check = TrackCheck(device_id, figures)
    left = length
    f.seek(0)
    while left is None or left > 0:
        block = f.read(CHECK_READ if left is None else min(CHECK_READ, left))
        if not block:
            break
        check.take(block)
        if left is not None:
            left -= len(block)
    return check
