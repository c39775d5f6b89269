"""The files the operator installs: crontab and cron.d lines that are loud when
something fails, systemd units that systemd-analyze accepts, a logrotate file
logrotate accepts.

The tests here need the real cron line, systemd-analyze and logrotate as subprocesses;
the others are in tests/unit/test_shipped_files.py.
"""

import getpass
import grp
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import REPO, STAGE_SERVICES, UNITS, config_file, schedule_lines

VENV_BIN = Path(sys.executable).parent          # where this venv's motion-server is


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


EXPOSURE_AT_MOST = 2.5   # "OK" in systemd-analyze's words; an unhardened unit scores 8 and more


@pytest.mark.parametrize("name", [n for n in UNITS if n.endswith(".service")])
def test_every_service_is_hardened_to_an_exposure_of_at_most_2_5(tmp_path, name):
    if not shutil.which("systemd-analyze"):
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is not installed (.ci/run installs it); the units must be scored in CI")
        pytest.skip("systemd-analyze not installed (Debian: systemd)")
    units = unit_copies(tmp_path)
    target = name.replace("@.", f"@{STAGE_SERVICES[0]}.")
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", f"./{target}"],
                          cwd=units, capture_output=True, text=True, timeout=120)
    if "--offline" in done.stderr and "unrecognized" in done.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd 250 and later)")
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout[-2000:] + done.stderr[-2000:]
    assert float(found.group(1)) <= EXPOSURE_AT_MOST, done.stdout


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


LOGROTATE = shutil.which("logrotate") or next((p for p in ("/usr/sbin/logrotate",) if os.path.exists(p)), None)


@pytest.fixture
def logrotate():
    if LOGROTATE is None:
        if os.environ.get("CI"):
            pytest.fail("logrotate is not installed (.ci/run installs it); the rotation tests must run in CI")
        pytest.skip("logrotate not installed (Debian: apt-get install logrotate)")
    return LOGROTATE


def test_logrotate_accepts_the_shipped_file_and_rotates_the_log_away(tmp_path, logrotate):
    config, log = logrotate_copy(tmp_path)
    state = tmp_path / "logrotate.state"
    debug = subprocess.run([logrotate, "--debug", "--state", str(state), str(config)],
                           capture_output=True, text=True, timeout=60)
    assert debug.returncode == 0 and "error" not in debug.stderr.lower(), debug.stderr
    assert f"considering log {log}" in debug.stderr
    forced = subprocess.run([logrotate, "--force", "--state", str(state), str(config)],
                            capture_output=True, text=True, timeout=60)
    assert forced.returncode == 0, forced.stderr
    rotated = [p.name for p in log.parent.iterdir() if p.name != log.name]
    assert len(rotated) == 1 and re.fullmatch(r"motion-server\.log\.\d{8}", rotated[0]), rotated
    assert log.exists() and log.stat().st_size == 0     # `create`: a new, empty log in its place


def test_a_log_rotated_by_the_shipped_file_is_expired_after_retention_days_and_not_before(tmp_path, logrotate):
    config, log = logrotate_copy(tmp_path)
    forced = subprocess.run([logrotate, "--force", "--state", str(tmp_path / "logrotate.state"), str(config)],
                            capture_output=True, text=True, timeout=60)
    assert forced.returncode == 0, forced.stderr
    [rotated] = [p for p in log.parent.iterdir() if p.name != log.name]
    event = config_file(tmp_path, paths={"spool": "spool", "log": str(log)}, retention={"days": 14})

    def expire():
        done = subprocess.run([sys.executable, "-m", "jobs", "--config", str(event), "expire", "--once"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    expire()
    assert rotated.exists()                              # 13 days and less: kept
    old = rotated.stat().st_mtime - 15 * 86400
    os.utime(rotated, (old, old))
    expire()
    assert not rotated.exists() and log.exists()         # past retention.days: gone; the live log stays
    assert f"expired {rotated}" in log.read_text()


# The units' restrictions a Python program could trip over, set by the kernel itself before anything
# is imported: NoNewPrivileges, MemoryDenyWriteExecute (PR_SET_MDWE, Linux 6.3) and the system-call
# filter (@system-service without @privileged; any other call fails with EPERM, as SystemCallErrorNumber says).
UNDER_THE_UNITS_SANDBOX = """
import ctypes, json, sys
allowed = json.loads(sys.argv.pop(1))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(77)
try:
    seccomp = ctypes.CDLL("libseccomp.so.2")
except OSError:
    sys.exit(76)
seccomp.seccomp_init.restype = ctypes.c_void_p
errno_eperm, allow = ctypes.c_uint32(0x00050000 | 1), ctypes.c_uint32(0x7FFF0000)
context = ctypes.c_void_p(seccomp.seccomp_init(errno_eperm))
for name in allowed:
    number = seccomp.seccomp_syscall_resolve_name(name.encode())
    if number >= 0:
        seccomp.seccomp_rule_add(context, allow, ctypes.c_int(number), ctypes.c_uint(0))
if seccomp.seccomp_load(context) != 0:
    sys.exit(78)
if sys.argv[1:] == ["--probe"]:   # ptrace of no process: ESRCH outside the filter, EPERM inside
    ptrace = seccomp.seccomp_syscall_resolve_name(b"ptrace")
    sys.exit(0 if libc.syscall(ptrace, 2, -1, 0, 0) == -1 and ctypes.get_errno() == 1 else 1)
from jobs.cli import main
sys.exit(main(sys.argv[1:]))
"""


def syscall_group(name):
    """The system calls of a systemd group such as @system-service, its groups expanded."""
    shown = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True,
                           check=True).stdout
    found = set()
    for word in (line.strip() for line in shown.splitlines()[1:]):
        if word and not word.startswith("#"):
            found |= syscall_group(word) if word.startswith("@") else {word}
    return found


def the_units_system_calls():
    filters = [line.split("=", 1)[1] for line in (REPO / "systemd/motion-server@.service").read_text().splitlines()
               if line.startswith("SystemCallFilter=")]
    assert filters == ["@system-service", "~@privileged"], filters    # what the sandbox below reproduces
    return sorted(syscall_group("@system-service") - syscall_group("@privileged"))


def test_every_stage_and_serve_work_in_the_units_sandbox(tmp_path):
    """With the units' system-call filter, no new privileges and no memory both writable and executable
    (a JIT, libffi closures and numpy are what they could break), every stage and the dashboard server
    still bring a fleet's tracks in and serve the page."""
    from jobs.spool import state
    from jobs.sim.fleet import Fleet, synthetic_fleet
    if not shutil.which("systemd-analyze"):
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is not installed (.ci/run installs it)")
        pytest.skip("systemd-analyze not installed (Debian: systemd)")
    allowed = json.dumps(the_units_system_calls())
    probe = subprocess.run([sys.executable, "-c", UNDER_THE_UNITS_SANDBOX, allowed, "--probe"], timeout=60)
    if probe.returncode == 76:
        pytest.skip("no libseccomp.so.2 (Debian: libseccomp2, which systemd needs)")
    if probe.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 and later)")
    assert probe.returncode == 0, "the sandbox does not filter system calls"
    with Fleet(synthetic_fleet(2, 2, 300_000), folder=tmp_path, timezone="Europe/London") as fleet:
        cfg_path = fleet.write_config(tmp_path / "motion-server.yaml",
                                      intervals={"detect": 0.3, "inspect": 0.2, "download": 0.2, "dashboard": 0.3})
        done = subprocess.run([sys.executable, "-c", UNDER_THE_UNITS_SANDBOX, allowed,
                               "--config", str(cfg_path), "run", "--for", "8"],
                              capture_output=True, text=True, timeout=120)
    if done.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 and later)")
    assert done.returncode == 0, done.stderr[-3000:]
    ledgers = [doc["tracks"] for doc in state.all_devices(tmp_path / "spool")]
    assert len(ledgers) == 2 and all(t["status"] == "verified" for ledger in ledgers for t in ledger.values())
    assert sum(len(ledger) for ledger in ledgers) == 4
    log = (tmp_path / "log/motion-server.log").read_text()
    assert "serve - serving" in log and "Traceback" not in log and (tmp_path / "html/index.html").is_file()
