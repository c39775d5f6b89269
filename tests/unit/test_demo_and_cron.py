"""The README's main command and the shipped crontab."""

import re
import shlex
import subprocess
import sys

import pytest

from jobs import cli
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def test_the_demo_ends_with_every_wanted_track_verified(tmp_path):
    done = subprocess.run([sys.executable, "-m", "jobs", "demo", "--folder", str(tmp_path / "demo"),
                           "--devices", "6", "--port", "0", "--rate", "2000000", "--late", "6", "--minutes", "2"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    verified = re.search(r"(\d+) of (\d+) wanted tracks verified", done.stdout)
    assert verified and verified.group(1) == verified.group(2) and int(verified.group(2)) >= 6
    for device in range(101, 107):
        assert re.search(rf"^\s+{device}\s+(completed|disconnected)\s", done.stdout, re.M), done.stdout
    assert re.search(r"^\s+106\s.*failed \d+x, last: .*connection closed", done.stdout, re.M)  # its story is told
    index = tmp_path / "demo" / "html" / "index.html"
    assert index.exists() and "106" in index.read_text()
    assert f"--config {tmp_path / 'demo' / 'motion-server.yaml'} status" in done.stdout
    # a second demo starts afresh in the same folder
    (tmp_path / "demo" / "leftover").write_text("x")
    again = subprocess.run([sys.executable, "-m", "jobs", "demo", "--folder", str(tmp_path / "demo"),
                            "--devices", "1", "--port", "0", "--rate", "5000000", "--late", "1", "--minutes", "1"],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert again.returncode == 0 and not (tmp_path / "demo" / "leftover").exists()


def test_the_demo_scenario_holds_what_real_devices_hold():
    from zoneinfo import ZoneInfo
    from jobs import demo
    devices = demo.scenario(8, 734_003, ZoneInfo("Europe/London"))
    tracks = [t for d in devices for t in d.tracks]
    this_year = devices[1].tracks[0].start.year
    assert [t.start.year for t in tracks if t.earlier_event] == [this_year - 1] * 3   # last year's event
    assert sum(not t.summary for t in tracks) == 1                                     # a log without a summary
    assert sum(t.damaged_at is not None for t in tracks) == 1                          # damaged on the device
    [spare] = [d for d in devices if not d.in_roster]                                  # no roster row names it
    assert spare.id == 109 and spare.tracks
    rates = [d.rate for d in devices]
    assert len(set(rates)) == len(rates) and all(0.5 * 2**20 <= r <= 1.3 * 2**20 + 1 for r in rates)
    # settled when done: this event's fast tracks on roster devices (the spare's only when configured)
    fast = sum(1 for d in devices if d.in_roster for t in d.tracks
               if (t.best500_knots >= 1 or not t.summary) and not t.earlier_event)
    assert demo._expected_tracks(devices, 1.0) == fast
    assert demo._expected_tracks(devices, 1.0, extra_devices=[spare.id]) == fast + 1


def test_the_demo_refuses_to_empty_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.txt").write_text("x")
    done = subprocess.run([sys.executable, "-m", "jobs", "demo", "--folder", str(tmp_path / "precious")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "not a demo folder" in done.stderr
    assert (tmp_path / "precious" / "thesis.txt").exists()


def crontab_lines():
    lines = (REPO / "crontab.example").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#") and not re.match(r"^\w+=", line)]


def test_every_crontab_line_parses_and_names_a_command_that_accepts_its_flags():
    lines = crontab_lines()
    stages = set()
    for line in lines:
        fields = line.split(None, 5)
        assert len(fields) == 6, line
        for field, (low, high) in zip(fields[:5], ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))):
            for part in field.split(","):
                value = part.split("/")[0]
                assert value == "*" or low <= int(value) <= high, (field, line)
        command = fields[5]
        assert command.startswith("cd $MOTION_DIR && motion-server "), line
        argv = shlex.split(command.split("&&", 1)[1].split("2>")[0])[1:]
        args = cli._parser().parse_args(argv)  # SystemExit if a flag or command is wrong
        assert args.config == "motion-server.yaml"
        stages.add(args.command)
    assert stages == set(cli.STAGES)


def test_the_crontab_path_finds_the_venv():
    text = (REPO / "crontab.example").read_text()
    assert re.search(r"^PATH=.*\.venv/bin", text, re.M)
