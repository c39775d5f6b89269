"""motion-server init: the configuration it writes is the code's defaults with their comments,
the shipped example is exactly that, and the operation files it writes run this folder."""

import argparse
import csv

import yaml

from jobs import cli, config, roster
from jobs.ops import init
from tests.builders import REPO


def run_init(folder, *options):
    parser = argparse.ArgumentParser()
    init.configure(parser)
    return init.main(None, parser.parse_args([str(folder), *options]))


def test_the_shipped_example_is_what_init_writes():
    shipped = (REPO / "motion-server.example.yaml").read_text()
    assert shipped == init.example_config(), (
        "motion-server.example.yaml differs from `motion-server init`'s configuration: "
        "regenerate it with `python -m jobs.ops.init > motion-server.example.yaml`")


def test_the_written_configuration_holds_every_default_and_the_roster_beside_it():
    written = yaml.safe_load(init.example_config())
    assert written["event"]["roster"] == init.ROSTER_FILE
    written["event"]["roster"] = config.DEFAULTS["event"]["roster"]
    assert written == config.DEFAULTS


def test_a_key_added_to_the_defaults_with_its_comment_is_written_with_it():
    source = '''
DEFAULTS = {
    "event": {
        "name": "x",  # after name
        # above the new key,
        # on two lines
        "new_key": {"a": [1, 2]},
        "list": [
            "a",  # inside a list: not a key
        ],
    },
    # above a section
    "paths": {"spool": "s"},
}
OTHER = {"not": "read"}
'''
    found = init.comments(source)
    assert found == {"event": ([], None), "event.name": ([], "after name"),
                     "event.new_key": (["above the new key,", "on two lines"], None), "event.new_key.a": ([], None),
                     "event.list": ([], None),
                     "paths": (["above a section"], None), "paths.spool": ([], None)}


def test_every_comment_of_the_defaults_is_read_from_config_py():
    notes = init.comments((REPO / "jobs" / "config.py").read_text())
    assert notes["threads.detect"][0][0].startswith("Look-ups and probes at once")
    assert notes["paths.spool"][1] == "queues, claims, state, cache, locks, trash"


def test_init_writes_a_configuration_and_an_empty_roster_that_load_and_never_replaces_them(tmp_path, capsys):
    folder = tmp_path / "event"
    assert run_init(folder) == 0
    assert (folder / "motion-server.yaml").read_text() == init.example_config()
    with open(folder / "motions.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [[*roster.COLUMNS, "Class"]]
    cfg = cli.load_checked(folder / "motion-server.yaml")
    assert cfg.event.roster == str(folder / "motions.csv") and roster.of(cfg).entries == []
    (folder / "motions.csv").write_text("edited\n")
    capsys.readouterr()
    assert run_init(folder) == 2
    assert f"{folder / 'motion-server.yaml'} exists; nothing written" in capsys.readouterr().err
    assert (folder / "motions.csv").read_text() == "edited\n"


def test_init_writes_the_operation_files_for_this_folder(tmp_path):
    folder = tmp_path / "event"
    assert run_init(folder, "--systemd", "--cron", "--logrotate") == 0
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert written == ["cron.d/motion-server", "crontab.example", "logrotate.d/motion-server",
                       "systemd/motion-server-expire.service", "systemd/motion-server-expire.timer",
                       "systemd/motion-server-serve.service", "systemd/motion-server.sysusers",
                       "systemd/motion-server.target", "systemd/motion-server@.service"]
    unit = (folder / "systemd/motion-server@.service").read_text()
    assert "/opt/motion-server" not in unit
    assert f"WorkingDirectory={folder}\n" in unit and f"--config {folder}/motion-server.yaml" in unit
    assert f"{folder}/spool/log/motion-server.log {{" in (folder / "logrotate.d/motion-server").read_text()
    assert not (folder / "motion-server.yaml").exists()


def test_every_kind_of_default_is_written_as_yaml_that_reads_back_the_same():
    values = [None, True, 3, 2.0, "5", "0.0.0.0:8080", "Speed event", [], ["10.10.10.10", 1203],
              [{"start": "10:00", "end": "16:00"}], ["yes", "null", ""]]
    for value in values:
        assert yaml.safe_load(f"key: {init._scalar(value)}")["key"] == value, value
