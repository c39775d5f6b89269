"""The OAO format (jobs.track.oao): its bulk checksums equal the per-frame
definition, the frames it writes verify and read back as the fixes they were made
of, and short frames between fixes are walked and checked."""

import random
import struct

import pytest

from jobs.track import figures, integrity, oao
from tests.builders import fix_records


def test_bulk_checksums_equal_the_byte_by_byte_fletcher_definition():
    rng = random.Random(3)
    block = bytes(rng.randrange(256) for _ in range(52 * 300))
    a, b = oao._run_checksums(block, 300)
    for n in range(300):
        frame = block[52 * n:52 * (n + 1)]
        assert (a[n], b[n]) == oao.fletcher(frame[:2] + frame[4:])


def test_built_frames_verify_and_read_back_as_the_same_fixes(tmp_path):
    records = fix_records(1000)
    path = tmp_path / "built.oao"
    path.write_bytes(oao.header_frame(470, "K888", records[0][6], records[-1][6])
                     + oao.gnss_frames(records) + oao.padding(3))
    summary = integrity.verify_file(path)
    assert summary["size"] == 512 + 52 * 1000 + 6
    assert summary["frames"] == {"0x0AD0": 1, "0x0AD4": 200, "0x0AD5": 800, "0x7D5D": 3}
    fixes = list(figures.iter_fixes(path, checksums=True))
    assert [f.utc_ms for f in fixes] == [r[6] for r in records]
    assert [f.speed for f in fixes] == [r[4] for r in records]
    assert fixes[10].lat == pytest.approx(records[10][1] * 1e-7)


def test_short_frames_between_fixes_are_walked_and_checked(tmp_path):
    def frame(mode, length):
        raw = bytearray(struct.pack("<H", mode) + b"\0\0" + bytes(range(7, 7 + length - 4)))
        raw[2], raw[3] = oao.fletcher(raw[:2] + raw[4:])
        return bytes(raw)

    records = fix_records(10)
    body = oao.gnss_frames(records[:4]) + frame(0x0AD1, 12) + frame(0x0AD2, 34) + oao.gnss_frames(records[4:])
    path = tmp_path / "mixed.oao"
    path.write_bytes(body)
    assert integrity.verify_file(path)["frames"] == {"0x0AD1": 1, "0x0AD2": 1, "0x0AD4": 2, "0x0AD5": 8}
    broken = bytearray(body)
    broken[52 * 4 + 6] ^= 0xFF
    path.write_bytes(broken)
    with pytest.raises(oao.OAOError, match=f"bad checksum in frame 0x0AD1 at byte {52 * 4}"):
        integrity.verify_file(path)
