"""The fastest board on a simulated day whose devices drive home fast after the session:
inside event.sessions it ranks the community's figures of the fixes inside the windows
(the drive home never counts, the device's own figure is only shown beside); without
sessions it ranks whole logs and says it cannot be trusted. Through the real stages."""

import datetime as dt
import threading

import pytest

from jobs import config, roster, runner
from jobs.dashboard import boards
from jobs.spool import state
from jobs.sim import DeviceSpec, Fleet
from jobs.stages import detect, download, inspect
from tests.builders import LONDON, sailed


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fastest")
    specs = [DeviceSpec(id=301, tracks=[sailed((10, 30), (15, 30), 30.0), sailed((16, 10), (16, 40), 55.0)]),
             DeviceSpec(id=302, tracks=[sailed((10, 30), (15, 30), 25.0), sailed((16, 10), (16, 40), 60.0)]),
             DeviceSpec(id=303, tracks=[sailed((10, 30), (15, 30), 20.0)]),
             DeviceSpec(id=304, tracks=[sailed((11, 0), (12, 0), 18.0, suspect_at=0.5)]),   # bad data 11:30-11:31
             # One log from the session into the drive home at 58 kn, 16:05-16:25.
             DeviceSpec(id=305, tracks=[sailed((10, 30), (16, 25), 22.0, drive_home_s=1200, drive_home_knots=58.0)]),
             # Damaged on the device: the only copy, its intact frames still rank.
             DeviceSpec(id=306, tracks=[sailed((10, 30), (12, 30), 19.0, damaged_at=0.3)])]
    with Fleet(specs, folder=folder, timezone="Europe/London") as fleet:
        path = fleet.write_config(folder / "motion-server.yaml",
                                  **{"event.sessions": {"default": ["10:00-16:00"]}})
        cfg = config.load(path)
        for stage, module in (("detect", detect), ("inspect", inspect), ("download", download)):
            assert runner.run(cfg, stage, module.step, once=True, stop=threading.Event()) == 0
        yield cfg, roster.load(cfg.event.roster), dt.datetime.now(LONDON).date()


def test_inside_the_sessions_the_drive_home_never_ranks(day):
    cfg, event_roster, today = day
    board = boards.fastest(state.all_devices(cfg.paths.spool), event_roster, today, cfg)
    for key, figure in board.items():
        assert figure["trusted"] and figure["ranks"] == "inside the sessions", key
        assert figure["other_windows"] == 0, key
    cfg.event.sessions = {"default": ["10:00-15:00"]}     # changed after the tracks were verified: said
    try:
        changed = boards.fastest(state.all_devices(cfg.paths.spool), event_roster, today, cfg)
    finally:
        cfg.event.sessions = {"default": ["10:00-16:00"]}
    assert changed["best500"]["other_windows"] == 8      # every track of the day
    rows = board["best500"]["boards"][0]["rows"]
    assert [(row["device"], row["knots"]) for row in rows] == [
        (301, pytest.approx(30.0, rel=0.01)), (302, pytest.approx(25.0, rel=0.01)),
        (305, pytest.approx(22.0, rel=0.01)),
        (303, pytest.approx(20.0, rel=0.01)), (306, pytest.approx(19.0, rel=0.01)),
        (304, pytest.approx(18.0, rel=0.01))]   # 304's bad data filtered out
    for row in rows:
        assert row["window"] == "10:00-16:00"
        start, end = row["time"].split("–")
        assert "10:00:00" <= start < end <= "16:00:00"
    # The device's own 500 m is shown beside, never ranked: 305's counts its drive home.
    own = {row["device"]: row["device_knots"] for row in rows}
    assert own.pop(305) == pytest.approx(58.0, rel=0.01)
    assert all(own[row["device"]] == pytest.approx(row["knots"], rel=0.01) for row in rows if row["device"] in own)


def test_without_sessions_the_board_ranks_whole_logs_and_says_so(day):
    cfg, event_roster, today = day
    cfg.event.sessions = None       # as if the event set none: the board ranks what was computed of whole logs
    try:
        board = boards.fastest(state.all_devices(cfg.paths.spool), event_roster, today, cfg)
    finally:
        cfg.event.sessions = {"default": ["10:00-16:00"]}
    assert not board["best500"]["trusted"] and "whole logs" in board["best500"]["ranks"]
    rows = board["best500"]["boards"][0]["rows"]
    assert [row["device"] for row in rows] == [302, 305, 301, 303, 306, 304]
    assert rows[0]["knots"] > 50


def test_the_pages_and_status_json_show_the_window_and_time_and_the_device_beside(day):
    import json
    from pathlib import Path

    from jobs.dashboard import pages
    from jobs.stages import dashboard

    cfg, event_roster, _ = day
    dashboard.write(cfg, Path(cfg.paths.spool), event_roster, pages.Renderer())
    html = Path(cfg.paths.html)
    status = json.loads((html / "status.json").read_text())
    best500 = status["fastest"]["best500"]
    assert best500["trusted"] and best500["boards"][0]["rows"][0]["window"] == "10:00-16:00"
    page = (html / "fastest.html").read_text()
    assert "inside today's sessions" in page and "never ranked" in page and "10:00-16:00" in page
    assert "not to be trusted" not in page


def test_a_track_with_a_bad_data_stretch_is_flagged_on_its_tile_and_the_accounted_board(day):
    import json
    from pathlib import Path

    from jobs.dashboard import pages
    from jobs.stages import dashboard

    cfg, event_roster, today = day
    docs = state.all_devices(cfg.paths.spool)
    verdicts = {doc["device"]: [t.get("verdict") for t in doc["tracks"].values()] for doc in docs}
    flagged = verdicts[304][0]
    assert flagged["flagged"] and flagged["median_satellites"] == 20
    assert {s["why"] for s in flagged["suspect"]} == {
        "over 30 kn with sAcc over 1.5 kn", "fewer than 15 satellites", "hAcc over 2.5 m"}
    start = dt.datetime.fromtimestamp(flagged["suspect"][0]["start"] / 1000, LONDON)
    assert (start.hour, start.minute) == (11, 30)
    assert not any(v["flagged"] for device in (301, 302, 303, 305, 306) for v in verdicts[device])
    damaged = next(iter(next(d for d in docs if d["device"] == 306)["tracks"].values()))
    assert damaged["status"] == "damaged" and damaged["session"]["best500"]["window"] == "10:00-16:00"
    lines = {line["device"]: line for line in boards.accounted(cfg, docs, event_roster, today)}
    assert any(flag.startswith("suspect data: over 30 kn with sAcc over 1.5 kn 11:30:") for flag in lines[304]["flags"])
    assert not any("suspect" in flag for device in (301, 302, 303) for flag in lines[device]["flags"])
    dashboard.write(cfg, Path(cfg.paths.spool), event_roster, pages.Renderer())
    html = Path(cfg.paths.html)
    page = (html / "index.html").read_text()
    tile = page[page.index('id="device-304"'):]
    tile = tile[:tile.index("</article>")]
    assert "suspect data" in tile and "ask the sailor now" in tile
    assert "suspect data" not in page[page.index('id="device-301"'):][:3000].split("</article>")[0]
    tv = (html / "tv.html").read_text()              # the TV tile too, for the person across the tent
    tv_tiles = {tile.split('"')[0]: tile for tile in tv.split('data-device="')[1:]}
    assert "suspect data: ask the sailor" in tv_tiles["304"] and "suspect" not in tv_tiles["301"]
    status = json.loads((html / "status.json").read_text())
    shown = status["devices"]["304"]["tracks"][0]
    assert shown["suspect"].startswith("over 30 kn with sAcc over 1.5 kn")
    assert shown["verdict"]["flagged"] and shown["verdict"]["median_satellites"] == 20
    assert shown["verdict"]["reasons"]["speed accuracy"] > 0 and len(shown["verdict"]["suspect"]) == 3
    assert status["devices"]["301"]["tracks"][0]["verdict"]["flagged"] is False


def test_report_names_the_suspect_track(day):
    import subprocess
    import sys

    cfg, _, _ = day
    done = subprocess.run([sys.executable, "-m", "jobs", "--config", cfg.origin, "report"], capture_output=True,
                          text=True, timeout=60)
    line = next(line for line in done.stdout.splitlines() if "_304_" in line)
    assert "suspect data: over 30 kn with sAcc over 1.5 kn 11:30:" in line
