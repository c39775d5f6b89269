"""What the operator gets from the command line: a version, exit statuses in
--help, output that survives a closed pipe, the configuration found where they
expect it, and failures that reach the log and stderr instead of vanishing.

These run in this process on files only; the tests that run the command in a subprocess
are in tests/integration/test_cli_loud.py.
"""

import threading

import pytest

from jobs import cli, config, runner
from tests.builders import write_event


# Tests that set up the log in this process leave no handler behind.
pytestmark = pytest.mark.usefixtures("closes_motion_log")


def test_config_is_found_through_option_then_environment_then_working_directory(tmp_path, monkeypatch):
    here, chosen, given = write_event(tmp_path / "here"), write_event(tmp_path / "env"), write_event(tmp_path / "opt")
    monkeypatch.delenv(config.ENV_FILE, raising=False)
    assert config.find(None, cwd=here.parent) == here
    monkeypatch.setenv(config.ENV_FILE, str(chosen))
    assert config.find(None, cwd=here.parent) == chosen
    assert config.find(given, cwd=here.parent) == given
    monkeypatch.setenv(config.ENV_FILE, "")             # set but empty: as if unset
    assert config.find(None, cwd=here.parent) == here


def test_an_exception_in_a_step_is_logged_with_its_traceback_and_the_loop_goes_on(tmp_path):
    cfg = config.load(write_event(tmp_path))
    from jobs import log
    log.setup(cfg, console=False)
    calls = []

    def step(ctx):
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("a bug")
        return False

    status = runner.run(cfg, "detect", step, for_seconds=0.5, stop=threading.Event(), interval=0.05)
    assert status == runner.INTERNAL_ERROR == 3
    assert len(calls) > 1                               # the loop went on after the exception
    lines = (tmp_path / "log" / "motion-server.log").read_text().splitlines()
    [crash] = [line for line in lines if " CRITICAL " in line]
    assert "detect - unexpected error in a step (a bug)" in crash
    assert "Traceback (most recent call last):" in crash and "KeyError: 'a bug'" in crash


def test_an_uncaught_exception_exits_3_with_the_traceback_on_stderr(tmp_path, monkeypatch, capsys):
    def broken(cfg, args):
        raise RuntimeError("status broke")
    import jobs.ops.status
    monkeypatch.setattr(jobs.ops.status, "main", broken)
    assert cli.main(["--config", str(write_event(tmp_path)), "status"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: status broke" in err


@pytest.mark.parametrize("argv, command", [
    (["--config", "detect", "report", "--csv"], "report"),   # a config file named like a stage
    (["--config=c.yaml", "detect", "--once"], "detect"),
    (["--conf", "c.yaml", "status", "--json"], "status"),       # argparse's abbreviation
    (["status", "--json"], "status"),
    (["--version"], None),
    (["-h", "report"], None),                                   # the main help: every command
    (["report", "-h"], "report"),
    ([], None),
])
def test_the_command_is_found_before_the_parser_is_built(argv, command):
    assert cli._command_in(argv) == command
