"""The figures' shortcuts give what the plain computation gives: the filters computed
once for a track's fixes and shared by its verdict and by the stretches cut out for its
session windows (the first fix of a stretch has no speed before it), on random tracks
with gaps, filtered fixes, fixes before the first fix and clocks that run backwards;
the runs' turns found from whole-number headings, exactly 90 degrees and headings
beyond 360 included."""

import json
import math
import random

import numpy as np
import pytest

from jobs.track import figures, oao
from tests.builders import plain_alpha

START_MS = 1_700_000_000_000


def legs(rng, count, step_ms):
    """Legs of 10-60 s at their own speed and heading, noisy, out and back over the same
    water (alphas), with gaps in time, fixes filtered by satellites, sAcc and jumps in speed,
    and some 2D fixes."""
    records, lat, lon, t, heading, leg_end, fast = [], 505_725_000.0, -24_575_000.0, START_MS, 45.0, 0, 9000
    for n in range(count):
        if n >= leg_end:
            heading = (heading + rng.choice((-1, 1)) * rng.randrange(30, 181)) % 360
            leg_end, fast = n + rng.randrange(10_000, 60_000) // step_ms, rng.randrange(2000, 13_000)
        speed = fast + rng.randrange(-300, 300) + (6000 if rng.random() < 0.003 else 0)
        lat += speed * step_ms / 1e6 * math.cos(math.radians(heading)) / 0.011132 + rng.randrange(-30, 31)
        lon += speed * step_ms / 1e6 * math.sin(math.radians(heading)) / 0.00707 + rng.randrange(-30, 31)
        t += step_ms * (rng.randrange(2, 20) if rng.random() < 0.003 else 1)
        records.append((0x0AD4, round(lat), round(lon), 0, speed, round(heading * 1e5), t,
                        2 if rng.random() < 0.003 else 3, 3 if rng.random() < 0.005 else 12,
                        5000 if rng.random() < 0.005 else 150, 800, 1200, 0, 54))
    return records


def hostile(records, rng):
    """`records` with times that run backwards or repeat, a time past 2100, a latitude at
    the end of int32 and a speed beyond any craft, and the first fixes without a fix."""
    records = [list(r) for r in records]
    for _ in range(len(records) // 40):
        k = rng.randrange(len(records))
        records[k][6] -= rng.randrange(0, 5000)
    records[rng.randrange(len(records))][6] = 2**62
    records[rng.randrange(len(records))][1] = -2**31
    records[rng.randrange(len(records))][4] = 2**32 - 1
    for r in records[:20]:
        r[7] = 0
    return [tuple(r) for r in records]


def gathered(frames):
    fixes = figures.Fixes()
    for at in range(0, len(frames), 52 * 700):
        fixes.feed(frames[at:at + 52 * 700])
    return fixes.array()


@pytest.mark.parametrize("seed", range(8))
def test_shared_filters_give_what_fresh_ones_give(seed):
    rng = random.Random(seed)
    step = rng.choice((100, 200, 1000))
    count = rng.choice((800, 3000))
    records = legs(rng, count, step)
    if seed % 4 < 2:
        records = hostile(records, rng)
    frames = oao.gnss_frames(records)
    fixes = gathered(frames)
    first, last = int(fixes["utc_ms"][0]) / 1000, int(fixes["utc_ms"][-1]) / 1000
    windows = [("a", first + (last - first) * rng.random() * 0.4, first + (last - first) * 0.5),
               ("b", first + (last - first) * 0.6, first + (last - first) * rng.uniform(0.7, 1.0))]
    # The download's order: the whole log's figures, then the verdict and the sessions' figures.
    shared = (figures.compute(fixes, only=figures.CHECKED), figures.verdict(fixes, windows),
              figures.in_sessions(fixes, windows), figures.compute(fixes, 300), figures.verdict(fixes, (), 300))
    fresh = (figures.compute(gathered(frames), only=figures.CHECKED), figures.verdict(gathered(frames), windows),
             figures.in_sessions(gathered(frames), windows), figures.compute(gathered(frames), 300),
             figures.verdict(gathered(frames), (), 300))
    assert shared == fresh
    assert shared[2] and shared[0]["10s"]


@pytest.mark.parametrize("filtered_first", [True, False])
def test_a_stretch_cut_from_the_fixes_has_the_filters_of_fixes_gathered_alone(filtered_first):
    rng = random.Random(5)
    records = legs(rng, 2000, 200)
    if filtered_first:     # a jump in speed at the stretch's first fix: filtered only in the whole track
        records[700] = records[700][:4] + (records[700][4] + 9000,) + records[700][5:]
    fixes = gathered(oao.gnss_frames(records))
    figures.filters(fixes, 200)
    cut = fixes[700:1500]
    alone = gathered(oao.gnss_frames(records[700:1500]))
    for (name, hit), (same, expected) in zip(figures.filters(cut, 200)[0].items(),
                                             figures.filters(alone, 200)[0].items()):
        assert name == same and hit.tolist() == expected.tolist(), name
    assert figures.filters(cut, 200)[2].tolist() == figures.filters(alone, 200)[2].tolist()
    assert figures.filters(fixes, 200)[0]["acceleration"][700] == filtered_first


def test_the_verdict_holds_plain_numbers_for_the_ledger():
    # The ledger is JSON: a numpy number in the verdict would stop the track's update.
    found = figures.verdict(gathered(oao.gnss_frames(legs(random.Random(3), 2000, 200))))
    assert json.loads(json.dumps(found)) == found and found["reasons"]


def plain_runs(track):
    """The run of every fix, following every fix: the dot product of its direction with
    the run's first one's negative, or a drop below 8.1 kn, starts a new run."""
    heading = np.radians(track.fixes["course"].astype(np.float64) * 1e-5)
    across, up = np.cos(heading), np.sin(heading)
    slow = track.fixes["speed"] < figures.RUN_SPEED
    run, first, found = 0, 0, [0]
    for k in range(1, len(heading)):
        if across[k] * across[first] + up[k] * up[first] < 0 or (slow[k] and not slow[k - 1]):
            run, first = run + 1, k
        found.append(run)
    return found


@pytest.mark.parametrize("beyond_360", [False, True])
def test_runs_turn_where_the_plain_dot_product_turns(beyond_360):
    rng = random.Random(7)
    records = legs(rng, 3000, 200)
    quarter = figures.QUARTER
    courses, heading = [], 4_500_000
    for n in range(len(records)):
        if rng.random() < 0.02:      # exactly 90, 270, 180 degrees or a little more or less than 90
            heading = (heading + rng.choice((quarter, 3 * quarter, 2 * quarter, quarter + 1, quarter - 1,
                                             -quarter))) % figures.FULL_CIRCLE
        course = heading + (figures.FULL_CIRCLE * rng.randrange(1, 100) if beyond_360 and rng.random() < 0.1 else 0)
        courses.append(course)
    records = [r[:5] + (c,) + r[6:] for r, c in zip(records, courses)]
    fixes = gathered(oao.gnss_frames(records))
    track = figures.Track(fixes, 200)
    expected = plain_runs(track)
    assert figures.runs(track).tolist() == expected and expected[-1] > 20


def out_and_back(count, step_ms, drift_every=None):
    """Out and back over the same line at one steady speed (every turn holds an alpha
    about as fast), on a clock that is a millisecond late every drift_every steps."""
    records, t, along, heading = [], START_MS, 0.0, 1
    for n in range(count):
        t += step_ms + (1 if drift_every and n % drift_every == 0 else 0)
        along += heading * 12_000 * step_ms / 1e6
        if abs(along) > 300:
            heading = -heading
        records.append((0x0AD4, 505_725_000 + round(along / 0.011132), -24_575_000, 0, 12_000,
                        0 if heading > 0 else 18_000_000, t, 3, 12, 150, 800, 1200, 0, 54))
    return records


def plain_timed(track, span_ms, reject=True):
    """The fastest window of each end fix back to the latest fix at least span_ms
    earlier (less than a step beyond), looked up one by one; the first of equal ones."""
    speeds, starts, ends = figures._timed_at(track, np.arange(len(track.times)), span_ms, reject)
    return track.result(speeds, starts, ends)


@pytest.mark.parametrize("drift_every", [None, 180, 7])
@pytest.mark.parametrize("batches", ["shipped", "one pair at a time"])
def test_out_and_back_at_one_speed_on_a_drifting_clock_gives_the_plain_figures(drift_every, batches, monkeypatch):
    # Alpha 500's smallest blocks and the timed windows of a clock that drifts (a simulator's).
    if batches != "shipped":
        monkeypatch.setattr(figures, "COARSE_BATCH", 1)
        monkeypatch.setattr(figures, "ALPHA_BATCH", 1)
    fixes = gathered(oao.gnss_frames(out_and_back(2500, 200, drift_every)))
    track = figures.Track(fixes, figures.nominal_step(fixes["utc_ms"]))
    found = figures.compute(fixes)
    assert found["alpha500"] == plain_alpha(track) and found["alpha500"]
    for key, span in (("2s", 2000), ("10s", 10_000)):
        assert found[key] == plain_timed(track, span), key
    # Windows not exactly 50 steps long are the look-up's, to the last bit (the others are
    # the shifted slices', a product instead of a quotient).
    speeds, starts, _ = figures.timed(track, 10_000)
    looked_up, looked_up_starts, _ = figures._timed_at(track, np.arange(len(track.times)), 10_000, True)
    times = track.times
    odd = np.flatnonzero(times[50:] - times[:-50] != 10_000) + 50
    assert speeds[odd].tolist() == looked_up[odd].tolist() and starts[odd].tolist() == looked_up_starts[odd].tolist()
    assert len(odd) > 100 or not drift_every
