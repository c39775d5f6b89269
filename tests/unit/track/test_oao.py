"""OAO tracks: a file is accepted only when it parses to its last byte with every checksum right."""

import datetime as dt
import json
import random
import struct

import pytest

from jobs import units
from jobs.track import figures, oao, integrity
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


def test_bulk_checksums_equal_the_byte_by_byte_fletcher_definition():
    rng = random.Random(3)
    block = bytes(rng.randrange(256) for _ in range(52 * 300))
    a, b = oao._run_checksums(block, 300)
    for n in range(300):
        frame = block[52 * n:52 * (n + 1)]
        assert (a[n], b[n]) == oao.fletcher(frame[:2] + frame[4:])


def fix_records(count, start_ms=1_700_000_000_000, step_ms=200, speed=5000, lat=50.5, lon=-2.45):
    """Fixes due east at `speed` mm/s."""
    metres_per_deg_lon = 6371008.8 * 3.141592653589793 / 180 * 0.6360782202777
    records = []
    for i in range(count):
        east_m = speed / 1000 * step_ms / 1000 * i
        records.append((0x0AD4 if i % 5 == 0 else 0x0AD5, round(lat * 1e7),
                        round((lon + east_m / metres_per_deg_lon) * 1e7), 1000, speed, 9_000_000,
                        start_ms + i * step_ms, 3, 18, 150, 800, 1200, 450000, 54))
    return records


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


def test_stats_of_a_steady_run_give_its_distance_time_and_speed(tmp_path):
    records = fix_records(3001, speed=5000)          # 600 s at 5 m/s = 3 km
    path = tmp_path / "steady.oao"
    path.write_bytes(oao.gnss_frames(records))
    stats = figures.file_stats(path)
    assert stats["start_date"] == records[0][6] and stats["end_date"] == records[-1][6]
    assert stats["duration"] == 600_000
    assert stats["distance"] == pytest.approx(3_000_000, rel=0.01)
    for key in ("2s_best", "10s_best", "500m_best"):
        assert stats[key] == pytest.approx(5000, rel=0.01)


def test_the_fixture_tracks_have_plausible_figures(fixtures):
    stats = figures.file_stats(fixtures / "oao" / FIXTURE_NAMES[0])
    logs = json.loads((fixtures / "device" / "logs.json").read_text())["logs"]
    listed = next(e for e in logs if e["file"].endswith(FIXTURE_NAMES[0]))
    assert (stats["start_date"], stats["end_date"], stats["size"]) == (
        listed["start_date"], listed["end_date"], listed["size"])
    assert stats["500m_best"] == pytest.approx(listed["500m_best"], rel=0.15)
    assert stats["2s_best"] >= stats["10s_best"] >= stats["500m_best"]


# --- a track's figures computed from its frames ------------------------------------------

def _straight_north(speeds_m_s, step_ms=200, satellites=None, accuracy=None):
    """GNSS frames of a run due north at the given speed per fix (5 Hz by default)."""
    records, lat_m, t = [], 0.0, 1_700_000_000_000
    for n, speed in enumerate(speeds_m_s):
        lat_m += speed * step_ms / 1000
        sats = satellites(n) if satellites else 12
        acc = accuracy(n) if accuracy else 150
        records.append((0x0AD4, 505_725_000 + round(lat_m / 0.011132), -24_575_000, 0, round(speed * 1000),
                        0, t + n * step_ms, 3, sats, acc, 800, 1200, 450000, 54))
    return oao.gnss_frames(records)


def test_figures_of_a_synthetic_track_match_what_it_was_made_with(tmp_path):
    from jobs.sim import track_files as simtracks
    spec = simtracks.TrackSpec(start=dt.datetime(2026, 7, 16, 10, tzinfo=dt.timezone.utc), duration_s=1800,
                               size=1_500_000, best500_knots=22.0)
    path = tmp_path / "t.oao"
    path.write_bytes(b"".join(simtracks.synthetic_blocks(spec, 301, "K")))
    expected = units.mm_per_s(22.0)
    found = figures.summary_of_file(path)
    for key in ("2s_best", "10s_best", "500m_best"):
        assert found[key] == pytest.approx(expected, rel=0.01), key
    start = int(spec.start.timestamp() * 1000)
    assert (found["first_ms"], found["last_ms"]) == (start, start + 1800 * 1000)


def test_a_fix_with_too_few_satellites_or_a_poor_speed_accuracy_is_not_counted(tmp_path):
    speeds = [10.0] * 300 + [20.0] * 15 + [10.0] * 300     # a 3 s burst at twice the speed
    burst = range(300, 315)
    path = tmp_path / "t.oao"
    path.write_bytes(_straight_north(speeds))
    assert figures.summary_of_file(path)["2s_best"] == pytest.approx(20_000, rel=0.001)
    path.write_bytes(_straight_north(speeds, satellites=lambda n: 3 if n in burst else 12))
    assert figures.summary_of_file(path)["2s_best"] == pytest.approx(10_000, rel=0.001)
    path.write_bytes(_straight_north(speeds, accuracy=lambda n: 5000 if n in burst else 150))
    assert figures.summary_of_file(path)["2s_best"] == pytest.approx(10_000, rel=0.001)
    assert figures.summary_of_file(path, max_speed_accuracy=6000)["2s_best"] == pytest.approx(20_000, rel=0.001)


def test_the_500m_best_comes_from_positions_and_times_across_read_blocks(tmp_path, monkeypatch):
    # 12 m/s, then 50 s at 15 m/s (750 m), then 12 m/s again: the 500 m best is 15 m/s,
    # even when the file is read in blocks that cut the fast stretch in two.
    speeds = [12.0] * 1000 + [15.0] * 250 + [12.0] * 1000
    path = tmp_path / "t.oao"
    path.write_bytes(_straight_north(speeds))
    whole = figures.summary_of_file(path)
    monkeypatch.setattr(integrity, "READ_SIZE", 52 * 333)
    assert figures.summary_of_file(path) == whole
    assert whole["500m_best"] == pytest.approx(15_000, rel=0.01)
    assert whole["10s_best"] == pytest.approx(15_000, rel=0.001)
