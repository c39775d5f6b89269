"""The download's check (jobs.track.integrity): a file is accepted only when it
parses to its last byte with every checksum right; fed in any pieces, the same."""

import json
import random
import struct

import pytest

from jobs.track import integrity, oao
from tests.builders import FIXTURE_NAMES


@pytest.fixture
def expected(real_fixtures):
    return json.loads((real_fixtures / "oao" / "fixtures.json").read_text())


def copy_of(fixtures, tmp_path, name=FIXTURE_NAMES[0]):
    data = bytearray((fixtures / "oao" / name).read_bytes())
    return data, tmp_path / name


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_real_tracks_parse_to_the_last_byte_with_the_listed_frames_and_times(real_fixtures, expected, name):
    summary = integrity.verify_file(real_fixtures / "oao" / name)
    want = expected[name]
    assert summary["size"] == want["size"]
    assert summary["frames"] == {mode.upper().replace("0X", "0x"): n for mode, n in want["frames"].items()}
    assert summary["first_ms"] == want["first_utc_ms"]
    assert summary["last_ms"] == want["last_utc_ms"]


def test_a_copy_one_byte_short_is_truncated(fixtures, tmp_path):
    data, path = copy_of(fixtures, tmp_path)
    path.write_bytes(data[:-1])
    with pytest.raises(oao.OAOError, match=rf"truncated: frame at byte {len(data) - 52} needs 52 bytes, 51 left"):
        integrity.verify_file(path)


def test_a_copy_ending_one_byte_into_a_frame_is_truncated(fixtures, tmp_path):
    data, path = copy_of(fixtures, tmp_path)
    path.write_bytes(data + b"\xd4")
    with pytest.raises(oao.OAOError, match="truncated: .* needs at least 2 bytes, 1 left"):
        integrity.verify_file(path)


@pytest.mark.parametrize("where", [100, 512 + 52 * 1000 + 30, -1])
def test_one_flipped_byte_fails_its_frame_checksum(fixtures, tmp_path, where):
    data, path = copy_of(fixtures, tmp_path)
    where %= len(data)
    data[where] ^= 0x01
    path.write_bytes(data)
    frame_start = 0 if where < 512 else 512 + (where - 512) // 52 * 52
    with pytest.raises(oao.OAOError, match=rf"bad checksum in frame 0x0AD[045] at byte {frame_start}\b"):
        integrity.verify_file(path)


def test_a_byte_flipped_in_a_stored_checksum_fails(fixtures, tmp_path):
    data, path = copy_of(fixtures, tmp_path)
    data[512 + 52 * 7 + 3] ^= 0x80
    path.write_bytes(data)
    with pytest.raises(oao.OAOError, match=f"at byte {512 + 52 * 7}"):
        integrity.verify_file(path)


def test_an_unknown_mode_is_named_with_its_offset(fixtures, tmp_path):
    data, path = copy_of(fixtures, tmp_path)
    at = 512 + 52 * 3
    data[at:at + 2] = struct.pack("<H", 0x1234)
    path.write_bytes(data)
    with pytest.raises(oao.OAOError, match=f"unknown frame mode 0x1234 at byte {at}"):
        integrity.verify_file(path)


def test_an_empty_file_is_not_a_track(tmp_path):
    path = tmp_path / "empty.oao"
    path.write_bytes(b"")
    with pytest.raises(oao.OAOError, match="empty"):
        integrity.verify_file(path)


def test_feeding_in_odd_pieces_gives_the_same_summary_as_the_whole_file(fixtures):
    path = fixtures / "oao" / FIXTURE_NAMES[2]
    data = path.read_bytes()
    verifier = integrity.Verifier()
    rng = random.Random(7)
    pos = 0
    while pos < len(data):
        step = rng.choice((1, 3, 51, 52, 53, 511, 4096, 100_003))
        verifier.feed(data[pos:pos + step])
        pos += step
    assert verifier.finish() == integrity.verify_file(path)
