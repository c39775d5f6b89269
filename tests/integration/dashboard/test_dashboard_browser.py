"""The dashboard as a browser sees it: headless Chromium loads index.html from disk.

Chromium runs the page (its freshness script included) and prints the DOM it
built, so the checks below are on what a screen in the tent would show, not on
the template's text. A screenshot is saved under the test's temporary folder
for a person to look at.

Skipped only outside CI when Debian's chromium is not installed; in CI (env CI
set) a missing chromium is a failure.
"""

import html
import json
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from jobs.dashboard import pages as dashboard_pages
from jobs.spool import state
from jobs.stages import dashboard
from tests.builders import (CHROMIUM, DASHBOARD_DAY as DAY, DASHBOARD_NOW as NOW, craft_dashboard_event as craft,
                            dashboard_at as at, dashboard_track as track, put_device as put)


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
    dashboard.write(cfg, Path(cfg.paths.spool), roster, dashboard_pages.Renderer(), now=NOW, day=DAY)
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


# What the TV page reports of its own layout, as the browser laid it out.
MEASURE = """<script>
(function () {
  const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5 && a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
  const tiles = [...document.querySelectorAll(".tile")].map(t => {
    const box = t.getBoundingClientRect(), id = t.querySelector(".id"), sym = t.querySelector(".sym");
    return {device: +t.dataset.device, big: t.classList.contains("big"), left: box.left, top: box.top,
            right: box.right, bottom: box.bottom, area: box.width * box.height,
            id_px: parseFloat(getComputedStyle(id).fontSize), sym_px: parseFloat(getComputedStyle(sym).fontSize),
            shown: inside(id.getBoundingClientRect(), box) && inside(sym.getBoundingClientRect(), box),
            sym_box: sym.getBoundingClientRect(), id_box: id.getBoundingClientRect()};
  });
  const page = {tiles, width: innerWidth, height: innerHeight,
                scroll_width: document.documentElement.scrollWidth, scroll_height: document.documentElement.scrollHeight};
  const out = document.createElement("pre");
  out.id = "layout";
  out.textContent = JSON.stringify(page);
  document.body.appendChild(out);
})();
</script>
</body>"""


def crowd(cfg, count):
    """Devices 701... seen today until there are `count` tiles: most completed, some moving, a few failed."""
    root = Path(cfg.paths.spool)
    seen = sum(1 for doc in state.all_devices(root) if doc["history"] >= at(0, 0))
    for n in range(count - seen):
        device, when = 701 + n, at(9, 0) + 60 * n
        if n % 17 == 5:
            put(root, device, "failed", when, error="connection refused", retry={"failures": 1, "next": NOW + 60})
        elif n % 9 == 4:
            put(root, device, "downloading", when, [track(device, at(10, 0), 60, status="wanted")],
                progress={"file": f"/logs/{device:04d}_2022-07-16-1000.oao", "name": None, "bytes": 400_000,
                          "total": 1_314_968, "rate": 390_000, "started": NOW - 2, "updated": NOW - 1})
        else:
            put(root, device, "completed", when, [track(device, at(10, 0), 60)])


def laid_out(chromium, page, width, height):
    """The page's own measure of its layout in a viewport of width x height.

    Headless Chromium's --dump-dom keeps some of --window-size for a window
    frame (143 px of 1080 in Chromium 156): the window is grown by what it kept.
    """
    frame = 0
    for _ in range(2):
        dom = chromium(page.as_uri(), "--dump-dom", f"--window-size={width},{height + frame}")
        layout = json.loads(html.unescape(re.search(r'<pre id="layout">(.*?)</pre>', dom, re.S).group(1)))
        if layout["height"] == height:
            break
        frame = height + frame - layout["height"]
    return layout


@pytest.mark.parametrize("count", [130, 40, 12])
def test_tv_page_fits_the_devices_of_a_day_on_one_screen_readable_from_5_m(chromium, tmp_path, count):
    """1920x1080, no scrolling; every tile's number and symbol whole and large; the latest and the failed largest.

    Readable from 5 m: a number at least 36 px high is ~2.3 cm on a 55" 1080p screen (0.63 mm pixels),
    and status is the tile's colour as well as its symbol.
    """
    cfg, event_roster = craft(tmp_path / "event")
    crowd(cfg, count)
    dashboard.write(cfg, Path(cfg.paths.spool), event_roster, dashboard_pages.Renderer(), now=NOW, day=DAY)
    page = Path(cfg.paths.html) / "tv.html"
    measured = tmp_path / "tv-measured.html"
    measured.write_text(page.read_text().replace("</body>", MEASURE))
    layout = laid_out(chromium, measured, 1920, 1080)
    tiles = layout["tiles"]
    assert len(tiles) == count
    assert (layout["width"], layout["height"]) == (1920, 1080)
    assert layout["scroll_height"] <= 1080 and layout["scroll_width"] <= 1920, "the TV page scrolls"
    for tile in tiles:
        assert 0 <= tile["left"] and tile["right"] <= 1920 and 0 <= tile["top"] and tile["bottom"] <= 1080, tile
        assert tile["shown"], f"device {tile['device']}: number or symbol cut off: {tile}"
        assert tile["id_px"] >= 36 and tile["sym_px"] >= 26, tile
    big = [t for t in tiles if t["big"]]
    small = [t for t in tiles if not t["big"]]
    if count > 12:  # a crowded screen: the latest six connections and every failed device stay largest
        failed = {d for d in range(701, 701 + count) if (d - 701) % 17 == 5} & {t["device"] for t in tiles}
        assert {t["device"] for t in tiles[:6]} | failed | {604} <= {t["device"] for t in big}
        assert min(t["area"] for t in big) > 3 * max(t["area"] for t in small)
    shot = tmp_path / f"tv-{count}.png"
    chromium(page.as_uri(), "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1920,1080")
    print(f"screenshot: {shot}")
