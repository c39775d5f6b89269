"""The results team's boards on a simulated day with known speeds and gaps:
who is accounted for (seen, downloaded, hours, a short log, a gap) and the
provisional fastest today, through the real stages and `report`.

These run in this process on files only; the tests that run against the simulated fleet
are in tests/integration/dashboard/test_boards.py.
"""

from jobs.dashboard import boards


def test_a_devices_figure_far_from_its_frames_is_flagged_and_a_missing_one_is_computed():
    fast = {"best500": 13_000, "best2s": 14_000, "computed": {"best500": 12_300, "best2s": 13_900}}
    assert boards.disagreements(fast) == ["500 m: device 25.3 kn, frames 23.9 kn"]   # 5.7 % apart; 2 s 0.7 %
    blank = {"best500": 0, "best2s": 0, "computed": {"best500": 12_300}}
    assert boards.figure_of(blank, "best500") == (12_300, True)
    assert boards.figure_of(blank, "best2s") == (None, False)
    assert boards.figure_of(fast, "best500") == (13_000, False)
    assert boards.disagreements(blank) == []
