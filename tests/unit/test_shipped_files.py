"""The files the operator installs: crontab and cron.d lines that are loud when
something fails, systemd units that systemd-analyze accepts, a logrotate file
logrotate accepts.

Those that need sockets, processes or the simulated fleet are in
tests/integration/test_shipped_files_run.py.
"""

import re
from pathlib import Path
import shlex

import pytest

from jobs import cli
from tests.builders import REPO, STAGE_SERVICES, UNITS, schedule_lines


@pytest.mark.parametrize("path, fields", [("crontab.example", 6), ("cron.d/motion-server", 7)])
def test_cron_lines_keep_stderr_for_cron_to_mail_and_cover_every_stage(path, fields):
    text = (REPO / path).read_text()
    assert "2>" not in text and "/dev/null" not in text
    stages = set()
    for parts in schedule_lines(REPO / path, fields):
        assert len(parts) == fields, parts
        if fields == 7:
            assert parts[5] == "motion"                # /etc/cron.d names the user of each line
        argv = shlex.split(parts[-1].split("&&", 1)[1])[1:]
        stages.add(cli._parser().parse_args(argv).command)
    assert stages == set(cli.STAGES)


def unit(name):
    values = {}
    for line in (REPO / "systemd" / name).read_text().splitlines():
        key, eq, value = line.partition("=")
        if eq and not line.startswith("#"):
            values.setdefault(key, []).append(value)
    return values


def test_stages_are_restarted_services_of_their_own_loop_and_only_expire_has_a_timer():
    stage = unit("motion-server@.service")
    assert stage["Restart"] == ["always"] and stage["RestartSec"]
    assert "--once" not in stage["ExecStart"][0] and "--for" not in stage["ExecStart"][0]
    assert [n for n in UNITS if n.endswith(".timer")] == ["motion-server-expire.timer"]
    wanted = " ".join(unit("motion-server.target")["Wants"])
    assert all(f"motion-server@{s}.service" in wanted for s in STAGE_SERVICES)


@pytest.mark.parametrize("name", [n for n in UNITS if n.endswith(".service")])
def test_every_service_runs_as_the_motion_user_with_the_least_it_needs(name):
    service = unit(name)
    assert service["User"] == ["motion"]
    assert service["ProtectSystem"] == ["strict"] and service["ReadWritePaths"]
    assert service["ProtectHome"] == ["true"] and service["PrivateTmp"] == ["true"]
    assert service["NoNewPrivileges"] == ["true"]
    assert service["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"] and service["LimitNOFILE"]
    writable = " ".join(service["ReadWritePaths"])
    assert "/opt/motion-server/spool/log" in writable


def test_the_sysusers_file_creates_the_motion_user():
    [entry] = [line.split() for line in (REPO / "systemd/motion-server.sysusers").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert entry[:3] == ["u", "motion", "-"]


def test_the_readme_and_docs_name_only_files_the_repository_has():
    import subprocess
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True,
                             check=True).stdout.split()
    names = set(tracked) | {Path(t).name for t in tracked}
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        for target in re.findall(r"\]\(([^)#:]+)\)", text):                    # markdown links
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}, not in the repository"
        for named in re.findall(r"`([\w./-]+\.md)`", text):                      # a document named
            assert named in names or named.lstrip("./") in names, f"{doc.name} names {named}, not in the repository"
