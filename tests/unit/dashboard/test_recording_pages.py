"""A device still recording, as the people see it: the dashboard tile, the tracks page,
`status --json`, `report` and the accounted-for board (never a failure; partial in amber)."""

import json
import re
import time

from jobs import roster, spool
from jobs.dashboard import boards
from jobs.ops import report, status
from jobs.spool import state
from tests.builders import (EVENT_DAY as DAY, dashboard_at, dashboard_track, device_blocks, on_disk,
                            page_text as text, render_dashboard as render, report_at as at, report_rows as rows_for,
                            report_track as track, save_device as save)

TILE = "still recording: stop the device to finish its session"


def growing_tracks(make, partial_day_start, recording_start):
    """(recording, partial) ledger tracks made by `make(start, status)`."""
    growing = make(recording_start, "recording")
    growing.update(summary=False, reason=TILE, end=0, duration=0)
    kept = make(partial_day_start, "partial")
    last = kept["start"] + 1_800_000
    kept.update(summary=False, end=0, duration=0, last_fix=last,
                partial={"bytes": 600, "last_fix": last, "first_fix": kept["start"]},
                reason="the device left while recording: 600 bytes kept up to the last complete frame (last fix x)")
    return growing, kept


def test_the_report_and_the_board_say_still_recording_and_partial_never_failed(report_day):
    cfg, folder = report_day
    growing, kept = growing_tracks(lambda start, s: track(472, "CED472CAT", start, s, size=5000),
                                   at(DAY, 9), at(DAY, 14))
    on_disk(folder, kept, size=600)
    save(cfg.paths.spool, 472, seen=at(DAY, 15), status="connected", ledger=[growing, kept])
    rows, alarms = rows_for(cfg)
    outcomes = {r["Track"]: r["Outcome"] for r in rows}
    assert outcomes[growing["name"]] == f"{TILE}; no summary on the device"
    assert outcomes[kept["name"]].startswith("partial: the device left while recording: 600 bytes kept")
    assert not any("472" in alarm for alarm in alarms)
    assert report.summary(rows).endswith("; tracks still recording: 1, partial: 1")
    assert kept["name"] not in report.strays(cfg, DAY)          # its file is known: the ledger says partial
    docs = state.all_devices(cfg.paths.spool)
    [line] = [line for line in boards.accounted(cfg, docs, roster.load(cfg.event.roster), DAY)
              if line["entrant"] == "1103"]
    assert "still recording" in line["flags"] and "partial" in line["flags"] and "failed" not in line["flags"]
    assert line["downloaded"] is False and line["bad"] == 0
    assert line["hours"] == 0.5                                  # the partial's first to last fix
    spool.enqueue(cfg.paths.spool, "inspect", 472, enqueued=time.time() + 60)   # looked at again later
    facts = status.collect(cfg)
    assert facts["devices"]["472"]["tracks"] == {"recording": 1, "partial": 1}
    assert facts["devices"]["472"]["waiting_s"] == 0 and 0 < facts["devices"]["472"]["due_in_s"] <= 60
    [line] = [line for line in status.render(facts).splitlines() if line.strip().startswith("472 ")]
    assert re.search(r"1 partial 1 recording  looked at again in \d+ s \(inspect\)$", line), line


def test_the_dashboard_tile_says_stop_the_device_and_the_tracks_page_shows_the_partial_amber(
        crafted_dashboard_event):
    cfg, event_roster = crafted_dashboard_event
    growing, kept = growing_tracks(
        lambda start, s: dashboard_track(612, start, status=s, entrant="1114", file_id="NAB612NED"),
        dashboard_at(9, 0), dashboard_at(12, 0))
    with state.update(cfg.paths.spool, 612) as doc:
        doc["tracks"] = {growing["file"]: growing, kept["file"]: kept}
    spool.enqueue(cfg.paths.spool, "inspect", 612, enqueued=time.time() + 5)   # looked at again soon
    _, html = render(cfg, event_roster)
    tile = text(device_blocks((html / "index.html").read_text())[612])
    assert f"● {TILE}" in tile and "waiting for inspection" not in tile    # not waiting: set ahead
    assert "1 still recording · 1 partial" in text((html / "tv.html").read_text())
    assert ("◐ partial: the device left while recording; kept up to the last complete frame (last fix 09:30:00)"
            in tile)
    shown = json.loads((html / "status.json").read_text())
    assert shown["totals"]["tracks_recording"] == 1 and shown["totals"]["tracks_partial"] == 1
    assert [t["status"] for t in shown["devices"]["612"]["tracks"]] == ["partial", "recording"]
    page = (html / "tracks.html").read_text()
    assert f'<tr class="row-partial"><td class="mono nw">{kept["name"]}' in page
    assert "◐ partial: 600 bytes, last fix 09:30:00" in text(page)
    assert growing["name"] not in page                           # nothing of it on disk yet
