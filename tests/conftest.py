import atexit
import datetime as dt
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
REAL_FIXTURES = SHARED / "fixtures"
COMMITTED = Path(__file__).resolve().parent / "fixtures"
UTC = dt.timezone.utc

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


@pytest.fixture(scope="session")
def fixtures():
    """The simulator-made fixture folder (see fixture_folder)."""
    return fixture_folder()


@pytest.fixture(scope="session")
def real_fixtures():
    """../shared/fixtures (real recorded tracks) when it is beside the checkout.

    A clone alone skips the tests that need it; CI has it, so there a missing
    folder is a failure, never a quiet skip.
    """
    if not (REAL_FIXTURES / "oao").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: real recorded tracks expected in {REAL_FIXTURES}")
        pytest.skip(f"real recorded tracks not here ({REAL_FIXTURES} is beside a CI checkout only)")
    return REAL_FIXTURES


@pytest.fixture
def motion_server():
    """The command line as cron runs it: this venv's motion-server."""
    return [sys.executable, "-m", "jobs"]


def write_config(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def env_no_proxy(monkeypatch):
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
    return os.environ


# --- shared helpers: waiting, and the motion logger's lines -----------------------------

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


@pytest.fixture
def motion_log(caplog, monkeypatch):
    """caplog holding every line of the motion logger (the stages' log), once each,
    DEBUG and up, whatever the logging set-up of earlier tests (after log.setup
    the logger does not propagate, so caplog alone would see nothing)."""
    logger = logging.getLogger("motion")
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="motion")
    yield caplog
    logger.removeHandler(caplog.handler)


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


@pytest.fixture
def closes_motion_log():
    """For tests that set up the log in this process (cli.main, runner.run): they
    leave no handler behind for later tests to write to
    (pytestmark = pytest.mark.usefixtures("closes_motion_log"))."""
    yield
    close_motion_log()
