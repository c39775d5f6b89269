"""Bad operator input: one clear error naming the file, line and field before any work starts;
folders that cannot be written and a disk that fills up stop the job with a clear line and a
non-zero exit, leave no partial track, and the next run recovers.

tests/unit/test_config.py and tests/unit/test_roster.py check each mistake where it is parsed; here the
mistakes go through the command line a cron job runs. Exit status 2: the configuration, the
roster or the spool is unusable and nothing was done; 1: a run met a local error (disk full,
tracks folder not writable): the device being fetched is failed with that cause, which the
dashboard shows, and is found again after its backoff, as after any failure.

These run in this process on files only; the tests that run the command, the fleet or a full disk
are in tests/integration/test_operator_input.py.
"""

import json

import pytest

from jobs import config
from tests.builders import GOOD_ROW, ENTRY_HEADER as HEADER, ROSTER_MISTAKES, config_with_roster, run_cli


# cli.main sets up the log in this process (file and stderr); later tests must not write to them.
pytestmark = pytest.mark.usefixtures("closes_motion_log")


@pytest.mark.parametrize("stage", ["detect", "download"])
@pytest.mark.parametrize("mistake", ROSTER_MISTAKES)
def test_a_roster_mistake_stops_a_stage_with_one_line_naming_file_line_and_column(tmp_path, capsys, mistake, stage):
    text, where = ROSTER_MISTAKES[mistake]
    cfg_path = config_with_roster(tmp_path, text)
    status, err = run_cli(capsys, "--config", cfg_path, stage, "--once")
    assert status == 2
    assert len(err) == 1 and err[0].startswith(f"motion-server: {tmp_path / 'motions.csv'}: {where}"), err
    assert not (tmp_path / "spool").exists() and not (tmp_path / "log").exists()  # nothing was started


# --- the configuration: every key, given the wrong type, is named -----------------------------

def wrong_value(default):
    """A YAML value of the wrong type for a key whose default is `default`."""
    if isinstance(default, bool):
        return "sometimes"
    if isinstance(default, (int, float)):
        return "many"
    if isinstance(default, str):
        return [default]
    if isinstance(default, list):
        return "10.10.10.10"
    if isinstance(default, dict):
        return 5
    return [5]              # optional paths: a string (a list of them for the roster) or nothing


def every_key(tree=config.DEFAULTS, where=""):
    for key, default in tree.items():
        name = f"{where}.{key}" if where else key
        if isinstance(default, dict) and name != "checks.settings":
            yield from every_key(default, name)
        else:
            yield name, default


@pytest.mark.parametrize("key, default", list(every_key()), ids=[k for k, _ in every_key()])
def test_every_key_of_the_wrong_type_exits_2_with_one_line_naming_file_and_key(tmp_path, capsys, key, default):
    section, name = key.split(".")
    path = tmp_path / "motion-server.yaml"
    path.write_text(json.dumps({"paths": {"spool": str(tmp_path / "spool"), "log": str(tmp_path / "log" / "m.log")},
                                section: {name: wrong_value(default)}}))
    status, err = run_cli(capsys, "--config", path, "detect", "--once")
    assert status == 2
    assert len(err) == 1 and err[0].startswith(f"motion-server: {path}: {key}: found "), err
    assert "expected" in err[0]
    assert not (tmp_path / "spool").exists()


def test_a_section_of_the_wrong_type_and_an_unknown_key_are_named(tmp_path, capsys):
    path = tmp_path / "motion-server.yaml"
    for text, named in (("network: 80\n", "network: found 80, expected a mapping"),
                        ("network:\n  timeout: 5\n", "network.timeout: unknown key"),
                        ("paths:\n  spool: [a]\n", "paths.spool: found ['a'], expected a string")):
        path.write_text(text)
        status, err = run_cli(capsys, "--config", path, "download", "--once")
        assert status == 2 and len(err) == 1 and f"{path}: {named}" in err[0], err


# --- folders that cannot be written (root ignores modes: a path through a regular file) ----------

def test_a_spool_that_cannot_be_created_stops_the_stage_with_one_clear_line(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool's parent should be\n")
    cfg_path = config_with_roster(tmp_path, HEADER + GOOD_ROW, spool=f"{blocker}/spool")
    for stage in ("detect", "inspect", "download", "disconnect", "dashboard"):
        status, err = run_cli(capsys, "--config", cfg_path, stage, "--once")
        assert status == 2, stage
        assert len(err) == 1 and f"cannot use the spool {blocker}/spool" in err[0] and "Not a directory" in err[0], err
    assert "Traceback" not in (tmp_path / "log" / "motion-server.log").read_text()
