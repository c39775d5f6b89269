"""The dashboard stage: pages and status.json rendered from crafted states.

The fleet below has a device in every status a connected device can have,
every warning, a download in progress, skipped and bad tracks, devices waiting
in the queues, one not answering, hostile strings from devices, and roster
entrants who have not been seen. The browser test renders the same fleet.
"""

import datetime as dt
import json
import os
import re
import time
from pathlib import Path

import pytest

from jobs import roster
from jobs.dashboard import facts as dashboard_facts, pages
from jobs.spool import layout, state
from jobs.stages import dashboard
from tests.builders import (DASHBOARD_DAY as DAY, DASHBOARD_NOW as NOW, DASHBOARD_ROSTER as ROSTER, HOSTILE,
                            craft_dashboard_event as craft, dashboard_at as at, dashboard_track as track, device_blocks,
                            page_text as text, put_device as put, render_dashboard as render)


def test_devices_appear_most_recent_connection_first(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    page = (html / "index.html").read_text()
    order = list(device_blocks(page))
    assert order == [612, 603, 602, 601, 611, 470, 604, 605, 607, 608, 609, 606, 610]


def test_never_connected_devices_are_not_listed(crafted_dashboard_event, tmp_path):
    cfg, event_roster = crafted_dashboard_event
    with state.update(cfg.paths.spool, 620) as doc:   # known, never connected
        doc["status"] = "unknown"
    _, html = render(cfg, event_roster)
    assert 620 not in device_blocks((html / "index.html").read_text())


def test_every_status_shows_its_word_and_symbol(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    blocks = device_blocks((html / "index.html").read_text())
    expected = {470: "completed", 601: "downloading", 602: "pending", 603: "connected", 604: "failed",
                606: "disconnected"}
    for device, status in expected.items():
        block = blocks[device]
        assert f'data-status="{status}"' in block
        assert re.search(rf'<span class="sym" aria-hidden="true">{re.escape(dashboard_facts.SYMBOLS[status])}</span> '
                         rf'{status}</span>', block), (device, status)


def test_device_shows_entrant_address_battery_storage_firmware(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    block = device_blocks((html / "index.html").read_text())[470]
    assert "Anna Alder" in block and "1101" in block and "ALD470ANN" in block
    assert "127.0.1.70" in block
    assert "battery 82 %" in block and "storage 12 %" in block
    assert "firmware 9009 Weymouth SW (3232)" in block
    assert "last seen 13:20" in block


def test_warnings_show_with_their_thresholds(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    blocks = device_blocks((html / "index.html").read_text())
    assert re.search(r'class="warn">⚠ battery 41 % ⚡ <small>\(min 60 %\)', blocks[605])
    assert re.search(r'class="warn">⚠ storage 97 % <small>\(max 95 %\)', blocks[609])
    assert "⚠ setting gnss_rate is &#39;1&#39;, expected &#39;5&#39;" in blocks[609]
    assert re.search(r'class="warn">⚠ firmware ', blocks[608])
    assert 'class="warn"' not in blocks[470]


def test_warnings_page_lists_every_kind(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    page = (html / "warnings.html").read_text()
    sections = dict(re.findall(r'<table class="list warn" data-kind="(\w+)">(.*?)</table>', page, re.S))
    assert "battery 41 %" in sections["battery"] and ">605<" in sections["battery"]
    assert "storage 97 %" in sections["storage"]
    assert "not approved" in sections["firmware"] and ">608<" in sections["firmware"]
    assert sections["settings"].count("setting ") == 2
    assert "timed out reading /logs.json" in sections["failed"]
    assert "frame checksum wrong at byte 88320" in sections["bad"]
    assert "device 605 is also given to entrant 1107" in page  # the roster's overlap warning


def test_download_progress_shows_bar_percent_and_rate(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    block = device_blocks((html / "index.html").read_text())[601]
    assert 'aria-valuenow="42.0"' in block and 'style="width: 42.0%"' in block
    assert text(block).count("42 % · 390 KB/s · 4 s left") == 1
    assert "✔ verified" in block
    assert "◷ wanted (1 failed check)" in block


def test_skipped_with_reason_and_bad_tracks(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    blocks = device_blocks((html / "index.html").read_text())
    assert "– skipped: too slow: 3.4 kn &lt; 5 kn" in blocks[470]
    assert "✘ bad: frame checksum wrong at byte 88320" in blocks[607]


def test_tracks_of_the_day_with_start_duration_distance_and_best(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    block = device_blocks((html / "index.html").read_text())[470]
    rows = re.findall(r"<tr class=\"row-\w+\".*?</tr>", block, re.S)
    assert len(rows) == 3   # yesterday's verified track is not today's
    assert text(rows[0]) == "10:02 1 h 24 18.7 km 19.6 kn 1.3 MB ✔ verified"


def test_wanted_track_of_another_day_is_shown_with_its_date(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    block = device_blocks((html / "index.html").read_text())[611]
    assert "<small>Fri 15 Jul</small> 16:10" in block
    assert "12 % · 250 KB/s" in text(block)


def test_waiting_in_a_queue_shows_how_long(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    blocks = device_blocks((html / "index.html").read_text())
    assert "waiting for download for 102 s" in blocks[602]
    assert "waiting for inspection for 9 s" in blocks[603]
    status = json.loads((html / "status.json").read_text())
    assert status["devices"]["602"]["queue"] == "download" and status["devices"]["602"]["waiting_s"] == 102


def test_completed_device_not_answering_shows_for_how_long(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    blocks = device_blocks((html / "index.html").read_text())
    assert "not answering for 12 s" in blocks[605]
    assert "not answering" not in blocks[470]
    assert json.loads((html / "status.json").read_text())["devices"]["605"]["absent_s"] == 12


def test_failed_device_shows_its_error(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    assert "✘ timed out reading /logs.json after 10 s" in device_blocks((html / "index.html").read_text())[604]


def test_hostile_device_strings_are_escaped_everywhere(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    for name in ("index.html", "tv.html", "warnings.html", "tracks.html"):
        page = (html / name).read_text()
        assert "<script>alert" not in page, name
    index = (html / "index.html").read_text()
    assert "user &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in index
    assert "firmware &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in index
    # Every <script> in a page is the freshness line's own.
    assert index.count("<script>") == 1
    status = json.loads((html / "status.json").read_text())
    assert status["devices"]["608"]["username"] == HOSTILE


def test_totals_for_the_day(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    totals = json.loads((html / "status.json").read_text())["totals"]
    # 610 was last seen yesterday: not one of today's.
    assert totals["seen"] == 12
    assert (totals["completed"], totals["downloading"], totals["pending"], totals["failed"]) == (5, 2, 1, 1)
    assert totals["connected"] == 2 and totals["disconnected"] == 1
    verified_today = [1_314_968, 2_480_000, 3_100_000, 1_900_000, 2_900_000, 1_200_000, 1_500_000]
    assert totals["tracks_verified"] == len(verified_today)
    assert totals["bytes_verified"] == sum(verified_today)
    index = (html / "index.html").read_text()
    assert re.search(r'data-total="completed"><b>5</b>', index)
    assert re.search(r'data-total="tracks_verified"><b>7</b> tracks verified <small>14.4 MB</small>', index)


def test_not_seen_today_lists_missing_devices_and_entrants_without_one(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    status = json.loads((html / "status.json").read_text())
    missing = {e["entrant"]: e for e in status["not_seen"]}
    # 620 never connected, 610 only yesterday, 1121 has no device; 1122 does not sail today.
    assert set(missing) == {"1112", "1120", "1121"}
    assert missing["1121"]["device"] is None
    assert missing["1112"]["last_seen"] == at(17, 30, day=DAY - dt.timedelta(days=1))
    aside = re.search(r'<aside class="not-seen".*?</aside>', (html / "index.html").read_text(), re.S).group(0)
    assert "Pia Pier" in aside and "no device" in aside
    assert "device 620 · never seen" in aside
    assert "device 610 · last Fri 15 Jul 17:30" in aside


def test_status_json_shape(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    status = json.loads((html / "status.json").read_text())
    assert set(status) >= {"devices", "totals", "not_seen", "day", "event"}
    assert status["day"] == "2022-07-16"
    assert status["devices"]["470"]["id"] == 470 and status["devices"]["470"]["status"] == "completed"
    assert {key: d["status"] for key, d in status["devices"].items()}["604"] == "failed"
    tracks = status["devices"]["470"]["tracks"]
    assert [t["status"] for t in tracks] == ["verified", "verified", "skipped"]
    assert tracks[0]["best500_kn"] == 19.6 and tracks[0]["distance_km"] == 18.7 and tracks[0]["duration_s"] == 5040
    progress = next(t for t in status["devices"]["601"]["tracks"] if t["progress"])["progress"]
    assert progress == {"bytes": 1_092_000, "total": 2_600_000, "rate": 390_000, "percent": 42.0, "left_s": 4}


def test_tracks_page_lists_the_days_verified_files(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    page = (html / "tracks.html").read_text()
    rows = re.findall(r"<tr><td class=\"mono nw\">(.*?)</td>.*?</tr>", page, re.S)
    assert len(rows) == 7 and "ALD470ANN_470_20220716_100240.oao" in rows
    assert "Anna Alder" in page and "1,314,968" in page
    sha = track(470, at(10, 2, 40), status="verified")["sha256"]
    assert sha in page
    # Links to the other days present; each day has its own page.
    assert 'href="tracks-20220715.html"' in page
    yesterday = (html / "tracks-20220715.html").read_text()
    assert "LEE610LEO_610_20220715_140000.oao" in yesterday and "ALD470ANN_470_20220715_090000.oao" in yesterday
    assert "ALD470ANN_470_20220716_100240.oao" not in yesterday
    assert (html / "tracks-20220716.html").read_text() == page


def test_pages_are_written_atomically_and_only_when_changed(crafted_dashboard_event):
    cfg, event_roster = crafted_dashboard_event
    written, html = render(cfg, event_roster)
    assert set(written) >= {"index.html", "tv.html", "warnings.html", "tracks.html", "status.json"}
    assert not [p.name for p in html.iterdir() if p.name.startswith(".")], "temporary file left behind"
    before = {p.name: p.stat().st_ino for p in html.iterdir()}
    old = time.time() - 100
    os.utime(html / "tracks-20220715.html", (old, old))
    again, _ = render(cfg, event_roster)
    # Same state, same moment: nothing rewritten (same inodes), but every file touched.
    assert again == []
    assert {p.name: p.stat().st_ino for p in html.iterdir()} == before
    assert (html / "tracks-20220715.html").stat().st_mtime > old + 50
    # A change in one device rewrites the pages that show it, by rename.
    with state.update(cfg.paths.spool, 603) as doc:
        state.set_status(doc, "pending")
    changed, _ = render(cfg, event_roster)
    assert "index.html" in changed and "status.json" in changed and "tracks.html" not in changed
    assert (html / "index.html").stat().st_ino != before["index.html"]
    assert not [p.name for p in html.iterdir() if p.name.startswith(".")]


def test_index_refreshes_every_5_s_and_needs_no_external_asset(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    for name in ("index.html", "tv.html"):
        page = (html / name).read_text()
        assert '<meta http-equiv="refresh" content="5">' in page
        assert not re.search(r'(src|href)="(https?:)?//', page)
        assert '<link rel="stylesheet"' not in page
    assert "@media print" in (html / "index.html").read_text()


def test_tv_page_shows_devices_seen_today_in_large_tiles(crafted_dashboard_event):
    _, html = render(*crafted_dashboard_event)
    page = (html / "tv.html").read_text()
    tiles = re.findall(r'<div class="tile s-(\w+)" data-device="(\d+)"', page)
    assert [int(d) for _, d in tiles] == [612, 603, 602, 601, 611, 470, 604, 605, 607, 608, 609, 606]
    assert ("failed", "604") in tiles
    assert "Not seen today: 3" in page and "Pia Pier</b> <small>no device</small>" in page


def test_today_follows_the_event_time_zone(crafted_dashboard_event):
    cfg, event_roster = crafted_dashboard_event
    # 23:30 UTC on the 15th is already the 16th in London (UTC+1 in July).
    late = dt.datetime(2022, 7, 15, 23, 30, tzinfo=dt.timezone.utc).timestamp()
    _, html = render(cfg, event_roster, now=late, day=None)
    assert json.loads((html / "status.json").read_text())["day"] == "2022-07-16"


def test_a_broken_state_file_does_not_blank_the_dashboard(crafted_dashboard_event):
    cfg, event_roster = crafted_dashboard_event
    (Path(cfg.paths.spool) / "state" / "699.json").write_text("{not json")
    with state.update(cfg.paths.spool, 698) as doc:
        doc.update(status="completed", history=at(9, 0), info={"battery": "lots", "storage": None},
                   tracks={"x": {"file": "x", "status": "verified", "day": "20220716", "size": "big"}, "y": [1]})
    with state.update(cfg.paths.spool, 697) as doc:
        doc.update(status="completed", history="yesterday")
    with state.update(cfg.paths.spool, 696) as doc:
        doc.update(status="failed", history=at(8, 0), last_seen=1e300, info=["not", "a", "dict"], warnings="none",
                   progress=[1], tracks={"z": {"file": "z", "status": "wanted", "start": 1e300, "day": "20220716"}})
    _, html = render(cfg, event_roster)
    blocks = device_blocks((html / "index.html").read_text())
    assert 470 in blocks and 698 in blocks and 696 in blocks and 697 not in blocks
    assert "battery" not in blocks[698]


def test_step_renders_with_the_stage_context(crafted_dashboard_event):
    from jobs.runner import Context
    cfg, _ = crafted_dashboard_event
    ctx = Context(cfg=cfg, stage="dashboard")
    assert dashboard.step(ctx) is False
    assert json.loads((Path(cfg.paths.html) / "status.json").read_text())["devices"]["470"]["status"] == "completed"


# --- a real event: damaged, unassigned, no summary, classes; bad records and long ledgers ------

def real_event_devices(cfg):
    root = Path(cfg.paths.spool)
    damaged = track(620, at(10, 0), entrant="1120", file_id="OSP620OLA", status="damaged",
                    reason="damaged on the device: first bad frame at byte 468,512 (25278 good frames, 1 bad)")
    damaged.update(sha256="ab" * 32, damage={"first_bad": 468512, "good_frames": 25278, "bad_frames": 1,
                                             "bad_bytes": 30})
    blank = track(620, at(11, 30), entrant="1120", file_id="OSP620OLA", status="verified")
    blank.update(summary=False, end=0, duration=0, distance=0, best500=0)
    put(root, 620, "completed", at(13, 5), [damaged, blank])
    spare = track(950, at(12, 0), file_id="950", status="verified")
    spare.update(unassigned=True)
    put(root, 950, "completed", at(13, 6), [spare])


def test_damaged_unassigned_and_summary_less_tracks_say_so(crafted_dashboard_event):
    cfg, event_roster = crafted_dashboard_event
    real_event_devices(cfg)
    _, html = render(cfg, event_roster)
    blocks = device_blocks((html / "index.html").read_text())
    seen = text(blocks[620])
    assert "⚠ damaged on the device, kept as it is: first bad frame at byte 468,512" in seen
    assert 'class="row-damaged"' in blocks[620] and "no summary on the device" in seen
    blank_row = re.search(r'<tr class="row-verified".*?</tr>', blocks[620], re.S).group(0)
    assert "0.0 km" not in text(blank_row) and "0.0 kn" not in text(blank_row)   # unknown, not zero
    assert "unassigned: no entrant holds this device that day" in text(blocks[950])
    assert "no entrant today" in text(blocks[950])
    warnings = text((html / "warnings.html").read_text())
    assert "Tracks damaged on the device, kept as they are 1" in warnings
    tracks_page = text((html / "tracks.html").read_text())
    assert "unassigned/20220716/950_950_20220716_120000.oao" in tracks_page
    assert "OSP620OLA_620_20220716_100000.oao ⚠ damaged on the device" in tracks_page
    status = json.loads((html / "status.json").read_text())
    assert [t["status"] for t in status["devices"]["620"]["tracks"]] == ["damaged", "verified"]
    assert status["devices"]["620"]["tracks"][1]["summary"] is False
    assert status["devices"]["950"]["tracks"][0]["unassigned"] is True
    assert (status["totals"]["tracks_damaged"], status["totals"]["tracks_unassigned"]) == (1, 1)


def test_the_roster_class_is_shown_with_the_craft(tmp_path):
    cfg, _ = craft(tmp_path)
    rows = [line.split(",") for line in ROSTER.splitlines()]
    for row in rows:   # the real roster's Class column, after Craft Type
        row.insert(9, "Class" if row[0] == "Entrant ID" else "Foil" if row[2] == "470" else "")
    Path(cfg.event.roster).write_text("".join(",".join(row) + "\n" for row in rows))
    _, html = render(cfg, roster.load(cfg.event.roster))
    blocks = device_blocks((html / "index.html").read_text())
    assert "Sailboard · Foil" in text(blocks[470]) and "Foil" not in text(blocks[601])


def test_absurd_numbers_in_a_record_show_as_unknown_and_every_page_renders(crafted_dashboard_event):
    cfg, event_roster = crafted_dashboard_event
    huge = track(640, at(10, 0), entrant=None, file_id="X640", size=10 ** 400)
    huge.update(duration=10 ** 400, distance=-10 ** 300, start=10 ** 40)
    put(Path(cfg.paths.spool), 640, "completed", at(13, 7), [huge])
    with state.update(cfg.paths.spool, 640) as doc:
        doc.update(last_seen=10 ** 400, absent_since=-10 ** 400)
    written, html = render(cfg, event_roster)
    assert "index.html" in written and "status.json" in written
    assert 640 in device_blocks((html / "index.html").read_text())


def test_a_record_that_cannot_be_read_shows_unreadable_on_its_own_tile(crafted_dashboard_event, monkeypatch):
    cfg, event_roster = crafted_dashboard_event
    real = dashboard_facts.track_facts

    def breaks_on_607(device, track, tz, today=None):
        if device == 607:
            raise ValueError("something no state should hold")
        return real(device, track, tz, today)
    monkeypatch.setattr(dashboard_facts, "track_facts", breaks_on_607)
    _, html = render(cfg, event_roster, renderer=pages.Renderer())   # no facts remembered
    blocks = device_blocks((html / "index.html").read_text())
    assert "unreadable record: its tracks cannot be read" in text(blocks[607])
    assert "verified" in text(blocks[470]) and len(blocks) == 13
    assert "Unreadable state records 1" in text((html / "warnings.html").read_text())
    assert json.loads((html / "status.json").read_text())["devices"]["607"]["unreadable"]


def test_a_device_with_thousands_of_tracks_shows_twenty_and_links_the_rest(crafted_dashboard_event):
    cfg, event_roster = crafted_dashboard_event
    many = [track(660, at(9, 0) + 60 * n, minutes=1, size=1000, entrant="x", file_id="MANY") for n in range(300)]
    many[5].update(status="wanted", sha256=None)
    put(Path(cfg.paths.spool), 660, "completed", at(13, 8), many)
    _, html = render(cfg, event_roster)
    block = device_blocks((html / "index.html").read_text())[660]
    assert block.count("<tr class=") == 20 and "and 280 more on the tracks page" in text(block)
    assert 'data-status="wanted"' in block   # the one needing a person is among those shown


def test_a_state_change_is_rendered_at_once_but_a_moving_wait_only_every_5_s(crafted_dashboard_event):
    """The stage looks every second: a change shows within it; ages alone do not re-render each second."""
    cfg, event_roster = crafted_dashboard_event
    assert render(cfg, event_roster)[0]  # the crafted event has waiting devices: clock-driven pages
    assert render(cfg, event_roster, now=NOW + 1)[0] == []  # only the clock moved, 1 s: touched
    with state.update(cfg.paths.spool, 603) as doc:
        state.set_status(doc, "pending")
    assert "status.json" in render(cfg, event_roster, now=NOW + 2)[0]  # a change: at once
    assert render(cfg, event_roster, now=NOW + 3)[0] == []
    later = render(cfg, event_roster, now=NOW + 2 + pages.CLOCK_EVERY_S)[0]
    assert "status.json" in later  # the waits moved on: rendered again


def test_the_tv_layout_shrinks_with_the_count_and_keeps_the_latest_and_the_troubled_large():
    def seen(n, failed=()):
        return [{"id": d, "status": "failed" if d in failed else "completed", "warnings": [], "unreadable": None,
                 "counts": {status: 0 for status in dashboard_facts.TRACK_STATES}} for d in range(n, 0, -1)]
    assert dashboard_facts.tv_layout(seen(12)) == {"size": "large", "featured": [], "columns": 0, "not_seen_max": 14}
    crowded = dashboard_facts.tv_layout(seen(130, failed={3, 50}))
    assert crowded["size"] == "tiny"
    assert crowded["featured"] == [130, 129, 128, 127, 126, 125, 50, 3]
    cells = 130 + 3 * len(crowded["featured"])
    assert -(-cells // crowded["columns"]) <= dashboard_facts.TV_ROWS["tiny"]  # rows that fit the screen's height
    assert dashboard_facts.tv_layout(seen(40))["size"] == "small"


def test_a_new_process_finds_current_pages_current_without_rendering(crafted_dashboard_event, monkeypatch):
    """Cron starts a dashboard run every minute: pages made from the same inputs are only touched."""
    cfg, event_roster = crafted_dashboard_event
    quiet = Path(cfg.paths.spool)
    for name in ("inspect", "download"):  # no wait shown: nothing moves with the clock alone
        for item in (quiet / name).glob("*.json"):
            item.unlink()
    for device in (605,):
        with state.update(quiet, device) as doc:
            doc["absent_since"] = None
    assert render(cfg, event_roster)[0]
    next_process = pages.Renderer()
    monkeypatch.setattr(next_process, "render", lambda facts: pytest.fail("rendered though nothing changed"))
    assert render(cfg, event_roster, now=NOW + 10, renderer=next_process)[0] == []
    with state.update(quiet, 603) as doc:  # a change seen by the next process
        state.set_status(doc, "pending")
    assert "index.html" in render(cfg, event_roster, now=NOW + 11, renderer=pages.Renderer())[0]


def test_a_folder_unchanged_since_it_settled_is_not_listed_again_and_any_change_is_seen(tmp_path, monkeypatch):
    states = layout.state_dir(tmp_path)
    states.mkdir(parents=True)
    for device in (1, 2):
        (states / f"{device}.json").write_text("{}")
    os.utime(states, (time.time() - 10, time.time() - 10))   # last changed well before the look
    scans = {}
    first = pages._entries("state", states, scans)
    real_scandir = os.scandir
    listed = []
    monkeypatch.setattr(os, "scandir", lambda where: listed.append(where) or real_scandir(where))
    assert pages._entries("state", states, scans) == first and listed == []   # 1 stat, no listing
    (states / "3.json").write_text("{}")                      # a new file moves the folder's mtime
    assert {e[1] for e in pages._entries("state", states, scans)} == {"1.json", "2.json", "3.json"}
    pages._entries("state", states, scans)           # changed within the last second: not trusted yet
    assert len(listed) == 2
