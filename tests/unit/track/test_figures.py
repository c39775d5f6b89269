"""A track's figures computed from its frames (jobs.track.figures): distance,
time and bests of a run made to measure, the fixture tracks' against their
listing, the community's filters, and a 500 m best across read blocks."""

import datetime as dt
import json

import pytest

from jobs import units
from jobs.track import figures, integrity, oao
from tests.builders import FIXTURE_NAMES, fix_records


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
    from jobs.sim import track_files
    spec = track_files.TrackSpec(start=dt.datetime(2026, 7, 16, 10, tzinfo=dt.timezone.utc), duration_s=1800,
                               size=1_500_000, best500_knots=22.0)
    path = tmp_path / "t.oao"
    path.write_bytes(b"".join(track_files.synthetic_blocks(spec, 301, "K")))
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
