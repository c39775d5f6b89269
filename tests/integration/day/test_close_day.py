"""A simulated day with a late device, closed, handed over and reopened, with a replica disk that goes away.

The issue's check, against the simulated fleet on loopback, each stage's --once
as cron runs them and every command through the CLI.
"""

import csv
import datetime as dt
import hashlib
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from jobs import cli, config, runner
from jobs.dashboard import pages
from jobs.spool import state
from jobs.track import naming
from jobs.roster import Roster
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from jobs.stages import dashboard, detect, download, inspect, replicate
from tests.builders import LONDON

pytestmark = pytest.mark.usefixtures("closes_motion_log")

TODAY = dt.datetime.now(LONDON).date()
KEY = f"{TODAY:%Y%m%d}"
LATE = 503


def today_at(hour):
    return dt.datetime.combine(TODAY, dt.time(hour), LONDON)


def run_once(cfg, *stages):
    modules = {"detect": detect, "inspect": inspect, "download": download, "replicate": replicate}
    return [runner.run(cfg, stage, modules[stage].step, once=True, stop=threading.Event()) for stage in stages]


def entrant_of(fleet, device):
    with open(fleet.roster_file, newline="", encoding="utf-8") as f:
        return next(row["Entrant ID"] for row in csv.DictReader(f) if row["Motion ID"] == str(device))


def sha256sum_c(folder):
    done = subprocess.run([shutil.which("sha256sum"), "--strict", "-c", "SHA256SUMS"], cwd=folder,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def day(tmp_path):
    one_day = {"Start Date": TODAY.isoformat(), "End Date": TODAY.isoformat()}
    specs = [DeviceSpec(id=device, entrant=one_day, arrive=0 if device != LATE else None,
                        tracks=[TrackSpec(start=today_at(10 + device % 10), size=250_000)])
             for device in (501, 502, LATE)]
    replica = tmp_path / "replica-disk" / "motion-replica"
    replica.mkdir(parents=True)
    with Fleet(specs, folder=tmp_path, timezone="Europe/London") as fleet:
        path = fleet.write_config(tmp_path / "motion-server.yaml", **{"paths.replica": str(replica)})
        yield fleet, config.load(path), path


def test_a_day_closed_after_a_mark_handed_over_reopened_by_a_late_device_and_closed_again(day, tmp_path, capsys):
    fleet, cfg, path = day
    when = TODAY.isoformat()
    assert run_once(cfg, "detect", "inspect", "download", "replicate") == [0, 0, 0, 0]
    late_entrant = entrant_of(fleet, LATE)

    assert cli.main(["--config", str(path), "close", when]) == 1
    assert f"{late_entrant} " in capsys.readouterr().out
    assert cli.main(["--config", str(path), "mark", when, late_entrant, "dns"]) == 0
    assert cli.main(["--config", str(path), "close", when]) == 0
    folder = Path(cfg.paths.tracks) / KEY
    assert sha256sum_c(folder).count(".oao: OK") == 2
    dest = tmp_path / "results-usb"
    dest.mkdir()
    assert cli.main(["--config", str(path), "handoff", when, str(dest)]) == 0
    assert sha256sum_c(dest / KEY).count(".oao: OK") == 2

    # The replica disk is unplugged, and the late device comes in: its download fails nothing.
    replica = Path(cfg.paths.replica)
    replica.rename(tmp_path / "unplugged")
    fleet.set_online(LATE, True)
    assert run_once(cfg, "detect", "inspect", "download", "replicate") == [0, 0, 0, 0]
    late = state.read(cfg.paths.spool, LATE)
    assert late["status"] == "completed"
    [track] = [t for t in late["tracks"].values() if t.get("day") == KEY]
    assert track["status"] == "verified" and (folder / track["name"]).exists()
    assert not replica.exists()

    capsys.readouterr()
    assert cli.main(["--config", str(path), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["days"][when]["text"].startswith("reopened: 1 file since the close at")
    dashboard.write(cfg, Path(cfg.paths.spool), Roster(path="none"), pages.Renderer())
    page = (Path(cfg.paths.html) / "index.html").read_text()
    assert "reopened: 1 file since the close at" in page and "Second copy" in page
    assert cli.main(["--config", str(path), "handoff", when, str(dest)]) == 1

    assert cli.main(["--config", str(path), "close", when]) == 0
    assert f"{track['name']}: OK" in sha256sum_c(folder)
    assert cli.main(["--config", str(path), "handoff", when, str(dest)]) == 0
    assert f"{track['name']}: OK" in sha256sum_c(dest / KEY)

    # The disk is back: every verified file is in the replica with the same sha256.
    (tmp_path / "unplugged").rename(replica)
    assert run_once(cfg, "replicate") == [0]
    verified = [t for device in (501, 502, LATE) for t in state.read(cfg.paths.spool, device)["tracks"].values()
                if t.get("status") == "verified"]
    assert len(verified) == 3
    for t in verified:
        assert sha(replica / naming.place(t)) == t["sha256"]
