"""The README's main command and the shipped crontab.

The tests here need the demo command in a subprocess;
the others are in tests/unit/ops/test_demo_and_cron.py.
"""

import subprocess
import sys

import pytest


pytestmark = pytest.mark.slow


def test_the_demo_refuses_to_empty_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.txt").write_text("x")
    done = subprocess.run([sys.executable, "-m", "jobs", "demo", "--folder", str(tmp_path / "precious")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "not a demo folder" in done.stderr
    assert (tmp_path / "precious" / "thesis.txt").exists()
