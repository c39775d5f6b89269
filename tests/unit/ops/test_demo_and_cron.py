"""The README's main command and the shipped crontab.

Those that need sockets, processes or the simulated fleet are in
tests/integration/ops/test_demo_folder.py and tests/end_to_end/test_demo.py.
"""

import re
import shlex

import pytest

from jobs import cli
from tests.builders import REPO, config

pytestmark = pytest.mark.slow


def test_the_demo_scenario_holds_what_real_devices_hold():
    from zoneinfo import ZoneInfo
    from jobs.ops import demo
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


def test_the_demo_table_gives_sizes_in_the_dashboards_unit(tmp_path):
    from jobs import units
    from jobs.ops import demo
    from jobs.spool import state
    from jobs.sim.fleet import DeviceSpec
    cfg = config(tmp_path, "c.yaml", paths={"spool": "spool"})
    with state.update(cfg.paths.spool, 101) as doc:
        doc["status"] = "completed"
        doc["tracks"]["/logs/a.oao"] = {"status": "verified", "size": 2_500_000}
    table = demo.summary(cfg, [DeviceSpec(id=101, tracks=[])])
    header, device, total = table.splitlines()
    assert header.split()[3] == "MB" and device.split()[4] == "2.5" and total.split()[-1] == "2.5"   # "1 verified"
    assert units.size_text(2_500_000) == "2.5 MB"                     # as the dashboard shows it
