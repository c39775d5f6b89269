import atexit
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
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
