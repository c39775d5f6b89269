"""OAO track files, the format: frames, their fields and Fletcher checksums, and
writing them (the simulated fleet writes its tracks with header_frame,
gnss_frames and padding).

A track is a little-endian sequence of fixed-length frames, each starting with
a 2-byte mode and a 2-byte Fletcher checksum over every other byte of the frame
(see motion-device.md). Reading a track's frames, and proving a download
complete to its last byte, is jobs.track.integrity's (the check); its figures are
jobs.track.figures'.

No GNSS frame's checksum is computed byte by byte in Python (only the few
header and short frames' are): a run of consecutive 52-byte GNSS frames is a
numpy matrix, one row per frame, so its checksums are a matrix product
(_fletcher_sums). Only this module imports numpy (jobs.track.integrity and
jobs.track.figures take it from here), and only what reads a track's frames
imports it: the download stage (through jobs.track.fetch), the `figures`
command (jobs.ops.figures), the simulator, and, only when they come to a track,
jobs.day.backup (an .oao imported) and jobs.track.recording (a device's growing
log): an idle cron run never pays for it.
"""

import os
import struct
from collections import namedtuple

# The matrices are small (8192 x 52 at most): BLAS threads would only fight
# the download workers for the laptop's cores. Set before numpy starts them.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

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
CHECK_FRAMES = 8192      # GNSS frames whose checksums are computed in one step (~430 KB)

Fix = namedtuple("Fix", "utc_ms lat lon alt_mm speed course fix satellites hdop")
Fix.__doc__ = "One GNSS fix: time ms UTC, lat/lon degrees, altitude mm, speed mm/s, course 1e-5 deg, hdop 1e-2."


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


def frame_checksum(frame):
    """(A, B) of a whole frame (its stored checksum bytes left out)."""
    return fletcher(bytes(frame[:2]) + bytes(frame[4:]))


# --- Fletcher sums of many GNSS frames at once ------------------------------------
#
# A run of 52-byte frames is a (frames x 52) matrix of bytes; A and B of every
# frame are one matrix product with two weight columns: A weighs each checked
# byte 1, B weighs the k-th checked byte (50 - k), the stored checksum bytes 0.
# The largest B (255 x (1 + ... + 50) = 325125) is below 2**24, so float32
# products (BLAS) are exact.

_FLETCHER_WEIGHTS = np.zeros((GNSS_SIZE, 2), np.float32)
_CHECKED_BYTES = [0, 1, *range(4, GNSS_SIZE)]
_FLETCHER_WEIGHTS[_CHECKED_BYTES, 0] = 1
_FLETCHER_WEIGHTS[_CHECKED_BYTES, 1] = range(len(_CHECKED_BYTES), 0, -1)


def _frame_matrix(block, count):
    return np.frombuffer(block, np.uint8, count * GNSS_SIZE).reshape(count, GNSS_SIZE)


def _fletcher_sums(frames):
    """(A, B) of each frame of a frame matrix, as a (frames x 2) uint8 array."""
    return (frames.astype(np.float32) @ _FLETCHER_WEIGHTS).astype(np.int32).astype(np.uint8)


# A GNSS frame's stored checksum, A then B, read as one little-endian u16 (B * 256 + A).
_STORED_CHECKSUM = np.dtype({"names": ["checksum"], "formats": ["<u2"], "offsets": [2], "itemsize": GNSS_SIZE})


def first_bad_frame(block, count):
    """The index of the first of `count` frames in `block` whose checksum fails, or None.

    Checked CHECK_FRAMES at a time: the arrays of a step stay in the CPU's cache.
    """
    for start in range(0, count, CHECK_FRAMES):
        step = min(CHECK_FRAMES, count - start)
        part = memoryview(block)[start * GNSS_SIZE:(start + step) * GNSS_SIZE]
        computed = _fletcher_sums(_frame_matrix(part, step)).view("<u2").ravel()   # (A, B) rows as B * 256 + A
        bad = computed != np.frombuffer(part, _STORED_CHECKSUM, step)["checksum"]
        if bad.any():
            return start + int(bad.argmax())
    return None


def _run_checksums(block, count):
    """Fletcher (A, B) of `count` 52-byte frames in `block`, as two byte strings."""
    sums = _fletcher_sums(_frame_matrix(block, count))
    return sums[:, 0].tobytes(), sums[:, 1].tobytes()


# --- building frames (the simulated fleet writes tracks with these) ------------

def header_frame(device, username, start_ms, end_ms, lat_e7=0, lon_e7=0):
    """A 512-byte header frame. Its layout is not documented; this one mirrors the
    real files' opening fields (device id, username, first and last time/position)."""
    frame = bytearray(HEADER_SIZE)
    name = str(username).encode("ascii", "replace")[:10]
    struct.pack_into("<HHH10sQiiiQiii", frame, 0, HEADER, 0, int(device) & 0xFFFF, name,
                     start_ms, lat_e7, lon_e7, 0, end_ms, lat_e7, lon_e7, 0)
    frame[2], frame[3] = frame_checksum(frame)
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
