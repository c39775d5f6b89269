"""The fast OAO code against straightforward references: the bulk Fletcher check
against the per-frame definition (bad frames at random places, pieces of random
sizes), and the figures against a slow, obvious computation of the
bests, fed whole, in blocks, or in one pass with the frame check."""

import hashlib
import io
import math
import random

import numpy as np
import pytest

from jobs.track import figures, oao, integrity
from tests.builders import FIXTURE_NAMES, SPEEDREADER, START_MS, plain_alpha, steady_records


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
    verifier = integrity.Verifier()
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
    assert verify_in_pieces(data, rng) == integrity.verify_file(real_fixtures / "oao" / name)
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
    verifier = integrity.Verifier(gnss=seen.append)
    with pytest.raises(oao.OAOError):
        for piece in pieces(bytes(data), rng):
            verifier.feed(piece)
        verifier.finish()
    given = b"".join(seen)
    assert len(given) < bad and all(reference_first_bad(given[at:at + 52]) is None
                                    for at in range(0, len(given), 52))


# --- the figures -----------------------------------------------------------------------

def reference_figures(records, max_speed_accuracy=figures.SPEED_ACCURACY_MAX):
    """The rules of jobs.track.figures, one fix and one window at a time (slow, obvious)."""
    t = [r[6] for r in records]
    v = [r[4] for r in records]
    step = sorted(b - a for a, b in zip(t, t[1:]))[(len(t) - 1) // 2]
    limit = 16 if step <= 150 else 8 if step <= 500 else 4
    filtered, dist = [], []
    total = 0.0
    for k, r in enumerate(records):
        change = abs(v[k] - v[k - 1]) / (t[k] - t[k - 1]) if k else 0
        bad = r[8] < 5 or r[9] > max_speed_accuracy or change > limit
        filtered.append(bad)
        if k and r[7] == 3 and not bad and v[k] >= 0.6 * 1852 / 3.6:
            dt_ = t[k] - t[k - 1]
            total += (step if dt_ > 1.5 * step else dt_) * v[k] / 1e6
        dist.append(total)
    n = len(records)

    def speed(i, j):
        return (dist[j] - dist[i]) / max(t[j] - t[i], 1) * 1e6

    def clean(i, j):
        return not any(filtered[i + 1:j + 1])

    def timed(span, reject=True):
        found = []
        for j in range(n):
            starts = [i for i in range(j) if t[j] - t[i] >= span]
            if starts and t[j] - t[starts[-1]] < span + step and (not reject or clean(starts[-1], j)):
                found.append((speed(starts[-1], j), starts[-1], j))
        return found

    def measured(metres, reject=True):
        found = []
        for i in range(n):
            j = next((j for j in range(i, n) if dist[j] - dist[i] >= metres), None)
            if j is not None and (not reject or clean(i, j)):
                found.append((speed(i, j), i, j))
        return found

    def best(found):
        return max((f[0] for f in found), default=0.0)

    ten = timed(10_000)
    run, runs, first = 0, [0], 0
    for k in range(1, n):
        turn = abs((records[k][5] - records[first][5]) / 1e5 + 180) % 360 - 180
        slow, was_slow = v[k] < 8.1 * 1852 / 3.6, v[k - 1] < 8.1 * 1852 / 3.6
        if abs(turn) > 90 or (slow and not was_slow):
            run, first = run + 1, k
        runs.append(run)
    per_run = {}
    for value, _, j in ten:
        per_run[runs[j]] = max(per_run.get(runs[j], 0.0), value)
    alphas = [speed(i, j) for j in range(n) for i in range(j)
              if 100 <= dist[j] - dist[i] <= 500 and clean(i, j)
              and math.hypot((records[j][1] - records[i][1]) * 0.011132,
                             (records[j][2] - records[i][2]) * 0.00707) <= 50]
    return {"2s": best(timed(2000)), "10s": best(ten), "5x10s": sum(sorted(per_run.values())[-5:]) / 5,
            "500m": best(measured(500)), "1852m": best(measured(1852, reject=False)),
            "1h": best(timed(3_600_000, reject=False)) if t[-1] - t[0] >= 3_600_000 else speed(0, n - 1),
            "alpha500": max(alphas, default=0.0), "distance": dist[-1]}


def as_numbers(found):
    return {key: (value or {}).get("m" if key == "distance" else "mm_s", 0.0) for key, value in found.items()}


@pytest.mark.parametrize("seed, step_ms, count", [(1, 200, 2500), (2, 100, 3000), (3, 1000, 900)])
def test_figures_equal_the_slow_obvious_reference(seed, step_ms, count):
    rng = random.Random(seed)
    records = steady_records(rng, count, step_ms)
    fixes = figures.Fixes()
    fixes.feed(oao.gnss_frames(records))
    found = as_numbers(figures.compute(fixes.array()))
    expected = reference_figures(records)
    for key in figures.CATEGORIES:
        # alpha 500: positions on the ellipsoid here, a flat 11.1/7.1 m per 1e-7 degree there
        assert found[key] == pytest.approx(expected[key], rel=0.002 if key == "alpha500" else 1e-9), key
    assert found["2s"] > 0 and found["alpha500"] > 0 and found["5x10s"] > 0


# Where the bests GPS Speedreader names (builders.SPEEDREADER) lie (UTC).
WHERE = {
    "0470_2022-07-16-1202.oao": {"2s": ("12:32:31.8", "12:32:33.8"), "10s": ("12:32:28.4", "12:32:38.4"),
                                 "500m": ("12:32:26.0", "12:33:11.2"), "alpha500": ("12:59:34.2", "13:00:27.4")},
    "Motion_Mini_10Hz_0470_2022-04-11-1117.oao": {"2s": ("10:53:05.0", "10:53:07.0"),
                                                  "500m": ("10:53:01.9", "10:53:34.0"),
                                                  "1852m": ("10:42:29.6", "10:45:09.9")},
}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_the_real_tracks_figures_agree_with_gps_speedreader(real_fixtures, name):
    found = figures.as_json(figures.of_file(real_fixtures / "oao" / name))
    for key, expected in zip(figures.CATEGORIES, SPEEDREADER[name]):
        value = found[key]["m" if key == "distance" else "mm_s"]
        assert value == pytest.approx(expected, rel=0.002 if key in ("alpha500", "5x10s") else 0.0005), key
    for key, (start, end) in WHERE.get(name, {}).items():
        assert (found[key]["start"][11:21], found[key]["end"][11:21]) == (start, end), key


def test_hostile_numbers_never_reach_a_figure():
    # A fix time in year 146 million, times running backwards, speeds of 4e9 mm/s,
    # positions off the globe: dropped or filtered, every figure finite and dated 2000-2100.
    rng = random.Random(9)
    records = steady_records(rng, 3000, gaps=False)
    hostile = list(records)
    for n in range(100, 3000, 97):
        r = hostile[n]
        hostile[n] = r[:6] + (rng.choice((4_600_000_000_000_000_000, 0, r[6] - 50_000)),) + r[7:]
    for n in range(150, 3000, 89):
        hostile[n] = hostile[n][:4] + (2**32 - 1,) + hostile[n][5:]
    for n in range(170, 3000, 113):
        hostile[n] = (hostile[n][0], 2**31 - 1, -2**31) + hostile[n][3:]
    fixes = figures.Fixes()
    fixes.feed(oao.gnss_frames(hostile))
    found = figures.compute(fixes.array())
    shown = figures.as_json(found)
    for key in figures.CATEGORIES:
        value = found[key]
        if value is None:       # e.g. no 500 m without a filtered fix in it
            assert shown[key] is None
            continue
        assert 0 < value["m" if key == "distance" else "mm_s"] < 30_000 * (2 if key != "distance" else 1e6), key
        assert "2000-01-01" <= shown[key]["start"] <= shown[key]["end"] < "2100-01-01", key
    assert found["2s"]["mm_s"] < 13_000 and found["1852m"] and found["distance"]   # no 4e9 mm/s fix counted


def test_fixes_before_the_first_fix_and_a_track_without_fixes_give_no_figures():
    records = steady_records(random.Random(4), 200, gaps=False)
    nofix = [r[:7] + (0,) + r[8:] for r in records]
    fixes = figures.Fixes()
    fixes.feed(oao.gnss_frames(nofix[:100]))
    assert len(fixes.array()) == 0
    assert figures.compute(fixes.array()) == {key: None for key in figures.CATEGORIES}
    fixes.feed(oao.gnss_frames(records[100:]))
    assert len(fixes.array()) == 100


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_one_pass_figures_equal_figures_of_the_file_in_any_pieces(real_fixtures, name):
    path = real_fixtures / "oao" / name
    data = path.read_bytes()
    expected = figures.summary_of_file(path)
    rng = random.Random(name)
    for largest in (2000, 200_000, 3 * integrity.TAKE_BATCH):   # the largest are checked without a copy
        check = integrity.TrackCheck(470, figures=figures.SPEED_ACCURACY_MAX)
        for piece in pieces(data, rng, largest):
            check.take(piece)
        assert check.finish(len(data)) == hashlib.sha256(data).hexdigest()
        assert check.figures_result() == expected
    with open(path, "rb") as f:      # resumed: what the .part held first, then the rest
        check = integrity.check_file(f, len(data) // 3, 470, figures=figures.SPEED_ACCURACY_MAX)
        f.seek(len(data) // 3)
        check.take(f.read())
    check.finish(len(data))
    assert check.figures_result() == expected


def test_a_damaged_track_has_no_one_pass_figures():
    rng = random.Random(5)
    records = steady_records(rng, 2000)
    data = bytearray(oao.header_frame(470, "K1", 0, 1) + oao.gnss_frames(records))
    data[oao.HEADER_SIZE + 52 * 1500 + 30] ^= 0x01
    check = integrity.check_file(io.BytesIO(bytes(data)), figures=figures.SPEED_ACCURACY_MAX)
    with pytest.raises(integrity.Damaged):
        check.finish(len(data))
    assert check.figures_result() is None
    assert integrity.TrackCheck(470).figures_result() is None


def test_a_body_of_the_wrong_length_has_no_one_pass_figures():
    data = oao.header_frame(470, "K1", 0, 1) + oao.gnss_frames(steady_records(random.Random(6), 500))
    check = integrity.check_file(io.BytesIO(data), figures=figures.SPEED_ACCURACY_MAX)
    with pytest.raises(integrity.BadData):
        check.finish(len(data) + 52)
    assert check.figures_result() is None
    check.finish(len(data))
    assert check.figures_result()["first_ms"] == START_MS + 200




# --- the fast searches against the plain definitions, start and end included ---------------

def plain_best(speeds, starts, ends, times):
    """The fastest window, the first of equally fast ones, as {mm_s, start_ms, end_ms}."""
    speeds = [(s, -k) for k, s in enumerate(speeds)]
    top, k = max(speeds, default=(0.0, 0))
    return None if not top > 0 else {"mm_s": float(top), "start_ms": int(times[starts[-k]]),
                                     "end_ms": int(times[ends[-k]])}


def plain_timed(track, span_ms, reject=True):
    times, n = track.times, len(track.times)
    speeds, starts = [], []
    for j in range(n):
        i = int(np.flatnonzero(times <= times[j] - span_ms)[-1]) if times[j] - times[0] >= span_ms else -1
        whole = i >= 0 and times[j] - times[i] < span_ms + track.step and (not reject or track.clean(i, j))
        speeds.append(float(track.speeds(np.array([max(i, 0)]), np.array([j]))[0]) if whole else 0.0)
        starts.append(max(i, 0))
    return plain_best(speeds, starts, list(range(n)), times)


def plain_measured(track, metres, reject=True):
    distance, n = track.distance, len(track.times)
    speeds, ends = [], []
    for i in range(n):
        further = np.flatnonzero(distance >= distance[i] + metres)
        j = int(further[0]) if len(further) else n - 1
        whole = len(further) > 0 and (not reject or track.clean(i, j))
        speeds.append(float(track.speeds(np.array([i]), np.array([j]))[0]) if whole else 0.0)
        ends.append(j)
    return plain_best(speeds, list(range(n)), ends, track.times)


def legs_records(rng, count, step_ms):
    """Legs of 10-60 s at their own speed, some ending in a slow gybe (a drop below 8.1
    kn), others in a turn at speed, of 30-180 degrees (a new run, or not)."""
    records, lat, lon, t, heading = [], 505_725_000.0, -24_575_000.0, START_MS, 45.0
    leg_end, fast, slow_until = 0, 9000, -1
    for n in range(count):
        if n >= leg_end:
            heading = (heading + rng.choice((-1, 1)) * rng.randrange(30, 181)) % 360
            leg_end, fast = n + rng.randrange(10_000, 60_000) // step_ms, rng.randrange(5000, 13_000)
            slow_until = n + 4000 // step_ms if rng.random() < 0.25 else -1
        speed = (2000 if n < slow_until else fast) + rng.randrange(-300, 300)
        metres = speed * step_ms / 1e6
        lat += metres * math.cos(math.radians(heading)) / 0.011132 + rng.randrange(-30, 31)
        lon += metres * math.sin(math.radians(heading)) / 0.00707 + rng.randrange(-30, 31)
        t += step_ms
        course = (round(heading * 1e5) + rng.randrange(-500_000, 500_001)) % 36_000_000   # +-5 degrees
        records.append((0x0AD4, round(lat), round(lon), 0, speed, course, t, 3, 12, 150, 800, 1200, 0, 54))
    return records


def plain_five_by_ten(track):
    """Every run followed turn by turn; the first best 10 s of each; the five best runs
    (of equal ones the first); their mean."""
    speeds, starts, ends = figures.timed(track, 10_000)
    run = figures.runs(track).tolist()
    best = {}
    for k, value in enumerate(speeds.tolist()):
        if run[k] not in best or value > speeds[best[run[k]]]:
            best[run[k]] = k
    top = sorted(best, key=lambda r: (-speeds[best[r]], r))[:5]
    picked = [best[r] for r in top if speeds[best[r]] > 0]
    windows = [{"mm_s": float(speeds[k]), "start_ms": int(track.times[starts[k]]), "end_ms": int(track.times[ends[k]])}
               for k in picked]
    return {"mm_s": float(speeds[np.array(picked)].sum() / 5), "start_ms": min(w["start_ms"] for w in windows),
            "end_ms": max(w["end_ms"] for w in windows), "runs": windows}


@pytest.mark.parametrize("seed, step_ms, count, shape", [
    (11, 200, 3000, "back and forth"), (12, 100, 4000, "legs"), (13, 1000, 4000, "back and forth"),
    (14, 200, 3000, "back and forth, no gaps"), (15, 200, 6000, "legs")])
@pytest.mark.parametrize("batches", ["shipped", "one pair at a time"])
def test_the_fast_searches_find_the_plain_definitions_windows(seed, step_ms, count, shape, batches, monkeypatch):
    # Bounds prune what the searches compute: the figure, its start and its end must still be
    # exactly those of trying every window (on a clock without gaps, equal speeds are common),
    # and the five runs those of following every turn.
    # One block pair at a time, every bound decides what is computed.
    if batches != "shipped":
        monkeypatch.setattr(figures, "COARSE_BATCH", 1)
        monkeypatch.setattr(figures, "ALPHA_BATCH", 1)
        monkeypatch.setattr(figures, "BOUND_BATCH", 1)
    rng = random.Random(seed)
    if shape == "legs":
        records = legs_records(rng, count, step_ms)
    else:
        records = steady_records(rng, count, step_ms, gaps=shape == "back and forth")
    fixes = figures.Fixes()
    fixes.feed(oao.gnss_frames(records))
    fixes = fixes.array()
    track = figures.Track(fixes, figures.nominal_step(fixes["utc_ms"]))
    found = figures.compute(fixes)
    assert found["2s"] == plain_timed(track, 2000)
    assert found["10s"] == plain_timed(track, 10_000)
    assert found["500m"] == plain_measured(track, 500.0)
    assert found["5x10s"] == plain_five_by_ten(track)
    assert found["1852m"] == plain_measured(track, 1852.0, reject=False)
    if track.times[-1] - track.times[0] >= 3_600_000:
        assert found["1h"] == plain_timed(track, 3_600_000, reject=False)
    assert found["alpha500"] == plain_alpha(track)
    assert found["alpha500"] or shape == "legs"


def test_a_track_shorter_than_a_block_has_its_alpha():
    # 12 fixes at 1 Hz, 12 m/s out and back: the alpha starts and ends inside one block of fixes.
    records, lat = [], 505_725_000
    for n in range(12):
        lat += (1 if n < 6 else -1) * round(12 / 0.011132)
        records.append((0x0AD4, lat, -24_575_000, 0, 12_000, 0 if n < 6 else 18_000_000, START_MS + 1000 * n, 3, 12,
                        150, 800, 1200, 0, 54))
    fixes = figures.Fixes()
    fixes.feed(oao.gnss_frames(records))
    fixes = fixes.array()
    found = figures.compute(fixes)["alpha500"]
    assert found and found == plain_alpha(figures.Track(fixes, figures.nominal_step(fixes["utc_ms"])))
