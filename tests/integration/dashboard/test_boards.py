"""The results team's boards on a simulated day with known speeds and gaps:
who is accounted for (seen, downloaded, hours, a short log, a gap) and the
provisional fastest today, through the real stages and `report`.

The tests that need no socket, process or fleet are in tests/unit/dashboard/test_boards.py.
"""

import csv
import datetime as dt
import subprocess
import sys
import threading

import pytest

from jobs import config, roster, runner
from jobs.dashboard import boards
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet
from jobs.stages import detect, download, inspect
from tests.builders import LONDON, sailed, today_at as at


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    folder = tmp_path_factory.mktemp("boards")
    specs = [
        DeviceSpec(id=201, tracks=[sailed((9, 55), (12, 0), 25.0), sailed((12, 5), (16, 5), 22.0)]),   # covered
        DeviceSpec(id=202, tracks=[sailed((10, 0), (11, 0), 20.0), sailed((11, 30), (16, 0), 19.0)]),  # a gap
        DeviceSpec(id=203, tracks=[sailed((12, 0), (14, 0), 30.0)],                                     # short
                   entrant={"Craft Type": "Kiteboard", "Status": "Open"}),
        DeviceSpec(id=204, tracks=[sailed((10, 0), (16, 0), 40.0, summary=False)]),                   # no figures
        DeviceSpec(id=205, tracks=[sailed((10, 0), (15, 0), 18.0)], arrive=None),                     # not back
    ]
    with Fleet(specs, folder=folder, timezone="Europe/London") as fleet:
        path = fleet.write_config(folder / "motion-server.yaml", **{"event.session": ["10:00", "16:00"]})
        cfg = config.load(path)
        for stage, module in (("detect", detect), ("inspect", inspect), ("download", download)):
            assert runner.run(cfg, stage, module.step, once=True, stop=threading.Event()) == 0
        yield cfg, path, roster.load(cfg.event.roster), dt.datetime.now(LONDON).date()


def test_accounted_for_names_who_needs_a_person_first(day):
    cfg, _, event_roster, today = day
    lines = boards.accounted(cfg, state.all_devices(cfg.paths.spool), event_roster, today)
    by_device = {line["device"]: line for line in lines}
    assert [line["device"] for line in lines][:1] == [205]          # not back yet: first
    assert by_device[205]["flags"] == ["not seen today"] and not by_device[205]["downloaded"]
    assert by_device[201]["flags"] == [] and by_device[201]["downloaded"] and by_device[201]["verified"] == 2
    assert by_device[201]["hours"] == pytest.approx(6.08, abs=0.02)
    assert by_device[202]["flags"] == ["gap 11:00–11:30"]
    assert by_device[203]["flags"] == ["short: logs cover 12:00–14:00 of 10:00–16:00"]
    assert (by_device[203]["first"], by_device[203]["last"]) == ("12:00", "14:00")
    assert [line["device"] for line in lines].index(202) < [line["device"] for line in lines].index(201)


def test_fastest_today_ranks_the_devices_own_figures_per_craft_and_leaves_unknowns_out(day):
    cfg, _, event_roster, today = day
    board = boards.fastest(state.all_devices(cfg.paths.spool), event_roster, today)
    everyone = board["best500"]["boards"][0]
    assert everyone["group"] == "All"
    # Whole logs (no cfg: no sessions): the community's figures computed from the frames, 204's
    # too (it wrote no summary); the device's own beside.
    assert [(row["device"], row["knots"], row["computed"]) for row in everyone["rows"]] == [
        (204, pytest.approx(40.0, abs=0.1), True), (203, pytest.approx(30.0, abs=0.1), True),
        (201, pytest.approx(25.0, abs=0.1), True), (202, pytest.approx(20.0, abs=0.1), True)]
    assert [row["device_knots"] for row in everyone["rows"]][1:] == [30.0, 25.0, 20.0]
    assert not board["best500"]["trusted"]
    assert [row["rank"] for row in everyone["rows"]] == [1, 2, 3, 4]   # one row per entrant: their best
    kites = next(b for b in board["best500"]["boards"] if (b["group"], b["value"]) == ("Craft Type", "Kiteboard"))
    assert [row["device"] for row in kites["rows"]] == [203]
    two_s = board["best2s"]["boards"][1]["rows"]          # Craft Type: Kiteboard
    assert two_s[0]["device"] == 203 and two_s[0]["knots"] == pytest.approx(30.0, abs=0.05)
    # 204's nautical mile: the device's 0 is unknown; with a session set (event.session) the
    # whole log's is not computed, only the one inside the session, which the board with cfg ranks.
    assert all(row["device"] != 204 for g in board["best1852"]["boards"] for row in g["rows"])
    inside = boards.fastest(state.all_devices(cfg.paths.spool), event_roster, today, cfg)
    mile = [row for g in inside["best1852"]["boards"] for row in g["rows"] if row["device"] == 204]
    assert mile and all(row["computed"] and row["window"] == "10:00-16:00" for row in mile)


def test_report_writes_both_boards_as_csv(day, tmp_path):
    cfg, path, _, today = day
    for flag, first_column in (("--accounted", "Entrant"), ("--fastest", "Figure")):
        out = tmp_path / f"{flag[2:]}.csv"
        done = subprocess.run([sys.executable, "-m", "jobs", "--config", str(path), "report", flag,
                               "--csv", str(out)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        with open(out, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        assert rows and list(rows[0])[:2] == ["Date", first_column]
        assert rows[0]["Date"] == today.isoformat()
    assert "provisional fastest: the community's figures inside the sessions" in done.stdout   # event.session
    assert any(r["Figure"] == "500 m" and r["Rank"] == "2" and r["Device"] == "203" for r in rows)


def test_the_dashboard_shows_both_boards_and_says_provisional(day):
    from pathlib import Path
    from jobs.dashboard import pages
    from jobs.stages import dashboard
    cfg, _, event_roster, today = day
    dashboard.write(cfg, Path(cfg.paths.spool), event_roster, pages.Renderer())
    html = Path(cfg.paths.html)
    accounted = (html / "accounted.html").read_text()
    rows = accounted.split('<tr class="')[1:]
    assert [row.split('"')[0] for row in rows][:1] == ["needs"] and 'data-entrant="1005"' in rows[0]
    assert "gap 11:00–11:30" in accounted and "Session 10:00–16:00" in accounted
    for page in ("fastest.html", "tv-fastest.html"):
        text = (html / page).read_text()
        assert "inside the sessions" in text or "inside today's sessions" in text   # event.session
        assert text.index("40.0") < text.index("30.00") < text.index("25.00") < text.index("20.00")
    status = __import__("json").loads((html / "status.json").read_text())
    assert status["fastest"]["best500"]["boards"][0]["rows"][1]["device"] == 203
    assert status["accounted"][0]["device"] == 205


def test_a_verified_track_carries_the_figures_its_frames_give(day):
    cfg, _, _, _ = day
    doc = state.read(cfg.paths.spool, 204)          # the log without a summary
    [track] = [t for t in doc["tracks"].values() if t["status"] == "verified"]
    assert track["best500"] == 0 and track["computed"]["best500"] == pytest.approx(40.0 * 1852 / 3.6, rel=0.01)
    assert track["last_fix"] - track["first_fix"] == 6 * 3600 * 1000
    line = next(line for line in boards.accounted(cfg, [doc], roster.load(cfg.event.roster), at(12).date())
                if line["device"] == 204)
    assert line["hours"] == pytest.approx(6.0, abs=0.01) and line["flags"] == []   # its end from its frames
    board = boards.fastest([doc], roster.load(cfg.event.roster), at(12).date())["best500"]["boards"][0]["rows"]
    assert (board[0]["device"], board[0]["computed"], board[0]["knots"]) == (204, True, pytest.approx(40.0, abs=0.1))
