"""What the operator gets from the command line: a version, exit statuses in
--help, output that survives a closed pipe, the configuration found where they
expect it, and failures that reach the log and stderr instead of vanishing.

The tests that need no socket, process or fleet are in tests/unit/test_cli_loud_in_process.py.
"""

import os
import subprocess
import sys

import pytest

from jobs import config
from jobs.spool import locks
from tests.builders import write_event


# Tests that set up the log in this process leave no handler behind.
pytestmark = pytest.mark.usefixtures("closes_motion_log")


def motion_server(*argv, **kwargs):
    return subprocess.run([sys.executable, "-m", "jobs", *argv], capture_output=True, text=True, timeout=60,
                          **kwargs)


def test_version_names_the_installed_release():
    done = motion_server("--version")
    assert done.returncode == 0 and done.stdout.strip().startswith("motion-server 0.")


def test_help_lists_every_exit_status():
    shown = motion_server("--help").stdout
    for status, words in ((0, "done"), (1, "work failed"), (2, "usage or configuration"), (3, "internal error")):
        assert f"  {status}  {words}" in shown


def test_status_json_into_a_closed_pipe_ends_quietly(tmp_path):
    cfg_path = write_event(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)                                  # `| head` that has already gone
    done = subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg_path), "status", "--json"],
                          stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    os.close(write_end)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def env_without_config(**more):
    return {k: v for k, v in os.environ.items() if k != config.ENV_FILE} | more


@pytest.mark.parametrize("command", [["detect", "--once"], ["expire", "--once"], ["run", "--for", "1"], ["status"],
                                     ["report"], ["check"]])
def test_with_no_configuration_found_a_command_exits_2_saying_where_it_looked_and_does_nothing(tmp_path, command):
    if config.SYSTEM_FILE.exists():
        pytest.skip(f"{config.SYSTEM_FILE} exists on this machine")
    done = motion_server(*command, cwd=tmp_path, env=env_without_config())
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert str(tmp_path / "motion-server.yaml") in line and str(config.SYSTEM_FILE) in line
    assert "motion-server init" in line and "--defaults" in line
    assert list(tmp_path.iterdir()) == []                # no ./spool made in a stray folder


def test_defaults_runs_on_the_built_in_defaults_and_sim_needs_no_configuration(tmp_path):
    if config.SYSTEM_FILE.exists():
        pytest.skip(f"{config.SYSTEM_FILE} exists on this machine")
    done = motion_server("--defaults", "status", cwd=tmp_path, env=env_without_config())
    assert done.returncode == 0 and done.stderr == "" and str(tmp_path / "spool") in done.stdout
    stage = motion_server("dashboard", "--once", "--defaults", cwd=tmp_path, env=env_without_config())
    assert stage.returncode == 0 and (tmp_path / "spool/html/index.html").is_file(), stage.stderr
    sim = motion_server("sim", "--devices", "1", "--port", "0", "--duration", "0.5", "--folder", "fleet",
                        cwd=tmp_path, env=env_without_config())
    assert sim.returncode == 0 and "no configuration" not in sim.stderr, sim.stderr
    both = motion_server("--defaults", "--config", "x.yaml", "status", cwd=tmp_path, env=env_without_config())
    assert both.returncode == 2 and "--config and --defaults" in both.stderr


def test_a_configuration_named_by_the_environment_is_found(tmp_path):
    found = motion_server("status", cwd=tmp_path, env=env_without_config(MOTION_SERVER_CONFIG=str(
        write_event(tmp_path / "event"))))
    assert found.returncode == 0 and found.stderr == ""
    assert str(tmp_path / "event" / "spool") in found.stdout


def test_a_mistake_found_after_the_yaml_parsed_is_logged_where_the_config_puts_the_log(tmp_path):
    (tmp_path / "logs").mkdir()
    path = tmp_path / "motion-server.yaml"
    path.write_text(f"paths: {{log: logs/m.log}}\nthreads: {{detect: many}}\n")
    done = motion_server("--config", str(path), "detect", "--once")
    assert done.returncode == 2
    assert "threads.detect: found 'many'" in (tmp_path / "logs" / "m.log").read_text()


def test_a_config_mistake_creates_no_folder_for_its_log(tmp_path):
    path = tmp_path / "motion-server.yaml"
    path.write_text("threads: {detect: many}\n")
    assert motion_server("--config", str(path), "detect", "--once").returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["motion-server.yaml"]


def run_dashboard_once(cfg_path, stderr):
    return subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg_path), "dashboard", "--once"],
                          stdout=subprocess.DEVNULL, stderr=stderr, timeout=60).returncode


def read_all(fd):
    shown = b""
    while True:
        try:
            piece = os.read(fd, 4096)
        except OSError:                                 # EIO: the terminal's other side is closed
            return shown
        if not piece:
            return shown
        shown += piece


def test_a_stage_prints_its_log_lines_on_a_terminal_and_only_errors_elsewhere(tmp_path):
    cfg_path = write_event(tmp_path)
    # Another dashboard run holds the stage lock: this one logs that (INFO) and exits.
    held = locks.take(tmp_path / "spool" / "locks" / "stage-dashboard.lock", f"{os.getpid()} dashboard")
    try:
        into_pipe = subprocess.run([sys.executable, "-m", "jobs", "--config", str(cfg_path), "dashboard", "--once"],
                                   capture_output=True, text=True, timeout=60)
        assert into_pipe.returncode == 0 and into_pipe.stderr == ""
        controller, terminal = os.openpty()
        try:
            assert run_dashboard_once(cfg_path, terminal) == 0
            os.close(terminal)
            shown = read_all(controller)
        finally:
            os.close(controller)
    finally:
        locks.release(held)
    assert b"INFO dashboard - another dashboard run holds the stage lock" in shown, shown
    logged = (tmp_path / "log" / "motion-server.log").read_text()
    assert logged.count("another dashboard run holds the stage lock") == 2


@pytest.mark.parametrize("command", [["run", "--for", "-1"], ["detect", "--for", "-1"], ["run", "--for", "nan"]])
def test_a_negative_duration_is_a_usage_error_that_starts_nothing(tmp_path, command):
    cfg_path = write_event(tmp_path)
    done = motion_server("--config", str(cfg_path), *command, cwd=tmp_path)
    assert done.returncode == 2 and "expected seconds, 0 or more" in done.stderr
    assert not (tmp_path / "spool").exists()


def test_verify_on_a_new_event_leaves_no_log_folder_behind(tmp_path):
    cfg_path = write_event(tmp_path)
    done = motion_server("--config", str(cfg_path), "verify", cwd=tmp_path)
    assert done.returncode == 0 and "0 track(s) checked" in done.stdout, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["motion-server.yaml"]


def test_check_on_an_ascii_terminal_shows_ascii_marks_and_escapes_the_rest(tmp_path):
    cfg_path = write_event(tmp_path, name="Semaine de vitesse à Leucate")
    done = motion_server("--config", str(cfg_path), "check", cwd=tmp_path,
                         env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.startswith("ok configuration") and "\\xe0 Leucate" in done.stdout
    assert "-> " in done.stdout and "to look at (!!)" in done.stdout
