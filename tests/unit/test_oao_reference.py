"""The fast OAO code against straightforward references: the bulk Fletcher check
against the per-frame definition (bad frames at random places, pieces of random
sizes), and the figures against a slow, obvious computation of the
bests, fed whole, in blocks, or in one pass with the frame check."""

import hashlib
import io
import math
import random

import pytest

from jobs import oao

FIXTURE_NAMES = ("0470_2022-07-16-1202.oao", "0470_2022-09-20-1229.oao",
                 "Motion_Mini_10Hz_0470_2022-04-11-1117.oao")
START_MS = 1_700_000_000_000


def pieces(data, rng, largest=200_000):
    """`data` cut into pieces of random sizes, 1 byte to `largest`."""
    pos = 0
    while pos < len(data):
        size = rng.choice((1, 2, 51, 52, 53, 1460, 4096, 65536, rng.randrange(1, largest + 1)))
        yield data[pos:pos + size]
        pos += size


# --- the frame check -------------------------------------------------------------------

def reference_first_bad(data):
    """The offset of the first frame that is not whole and intact (unknown mode,
    cut short, or a checksum that fails), walking frame by frame; None if there is none."""
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            return pos
        mode = data[pos] | data[pos + 1] << 8
        length = oao.FRAME_LENGTHS.get(mode)
        if length is None or pos + length > len(data):
            return pos
        frame = data[pos:pos + length]
        if mode != oao.PADDING and oao.fletcher(frame[:2] + frame[4:]) != (frame[2], frame[3]):
            return pos
        pos += length
    return None


def random_track(rng, fixes):
    """A header, GNSS frames of random contents (some short frames between them) and padding."""
    records = [(rng.choice((0x0AD4, 0x0AD5)), rng.randrange(-2**31, 2**31), rng.randrange(-2**31, 2**31),
                rng.randrange(-2**31, 2**31), rng.randrange(2**32), rng.randrange(2**32), rng.randrange(2**64),
                rng.randrange(256), rng.randrange(256), rng.randrange(2**32), rng.randrange(2**32),
                rng.randrange(2**32), rng.randrange(2**32), rng.randrange(2**16)) for _ in range(fixes)]
    body = bytearray(oao.header_frame(470, "K1", 0, 1))
    at = 0
    while at < fixes:
        run = rng.randrange(1, 3000)
        body += oao.gnss_frames(records[at:at + run])
        at += run
        if rng.random() < 0.3:
            short = bytearray(b"\xd1\x0a\0\0" + bytes(rng.randrange(256) for _ in range(8)))
            short[2], short[3] = oao.fletcher(short[:2] + short[4:])
            body += short
    return bytes(body + oao.padding(2))


def verify_in_pieces(data, rng):
    verifier = oao.Verifier()
    try:
        for piece in pieces(data, rng):
            verifier.feed(piece)
        return verifier.finish()
    except oao.OAOError as exc:
        return exc.offset


@pytest.mark.parametrize("seed", range(6))
def test_bulk_checksums_equal_the_per_frame_definition_for_any_count(seed):
    rng = random.Random(seed)
    for count in (1, 2, 3, rng.randrange(4, 64), rng.randrange(64, 3000)):
        block = bytes(rng.randrange(256) for _ in range(oao.GNSS_SIZE * count))
        a, b = oao._run_checksums(block, count)
        frames = [block[at:at + oao.GNSS_SIZE] for at in range(0, len(block), oao.GNSS_SIZE)]
        assert list(zip(a, b)) == [oao.fletcher(frame[:2] + frame[4:]) for frame in frames]


@pytest.mark.parametrize("seed", range(10))
def test_a_corrupted_frame_anywhere_is_reported_at_its_first_byte(seed):
    rng = random.Random(seed)
    data = bytearray(random_track(rng, rng.randrange(1, 8000)))
    assert isinstance(verify_in_pieces(bytes(data), rng), dict)
    for _ in range(rng.choice((1, 1, 2, 5))):
        where = rng.randrange(len(data) - 1)
        if rng.random() < 0.5:
            data[where] ^= 1 << rng.randrange(8)
        else:       # two bytes swapped: sum A unchanged, only B can tell
            data[where], data[where + 1] = data[where + 1], data[where]
    expected = reference_first_bad(bytes(data))
    found = verify_in_pieces(bytes(data), rng)
    assert found == expected if expected is not None else isinstance(found, dict)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_real_tracks_in_random_pieces_and_with_a_random_flip(real_fixtures, name):
    rng = random.Random(name)
    data = (real_fixtures / "oao" / name).read_bytes()
    assert verify_in_pieces(data, rng) == oao.verify_file(real_fixtures / "oao" / name)
    for _ in range(3):
        damaged = bytearray(data)
        where = rng.randrange(oao.HEADER_SIZE, len(data))
        damaged[where] ^= 1 << rng.randrange(8)
        expected = reference_first_bad(bytes(damaged))
        if expected is not None:
            assert verify_in_pieces(bytes(damaged), rng) == expected


def test_frames_reach_the_gnss_callback_only_once_checked():
    rng = random.Random(11)
    data = bytearray(random_track(rng, 5000))
    data[oao.HEADER_SIZE + 52 * 3000 + 20] ^= 0x10
    bad = reference_first_bad(bytes(data))
    assert bad is not None
    seen = []
    verifier = oao.Verifier(gnss=seen.append)
    with pytest.raises(oao.OAOError):
        for piece in pieces(bytes(data), rng):
            verifier.feed(piece)
        verifier.finish()
    given = b"".join(seen)
    assert len(given) < bad and all(reference_first_bad(given[at:at + 52]) is None
                                    for at in range(0, len(given), 52))


# --- the figures -----------------------------------------------------------------------

def steady_records(rng, count, step_ms=200, gaps=True):
    """A run north-east with a ramp to a fast stretch, noisy positions, some fixes that
    do not count, and a gap in time in the middle of the fastest seconds."""
    records, lat, lon, t = [], 505_725_000, -24_575_000, START_MS
    for n in range(count):
        speed = 4000 + 9000 * math.sin(math.pi * n / count) ** 4 + rng.randrange(-400, 400)
        lat += round(speed * step_ms / 1000 / 11.132 * 0.7) + rng.randrange(-30, 31)
        lon += round(speed * step_ms / 1000 / 7.07 * 0.7) + rng.randrange(-30, 31)
        gap = gaps and (rng.random() < 0.002 or n == count // 2)
        t += step_ms + (step_ms * rng.randrange(2, 20) if gap else 0)
        satellites = 3 if rng.random() < 0.01 else 12
        accuracy = 5000 if rng.random() < 0.01 else 150
        fix = 0 if rng.random() < 0.005 else 3
        records.append((0x0AD4, lat, lon, 0, round(speed), 0, t, fix, satellites, accuracy, 800, 1200, 0, 54))
    return records


def reference_figures(records, max_speed_accuracy=oao.SPEED_ACCURACY_MAX):
    """The bests the slow, obvious way (the rules of oao.Figures, one fix at a time)."""
    times = [r[6] for r in records]
    counted = [r[7] > 0 and r[8] >= oao.SATELLITES_MIN and r[9] <= max_speed_accuracy for r in records]
    step = max((times[10] - times[0]) / 10, 1)
    found = {}
    for key, span in (("2s_best", 2000), ("10s_best", 10000)):
        k, best = round(span / step), 0.0
        for end in range(k, len(records)):
            window = range(end - k + 1, end + 1)
            if all(counted[i] for i in window) and times[end] - times[end - k] <= span + step / 2 + span / 100:
                best = max(best, sum(records[i][4] for i in window) / k)
        found[key] = round(best)
    stride = max(1, round(oao.POSITION_STEP_MS / step))
    kept = [n for n in range(len(records)) if counted[n] and n % stride == 0]
    if not kept:
        return {**found, "500m_best": 0}
    per_degree = math.pi * oao.EARTH_RADIUS_M / 180 * 1e-7
    across = per_degree * math.cos(math.radians(records[kept[0]][1] * 1e-7))
    along = [0.0]
    for before, after in zip(kept, kept[1:]):
        along.append(along[-1] + math.hypot((records[after][2] - records[before][2]) * across,
                                            (records[after][1] - records[before][1]) * per_degree))
    best, start = 0.0, 0
    for end in range(len(kept)):
        while start + 1 < end and along[start + 1] <= along[end] - 500.0:
            start += 1
        if along[start] <= along[end] - 500.0:
            elapsed = max(times[kept[end]] - times[kept[start]], 1)
            best = max(best, (along[end] - along[start]) / elapsed)
    found["500m_best"] = round(best * 1e6)
    return found


def figures_fed(data, rng, largest):
    found = oao.Figures()
    for piece in pieces(data, rng, largest):
        found.feed(piece)
    return found.result()


@pytest.mark.parametrize("seed, step_ms", [(1, 200), (2, 100), (3, 200), (4, 40)])
def test_figures_equal_the_slow_reference_whole_and_fed_in_blocks(tmp_path, seed, step_ms):
    rng = random.Random(seed)
    records = steady_records(rng, rng.randrange(3000, 9000), step_ms)
    frames = oao.gnss_frames(records)
    expected = reference_figures(records)
    path = tmp_path / "t.oao"
    path.write_bytes(oao.header_frame(470, "K1", records[0][6], records[-1][6]) + frames)
    whole = oao.figures(path)
    assert {key: whole[key] for key in expected} == expected
    found = oao.Figures()
    for at in range(0, len(frames), 52 * 997):     # blocks of an odd count of frames
        found.feed(frames[at:at + 52 * 997])
    assert found.result() == expected


@pytest.mark.parametrize("seed", [5, 6])
def test_a_clock_that_steps_back_gives_the_reference_figures_whole_and_in_blocks(seed):
    # The 500 m is bounded a piece of stretch ends at a time only while time
    # runs forwards; a device whose clock steps back gets every stretch computed.
    rng = random.Random(seed)
    records = steady_records(rng, 6000, gaps=False)
    back = rng.randrange(2000, 4000)
    records = records[:back] + [r[:6] + (r[6] - 30_000,) + r[7:] for r in records[back:]]
    frames = oao.gnss_frames(records)
    expected = reference_figures(records)
    for size in (len(frames), 52 * 997):
        found = oao.Figures()
        for at in range(0, len(frames), size):
            found.feed(frames[at:at + size])
        assert found.result() == expected


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_one_pass_figures_equal_figures_of_the_file_in_any_pieces(real_fixtures, name):
    path = real_fixtures / "oao" / name
    data = path.read_bytes()
    expected = oao.figures(path)
    rng = random.Random(name)
    for largest in (2000, 200_000, 3 * oao.TAKE_BATCH):   # the largest are checked without a copy
        check = oao.TrackCheck(470, figures=oao.SPEED_ACCURACY_MAX)
        for piece in pieces(data, rng, largest):
            check.take(piece)
        assert check.finish(len(data)) == hashlib.sha256(data).hexdigest()
        assert check.figures_result() == expected
    with open(path, "rb") as f:      # resumed: what the .part held first, then the rest
        check = oao.check_file(f, len(data) // 3, 470, figures=oao.SPEED_ACCURACY_MAX)
        f.seek(len(data) // 3)
        check.take(f.read())
    check.finish(len(data))
    assert check.figures_result() == expected


def test_a_damaged_track_has_no_one_pass_figures():
    rng = random.Random(5)
    records = steady_records(rng, 2000)
    data = bytearray(oao.header_frame(470, "K1", 0, 1) + oao.gnss_frames(records))
    data[oao.HEADER_SIZE + 52 * 1500 + 30] ^= 0x01
    check = oao.check_file(io.BytesIO(bytes(data)), figures=oao.SPEED_ACCURACY_MAX)
    with pytest.raises(oao.Damaged):
        check.finish(len(data))
    assert check.figures_result() is None
    assert oao.TrackCheck(470).figures_result() is None


def test_figures_without_enough_fixes_are_zero():
    found = oao.Figures()
    found.feed(oao.gnss_frames(steady_records(random.Random(1), 5)))
    assert found.result() == {"2s_best": 0, "10s_best": 0, "500m_best": 0}


def test_a_long_stretch_of_fixes_that_do_not_count_changes_no_sum():
    # 9500 fixes without a fix, then 3000 good ones: the window sums are
    # integers (a window with an uncounted fix is left out, not penalised),
    # so the bests are the reference's to the mm/s.
    rng = random.Random(8)
    records = [r[:7] + (0,) + r[8:] for r in steady_records(rng, 9500, gaps=False)]
    records += steady_records(rng, 3000, gaps=False)
    records = [r[:6] + (START_MS + 200 * n,) + r[7:] for n, r in enumerate(records)]
    found = oao.Figures()
    found.feed(oao.gnss_frames(records))
    assert found.result() == reference_figures(records)
    assert found.result()["2s_best"] > 0


def test_a_body_of_the_wrong_length_has_no_one_pass_figures():
    data = oao.header_frame(470, "K1", 0, 1) + oao.gnss_frames(steady_records(random.Random(6), 500))
    check = oao.check_file(io.BytesIO(data), figures=oao.SPEED_ACCURACY_MAX)
    with pytest.raises(oao.BadData):
        check.finish(len(data) + 52)
    assert check.figures_result() is None
    check.finish(len(data))
    assert check.figures_result()["first_ms"] == START_MS + 200


@pytest.mark.parametrize("limit", [0, 1, 255, 256, 1000, 65535, 123_456_789, 2**32 - 1, 1000.5, -3])
def test_the_speed_accuracy_limit_counts_a_fix_as_the_plain_comparison_does(limit):
    rng = random.Random(str(limit))
    records = steady_records(rng, 3000, gaps=False)
    for n in range(0, len(records), 2):     # half of them at or near the limit
        near = min(max(int(limit) + rng.randrange(-3, 4), 0), 2**32 - 1)
        records[n] = records[n][:9] + (near,) + records[n][10:]
    found = oao.Figures(limit)
    found.feed(oao.gnss_frames(records))
    assert found.result() == reference_figures(records, max_speed_accuracy=limit)
