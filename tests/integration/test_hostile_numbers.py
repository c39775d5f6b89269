"""Numbers from a device are bounded where they enter, and every page is built inside a guard.

A verified log without a summary whose last fix is dated 2**62 ms once made `dashboard` exit 3
("year 146140482 is out of range") and write no page at all, and `report --accounted` too. A
listing entry with start_date 0 and a file name dated year 0001 failed the whole device with an
internal error, and its good track was never fetched.
"""

import argparse
import struct
from pathlib import Path

import pytest

from jobs import log
from jobs.ops import report
from jobs.spool import state
from jobs.track import oao
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from tests.builders import close_motion_log, fleet_config, run_logged, run_stages as run, today_utc as today

KB = 1000
FAR_MS = 2 ** 62


def last_fix_dated(data, utc_ms):
    """`data` with its last GNSS frame's time set to `utc_ms`, the frame's checksum made right again."""
    pos, last = 0, None
    while pos < len(data):
        mode = data[pos] | data[pos + 1] << 8
        if mode in oao.GNSS:
            last = pos
        pos += oao.FRAME_LENGTHS[mode]
    frame = bytearray(data[last:last + oao.GNSS_SIZE])
    struct.pack_into("<Q", frame, oao.UTC_OFFSET, utc_ms)
    frame[2], frame[3] = oao.frame_checksum(frame)
    return data[:last] + bytes(frame) + data[last + oao.GNSS_SIZE:]


def test_a_fix_dated_2_to_the_62_leaves_every_page_written_and_the_reports_whole(tmp_path, capsys):
    spec = TrackSpec(start=today(10), duration_s=600, size=100 * KB, best500_knots=18.0, summary=False)
    with Fleet([DeviceSpec(id=611, tracks=[spec])], folder=tmp_path, timezone="UTC") as fleet:
        [entry] = fleet.logs(611)
        path = Path(fleet.track_path(611, entry["file"]))
        path.write_bytes(last_fix_dated(path.read_bytes(), FAR_MS))
        cfg = fleet_config(fleet, tmp_path, **{"event.session": ["09:00", "17:00"]})
        statuses = run_logged(cfg, "detect", "inspect", "download", "dashboard")
    [track] = state.read(cfg.paths.spool, 611)["tracks"].values()
    assert statuses == [0, 0, 0, 0]
    assert track["status"] == "verified" and track["last_fix"] is None and track["first_fix"] is not None
    html = Path(cfg.paths.html)
    for page in ("index.html", "accounted.html", "fastest.html", "tracks.html", "tv.html", "status.json"):
        assert "could not show this" not in (html / page).read_text(), page
    assert report.main(cfg, argparse.Namespace(date=None, csv=None, accounted=True, fastest=False)) == 0
    assert "  611  " in capsys.readouterr().out


def test_a_record_no_board_can_read_is_shown_as_could_not_show_and_the_other_pages_are_written(tmp_path, capsys):
    """A record no board can read (its ledger a list, as a hand edit or another version could
    leave it): the boards that read it say "could not show this" on their page, the device's tile
    says its record is unreadable, every other page is written."""
    with Fleet([DeviceSpec(id=612, tracks=[TrackSpec(start=today(10), size=50 * KB)])], folder=tmp_path,
               timezone="UTC") as fleet:
        cfg = fleet_config(fleet, tmp_path, **{"event.session": ["09:00", "17:00"]})
        log.setup(cfg, console=False)
        try:
            run(cfg, "detect", "inspect", "download")
            with state.update(cfg.paths.spool, 612) as doc:
                doc["tracks"] = [dict(track, start=FAR_MS) for track in doc["tracks"].values()]
            statuses = run(cfg, "dashboard")
        finally:
            close_motion_log()
    html = Path(cfg.paths.html)
    assert statuses == [0]
    assert {page.name for page in html.glob("*.html")} >= {"index.html", "accounted.html", "fastest.html",
                                                            "tracks.html", "tv.html", "warnings.html"}
    assert "could not show this: " in (html / "accounted.html").read_text()
    assert "could not show this" not in (html / "warnings.html").read_text()
    for board in (False, True):   # report says so too, and exits 1, instead of a traceback
        args = argparse.Namespace(date=None, csv=None, accounted=board, fastest=False)
        assert report.main(cfg, args) == 1
        assert "could not show this: " in capsys.readouterr().err


@pytest.mark.parametrize("most_entries", [50, 1])   # planned, or first bounded by limits.max_log_entries
def test_a_file_name_dated_year_0001_with_start_date_0_skips_that_entry_and_fetches_the_good_track(
        tmp_path, most_entries):
    bad = TrackSpec(start=today(9), size=50 * KB, file="/logs/0613_0001-01-01-0000.oao", logs={"start_date": 0})
    good = TrackSpec(start=today(12), size=50 * KB)
    with Fleet([DeviceSpec(id=613, tracks=[bad, good])], folder=tmp_path, timezone="UTC") as fleet:
        cfg = fleet_config(fleet, tmp_path, **{"limits.max_log_entries": most_entries})
        statuses = run_logged(cfg, "detect", "inspect", "download")
    doc = state.read(cfg.paths.spool, 613)
    assert statuses == [0, 0, 0]
    assert doc["status"] == "completed", doc["error"]
    statuses = {file: t["status"] for file, t in doc["tracks"].items()}
    assert statuses.pop(bad.file, "skipped") == "skipped" and list(statuses.values()) == ["verified"]


def test_the_count_of_forgotten_gone_tracks_is_shown_on_the_devices_tile(tmp_path):
    """inspect keeps the latest jobs.track.naming.GONE_KEPT tracks "no longer on the device" and counts the rest."""
    spec = TrackSpec(start=today(10), size=50 * KB)
    with Fleet([DeviceSpec(id=614, tracks=[spec])], folder=tmp_path, timezone="UTC") as fleet:
        cfg = fleet_config(fleet, tmp_path)
        log.setup(cfg, console=False)
        try:
            run(cfg, "detect")
            with state.update(cfg.paths.spool, 614) as doc:   # what earlier visits left: thousands gone
                doc["tracks"] = {f"/logs/old{n}.oao": {"file": f"/logs/old{n}.oao", "status": "wanted", "start": n,
                                                      "name": None, "day": None, "size": 1, "reason": None}
                                 for n in range(150)}
            run(cfg, "inspect", "dashboard")
        finally:
            close_motion_log()
    doc = state.read(cfg.paths.spool, 614)
    gone = [t for t in doc["tracks"].values() if t.get("reason") == "no longer on the device"]
    assert len(gone) == 100 and doc["gone_forgotten"] == 50
    assert "50 tracks no longer on the device forgotten" in (Path(cfg.paths.html) / "index.html").read_text()
