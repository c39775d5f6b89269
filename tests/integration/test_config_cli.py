"""Bad configuration gets one clear error naming the file and key, exit status 2.

The tests here run the command line in a subprocess;
the others are in tests/unit/test_config.py.
"""

import subprocess
import sys


def test_cli_exits_2_naming_the_key_before_any_work(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"paths:\n  spool: {tmp_path / 'spool'}\nthreads:\n  detect: many\n")
    done = subprocess.run([sys.executable, "-m", "jobs", "--config", str(bad), "status"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{bad}: threads.detect: found 'many', expected a whole number" in done.stderr
    assert not (tmp_path / "spool").exists()  # nothing was started


def test_cli_exits_2_on_a_broken_roster(tmp_path):
    roster = tmp_path / "motions.csv"
    roster.write_text("Entrant ID,Tally,Motion ID\n1,1,470\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"event:\n  roster: motions.csv\npaths:\n  spool: {tmp_path / 'spool'}\n")
    done = subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg), "status"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{roster}: line 1: missing column 'Start Date'" in done.stderr


def test_help_and_status_work_on_an_empty_spool(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"paths:\n  spool: {tmp_path / 'spool'}\n")
    shown = subprocess.run([sys.executable, "-m", "jobs", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "status" in shown.stdout
    status = subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg), "status"],
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "inspect      0 waiting" in status.stdout
    assert not (tmp_path / "spool").exists()  # looking changes nothing
