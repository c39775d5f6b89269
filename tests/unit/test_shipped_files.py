"""The files the operator installs: crontab and cron.d lines that are loud when
something fails, systemd units that systemd-analyze accepts, a logrotate file
logrotate accepts."""

import getpass
import grp
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import cli
from tests.conftest import REPO

VENV_BIN = Path(sys.executable).parent          # where this venv's motion-server is
UNITS = sorted(p.name for p in (REPO / "systemd").iterdir() if p.suffix in (".service", ".timer", ".target"))
STAGE_SERVICES = ("detect", "inspect", "download", "disconnect", "dashboard")


def schedule_lines(path, fields):
    lines = [line for line in path.read_text().splitlines()
             if line.strip() and not line.startswith("#") and not re.match(r"^\w+=", line)]
    return [line.split(None, fields - 1) for line in lines]


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


def test_a_config_typo_under_the_shipped_crontab_reaches_the_log_and_stderr(tmp_path):
    event = tmp_path / "event"
    (event / "spool" / "log").mkdir(parents=True)      # the event ran before the typo
    (event / "motion-server.yaml").write_text("event:\n  name: Speed week\nthreads:\n  detect: [8\n")
    [parts] = [p for p in schedule_lines(REPO / "crontab.example", 6) if " detect " in p[5]]
    # as cron runs it: sh -c, its variables, no terminal anywhere
    env = {"MOTION_DIR": str(event), "PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(["/bin/sh", "-c", parts[5]], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    [mailed] = done.stderr.splitlines()
    assert "motion-server.yaml: line 5, column 1: not valid YAML" in mailed
    [logged] = (event / "spool/log/motion-server.log").read_text().splitlines()
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR detect - configuration: .*motion-server.yaml: "
                    r"line 5, column 1: not valid YAML.*; nothing done$", logged), logged


def unit_copies(tmp_path):
    """The units with /opt/motion-server pointing at an event folder whose venv exists
    (verify checks that ExecStart's program is there), and every stage's instance."""
    event = tmp_path / "event"
    (event / ".venv").mkdir(parents=True)
    (event / ".venv" / "bin").symlink_to(VENV_BIN)
    units = tmp_path / "units"
    units.mkdir()
    for name in UNITS:
        (units / name).write_text((REPO / "systemd" / name).read_text().replace("/opt/motion-server", str(event)))
    for stage in STAGE_SERVICES:
        (units / f"motion-server@{stage}.service").symlink_to("motion-server@.service")
    return units


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed (Debian: systemd)")
def test_systemd_analyze_verify_accepts_every_unit_without_a_word(tmp_path):
    units = unit_copies(tmp_path)
    names = [n for n in UNITS if "@." not in n] + [f"motion-server@{s}.service" for s in STAGE_SERVICES]
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *[f"./{n}" for n in names]], cwd=units,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


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


def logrotate_copy(tmp_path):
    """The shipped file for a log under tmp_path, rotated as the user running the test."""
    log = tmp_path / "log" / "motion-server.log"
    log.parent.mkdir()
    log.write_text("2026-07-16 13:05:12 INFO detect 470 connected at 10.0.0.23\n")
    user, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    text = (REPO / "logrotate.d/motion-server").read_text()
    assert "copytruncate" not in re.sub(r"#.*", "", text)   # the log reopens a moved file
    text = text.replace("/opt/motion-server/spool/log/motion-server.log", str(log))
    text = text.replace("motion motion", f"{user} {group}")
    config = tmp_path / "motion-server.logrotate"
    config.write_text(text)
    config.chmod(0o644)
    return config, log


@pytest.mark.skipif(not shutil.which("logrotate"), reason="logrotate not installed (Debian: logrotate)")
def test_logrotate_accepts_the_shipped_file_and_rotates_the_log_away(tmp_path):
    config, log = logrotate_copy(tmp_path)
    state = tmp_path / "logrotate.state"
    debug = subprocess.run(["logrotate", "--debug", "--state", str(state), str(config)],
                           capture_output=True, text=True, timeout=60)
    assert debug.returncode == 0 and "error" not in debug.stderr.lower(), debug.stderr
    assert f"considering log {log}" in debug.stderr
    forced = subprocess.run(["logrotate", "--force", "--state", str(state), str(config)],
                            capture_output=True, text=True, timeout=60)
    assert forced.returncode == 0, forced.stderr
    rotated = [p.name for p in log.parent.iterdir() if p.name != log.name]
    assert len(rotated) == 1 and rotated[0].startswith("motion-server.log-")
    assert log.exists() and log.stat().st_size == 0     # `create`: a new, empty log in its place
