"""OAO track files: frames, Fletcher checksums, verification to the last byte.

A track is a little-endian sequence of fixed-length frames, each starting with
a 2-byte mode and a 2-byte Fletcher checksum over every other byte of the frame
(see motion-device.md). A download is proven complete only when the file parses
to its last byte with every checksum right, so this check runs on every track
(up to 50 MB): it must be fast in pure Python.

Speed comes from treating a run of consecutive 52-byte GNSS frames as columns:
word i (8 bytes) of every frame is one strided slice of an array, turned into
one big integer with a 64-bit lane per frame, so the Fletcher sums of thousands
of frames are a few dozen big-integer operations instead of a Python loop per
byte (see _lane_sums).
"""

import array
import bisect
import hashlib
import itertools
import math
import mmap
import operator
import struct
import sys
from collections import Counter, namedtuple

HEADER = 0x0AD0
GNSS = (0x0AD4, 0x0AD5)
PADDING = 0x7D5D
FRAME_LENGTHS = {0x0AD0: 512, 0x0AD1: 12, 0x0AD2: 34, 0x0AD3: 34, 0x0AD4: 52, 0x0AD5: 52, PADDING: 2}
HEADER_SIZE = 512
# A header frame opens with its mode, its checksum and the device's id (u16):
# the real files (device 470) and header_frame below agree on it.
HEADER_OPENING = struct.Struct("<HHH")
GNSS_SIZE = 52

# mode, checksum A, checksum B, latitude, longitude, altitude, speed, course,
# utc_time, fix, satellites, speed/horizontal/vertical/heading accuracy, hdop
GNSS_STRUCT = struct.Struct("<HBBiiiIIQBBIIIIH")
assert GNSS_STRUCT.size == GNSS_SIZE
UTC_OFFSET = 24          # byte of utc_time inside a GNSS frame
MAX_RUN = 32768          # GNSS frames parsed in one bulk step (~1.7 MB)
CHECK_FRAMES = 1024      # GNSS frames whose checksums are computed in one step (~53 KB)
READ_SIZE = 4 << 20
FEED_BATCH = 64 * 1024   # bytes gathered from small pieces before they are parsed

Fix = namedtuple("Fix", "utc_ms lat lon alt_mm speed course fix satellites hdop")
Fix.__doc__ = "One GNSS fix: time ms UTC, lat/lon degrees, altitude mm, speed mm/s, course 1e-5 deg, hdop 1e-2."

# Low byte of a GNSS mode -> 1, anything else -> 0 (to find where a run of GNSS frames ends).
_GNSS_LOW = bytes(1 if b in (0xD4, 0xD5) else 0 for b in range(256))


class OAOError(Exception):
    """The bytes are not a complete, intact OAO track; the message says where.

    `offset`: the byte (from the start of what was checked) where the bad or
    unfinished frame begins, when there is one.
    """

    def __init__(self, message, offset=None):
        super().__init__(message)
        self.offset = offset


def fletcher(data):
    """(A, B) Fletcher sums mod 256 of `data` (the frame without its checksum bytes)."""
    a = b = 0
    for byte in data:
        a += byte
        b += a
    return a & 0xFF, b & 0xFF


def header_device(data):
    """The device id in the header frame `data` opens with, or None when it opens with no header frame."""
    if len(data) < HEADER_OPENING.size:
        return None
    mode, _, device = HEADER_OPENING.unpack_from(data)
    return device if mode == HEADER else None


def _frame_checksum(frame):
    return fletcher(bytes(frame[:2]) + bytes(frame[4:]))


# --- Fletcher sums of many GNSS frames at once ------------------------------------
#
# A run of 52-byte frames is regrouped into 7 columns of 8-byte words, one
# 64-bit lane per frame: word 0 holds the mode and the stored checksum, words
# 1-6 the 48 bytes after it. Each column becomes one big integer, so a frame's
# sums are a few big-integer additions and multiplications shared by every
# frame of the run. Even bytes are masked into 16-bit sub-lanes to leave room
# for carries; A and B then come out, mod 256, in byte 7 of each lane.

_SUBLANES = sum(1 << 16 * i for i in range(4))   # times this: a lane's four 16-bit sub-lanes summed into the top one
_POSITIONS = 6 | 4 << 16 | 2 << 32                # times this: sub-lane i weighted by 2i, summed into the top one
# run_y * _Y_WEIGHTS + run_e * _E_WEIGHTS is 256 * (the sum over the bytes of a lane
# of byte * its place in its word): the part of B that is not whole words.
_Y_WEIGHTS = _POSITIONS + _SUBLANES
_E_WEIGHTS = 255 * _POSITIONS - _SUBLANES
_lane_masks = [0] * 6   # lanes covered, then the masks below, grown to the longest run seen


def _masks(lanes):
    """(even bytes, mode bytes 4-5, low 5 bits of byte 7, byte 7, bit 56) repeated over at least `lanes` lanes.

    A mask longer than the run costs nothing: `&` stops at the shorter operand.
    """
    masks = _lane_masks[:]   # one read: another thread may replace the list meanwhile
    if masks[0] < lanes:
        def repeat(pattern):
            return int.from_bytes(pattern * lanes, "little")
        masks = [lanes, repeat(b"\xff\x00" * 4), repeat(bytes(4) + b"\xff\xff" + bytes(2)),
                 repeat(bytes(7) + b"\x1f"), repeat(bytes(7) + b"\xff"), repeat(bytes(7) + b"\x01")]
        if _lane_masks[0] < lanes:   # only ever grown: a thread's shorter masks never replace longer ones
            _lane_masks[:] = masks
    return masks[1:]


def _frame_columns(block, count):
    """The 7 word columns of the first `count` frames of `block` (bytes or memoryview).

    Frames are 6.5 words long: the words of even frames are read from the
    block shifted by 4 bytes, those of odd frames from the block as it is; each
    column holds the even frames' lanes (ceil(count / 2)), then the odd
    frames'. Word 0 is the one ending with the frame's first 4 bytes (mode and
    stored checksum).
    """
    view = memoryview(block)
    as_is, shifted = array.array("Q"), array.array("Q")
    as_is.frombytes(view[:GNSS_SIZE * count // 8 * 8])
    shifted.frombytes(view[4:4 + (GNSS_SIZE * count - 4) // 8 * 8])
    first = array.array("Q", bytes(4) + bytes(view[:4]))   # frame 0's word 0 starts before the block
    columns = [first + shifted[12::13] + as_is[6::13]]
    columns += [shifted[word::13] + as_is[7 + word::13] for word in range(6)]
    return [int.from_bytes(column, "little") for column in columns]


def _lane_sums(block, count):
    """(lanes, A, H, R, head) of `count` frames, lane by lane (see _run_checksums for their meaning)."""
    columns = _frame_columns(block, count)
    even, mode, _, _, _ = _masks(count)
    head = columns[0]
    # The two mode bytes moved to bytes 6-7 of their word: their B weights (50 and 49)
    # then follow the same rule as the other bytes' (56 - 8 * column - byte in word).
    word = (head & mode) << 16
    run_y = acc_y = word
    run_e = acc_e = word & even
    for word in columns[1:]:
        run_y += word
        acc_y += run_y
        run_e += word & even
        acc_e += run_e
    a = (run_y + 255 * run_e) * _SUBLANES
    h = (acc_y + 255 * acc_e) * _SUBLANES
    r = run_y * _Y_WEIGHTS + run_e * _E_WEIGHTS
    return count, a, h, r, head


def _run_intact(block, count):
    """The frames whose checksum fails, as a bit mask of lanes (0: all intact), and the lane count."""
    lanes, a, h, r, head = _lane_sums(block, count)
    _, _, low5, top, _ = _masks(lanes)
    # XOR compares byte 7 with the stored checksum byte without any carry between lanes.
    a_wrong = a ^ (head << 8)                               # A against stored byte 2
    b_wrong = ((h & low5) << 3) ^ (r + (head & top))        # 8 * H against R + stored byte 3
    return (a_wrong | b_wrong) & top, lanes


def _byte7(lane_values, lanes):
    """Byte 7 of each of the first `lanes` 64-bit lanes of `lane_values`."""
    size = max(8 * lanes, (lane_values.bit_length() + 7) // 8)
    return lane_values.to_bytes(size, "little")[7:8 * lanes:8]


def _first_bad_frame(block, count):
    """The index of the first of `count` frames in `block` whose checksum fails, or None.

    Checked CHECK_FRAMES at a time: the big integers and arrays of a step
    then stay small, and in the CPU's cache, however long the run.
    """
    view = memoryview(block)
    for start in range(0, count, CHECK_FRAMES):
        frames = min(CHECK_FRAMES, count - start)
        bad, lanes = _run_intact(view[start * GNSS_SIZE:(start + frames) * GNSS_SIZE], frames)
        if bad:
            return start + _first_flagged(bad, lanes)
    return None


def _first_flagged(bad, lanes):
    """The index of the first frame flagged in `bad` (a mask from _run_intact)."""
    flags = _byte7(bad, lanes)
    half = (lanes + 1) // 2
    even, odd = flags[:half], flags[half:]
    return min(2 * (len(even) - len(even.lstrip(b"\0"))), 2 * (len(odd) - len(odd.lstrip(b"\0"))) + 1)


def _run_checksums(block, count):
    """Fletcher (A, B) of `count` 52-byte frames in `block`, as two byte strings.

    Per lane: A = the sum of the checked bytes, in byte 7 of `a`; B = 8 * (the
    sum of each byte times the words after it, incl. its own: byte 7 of h, low
    5 bits) - (the sum of each byte times its place in its word: byte 7 of r).
    """
    lanes, a, h, r, _ = _lane_sums(block, count)
    _, _, low5, top, bit56 = _masks(lanes)
    b = ((h & low5) << 3) + (top ^ (r & top)) + bit56      # + 256 - r: no borrow across lanes
    half = (lanes + 1) // 2
    sums = []
    for lane_sums in (a, b):
        by_lane = _byte7(lane_sums, lanes)
        in_order = bytearray(lanes)
        in_order[0::2], in_order[1::2] = by_lane[:half], by_lane[half:]
        sums.append(bytes(in_order))
    return tuple(sums)


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
                if _frame_checksum(frame) != (frame[2], frame[3]):
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
        block = buf[pos:pos + count * GNSS_SIZE]
        if self.checksums:
            first = _first_bad_frame(block, count)
            if first is not None:
                at = pos + first * GNSS_SIZE
                mode = buf[at] | buf[at + 1] << 8
                self._count_gnss(block[:first * GNSS_SIZE], first)  # the frames before it are good
                raise OAOError(f"bad checksum in frame 0x{mode:04X} at byte {self.size + at}", self.size + at)
        self._count_gnss(block, count)
        if self.first_ms is None:
            self.first_ms = struct.unpack_from("<Q", block, UTC_OFFSET)[0]
        self.last_ms = struct.unpack_from("<Q", block, (count - 1) * GNSS_SIZE + UTC_OFFSET)[0]
        if on_gnss is not None:
            on_gnss(block)
        return count * GNSS_SIZE

    def _count_gnss(self, block, count):
        d4 = block[0::GNSS_SIZE].count(0xD4)
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


def _read_through(path, verifier, on_gnss=None):
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
    return _read_through(path, Verifier())


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
                pos = _next_intact_frame(data, bad_at + 1)
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
        if _frame_checksum(frame) != (frame[2], frame[3]):
            return 0
    return length


def _next_intact_frame(data, pos):
    """The first offset from `pos` where two intact frames (or one, then the end) follow."""
    end = len(data)
    for at in range(pos, end):
        length = _intact_frame_at(data, at)
        if length and (at + length == end or _intact_frame_at(data, at + length)):
            return at
    return end


def iter_fixes(path, checksums=False):
    """Every GNSS fix in the file, in order (framing checked; checksums if asked)."""
    blocks = []
    verifier = Verifier(checksums=checksums)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(READ_SIZE):
                verifier.feed(chunk, blocks.append)
                for block in blocks:
                    for r in GNSS_STRUCT.iter_unpack(block):
                        yield Fix(r[8], r[3] * 1e-7, r[4] * 1e-7, r[5], r[6], r[7], r[9], r[10], r[15])
                blocks.clear()
        verifier.finish()
    except OAOError as exc:
        raise OAOError(f"{path}: {exc}") from None


# --- a track's figures, as logs.json gives them --------------------------------

EARTH_RADIUS_M = 6371008.8


def track_stats(fixes):
    """logs.json figures computed from fixes: {"start_date", "end_date", "duration",
    "distance" (mm), "2s_best", "10s_best", "500m_best" (mm/s)}; None without fixes.

    Distance is the sum of straight steps between fixes; a best is the fastest
    average (distance over time) of any stretch of at least 500 m, 2 s or 10 s.
    """
    times, along = [], []
    total = 0.0
    previous = None
    for fix in fixes:
        if previous is not None:
            total += _step_m(previous, fix)
        previous = fix
        times.append(fix.utc_ms)
        along.append(total)
    if not times:
        return None
    return {"start_date": times[0], "end_date": times[-1], "duration": times[-1] - times[0],
            "distance": round(total * 1000),
            "2s_best": _best(times, along, times, 2000),
            "10s_best": _best(times, along, times, 10000),
            "500m_best": _best(times, along, along, 500.0)}


def file_stats(path):
    """track_stats() of the file at `path` plus its size."""
    stats = track_stats(iter_fixes(path))
    if stats is not None:
        stats["size"] = _size(path)
    return stats


def _size(path):
    with open(path, "rb") as f:
        return f.seek(0, 2)


def _step_m(a, b):
    # Equirectangular: exact enough over the few metres between two fixes.
    mean_lat = math.radians((a.lat + b.lat) / 2)
    dx = math.radians(b.lon - a.lon) * math.cos(mean_lat)
    dy = math.radians(b.lat - a.lat)
    return EARTH_RADIUS_M * math.hypot(dx, dy)


def _best(times, along, measure, span):
    """Fastest average speed (mm/s) over the shortest stretches where measure grows by >= span."""
    best = 0.0
    i = 0
    for j in range(len(times)):
        if measure[j] - measure[i] < span:
            continue
        while measure[j] - measure[i + 1] >= span:
            i += 1
        elapsed = times[j] - times[i]
        if elapsed > 0:
            best = max(best, (along[j] - along[i]) / elapsed)
    return round(best * 1e6)


# --- building frames (the simulated fleet writes tracks with these) ------------

def header_frame(device, username, start_ms, end_ms, lat_e7=0, lon_e7=0):
    """A 512-byte header frame. Its layout is not documented; this one mirrors the
    real files' opening fields (device id, username, first and last time/position)."""
    frame = bytearray(HEADER_SIZE)
    name = str(username).encode("ascii", "replace")[:10]
    struct.pack_into("<HHH10sQiiiQiii", frame, 0, HEADER, 0, int(device) & 0xFFFF, name,
                     start_ms, lat_e7, lon_e7, 0, end_ms, lat_e7, lon_e7, 0)
    frame[2], frame[3] = _frame_checksum(frame)
    return bytes(frame)


def gnss_frames(records):
    """Bytes of GNSS frames with correct checksums, from tuples of
    (mode, lat_e7, lon_e7, alt_mm, speed_mm_s, course_1e5, utc_ms, fix, satellites,
     speed_acc, horizontal_acc, vertical_acc, heading_acc, hdop)."""
    pack = GNSS_STRUCT.pack
    block = bytearray(b"".join([pack(r[0], 0, 0, *r[1:]) for r in records]))
    count = len(block) // GNSS_SIZE
    if count:
        a, b = _run_checksums(block, count)
        block[2::GNSS_SIZE] = a
        block[3::GNSS_SIZE] = b
    return bytes(block)


def padding(count):
    """`count` 2-byte terminator frames (no checksum)."""
    return struct.pack("<H", PADDING) * count


# --- a track's figures from its frames, streaming -------------------------------

SPEED_ACCURACY_MAX = 1000   # mm/s: a fix whose Doppler speed is less sure than this is not counted
SATELLITES_MIN = 5
CARRY_S = 600               # a 500 m slower than 10 minutes (1.6 kn) is nobody's best
POSITION_STEP_MS = 200      # positions closer in time than this are thinned out for the 500 m


def _words(block, code):
    """The 4-byte words of whole frames (13 a frame) as an array of `code` ("i" or "I"):
    a field on a word boundary is then one strided slice."""
    words = array.array(code, block)
    if sys.byteorder == "big":
        words.byteswap()
    return words


def _column(block, count, offset, width, code):
    """One field of every 52-byte frame in `block` as an array (bytes gathered lane by lane, no Python loop)."""
    lanes = bytearray(width * count)
    for byte in range(width):
        lanes[byte::width] = block[offset + byte::GNSS_SIZE]
    column = array.array(code, lanes)
    if sys.byteorder == "big":
        column.byteswap()
    return column


# A fix that does not count breaks the Doppler windows it is in: its speed is this much lower.
PENALTY = 10 ** 12
# Below this, sums of whole mm/s (and penalties) are exact in floats as well, so
# integer window sums give the very averages float sums give.
EXACT_SUM = 1 << 52
BOUND_ENDS = 16             # stretch ends per piece bounded together for the 500 m
WINDOW_ENDS = 512           # Doppler window ends per piece checked against the best at once
FEED_FRAMES = 8192          # fixes taken at a time, however long the block fed
_NONZERO = bytes([0] + [1] * 255)
_ENOUGH_SATELLITES = bytes(int(n >= SATELLITES_MIN) for n in range(256))
_NOT = bytes([1] + [0] * 255)
_BELOW = [bytes(int(n < digit) for n in range(256)) for digit in range(256)]
_EQUAL = [bytes(int(n == digit) for n in range(256)) for digit in range(256)]


class Figures:
    """The 2 s, 10 s and 500 m bests of a track computed from its GNSS frames, fed in blocks.

    2 s and 10 s: the fastest average Doppler speed over that many seconds of
    fixes (a fix counts with fix > 0, at least SATELLITES_MIN satellites and a
    speed accuracy within `max_speed_accuracy` mm/s; a window holding any
    other fix, or a gap in time, does not count). 500 m: the fastest shortest
    stretch of at least 500 m between counted fixes, from their positions and
    times (at most one position per POSITION_STEP_MS, counted from the track's
    first fix).

    Branch and bound: a window's average is at most its fastest fix, and a
    stretch's speed at most (the most metres) / (the fewest milliseconds) of
    any stretch ending near it; only windows and stretches whose bound beats
    the best so far are computed, the way they always were. The result does
    not depend on how the frames are cut into blocks.
    """

    def __init__(self, max_speed_accuracy=SPEED_ACCURACY_MAX):
        self.max_speed_accuracy = max_speed_accuracy
        self.times, self.speeds = [], []    # the last 10 s of fixes (uncounted: speed - PENALTY)
        self.best = {"2s_best": 0.0, "10s_best": 0.0, "500m_best": 0.0}
        self.step_ms = None
        self.metres = None      # (per 1e-7 degree of longitude, of latitude), from the first fix
        self.fixes = ([], [], [])   # (times, lats, lons) of the last CARRY_S of counted positions
        self.along = []         # metres from the track's first counted position, of self.fixes
        self.fed = 0            # fixes fed so far

    def feed(self, block):
        count = len(block) // GNSS_SIZE
        # Long blocks are taken in parts: the lists of a part's fixes then stay
        # in the CPU's cache (a whole 2.5 MB track at once cost ~20 % more).
        for start in range(0, count, FEED_FRAMES):
            self._feed(bytes(block[start * GNSS_SIZE:min(start + FEED_FRAMES, count) * GNSS_SIZE]))

    def _feed(self, block):
        count = len(block) // GNSS_SIZE
        counted = self._counted(block, count)
        words = _words(block, "I")
        speeds = words[4::13].tolist()
        uncounted = counted.count(0)
        if uncounted > count // 8:
            speeds = list(map(operator.sub, speeds, map(operator.mul, counted.translate(_NOT),
                                                        itertools.repeat(PENALTY))))
        elif uncounted:     # a few: cheaper one by one than a pass over every fix
            for fix in itertools.compress(range(count), counted.translate(_NOT)):
                speeds[fix] -= PENALTY
        times = _column(block, count, UTC_OFFSET, 8, "Q").tolist()
        self._doppler(times, speeds)
        positions = self._thinned(counted, count)
        words = _words(block, "i")
        self._distance(list(itertools.compress(times, positions)), list(itertools.compress(words[1::13], positions)),
                       list(itertools.compress(words[2::13], positions)))
        self.fed += count

    def _counted(self, block, count):
        """One byte per fix: 1 when it counts."""
        flags = (int.from_bytes(block[32::GNSS_SIZE].translate(_NONZERO), "little")
                 & int.from_bytes(block[33::GNSS_SIZE].translate(_ENOUGH_SATELLITES), "little")
                 & self._accurate(block, count))
        return flags.to_bytes(count, "little")

    def _accurate(self, block, count):
        """One byte per fix as an int: 1 when its speed accuracy (u32) is within the limit.

        Compared byte by byte from the most significant (translate tables and
        big-integer and/or over the fixes), not fix by fix.
        """
        limit = self.max_speed_accuracy
        if not (isinstance(limit, int) and 0 <= limit < 1 << 32):
            return int.from_bytes(bytes(map(operator.ge, itertools.repeat(limit), _column(block, count, 34, 4, "I"))),
                                  "little")
        below = 0
        equal = (1 << 8 * count) // 255          # 1 in every byte: all equal so far
        for place in (3, 2, 1, 0):
            digit = limit >> 8 * place & 0xFF
            column = block[34 + place::GNSS_SIZE]
            below |= equal & int.from_bytes(column.translate(_BELOW[digit]), "little")
            equal &= int.from_bytes(column.translate(_EQUAL[digit]), "little")
        return below | equal

    def _thinned(self, counted, count):
        """The counted fixes whose positions are used: at most 5 a second.

        A 500 m stretch takes 10 s and more, so 0.2 s steps change its speed by
        well under 1 %, for half the work of a 10 Hz track. Fixes are numbered
        from the track's first, so the choice does not depend on the blocks.
        """
        stride = max(1, round(POSITION_STEP_MS / self.step_ms)) if self.step_ms else 1
        if stride == 1:
            return counted
        every = bytes(-self.fed % stride) + (b"\x01" + bytes(stride - 1)) * (count // stride + 1)
        kept = int.from_bytes(counted, "little") & int.from_bytes(every[:count], "little")
        return kept.to_bytes(count, "little")

    def _doppler(self, times, speeds):
        times, speeds = self.times + times, self.speeds + speeds
        if self.step_ms is None and len(times) > 10:
            self.step_ms = max((times[10] - times[0]) / 10, 1)   # mean: clocks may step 37 and 38 ms
        if self.step_ms:
            self._windows(times, speeds)
        keep = int(10000 // (self.step_ms or 1000)) + 1
        self.times, self.speeds = times[-keep:], speeds[-keep:]

    def _windows(self, times, speeds):
        exact = _exact_sums(speeds)
        fastest = max(speeds)
        # With exact sums no window is faster than its fastest fix.
        spans = [(key, span_ms) for key, span_ms in (("2s_best", 2000), ("10s_best", 10000))
                 if not exact or fastest > self.best[key]]
        if not exact:
            sums = list(itertools.accumulate(map(float, speeds), initial=0))
        else:
            sums = []        # summed once a window may beat a best
        for key, span_ms in spans:
            if exact:
                self.best[key] = self._fastest_window(times, speeds, sums, span_ms, self.best[key])
            else:
                self.best[key] = max(self.best[key], self._window_best(times, sums, span_ms))

    def _window_best(self, times, sums, span_ms, ends=None):
        """The fastest average over `span_ms` of consecutive fixes (mm/s) ending at
        fixes `ends` (a range; all by default), 0 if none."""
        k = round(span_ms / self.step_ms)
        first, last = (k, len(times)) if ends is None else (max(ends.start, k), min(ends.stop, len(times)))
        if k < 1 or first >= last:
            return 0.0
        averages = map(operator.truediv, map(operator.sub, sums[first + 1:last + 1], sums[first + 1 - k:last + 1 - k]),
                       itertools.repeat(k))
        spans = map(operator.sub, times[first:last], times[first - k:last - k])
        whole = map(operator.le, spans, itertools.repeat(self._longest_span(span_ms)))
        return max(itertools.compress(averages, whole), default=0.0)

    def _longest_span(self, span_ms):
        # k fixes span about span_ms: a window missing a fix spans a step more and
        # is not counted; uneven clocks (28 and 29 ms steps) may run 1 % over.
        return span_ms + self.step_ms / 2 + span_ms / 100

    def _fastest_window(self, times, speeds, sums, span_ms, best):
        """max(best, _window_best) from exact integer sums (`sums`: filled here
        when first needed), WINDOW_ENDS window ends at a time: a piece whose
        fixes are no faster than the best, or whose largest sum does not beat
        it, needs no more, and that sum is the piece's answer when its window
        spans no gap (nearly always)."""
        k = round(span_ms / self.step_ms)
        if k < 1:
            return best
        pieces = range(k, len(times), WINDOW_ENDS)
        peaks = [max(speeds[first + 1 - k:first + WINDOW_ENDS]) for first in pieces]
        # The fastest pieces first: the best then rises early and rules out the rest.
        for piece in sorted(_beating(peaks, best), key=peaks.__getitem__, reverse=True):
            if peaks[piece] <= best:
                break
            first = pieces[piece]
            last = min(first + WINDOW_ENDS, len(times))
            if not sums:
                sums.extend(itertools.accumulate(speeds, initial=0))
            totals = map(operator.sub, sums[first + 1:last + 1], sums[first + 1 - k:last + 1 - k])
            largest = max(totals)
            if largest / k <= best:
                continue
            totals = list(map(operator.sub, sums[first + 1:last + 1], sums[first + 1 - k:last + 1 - k]))
            end = first + totals.index(largest)
            if times[end] - times[end - k] <= self._longest_span(span_ms):
                best = largest / k
            else:
                best = max(best, self._window_best(times, sums, span_ms, range(first, last)))
        return best

    def _distance(self, times, lats, lons):
        if self.metres is None and lats:
            per_degree = math.pi * EARTH_RADIUS_M / 180 * 1e-7
            self.metres = (per_degree * math.cos(math.radians(lats[0] * 1e-7)), per_degree)
        if not times:
            return
        carried = len(self.fixes[0])
        times, lats, lons = self.fixes[0] + times, self.fixes[1] + lats, self.fixes[2] + lons
        along = self._along(lats, lons, carried)
        if len(times) > 1:
            self.best["500m_best"] = self._stretch_bound(times, along, carried, self.best["500m_best"])
        cut = bisect.bisect_left(times, times[-1] - CARRY_S * 1000)
        self.fixes = (times[cut:], lats[cut:], lons[cut:])
        self.along = along[cut:]

    def _along(self, lats, lons, carried):
        """Metres from the track's first counted position, of these positions (the first `carried` known)."""
        across, up = self.metres
        start = max(carried - 1, 0)
        lats, lons = lats[start:], lons[start:]
        steps = map(math.hypot,
                    map(operator.mul, map(operator.sub, itertools.islice(lons, 1, None), lons), itertools.repeat(across)),
                    map(operator.mul, map(operator.sub, itertools.islice(lats, 1, None), lats), itertools.repeat(up)))
        along = self.along[:]
        along.extend(itertools.accumulate(steps, initial=along.pop() if along else 0.0))
        return along

    def _stretch_bound(self, times, along, carried, best):
        """max(best, the fastest shortest stretch of at least 500 m ending after
        the `carried` fixes, in mm/s): only pieces of stretch ends whose bound
        beats the best so far are computed."""
        first = max(bisect.bisect_left(along, 500.0), carried)   # 500 m from the start, and new
        if first >= len(times):
            return best
        if times != sorted(times):        # the bound needs time to run forwards
            return max(best, self._stretch_best(times, along, range(first, len(times))))
        pieces = range(first, len(times), BOUND_ENDS)
        lasts = list(range(first + BOUND_ENDS - 1, len(times) - 1, BOUND_ENDS)) + [len(times) - 1]
        starts = _stretch_starts(along, pieces)
        from_first = [max(start, 0) for start in starts]
        # No stretch ending in a piece starts after the first stretch of the next piece.
        from_last = starts[1:] + _stretch_starts(along, lasts[-1:])
        # The most metres: last end - earliest start; the fewest ms: first end - latest start.
        metres = map(operator.sub, map(along.__getitem__, lasts), map(along.__getitem__, from_first))
        elapsed = map(max, map(operator.sub, map(times.__getitem__, pieces), map(times.__getitem__, from_last)),
                      itertools.repeat(1))
        bounds = list(map(operator.mul, map(operator.truediv, metres, elapsed), itertools.repeat(1e6)))
        for piece in sorted(_beating(bounds, best), key=bounds.__getitem__, reverse=True):
            if bounds[piece] <= best:
                break
            ends = range(pieces[piece], lasts[piece] + 1)
            best = max(best, self._stretch_best(times, along, ends, (from_first[piece], from_last[piece] + 1)))
        return best

    @staticmethod
    def _stretch_best(times, along, ends, within=None):
        """The fastest shortest stretch of at least 500 m ending at fixes `ends`, in mm/s; 0 if none.

        `within`: (lo, hi) the fixes after each stretch's start lie in, if known (a shorter bisection).
        """
        starts = _stretch_starts(along, ends, *(within or ()))
        metres = map(operator.sub, along[ends.start:ends.stop], map(along.__getitem__, starts))
        elapsed = map(max, map(operator.sub, times[ends.start:ends.stop], map(times.__getitem__, starts)),
                      itertools.repeat(1))
        return max(map(operator.truediv, metres, elapsed), default=0.0) * 1e6   # metres per ms -> mm/s

    def result(self):
        """{"2s_best", "10s_best", "500m_best"} in mm/s, as logs.json gives them."""
        return {key: round(value) for key, value in self.best.items()}


def _stretch_starts(along, ends, lo=0, hi=None):
    """For each end, the last fix at least 500 m before it (-1: none); the fix after it is in lo..hi."""
    return list(map(operator.sub, map(bisect.bisect_right, itertools.repeat(along),
                                      map(operator.sub, map(along.__getitem__, ends), itertools.repeat(500.0)),
                                      itertools.repeat(lo), itertools.repeat(len(along) if hi is None else hi)),
                    itertools.repeat(1)))


def _exact_sums(speeds):
    """Whether every sum of these speeds is exact in a float (as the float sums once were)."""
    uncounted = 0 if min(speeds) >= 0 else sum(map(operator.lt, speeds, itertools.repeat(0)))
    return uncounted * PENALTY + len(speeds) * (1 << 32) < EXACT_SUM


def _beating(bounds, best):
    """Indices of the bounds above `best`."""
    return itertools.compress(range(len(bounds)), map(operator.gt, bounds, itertools.repeat(best)))


def figures(path, max_speed_accuracy=SPEED_ACCURACY_MAX):
    """The Figures of the file at `path` (framing checked, checksums not: it was verified),
    with "first_ms" and "last_ms", the times of its first and last GNSS frame."""
    found = Figures(max_speed_accuracy)
    summary = _read_through(path, Verifier(checksums=False), found.feed)
    return {**found.result(), "first_ms": summary["first_ms"], "last_ms": summary["last_ms"]}


# ---- a downloaded track, checked as its bytes arrive ---------------------------------

CHECK_READ = 64 * 1024   # bytes read at a time when a file on disk is checked
# Verified GNSS frames gathered before the figures take them: each feed re-walks
# the last 10 minutes of positions, so feeds of 64 KB cost ~10 % more CPU.
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
    verify_file) stops a bad body at its first bad frame and keeps a worker's
    memory at one chunk: re-reading a finished 50 MB file cost ~10 MB a worker.

    With `device_id`, a track whose header frame names another device is
    refused as its first bytes come: anything on the WiFi can take the name
    motion-<id>, but not put the entrant's device id into a forged track.

    With `figures` (the max_speed_accuracy of figures()), the track's figures
    are computed in the same pass from the GNSS frames as they verify, so the
    finished file need not be read again: figures_result() once finish()
    returned. They do not depend on how the bytes arrive: on resume, check_file
    feeds the bytes already in the .part first, then the download goes on
    feeding, so it is still one ordered pass over the whole track.
    """

    def __init__(self, device_id=None, figures=None):
        self.sha256 = hashlib.sha256()
        self.figures = None if figures is None else Figures(figures)
        self.figures_failed = None   # why the figures were given up, if they were
        self._fixes = bytearray()   # verified GNSS frames the figures have not taken yet
        self.frames = Verifier(gnss=None if figures is None else self._gather_fixes)
        self.length = 0
        self.finished = False    # finish() returned: the track is whole and intact
        self.damage = None       # the first bad frame, once seen: the rest is only hashed
        self.device_id = device_id
        self._opening = b""      # the first bytes, until the header's device id is in them

    def take(self, block):
        if self._opening is not None:
            self._check_owner(block)
        self.sha256.update(block)
        self.length += len(block)
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
        fixes, self._fixes = bytes(self._fixes), bytearray()
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
        owner = header_device(self._opening)
        self._opening = None
        # The header holds the id's low 16 bits (real ids are 3 or 4 digits).
        if owner is not None and self.device_id is not None and owner != self.device_id & 0xFFFF:
            raise BadData(f"track of another device (header says {owner})")

    def finish(self, size):
        """The sha256 (hex) once the byte count matches `size` and every frame is whole.

        BadData when the byte count is wrong; Damaged when it is right but a
        frame is not (the whole body was taken, so its sha256 can be compared).
        """
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

    def figures_result(self):
        """What figures() gives for the file, from this pass; None without `figures`
        or before finish() returned (a damaged track has no figures)."""
        if self.figures is None or not self.finished:
            return None
        return {**self.figures.result(), "first_ms": self.frames.first_ms, "last_ms": self.frames.last_ms}


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
