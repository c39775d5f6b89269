"""motion-server report: the day per entrant agrees with the ledgers and the tracks folder.

Those that need sockets, processes or the simulated fleet are in
tests/integration/ops/test_report_cli.py.
"""

import argparse
import datetime as dt
from pathlib import Path


from jobs.ops import report
from jobs.spool import state
from tests.builders import (EVENT_DAY as DAY, HEADER, KNOTS, LONDON as TZ, config, on_disk, report_at as at,
                            report_rows as rows_for, report_track as track, roster_file, save_device as save)


def test_entrants_come_in_roster_order_with_every_track_of_their_device_that_day(report_day):
    cfg, _ = report_day
    rows, _ = rows_for(cfg)
    assert [r["Entrant"] for r in rows] == ["1101", "1101", "1102", "1103", "1104", "1105", "1106", "1106", "-"]
    ann = rows[:2]
    assert [r["Start"] for r in ann] == ["09:30:00", "11:05:00"]        # local time, by start
    assert ann[0]["Outcome"] == "skipped: too slow: 3.2 kn < 5 kn" and ann[0]["500 m kn"] == "3.2"
    assert ann[1] == {"Entrant": "1101", "Name": "Ann Alder", "Device": "470",
                      "Track": "ALD470ANN_470_20260716_110500.oao", "Start": "11:05:00", "Duration": "1:00:00",
                      "500 m kn": "18.0", "Outcome": "verified"}
    assert rows[7]["Outcome"] == "bad: frame checksum wrong at byte 4096 (3 times)"
    assert rows[6]["Outcome"] == "wanted: not downloaded yet (device failed: /logs.json: no answer within 10 s)"
    assert rows[8]["Name"] == "(no entrant this day)" and rows[8]["Device"] == "476"


def test_entrants_whose_device_never_connected_or_not_today_are_not_seen(report_day):
    cfg, _ = report_day
    by_entrant = {r["Entrant"]: r for r in rows_for(cfg)[0]}
    assert by_entrant["1103"]["Device"] == "472"
    assert by_entrant["1103"]["Outcome"] == "not seen: never connected"
    assert by_entrant["1105"]["Outcome"] == "not seen: last connected 2026-07-15 18:00"
    assert by_entrant["1104"]["Outcome"] == "no device"
    assert "1107" not in by_entrant            # sails from tomorrow


def test_a_verified_track_missing_from_disk_is_said_loudly(report_day):
    cfg, folder = report_day
    rows, alarms = rows_for(cfg)
    bob = next(r for r in rows if r["Entrant"] == "1102")
    assert bob["Outcome"] == ("VERIFIED BUT FILE MISSING: "
                              f"{folder / '20260716' / 'BEE471BOB_471_20260716_120000.oao'}")
    assert alarms == [f"device 471: file missing: {folder / '20260716' / 'BEE471BOB_471_20260716_120000.oao'}"]


def test_a_verified_track_of_the_wrong_size_on_disk_is_said_loudly(report_day):
    cfg, folder = report_day
    (folder / "20260716" / "ALD470ANN_470_20260716_110500.oao").write_bytes(b"short")
    rows, alarms = rows_for(cfg)
    assert rows[1]["Outcome"].startswith("VERIFIED BUT 5 BYTES ON DISK, 2345 IN THE LEDGER: /")
    assert len(alarms) == 2


def test_the_report_agrees_with_the_tracks_folder(report_day):
    cfg, folder = report_day
    rows, _ = rows_for(cfg)
    day_folder = folder / "20260716"
    verified = {r["Track"] for r in rows if r["Outcome"] == "verified"}
    said_missing = {r["Track"] for r in rows if r["Outcome"].startswith("VERIFIED BUT")}
    files = {p.name for p in day_folder.iterdir() if not p.name.startswith(".")}
    assert verified <= files
    assert not said_missing & files
    # Every final file of the day is in the report or named as in no ledger.
    assert files == verified | set(report.strays(cfg, DAY))
    assert report.strays(cfg, DAY) == ["copied_by_hand.oao"]


def test_a_track_being_downloaded_shows_its_progress(report_day):
    cfg, _ = report_day
    fay = state.read(cfg.paths.spool, 474)
    wanted = next(t for t in fay["tracks"].values() if t["status"] == "wanted")
    save(cfg.paths.spool, 474, seen=at(DAY, 15), status="downloading", ledger=fay["tracks"].values(),
         progress={"file": wanted["file"], "bytes": 250, "total": 1000})
    rows, _ = rows_for(cfg)
    assert rows[6]["Outcome"] == "downloading: 25 %"


def test_the_default_day_is_today_in_the_event_zone(tmp_path, capsys):
    today = dt.datetime.now(TZ).date()
    roster_file(tmp_path, HEADER + f"2201,1,480,{today},{today},HAZ480,Hal,Hazel,Kite,OK\n")
    cfg = config(tmp_path, "c.yaml", paths=None, event={"timezone": "Europe/London", "roster": "motions.csv"})
    now = dt.datetime.now(TZ)
    t = track(480, "HAZ480", now.replace(hour=0, minute=30, second=0, microsecond=0), "wanted")
    save(cfg.paths.spool, 480, seen=now, ledger=[t])
    assert report.main(cfg, argparse.Namespace(date=None, csv=None, accounted=False, fastest=False)) == 0
    out = capsys.readouterr().out
    assert f": {today} (Europe/London)" in out
    assert t["name"] in out and "wanted: not downloaded yet" in out


def test_damaged_unassigned_and_summary_less_tracks_have_their_own_outcome(report_day):
    cfg, folder = report_day
    damaged = track(470, "ALD470ANN", at(DAY, 12), "damaged", size=3000,
                    reason="damaged on the device: first bad frame at byte 1024 (50 good frames, 1 bad)")
    on_disk(folder, damaged)
    spare = track(476, "476", at(DAY, 14), "verified", size=700)
    spare.update(unassigned=True, summary=False, entrant=None)
    path = Path(folder, "unassigned", spare["day"], spare["name"])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 700)
    with state.update(cfg.paths.spool, 470) as doc:
        doc["tracks"][damaged["file"]] = damaged
    with state.update(cfg.paths.spool, 476) as doc:
        doc["tracks"][spare["file"]] = spare
    rows, alarms = rows_for(cfg)
    outcomes = {r["Track"]: r["Outcome"] for r in rows}
    assert outcomes[damaged["name"]] == damaged["reason"]
    assert outcomes[spare["name"]] == ("verified; unassigned: no entrant holds the device that day; "
                                       "no summary on the device")
    assert alarms == ["device 471: file missing: " + str(folder / "20260716" / "BEE471BOB_471_20260716_120000.oao")]
    assert "1 damaged on the device" in report.summary(rows) and "1 unassigned" in report.summary(rows)
    assert damaged["name"] not in report.strays(cfg, DAY)


def test_a_track_without_a_summary_reads_as_on_the_dashboard(report_day):
    from jobs.dashboard import facts as dashboard_facts
    cfg, folder = report_day
    computed = track(470, "ALD470ANN", at(DAY, 15), "verified", size=900)
    computed.update(summary=False, duration=0, distance=0, best500=0, computed={"best500": round(17.0 * KNOTS)})
    unknown = track(470, "ALD470ANN", at(DAY, 16), "verified", size=800)
    unknown.update(summary=False, duration=0, distance=0, best500=0)
    with state.update(cfg.paths.spool, 470) as doc:
        doc["tracks"].update({computed["file"]: computed, unknown["file"]: unknown})
    rows, _ = rows_for(cfg)
    shown = {r["Track"]: (r["Duration"], r["500 m kn"]) for r in rows}
    assert shown[computed["name"]] == ("–", "≈17.0") and shown[unknown["name"]] == ("–", "–")
    facts = dashboard_facts.track_facts(470, computed, TZ)
    assert facts["duration_s"] is None and f"≈{facts['computed_500_kn']:.1f}" == "≈17.0"
    assert ("1:00:00", "18.0") in shown.values()                                  # a summary's own figures


def test_the_report_exits_1_without_a_roster_as_check_marks_it(tmp_path, capsys):
    cfg = config(tmp_path, "c.yaml", paths=None, event={"timezone": "Europe/London"})
    for board in ({}, {"accounted": True}, {"fastest": True}):
        args = argparse.Namespace(**{"date": DAY, "csv": None, "accounted": False, "fastest": False, **board})
        assert report.main(cfg, args) == 1
        assert "no roster (event.roster is not set)" in capsys.readouterr().err


def test_a_csv_that_cannot_be_written_fails_before_anything_is_printed(report_day, capsys):
    cfg, folder = report_day
    for board in ({}, {"accounted": True}):
        args = argparse.Namespace(**{"date": DAY, "csv": str(folder / "no" / "such" / "day.csv"), "accounted": False,
                                     "fastest": False, **board})
        assert report.main(cfg, args) == 2
        out, err = capsys.readouterr()
        assert out == "" and "cannot write" in err and "day.csv" in err
