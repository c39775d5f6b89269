"""The README's main command and the shipped crontab.

The tests here need a whole demo run: fleet, every stage, to the last verified track;
the others are in tests/unit/ops/test_demo_and_cron.py.
"""

import json
import re
import socket
import subprocess
import sys

import pytest


pytestmark = pytest.mark.slow


def test_the_demo_ends_with_every_wanted_track_verified(tmp_path):
    done = subprocess.run([sys.executable, "-m", "jobs", "demo", "--folder", str(tmp_path / "demo"),
                           "--devices", "6", "--port", "0", "--rate", "2000000", "--late", "6", "--minutes", "2",
                           "--dashboard-port", "0"],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert re.search(r"^Dashboard: http://127\.0\.0\.1:\d+/ ", done.stdout, re.M), done.stdout   # a free port
    verified = re.search(r"(\d+) of (\d+) wanted tracks verified", done.stdout)
    assert verified and verified.group(1) == verified.group(2) and int(verified.group(2)) >= 6
    for device in range(101, 107):
        assert re.search(rf"^\s+{device}\s+(completed|disconnected)\s", done.stdout, re.M), done.stdout
    assert re.search(r"^\s+106\s.*failed \d+x, last: .*connection closed", done.stdout, re.M)  # its story is told
    index = tmp_path / "demo" / "html" / "index.html"
    assert index.exists() and "106" in index.read_text()
    # The one track with a minute of bad data in the session (device 106) is flagged on its tile, and only it.
    status = json.loads((tmp_path / "demo" / "html" / "status.json").read_text())
    suspect = [device for device, entry in status["devices"].items() if any(t["suspect"] for t in entry["tracks"])]
    assert suspect == ["106"], suspect
    # Two devices drive home at 52 kn after the session: the board ranks inside it only.
    best500 = status["fastest"]["best500"]
    assert best500["trusted"] and best500["boards"][0]["rows"]
    assert max(row["knots"] for row in best500["boards"][0]["rows"]) < 40
    assert all(row["window"] == "09:00-14:30" for row in best500["boards"][0]["rows"])
    assert "suspect data" in index.read_text()
    assert f"--config {tmp_path / 'demo' / 'motion-server.yaml'} status" in done.stdout
    # a second demo starts afresh in the same folder
    (tmp_path / "demo" / "leftover").write_text("x")
    with socket.socket() as probe:                      # a free port for the dashboard, asked for by number
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    again = subprocess.run([sys.executable, "-m", "jobs", "demo", "--folder", str(tmp_path / "demo"),
                            "--devices", "1", "--port", "0", "--rate", "5000000", "--late", "1", "--minutes", "1",
                            "--dashboard-port", str(port)],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert again.returncode == 0 and not (tmp_path / "demo" / "leftover").exists()
    assert f"Dashboard: http://127.0.0.1:{port}/" in again.stdout
