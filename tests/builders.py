"""The set-ups tests share, in one place: a config, a roster, a device as detect,
inspect and download leave it, a ledger entry, the fixture folder, waiting, the
log's lines, and the crafted events several test files read.

Test modules import from here (`from tests.builders import ...`), never from
each other; tests/conftest.py holds only pytest fixtures, built from these.
"""

import atexit
import contextlib
import datetime as dt
import json
import logging
import math
import os
import re
import resource
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import yaml

from jobs import cli, config as config_module, roster, runner, spool
from jobs.dashboard import pages
from jobs.ops import report
from jobs.spool import state
from jobs.track import figures as _figures, naming
from jobs.spool.files import write_json
from jobs.log import setup as setup_log
from jobs.stages import dashboard, detect, disconnect, download, expire, inspect, replicate

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REAL_FIXTURES = SHARED / "fixtures"
COMMITTED = Path(__file__).resolve().parent / "fixtures"
UTC = dt.timezone.utc
LONDON = ZoneInfo("Europe/London")


# --- the fixture folder: device 470's documents and tracks, made by the simulator ----------

# The fixture device 470's three tracks, as its logs.json lists them (file,
# start ms, duration ms, size, distance mm, 2 s, 10 s and 500 m bests mm/s): the
# simulator makes tracks with these names, times, sizes and 500 m bests; the
# other figures are the device's word, as a real logs.json's are.
FIXTURE_TRACKS = (
    ("/logs/Motion_Mini_10Hz_0470_2022-04-11-1117.oao", 1649672228000, 4797900, 2495472,
     21300000, 16900, 16100, 14800),
    ("/logs/0470_2022-07-16-1202.oao", 1657972960000, 5066000, 1314968, 18700000, 11600, 11000, 10100),
    ("/logs/0470_2022-09-20-1229.oao", 1663676976200, 6251800, 1626032, 6100000, 2300, 2100, 1900),
)


def _knots(mm_per_s):
    return mm_per_s / 1000 * 3600 / 1852


_made = []


def fixture_folder():
    """A folder laid out like ../shared/fixtures, made by the simulator once per
    test process: device/ (info-3232.json, info-3129.json, settings.json,
    logs.json), oao/ (the three tracks of device 470) and the committed
    motions.csv. A bare clone has it all. Test modules may call it at import
    time for their constants; it is removed when the process exits."""
    if not _made:
        folder = Path(tempfile.mkdtemp(prefix="motion-fixtures-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _make_fixtures(folder)
        _made.append(folder)
    return _made[0]


def _make_fixtures(folder):
    from jobs.sim import Fleet, DeviceSpec, TrackSpec
    from jobs.sim.handler import info_json, settings_json

    specs = [TrackSpec(start=dt.datetime.fromtimestamp(start / 1000, UTC), duration_s=duration / 1000,
                       size=size, best500_knots=_knots(best500), file=file,
                       logs={"distance": distance, "2s_best": best2, "10s_best": best10, "500m_best": best500})
             for file, start, duration, size, distance, best2, best10, best500 in FIXTURE_TRACKS]
    fleet = Fleet([DeviceSpec(id=470), DeviceSpec(id=471, firmware="old")],
                  folder=folder / "sim", timezone="Europe/London")
    for spec in specs:
        fleet.add_track(470, spec)
    (folder / "device").mkdir()
    (folder / "oao").mkdir()
    documents = {"info-3232.json": info_json(fleet.device(470), {}),
                 "info-3129.json": info_json(fleet.device(471), {}),
                 "settings.json": settings_json(fleet.device(470)),
                 "logs.json": {"logs": fleet.logs(470)}}
    documents["info-3129.json"]["motion"]["identifier"] = 470
    for name, doc in documents.items():
        (folder / "device" / name).write_text(json.dumps(doc, indent=2))
    for file, *_ in FIXTURE_TRACKS:
        shutil.copyfile(fleet.track_path(470, file), folder / "oao" / os.path.basename(file))
    shutil.copyfile(COMMITTED / "motions.csv", folder / "motions.csv")
    shutil.rmtree(folder / "sim")


# The fixture device's three tracks, by file name.
FIXTURE_NAMES = ("0470_2022-07-16-1202.oao", "0470_2022-09-20-1229.oao",
                 "Motion_Mini_10Hz_0470_2022-04-11-1117.oao")

# GPS Speedreader 3.0.4's figures of the three fixture tracks (mm/s; distance m).
SPEEDREADER = {
    "0470_2022-07-16-1202.oao": (11604.500, 11379.880, 10996.564, 11100.212, 10225.177, 6678.139, 9397.835,
                                 26948.523),
    "0470_2022-09-20-1229.oao": (1916.000, 1857.660, 1754.804, 1681.991, 1590.340, 1523.585, 1387.102, 7432.764),
    "Motion_Mini_10Hz_0470_2022-04-11-1117.oao": (16828.250, 16334.650, 16087.084, 15585.455, 11558.822,
                                                  8294.755, 11190.749, 30375.096),
}

def fixture_track(folder, name="0470_2022-07-16-1202.oao"):
    """The bytes of one of the fixture device's tracks (`folder`: the fixture folder)."""
    return (Path(folder) / "oao" / name).read_bytes()


# --- waiting, and the motion logger's lines ------------------------------------------------

def wait_until(condition, timeout=5.0, interval=0.02, what=None):
    """Calls condition() every `interval` s until it returns something true or
    `timeout` s pass, and returns its last value: `assert wait_until(...)`. With
    `what`, a timeout fails the test itself: "not within N s: <what>"."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    assert value or what is None, f"not within {timeout:.0f} s: {what}"
    return value


def log_lines(cfg, text=""):
    """The lines of the log file (cfg.paths.log) containing text, without their
    line ends; [] when there is no log file yet."""
    try:
        with open(cfg.paths.log, encoding="utf-8") as log:
            return [line for line in log.read().splitlines() if text in line]
    except FileNotFoundError:
        return []


def close_motion_log():
    """Closes and removes the handlers log.setup gave the motion logger in this process."""
    logger = logging.getLogger("motion")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


# --- a config ------------------------------------------------------------------------------

# The folders most tests give: everything under the config's own folder.
PATHS = {"spool": "spool", "tracks": "tracks", "html": "html", "log": "log/motion-server.log"}
# Where the folders go when only the spool is named: all inside it.
SPOOL_PATHS = {"spool": "spool", "log": "spool/log/m.log"}


def config_file(folder, name="motion-server.yaml", paths=PATHS, **sections):
    """Writes a motion-server YAML into `folder` and returns its path.

    `paths` is the paths section (None: no paths section, the defaults); each
    other keyword is a section, as a dict that replaces it, or a dotted key that
    sets one key of it (**{"network.port": 80}). Relative paths are relative to
    the file's folder, as for every config.
    """
    tree = {"paths": dict(paths)} if paths is not None else {}
    for key, value in sections.items():
        *sections_of, last = key.split(".")
        where = tree
        for section in sections_of:
            where = where.setdefault(section, {})
        where[last] = value
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(tree, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def config(folder, name="motion-server.yaml", paths=PATHS, **sections):
    """The loaded config of config_file(folder, name, paths, **sections)."""
    return config_module.load(config_file(folder, name, paths, **sections))


def runner_config(folder):
    """The runner tests' config: a spool with the log inside, 3 download workers, 50 ms intervals."""
    return config(folder, "c.yaml", paths=SPOOL_PATHS, threads={"download": 3},
                  intervals={"detect": 0.05, "download": 0.05})


def log_config(path, level="INFO", console_level="ERROR"):
    """The least log.setup reads: the log file and its levels, no config file."""
    return SimpleNamespace(paths=SimpleNamespace(log=str(path)),
                           log=SimpleNamespace(level=level, console_level=console_level))


# --- a roster ------------------------------------------------------------------------------

HEADER = "Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,Craft Type,Status\n"


def roster_file(folder, text, name="motions.csv"):
    """Writes a roster (its whole text, header included) into `folder`; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def roster_of(folder, rows, header=HEADER):
    """The loaded roster of these rows (written as motions.csv into folder)."""
    return roster.load(roster_file(folder, header + "".join(row + "\n" for row in rows)))


# A logs.json listing's start: 12:02:40 UTC on 16 July 2022, as the fixture device's July track.
LISTED_START = int(dt.datetime(2022, 7, 16, 12, 2, 40, tzinfo=UTC).timestamp() * 1000)


def listed(file="/logs/a.oao", start=LISTED_START, best500=5000, size=1000):
    """A track as a device's logs.json lists it: an hour, 10 km."""
    return {"file": file, "size": size, "start": start, "end": start + 3_600_000, "duration": 3_600_000,
            "distance": 10_000_000, "best500": best500}


# --- an event: a roster and a config naming it -----------------------------------------------

# The folders of an event's tests: everything under the event's folder, the log as m.log.
EVENT_PATHS = {**PATHS, "log": "log/m.log"}


def event_file(folder, roster_text, paths=EVENT_PATHS, event=None, **sections):
    """An event on disk: its roster as motions.csv and a config naming it (London time;
    `event` adds or changes event keys; other sections as for config_file); the config's path."""
    roster_file(folder, roster_text)
    return config_file(folder, paths=paths, event={"timezone": "Europe/London", "roster": "motions.csv", **(event or {})},
                       **sections)


def event_config(folder, roster_text, paths=EVENT_PATHS, event=None, **sections):
    """The loaded config of event_file(folder, roster_text, paths, event, **sections)."""
    return config_module.load(event_file(folder, roster_text, paths, event, **sections))


# --- a device as detect, inspect and download leave it, and a ledger entry --------------------

def connect(cfg, device=470, address="127.0.1.3"):
    """What detect leaves behind: connected, with an address."""
    with state.update(cfg.paths.spool, device) as doc:
        state.set_status(doc, "connected", address=address)


def disconnected(cfg, device=470):
    """What disconnect leaves behind for a device that left: disconnected, its address forgotten."""
    with state.update(cfg.paths.spool, device) as doc:
        state.set_status(doc, "disconnected", address=None)


def ledger_entry(file, name, size, day, start=1657972960000):
    """A ledger entry as inspect plans it: wanted, not yet fetched (entrant 1101)."""
    return {"file": file, "name": name, "day": day, "start": start, "end": start + 5066000,
            "duration": 5066000, "distance": 18700000, "best500": 10100, "size": size,
            "entrant": "1101", "file_id": name.split("_")[0], "status": "wanted", "reason": None,
            "sha256": None, "failures": 0, "verified_at": None}


def queue_device(cfg, device, entries, address="127.0.1.3"):
    """What inspect leaves behind: the device pending, its ledger, a download queue item."""
    with state.update(cfg.paths.spool, device) as doc:
        state.set_status(doc, "pending", address=address)
        doc["tracks"] = {**doc["tracks"], **{e["file"]: e for e in entries}}
    spool.enqueue(cfg.paths.spool, "download", device)


def queued(cfg, queue="download"):
    """The devices waiting in a queue, in its order."""
    return [device for device, _ in spool.pending(cfg.paths.spool, queue)]

# --- the crafted dashboard event: a device in every status, every warning -----------------

DASHBOARD_TZ = "Europe/London"
DASHBOARD_DAY = dt.date(2022, 7, 16)
HOSTILE = "<script>alert('pwned')</script>"


def dashboard_at(hh, mm, ss=0, day=DASHBOARD_DAY):
    """Epoch seconds of a local time on the event day."""
    return dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=ZoneInfo(DASHBOARD_TZ)).timestamp()


DASHBOARD_NOW = dashboard_at(13, 30)

DASHBOARD_ROSTER = """\
Entrant ID,Tally,Motion ID,Start Date,End Date,File ID,First Name,Family Name,Craft Type,Status,Entry Type
1101,1,470,2022-07-16,2022-07-17,ALD470ANN,Anna,Alder,Sailboard,Pro-Fleet,2 Days
1103,3,601,2022-07-16,2022-07-22,CAS601CAT,Cat,Castle,Sailboard,Gold-Fleet,All Week
1104,4,602,2022-07-16,2022-07-22,DUN602DAN,Dan,Dune,Wingboard,Amateur,All Week
1105,5,603,2022-07-16,2022-07-22,EBB603EVE,Eve,Ebb,Kiteboard,Open Class,All Week
1106,6,604,2022-07-16,2022-07-22,FEN604FIN,Finn,Fenwick,Sailboard,Pro-Fleet,All Week
1107,7,605,2022-07-16,2022-07-22,GUL605GIL,Gil,Gull,Sailboard,Pro-Fleet,All Week
1108,8,606,2022-07-16,2022-07-22,HAR606HAL,Hal,Harbour,Kiteboard,Pro-Fleet,All Week
1109,9,607,2022-07-16,2022-07-22,INL607IDA,Ida,Inlet,Wingboard,Open Class,All Week
1110,10,608,2022-07-16,2022-07-22,JET608JO,Jo,Jetty,Sailboard,Amateur,All Week
1111,11,609,2022-07-16,2022-07-22,KEE609KAI,Kai,Keel,Foil,Pro-Fleet,All Week
1112,12,610,2022-07-15,2022-07-22,LEE610LEO,Leo,Lee,Sailboard,Pro-Fleet,All Week
1113,13,611,2022-07-15,2022-07-22,MAR611MIA,Mia,Marsh,Kiteboard,Gold-Fleet,All Week
1114,14,612,2022-07-16,2022-07-22,NAB612NED,Ned,Nab,Sailboard,Open Class,All Week
1120,20,620,2022-07-16,2022-07-22,OSP620OLA,Ola,Osprey,Sailboard,Pro-Fleet,All Week
1121,21,0,2022-07-16,2022-07-22,PIE000PIA,Pia,Pier,Sailboard,Open Class,All Week
1122,22,621,2022-07-20,2022-07-22,QUA621QUI,Quinn,Quay,Sailboard,Open Class,Later
1123,23,605,2022-07-16,2022-07-16,RIG605ROY,Roy,Rigg,Sailboard,Open Class,Clash
"""


def dashboard_track(device, start, minutes=60, km=18.7, knots=19.6, size=1_314_968, status="verified", reason=None,
          entrant=None, file_id=None, failures=0, day=DASHBOARD_DAY):
    """A ledger track as inspect and download write it."""
    ms = int(start * 1000)
    local = dt.datetime.fromtimestamp(start, ZoneInfo(DASHBOARD_TZ))
    name = f"{file_id}_{device}_{local:%Y%m%d_%H%M%S}.oao" if file_id else None
    return {
        "file": f"/logs/{device:04d}_{local:%Y-%m-%d-%H%M}.oao", "name": name, "day": f"{local:%Y%m%d}",
        "start": ms, "end": ms + minutes * 60_000, "duration": minutes * 60_000, "distance": int(km * 1e6),
        "best500": round(knots * 1852 / 3.6), "size": size, "entrant": entrant, "file_id": file_id,
        "status": status, "reason": reason, "failures": failures,
        "sha256": f"{device:04x}{ms:x}".ljust(64, "0") if status == "verified" else None,
        "verified_at": start + minutes * 60 + 600 if status == "verified" else None,
    }


def put_device(root, device, status, history, tracks=(), **fields):
    """Write one device's state through the real writer."""
    with state.update(root, device) as doc:
        doc.update(status=status, history=history, since=history, last_seen=history,
                   address=f"127.0.1.{device % 200}" if status in state.ACTIVE else None,
                   info={"username": f"K{device}", "hardware": "Wireless Mini M10",
                         "firmware_name": "9009 Weymouth SW (3232)", "firmware_code": 3232,
                         "battery": 82, "charging": False, "storage": 12},
                   tracks={t["file"]: t for t in tracks}, **fields)


def queue_at(root, name, device, enqueued):
    spool.enqueue(root, name, device)
    os.utime(Path(root) / name / f"{device}.json", (enqueued, enqueued))


def craft_dashboard_event(folder):
    """The crafted event: config, roster and a dozen devices; returns (cfg, roster)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    roster_file(folder, DASHBOARD_ROSTER)
    cfg = config(folder, event={"name": "Weymouth Speed Week", "timezone": DASHBOARD_TZ, "roster": "motions.csv"},
                 paths={"spool": "spool", "tracks": "spool/tracks", "html": "spool/html",
                        "log": "spool/log/motion-server.log"})
    root = Path(cfg.paths.spool)
    put_device(root, 470, "completed", dashboard_at(13, 20), [
        dashboard_track(470, dashboard_at(10, 2, 40), 84, 18.7, 19.6, entrant="1101", file_id="ALD470ANN"),
        dashboard_track(470, dashboard_at(11, 45), 50, 9.1, 21.3, 2_480_000, entrant="1101", file_id="ALD470ANN"),
        dashboard_track(470, dashboard_at(12, 50), 12, 1.2, 3.4, 220_000, "skipped", "too slow: 3.4 kn < 5 kn",
              entrant="1101", file_id="ALD470ANN"),
        dashboard_track(470, dashboard_at(9, 0, day=DASHBOARD_DAY - dt.timedelta(days=1)), 30, 5.0, 15.0, 900_000,
              entrant="1101", file_id="ALD470ANN"),
    ])
    put_device(root, 601, "downloading", dashboard_at(13, 26), [
        dashboard_track(601, dashboard_at(10, 30), 70, 22.4, 24.8, 3_100_000, entrant="1103", file_id="CAS601CAT"),
        dashboard_track(601, dashboard_at(12, 5), 65, 19.0, 23.1, 2_600_000, "wanted", entrant="1103", file_id="CAS601CAT"),
        dashboard_track(601, dashboard_at(13, 15), 10, 2.0, 17.5, 500_000, "wanted", entrant="1103", file_id="CAS601CAT", failures=1),
    ], progress={"file": "/logs/0601_2022-07-16-1205.oao", "name": "CAS601CAT_601_20220716_120500.oao",
                 "bytes": 1_092_000, "total": 2_600_000, "rate": 390_000, "started": dashboard_at(13, 29, 50),
                 "updated": dashboard_at(13, 29, 58)})
    put_device(root, 602, "pending", dashboard_at(13, 28), [
        dashboard_track(602, dashboard_at(11, 0), 95, 30.5, 26.0, 4_200_000, "wanted", entrant="1104", file_id="DUN602DAN")])
    queue_at(root, "download", 602, dashboard_at(13, 28, 18))
    put_device(root, 603, "connected", dashboard_at(13, 29, 50))
    queue_at(root, "inspect", 603, dashboard_at(13, 29, 51))
    put_device(root, 604, "failed", dashboard_at(13, 10), error="timed out reading /logs.json after 10 s",
        retry={"failures": 2, "next": dashboard_at(13, 31)})
    put_device(root, 605, "completed", dashboard_at(12, 40), [
        dashboard_track(605, dashboard_at(10, 45), 60, 15.2, 18.9, 1_900_000, entrant="1107", file_id="GUL605GIL")],
        absent_since=DASHBOARD_NOW - 12,
        warnings=[{"kind": "battery", "text": "battery 41 % (below 60 %)"}])
    put_device(root, 606, "disconnected", dashboard_at(11, 5), [
        dashboard_track(606, dashboard_at(9, 40), 80, 25.0, 22.2, 2_900_000, entrant="1108", file_id="HAR606HAL")])
    put_device(root, 607, "completed", dashboard_at(12, 15), [
        dashboard_track(607, dashboard_at(10, 10), 55, 12.0, 20.4, 1_700_000, "bad", "frame checksum wrong at byte 88320",
              entrant="1109", file_id="INL607IDA", failures=3),
        dashboard_track(607, dashboard_at(11, 20), 40, 8.5, 19.0, 1_200_000, entrant="1109", file_id="INL607IDA")])
    put_device(root, 608, "completed", dashboard_at(12, 5), [
        dashboard_track(608, dashboard_at(10, 0), 45, 10.0, 18.0, 1_500_000, entrant="1110", file_id="JET608JO")],
        warnings=[{"kind": "firmware", "text": f"firmware {HOSTILE!r} is not approved"}])
    with state.update(root, 608) as doc:
        doc["info"].update(username=HOSTILE, firmware_name=HOSTILE)
    put_device(root, 609, "completed", dashboard_at(11, 50), [],
        warnings=[{"kind": "storage", "text": "storage 97 % used (above 95 %)"},
                  {"kind": "settings", "text": "setting gnss_rate is '1', expected '5'"},
                  {"kind": "settings", "text": "setting timezone is '0', expected '60'"}])
    with state.update(root, 609) as doc:
        doc["info"].update(storage=97)
    with state.update(root, 605) as doc:
        doc["info"].update(battery=41, charging=True)
    put_device(root, 610, "disconnected", dashboard_at(17, 30, day=DASHBOARD_DAY - dt.timedelta(days=1)), [
        dashboard_track(610, dashboard_at(14, 0, day=DASHBOARD_DAY - dt.timedelta(days=1)), 60, 14.0, 20.0, 1_800_000,
              entrant="1112", file_id="LEE610LEO")])
    put_device(root, 611, "downloading", dashboard_at(13, 25), [
        dashboard_track(611, dashboard_at(16, 10, day=DASHBOARD_DAY - dt.timedelta(days=1)), 45, 11.0, 21.0, 1_600_000, "wanted",
              entrant="1113", file_id="MAR611MIA")],
        progress={"file": f"/logs/0611_2022-07-15-1610.oao", "name": None, "bytes": 200_000,
                  "total": 1_600_000, "rate": 250_000, "started": dashboard_at(13, 29), "updated": dashboard_at(13, 29, 59)})
    put_device(root, 612, "connected", dashboard_at(13, 29, 58))
    return cfg, roster.load(cfg.event.roster)


# One renderer per event's pages, as one per running stage: a test's renders remember each other.
_renderers = {}


def renderer_of(cfg):
    return _renderers.setdefault(str(cfg.paths.html), pages.Renderer())


def render_dashboard(cfg, event_roster, now=DASHBOARD_NOW, day=DASHBOARD_DAY, renderer=None):
    written = dashboard.write(cfg, Path(cfg.paths.spool), event_roster, renderer or renderer_of(cfg), now=now, day=day)
    html = Path(cfg.paths.html)
    return written, html


def device_blocks(page):
    """{device id: its <article> html} in page order."""
    found = re.finditer(r'(<article class="device[^"]*" id="device-(\d+)".*?</article>)', page, re.S)
    return {int(m.group(2)): m.group(1) for m in found}


def page_text(html):
    """What a reader sees: tags dropped, spaces folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


# --- a report day: ledgers and files written here rather than by the stages -----------------

# The day of the crafted events (the report day, the CSV and property tests).
EVENT_DAY = dt.date(2026, 7, 16)
REPORT_ROSTER = HEADER + """\
1101,1,470,2026-07-15,2026-07-17,ALD470ANN,Ann,Alder,Windsurf,OK
1102,2,471,2026-07-15,2026-07-17,BEE471BOB,Bob,Beech,Kite,OK
1103,3,472,2026-07-15,2026-07-17,CED472CAT,Cat,Cedar,Kite,OK
1104,4,0,2026-07-15,2026-07-17,DAN0,Dan,Dogwood,Kite,OK
1105,5,473,2026-07-15,2026-07-17,ELM473EVE,Zoë,Elm,Windsurf,OK
1106,6,474,2026-07-15,2026-07-17,FIR474FAY,Fay,Fir,Kite,OK
1107,7,475,2026-07-17,2026-07-17,GUM475GUS,Gus,Gum,Kite,OK
"""
KNOTS = 1852 / 3.6   # mm/s per knot


def report_at(day, hour, minute=0):
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=LONDON)


def epoch_ms(when):
    return int(when.timestamp() * 1000)


def report_track(device, file_id, start, status, knots=18.0, size=1000, reason=None, minutes=60):
    begin = epoch_ms(start)
    return {
        "file": f"/logs/{device:04d}_{start:%Y-%m-%d-%H%M}.oao", "name": naming.local_name(file_id, device, begin, LONDON),
        "day": start.strftime("%Y%m%d"), "start": begin, "end": begin + minutes * 60_000, "duration": minutes * 60_000,
        "distance": 20_000_000, "best500": round(knots * KNOTS), "size": size, "entrant": None,
        "file_id": file_id, "status": status, "reason": reason, "sha256": None, "failures": 0,
        "verified_at": None,
    }


def save_device(spool, device, seen=None, status="completed", error=None, ledger=(), progress=None):
    doc = state.new(device)
    doc.update(status=status, error=error, progress=progress,
               history=seen.timestamp() if seen else None, last_seen=seen.timestamp() if seen else None,
               tracks={t["file"]: t for t in ledger})
    state.path(spool, device).parent.mkdir(parents=True, exist_ok=True)
    write_json(state.path(spool, device), doc)
    return doc


def on_disk(folder, t, size=None):
    path = folder / t["day"] / t["name"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * (t["size"] if size is None else size))
    return path


def make_report_day(tmp_path):
    """A day of ledgers and files, written here rather than by the stages."""
    cfg = event_config(tmp_path, REPORT_ROSTER, event={"name": "Report week"})
    spool, folder = cfg.paths.spool, tmp_path / "tracks"
    yesterday = EVENT_DAY - dt.timedelta(days=1)

    ann = [report_track(470, "ALD470ANN", report_at(EVENT_DAY, 11, 5), "verified", size=2345),
           report_track(470, "ALD470ANN", report_at(EVENT_DAY, 9, 30), "skipped", knots=3.2, reason="too slow: 3.2 kn < 5 kn"),
           report_track(470, "ALD470ANN", report_at(yesterday, 15), "verified")]
    on_disk(folder, ann[0])
    on_disk(folder, ann[2])
    save_device(spool, 470, seen=report_at(EVENT_DAY, 14), ledger=ann)

    bob = [report_track(471, "BEE471BOB", report_at(EVENT_DAY, 12), "verified", size=500)]  # the ledger says verified; no file
    save_device(spool, 471, seen=report_at(EVENT_DAY, 13), ledger=bob)

    eve = [report_track(473, "ELM473EVE", report_at(yesterday, 16), "verified")]
    on_disk(folder, eve[0])
    save_device(spool, 473, seen=report_at(yesterday, 18), status="disconnected", ledger=eve)

    fay = [report_track(474, "FIR474FAY", report_at(EVENT_DAY, 10), "wanted"),
           report_track(474, "FIR474FAY", report_at(EVENT_DAY, 13), "bad", reason="frame checksum wrong at byte 4096 (3 times)")]
    save_device(spool, 474, seen=report_at(EVENT_DAY, 15), status="failed", error="/logs.json: no answer within 10 s", ledger=fay)

    stranger = [report_track(476, "XYZ", report_at(EVENT_DAY, 8), "skipped", reason="no entrant for device 476 on 2026-07-16")]
    save_device(spool, 476, seen=report_at(EVENT_DAY, 8, 30), ledger=stranger)

    (folder / "20260716" / "copied_by_hand.oao").write_bytes(b"y")
    (folder / "20260716" / ".ALD470ANN_470_20260716_150000.oao.part").write_bytes(b"z")
    return cfg, folder


def report_rows(cfg, day=EVENT_DAY):
    return report.collect(cfg, day, roster.load(cfg.event.roster))


# --- the download tests' device: the fixture device 470 on loopback --------------------------

DEVICE = 470
ADDRESS = "127.0.1.3"
PORT = 8470
FILE = "/logs/0470_2022-07-16-1202.oao"
NAME = "ALD470ANN_470_20220716_130240.oao"
OTHER_FILE = "/logs/0470_2022-09-20-1229.oao"
OTHER_NAME = "ALD470ANN_470_20220920_142936.oao"


def download_config(folder, **network):
    """The download tests' config: short track timeouts, the device's port, `network` on top."""
    return config(folder, network={"track_connect_timeout": 1.0, "track_read_timeout": 1.0, "port": PORT, **network},
                  intervals={"detect": 1.0, "download": 0.2})


def download_once(cfg, device=DEVICE, ctx=None):
    """One worker's turn on one device, as serve_queue runs it."""
    ctx = ctx or runner.Context(cfg=cfg, stage="download")
    claim = spool.claim(cfg.paths.spool, "download", device)
    assert claim is not None
    try:
        download.download_device(ctx, claim)
        spool.finish(claim)
    except runner.Stopping:
        spool.release(claim)
        raise
    return state.read(cfg.paths.spool, device)


def url(file=FILE):
    return f"http://{ADDRESS}:{PORT}{file}"


def download_fixtures():
    """The `track` and `cfg` fixtures of the download tests (the fixture device's
    first track; download_config in the test's folder), one definition for every
    module that downloads it: `track, cfg = download_fixtures()`."""

    @pytest.fixture
    def track(fixtures):
        return fixture_track(fixtures)

    @pytest.fixture
    def cfg(tmp_path):
        return download_config(tmp_path)

    return track, cfg


def final_path(cfg, name=NAME, day="20220716"):
    return os.path.join(cfg.paths.tracks, day, name)


def part_path(cfg, name=NAME, day="20220716"):
    return os.path.join(cfg.paths.tracks, day, f".{name}.part")


@contextlib.contextmanager
def file_size_limit(size):
    """Files may not grow past `size` bytes inside the block: a real write error
    from the kernel (EFBIG, like ENOSPC a write that fails half-way). SIGXFSZ is
    ignored meanwhile, so the write fails instead of the process being killed."""
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, limits[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, old_handler)


# --- an expired spool: things 10 days old and fresh -----------------------------------------

DAY_S = 86400


def age(path, days):
    """Sets the times of path (and all below it) `days` days back."""
    past = time.time() - days * DAY_S
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (past, past))


def make_expired_spool(tmp_path):
    """A spool, log and tracks folder with things 10 days old and fresh:
    (config path, tmp_path, old day, new day, track day)."""
    cfg_path = config_file(tmp_path, "c.yaml", paths={"spool": "spool", "tracks": "tracks", "log": "spool/log/m.log"},
                           retention={"days": 3})
    spool = tmp_path / "spool"
    for device, days in ((470, 10), (601, 1)):
        folder = spool / "cache" / str(device)
        folder.mkdir(parents=True)
        (folder / "info.json").write_text("{}")
        age(folder, days)
    old_day = time.strftime("%Y-%m-%d", time.localtime(time.time() - 10 * DAY_S))
    new_day = time.strftime("%Y-%m-%d")
    for day in (old_day, new_day):
        (spool / "done" / "inspect" / day).mkdir(parents=True)
        (spool / "done" / "inspect" / day / "470.1.json").write_text("{}")
    (spool / "log").mkdir()
    (spool / "log" / "m.log").write_text("live\n")
    (spool / "log" / "m.log.1").write_text("rotated\n")
    age(spool / "log" / "m.log.1", 10)
    age(spool / "log" / "m.log", 10)
    track_day = time.strftime("%Y%m%d", time.localtime(time.time() - 10 * DAY_S))
    (tmp_path / "tracks" / track_day).mkdir(parents=True)
    (tmp_path / "tracks" / track_day / "A_470_x.oao").write_bytes(b"track")
    (tmp_path / "tracks" / track_day / ".A_470_y.oao.part").write_bytes(b"abandoned")
    age(tmp_path / "tracks" / track_day / ".A_470_y.oao.part", 10)
    (spool / "state").mkdir()
    (spool / "state" / "470.json").write_text("{}")
    age(spool / "state" / "470.json", 10)
    return cfg_path, tmp_path, old_day, new_day, track_day


# --- the shipped operation files --------------------------------------------------------------

UNITS = sorted(p.name for p in (REPO / "systemd").iterdir() if p.suffix in (".service", ".timer", ".target"))
STAGE_SERVICES = ("detect", "inspect", "download", "disconnect", "dashboard")


def schedule_lines(path, fields):
    """The schedule lines of a crontab (no comments, no VAR= lines), split into `fields` fields."""
    lines = [line for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#") and not re.match(r"^\w+=", line)]
    return [line.split(None, fields - 1) for line in lines]


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


# --- events on disk for the command line -----------------------------------------------------

def write_event(folder, name="Speed week"):
    """The least event for the command line: a name, a spool and a log; the config's path."""
    return config_file(folder, paths={"spool": "spool", "log": "log/motion-server.log"}, event={"name": name})


def config_with_roster(tmp_path, roster_text, spool="spool"):
    """A config (folders under tmp_path) and its roster; the config's path."""
    roster_file(tmp_path, roster_text)
    return config_file(tmp_path, paths={**PATHS, "spool": spool}, event={"roster": "motions.csv"})


# --- the operator's mistakes in a roster, and the line that names each -------------------------

ENTRY_HEADER = HEADER.replace("Status\n", "Status,Entry Type\n")
GOOD_ROW = "1101,1,470,2022-07-16,2022-07-18,ALD470ANN,Anna,Alder,Sailboard,Pro,All Week\n"


def run_cli(capsys, *argv):
    """`motion-server ARGV` in this process: (exit status, stderr lines)."""
    status = cli.main([str(a) for a in argv])
    return status, capsys.readouterr().err.splitlines()


ROSTER_MISTAKES = {
    "missing column": ("Entrant ID,Tally,Motion ID,Start Date,File ID,First Name,Family Name,Craft Type,Status\n"
                       "1101,1,470,2022-07-16,ALD470ANN,Anna,Alder,Sailboard,Pro\n",
                       "line 1: missing column 'End Date'"),
    "bad date": (ENTRY_HEADER + "1101,1,470,16/07/2022,2022-07-18,ALD470ANN,Anna,Alder,Sailboard,Pro,All Week\n",
                 "line 2, column Start Date: found '16/07/2022', expected a date YYYY-MM-DD"),
    "impossible date": (ENTRY_HEADER + GOOD_ROW + "1102,2,601,2022-02-30,2022-07-18,BRO601BEN,Ben,Brook,Kite,Pro,x\n",
                        "line 3, column Start Date: found '2022-02-30'"),
    "end before start": (ENTRY_HEADER + "1101,1,470,2022-07-18,2022-07-16,ALD470ANN,Anna,Alder,Sailboard,Pro,x\n",
                         "line 2, column End Date: 2022-07-16 is before Start Date 2022-07-18"),
    "File ID with a slash": (ENTRY_HEADER + "1101,1,470,2022-07-16,2022-07-18,ALD/470,Anna,Alder,Sailboard,Pro,x\n",
                             "line 2, column File ID: found 'ALD/470'"),
    "File ID climbing out": (ENTRY_HEADER + "1101,1,470,2022-07-16,2022-07-18,../../etc,Anna,Alder,Sailboard,Pro,x\n",
                             "line 2, column File ID: found '../../etc'"),
    "Motion ID not a number": (ENTRY_HEADER + "1101,1,47O,2022-07-16,2022-07-18,ALD470ANN,Anna,Alder,Sailboard,Pro,x\n",
                               "line 2, column Motion ID: found '47O'"),
    "short row": (ENTRY_HEADER + GOOD_ROW + "1102,2,601,2022-07-16\n", "line 3: 4 fields, expected 11"),
}


CHECK_TZ = "Europe/London"


def check_roster_text(today, bad_line=False):
    """A roster around today; with bad_line, line 3 ends before it starts."""
    start, end = today - dt.timedelta(days=2), today + dt.timedelta(days=2)
    rows = [f"1101,1,470,{start},{end},ALD470ANN,Ann,Alder,Windsurf,OK",
            f"1102,2,471,{start},{end},BEE471BOB,Bob,Beech,Kite,OK",
            f"1103,3,0,{start},{end},CED0CAT,Cat,Cedar,Kite,OK"]
    if bad_line:  # line 3: ends before it starts
        rows[1] = f"1102,2,471,{end},{start},BEE471BOB,Bob,Beech,Kite,OK"
    return HEADER + "\n".join(rows) + "\n"


def make_event(folder, port, bad_roster=False, hosts="127.0.1.1 motion-470\n127.0.1.2 motion-471\n", **overrides):
    """A set-up on disk for check: roster, hosts file, folders, config; returns the config path."""
    today = dt.datetime.now(ZoneInfo(CHECK_TZ)).date()
    roster_file(folder, check_roster_text(today, bad_roster))
    if hosts is None:
        (folder / "hosts").unlink(missing_ok=True)
    else:
        (folder / "hosts").write_text(hosts)
    for name in ("spool", "tracks", "html", "log"):
        (folder / name).mkdir(exist_ok=True)
    return config_file(folder, event={"name": "Check week", "timezone": CHECK_TZ, "roster": "motions.csv"},
                       network={"hosts_file": "hosts"}, dashboard={"listen": f"127.0.0.1:{port}"}, **overrides)


# --- a simulated day: local times of today, and tracks sailed in them -------------------------

def today_at(hour, minute=0, days=0, tz=LONDON):
    """A local time of today (or `days` later) in tz, London by default."""
    day = dt.datetime.now(tz).date() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour, minute), tz)


def july_at(day, hour, minute=0):
    """A London time in July 2022, the fixture device's month."""
    return dt.datetime(2022, 7, day, hour, minute, tzinfo=LONDON)


def today_utc(hour, minute=0):
    """An hour of today in UTC."""
    return dt.datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)


def track_requests(fleet, device):
    """The paths of the .oao files the fleet served `device`, in order."""
    return [a["path"] for a in fleet.accesses() if a.get("device") == device and str(a.get("path")).endswith(".oao")]


def sailed(start, end, knots, **fields):
    """A simulated track from start to end (local (hour, minute) today) whose 500 m best is `knots`."""
    from jobs.sim import TrackSpec

    begin, finish = today_at(*start), today_at(*end)
    return TrackSpec(start=begin, duration_s=(finish - begin).total_seconds(), size=60_000,
                     best500_knots=knots, **fields)


# --- a device that writes its answers by hand -------------------------------------------------

def raw_device(fleet, device_id, answer):
    """A device server on the address and port of the offline fleet device `device_id`, for what
    the simulated fleet cannot send: for each request it calls answer(conn, path, stopped), which
    writes the whole answer to the socket by hand (`stopped` is set once the server closes; an
    OSError, the client gone, ends that answer). Returns close()."""
    listener = socket.create_server((fleet.address(device_id), fleet.port))
    stopped = threading.Event()

    def answer_one(conn):
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            try:
                answer(conn, request.split(b" ")[1].decode(), stopped)
            except OSError:
                return

    def accept():
        while not stopped.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer_one, args=(conn,), daemon=True).start()

    def close():
        stopped.set()
        listener.close()

    threading.Thread(target=accept, daemon=True).start()
    return close


# --- made-up fixes -----------------------------------------------------------------------------

START_MS = 1_700_000_000_000


def fix_records(count, start_ms=START_MS, step_ms=200, speed=5000, lat=50.5, lon=-2.45):
    """Fixes due east at `speed` mm/s, as records for oao.gnss_frames (every fifth a 0x0AD4)."""
    metres_per_deg_lon = 6371008.8 * 3.141592653589793 / 180 * 0.6360782202777
    records = []
    for i in range(count):
        east_m = speed / 1000 * step_ms / 1000 * i
        records.append((0x0AD4 if i % 5 == 0 else 0x0AD5, round(lat * 1e7),
                        round((lon + east_m / metres_per_deg_lon) * 1e7), 1000, speed, 9_000_000,
                        start_ms + i * step_ms, 3, 18, 150, 800, 1200, 450000, 54))
    return records


def steady_records(rng, count, step_ms=200, gaps=True):
    """Runs back and forth (a turn every ~40 s) with a ramp to a fast stretch, noisy
    positions and speeds, some fixes that are filtered, and gaps in time."""
    records, lat, lon, t = [], 505_725_000.0, -24_575_000.0, START_MS
    heading = 45.0
    for n in range(count):
        speed = 3000 + 9000 * math.sin(math.pi * n / count) ** 4 + rng.randrange(-300, 300)
        if n % (40_000 // step_ms) == 0 and n:
            heading = (heading + 180 + rng.randrange(-20, 21)) % 360
        metres = speed * step_ms / 1e6
        lat += metres * math.cos(math.radians(heading)) / 0.011132 + rng.randrange(-30, 31)
        lon += metres * math.sin(math.radians(heading)) / 0.00707 + rng.randrange(-30, 31)
        gap = gaps and rng.random() < 0.002
        t += step_ms + (step_ms * rng.randrange(2, 20) if gap else 0)
        satellites = 3 if rng.random() < 0.005 else 12
        accuracy = 5000 if rng.random() < 0.005 else 150
        fix = 2 if rng.random() < 0.003 else 3
        if rng.random() < 0.002:        # a spike: the acceleration filter's
            speed += 6000
        records.append((0x0AD4, round(lat), round(lon), 0, max(round(speed), 0), round(heading * 1e5), t, fix,
                        satellites, accuracy, 800, 1200, 0, 54))
    return records


# --- a simulated fleet's config, and the stages run in this process ------------------------------

def fleet_config(fleet, folder, name="motion-server.yaml", **overrides):
    """The loaded config the fleet writes for itself into folder/name (jobs.sim's
    write_config: dotted keys or whole sections as overrides)."""
    return config_module.load(fleet.write_config(Path(folder) / name, **overrides))


STAGE_MODULES = {"detect": detect, "inspect": inspect, "download": download, "disconnect": disconnect,
                 "dashboard": dashboard, "replicate": replicate, "expire": expire}


def run_stages(cfg, *names):
    """Each stage once, in this process, as cron starts them: their exit statuses."""
    return [runner.run(cfg, name, STAGE_MODULES[name].step, once=True, stop=threading.Event()) for name in names]


def run_once(cfg, *names):
    """Each stage once, in this process, one after the other; each must end with exit status 0."""
    for name in names:
        assert run_stages(cfg, name) == [0], name


def run_logged(cfg, *names):
    """run_stages with the motion log set up in this process for the run, and closed after it."""
    setup_log(cfg, console=False)
    try:
        return run_stages(cfg, *names)
    finally:
        close_motion_log()


# --- alpha 500 by its plain definition (the reference the fast searches are held to) -----------

def plain_alpha(track):
    """Every end fix against every start before it: the fastest, then the first to end,
    then the first to start."""
    projection = _figures._projection(track.fixes["lat"])
    east, north = _figures._east(track.fixes["lon"], projection), _figures._north(track.fixes["lat"], projection)
    times, distance, best = track.times, track.distance, None
    for j in range(1, len(times)):
        i = np.arange(j)
        valid = ((distance[i] >= distance[j] - _figures.ALPHA_MAX) & (distance[i] <= distance[j] - _figures.ALPHA_MIN)
                 & ((east[i] - east[j]) ** 2 + (north[i] - north[j]) ** 2 <= _figures.ALPHA_RADIUS ** 2)
                 & (track.rejects[i] == track.rejects[j]))
        speeds = np.where(valid, (distance[j] - distance[i]) / np.maximum(times[j] - times[i], 1) * 1e6, 0.0)
        k = int(np.argmax(speeds))
        if speeds[k] > 0 and (best is None or speeds[k] > best["mm_s"]):
            best = {"mm_s": float(speeds[k]), "start_ms": int(times[k]), "end_ms": int(times[j])}
    return best
