"""The dashboard as a browser sees it: headless Chromium loads index.html from disk.

Chromium runs the page (its freshness script included) and prints the DOM it
built, so the checks below are on what a screen in the tent would show, not on
the template's text. A screenshot is saved under the test's temporary folder
for a person to look at.

Skipped only outside CI when Debian's chromium is not installed; in CI (env CI
set) a missing chromium is a failure.
"""

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.unit.test_dashboard import DAY, NOW, craft
from jobs.stages import dashboard

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@pytest.fixture
def chromium(tmp_path):
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium); the browser test must run in CI")
        pytest.skip("chromium is not installed (apt-get install chromium)")

    def run(url, *args):
        command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   f"--user-data-dir={tmp_path / 'chromium-profile'}", *args, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    return run


@pytest.fixture
def pages(tmp_path):
    cfg, roster = craft(tmp_path / "event")
    dashboard.write(cfg, Path(cfg.paths.spool), roster, now=NOW, day=DAY)
    return Path(cfg.paths.html)


def test_browser_shows_every_device_in_history_order_and_the_totals(chromium, pages):
    dom = chromium((pages / "index.html").as_uri(), "--dump-dom")
    devices = re.findall(r'<article class="device[^"]*" id="device-(\d+)"[^>]*data-status="(\w+)"', dom)
    assert [int(d) for d, _ in devices] == [612, 603, 602, 601, 611, 470, 604, 605, 607, 608, 609, 606, 610]
    assert dict(devices)["604"] == "failed" and dict(devices)["601"] == "downloading"
    totals = dict(re.findall(r'data-total="(\w+)"><b>(\d+)</b>', dom))
    assert totals == {"seen": "12", "completed": "5", "downloading": "2", "pending": "1", "failed": "1",
                      "tracks_verified": "7", "not_seen": "3"}
    # The hostile username is text in the DOM, never an element.
    assert "&lt;script&gt;alert" in dom and "<script>alert" not in dom
    # The freshness script ran: it read the file's time, and the page is not stale.
    assert re.search(r'id="fresh">updated \d\d:\d\d:\d\d<', dom)
    assert re.search(r'<p class="stale" id="stale" hidden=""', dom)


def test_browser_tv_page_shows_tiles(chromium, pages):
    dom = chromium((pages / "tv.html").as_uri(), "--dump-dom")
    tiles = re.findall(r'<div class="tile s-(\w+)" data-device="(\d+)"', dom)
    assert len(tiles) == 12 and tiles[0] == ("connected", "612")


def test_browser_screenshot_is_saved(chromium, pages, tmp_path):
    shot = tmp_path / "dashboard.png"
    chromium((pages / "index.html").as_uri(), "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1400,1000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 1000)
    # A blank or unstyled page compresses to a few KB; the dashboard's colours and text do not.
    assert len(data) > 40_000, f"screenshot suspiciously small ({len(data)} bytes): {shot}"
    print(f"screenshot: {shot}")
