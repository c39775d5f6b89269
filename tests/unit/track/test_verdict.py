"""The verdict at hand-in (jobs.track.figures.verdict): the share of fixes filtered and why, the
longest gap, median satellites and sAcc, and the suspect stretches inside the session
windows with their times; flagged on a suspect stretch or too large a filtered share."""

import datetime as dt

import pytest

from jobs.track import figures, oao

START = int(dt.datetime(2026, 7, 16, 10, tzinfo=dt.timezone.utc).timestamp() * 1000)


def track(count=3000, step=200, bad=lambda n: None, gap_at=None, lon=lambda n: -24_575_000):
    """5 Hz fixes at 10 m/s, 20 satellites, sAcc 150 mm/s, hAcc 0.8 m; bad(n) may give
    (speed, satellites, sAcc, hAcc) for fix n; a 30 s gap before fix gap_at."""
    records, t = [], START
    for n in range(count):
        t += step + (30_000 if n == gap_at else 0)
        speed, satellites, sacc, hacc = bad(n) or (10_000, 20, 150, 800)
        records.append((0x0AD4, 505_725_000 + 9 * n, lon(n), 0, speed, 0, t, 3, satellites, sacc, hacc,
                        1200, 0, 54))
    fixes = figures.Fixes()
    fixes.feed(oao.gnss_frames(records))
    return fixes.array()


def at(n, step=200, gap=0):
    return START + (n + 1) * step + gap


def test_a_clean_track_is_not_flagged_and_says_its_medians_and_longest_gap():
    found = figures.verdict(track(gap_at=1000))
    assert not found["flagged"] and found["suspect"] == [] and found["filtered"] == 0
    assert (found["median_satellites"], found["median_speed_accuracy"]) == (20, 150)
    assert found["longest_gap"] == {"s": 30.2, "start_ms": at(999), "end_ms": at(1000, gap=30_000)}


def test_each_kind_of_suspect_stretch_is_found_with_its_times():
    def bad(n):
        if 100 <= n < 150:      # 10 s over 30 kn with sAcc 2 kn
            return 16_000, 20, 1030, 800
        if 500 <= n < 520:      # 4 s with 12 satellites
            return 10_000, 12, 150, 800
        if 900 <= n < 930:      # 6 s with hAcc 3 m
            return 10_000, 20, 150, 3000
        if n == 1500:           # one fix: noise, not a stretch
            return 10_000, 12, 150, 800
        return None
    found = figures.verdict(track(bad=bad))
    assert found["flagged"]
    assert [(s["why"], s["start_ms"], s["end_ms"]) for s in found["suspect"]] == [
        ("over 30 kn with sAcc over 1.5 kn", at(100), at(149)),
        ("fewer than 15 satellites", at(500), at(519)),
        ("hAcc over 2.5 m", at(900), at(929))]
    assert found["reasons"] == {"speed accuracy": 50, "acceleration": 2}


def test_only_stretches_inside_the_session_windows_count():
    def bad(n):
        return (16_000, 20, 1030, 800) if 100 <= n < 150 or 2000 <= n < 2050 else None
    fixes = track(bad=bad)
    window = [("10:05-10:30", (START + 300_000) / 1000, (START + 1_800_000) / 1000)]   # fixes 1500-...
    found = figures.verdict(fixes, window)
    assert [s["start_ms"] for s in found["suspect"]] == [at(2000)]
    outside = [("10:00-10:05", START / 1000, (START + 15_000) / 1000)]
    assert figures.verdict(fixes, outside)["suspect"] == []


def test_a_large_filtered_share_flags_a_track_without_a_suspect_stretch():
    fixes = track(bad=lambda n: (10_000, 3, 150, 800) if n % 10 == 0 else None)   # 10 % with 3 satellites
    found = figures.verdict(fixes, max_filtered_share=0.05)
    assert found["filtered"] == 0.1 and found["reasons"]["satellites"] == 300
    assert found["flagged"]
    # One fix in ten, 2 s apart: no stretch; under a larger share allowed, nothing to flag.
    assert figures.verdict(fixes, max_filtered_share=0.2)["suspect"] == []
    assert not figures.verdict(fixes, max_filtered_share=0.2)["flagged"]


def test_no_fixes_no_verdict_numbers():
    found = figures.verdict(track(count=0))
    assert found["fixes"] == 0 and not found["flagged"] and found["longest_gap"] is None


def test_the_simulator_writes_a_real_tracks_figures_the_firmware_way_so_it_is_never_flagged_against_itself(
        real_fixtures):
    from jobs.dashboard import boards
    from jobs.track import fetch
    from jobs.sim import track_files
    from tests.builders import FIXTURE_NAMES

    for name in FIXTURE_NAMES:
        path = real_fixtures / "oao" / name
        listed = track_files.real_logs(track_files.TrackSpec(source=str(path)), f"/logs/{name}")
        computed = fetch._figure_fields(figures.summary_of_file(path))["computed"]
        ledger = {"best500": listed["500m_best"], "best2s": listed["2s_best"], "best10s": listed["10s_best"],
                  "computed": computed}
        assert boards.disagreements(ledger) == [], name
        assert listed["500m_best"] == computed["best500"] and listed["distance"] == computed["distance"]


def test_inside_the_course_only_fixes_within_the_polygon_count():
    # Due north at 10 m/s, then 20 m/s from fix 1500 on; the course ends at fix 1200's latitude.
    def bad(n):
        return (20_000, 20, 150, 800) if n >= 1500 else None
    fixes = track(count=3000, bad=bad)
    lats = fixes["lat"] * 1e-7
    edge = float(lats[1200])
    course = [[50.0, -3.0], [edge, -3.0], [edge, -2.0], [50.0, -2.0]]
    assert figures.inside(fixes, course).tolist() == (lats < edge).tolist()
    window = [("10:00-11:00", START / 1000, START / 1000 + 3600)]
    everywhere = figures.in_sessions(fixes, window)
    on_course = figures.in_sessions(fixes, window, course)
    assert everywhere["500m"]["mm_s"] > 19_000 and everywhere["500m"]["window"] == "10:00-11:00"
    assert on_course["500m"]["mm_s"] < 10_500 and on_course["500m"]["end_ms"] <= at(1200)
    assert on_course["distance"]["m"] < everywhere["distance"]["m"] / 2


def test_fixes_outside_every_session_window_give_no_figure():
    fixes = track(count=3000)
    early = [("08:00-09:00", START / 1000 - 7200, START / 1000 - 3600)]
    assert figures.in_sessions(fixes, early) == {}
    two = [("10:00-10:02", START / 1000, START / 1000 + 120), ("10:05-10:08", START / 1000 + 300, START / 1000 + 480)]
    found = figures.in_sessions(fixes, two)
    assert found["distance"]["window"] == "10:00-10:02, 10:05-10:08"
    assert found["distance"]["m"] == pytest.approx(10 * (120 + 180), rel=0.01)


@pytest.mark.parametrize("longitude", [-2**31, 2**31 - 1, -1_800_000_001])
def test_a_position_off_the_globe_is_filtered_as_impossible_at_the_ends_of_int32_too(longitude):
    fixes = track(count=50, lon=lambda n: longitude if n == 20 else -24_575_000)
    found = figures.reasons(fixes, 200)["impossible"]
    assert list(found.nonzero()[0]) == [20]
