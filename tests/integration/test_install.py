"""Installing as the results team does: bin/setup from a wheel folder with the
network unreachable, a set-up that fails half-way, and the wheel installed
without the source tree rendering and serving the dashboard."""

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from jobs import shipped
from tests.builders import CHROMIUM, REPO

CI = os.environ.get("CI") == "true"
BASE_PYTHON = str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}")
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
# pip reads no configuration; a proxy on a closed loopback port catches any
# attempt to reach the network that --no-index would not have stopped.
CLOSED = "http://127.0.0.1:9"
OFFLINE_ENV = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "PIP_CONFIG_FILE": os.devnull,
               "PYTHON": BASE_PYTHON, "http_proxy": CLOSED, "https_proxy": CLOSED,
               "HTTP_PROXY": CLOSED, "HTTPS_PROXY": CLOSED}


def _no_network_prefix():
    """`unshare -rn`: a network namespace with only a down loopback, where the kernel allows it."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-rn"]
    return []


@pytest.fixture(scope="module")
def wheel_folder(tmp_path_factory):
    """What `bin/fetch-wheels DIR` puts in DIR at home, with the network."""
    folder = tmp_path_factory.mktemp("wheels")
    done = subprocess.run([str(REPO / "bin" / "fetch-wheels"), str(folder)], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        if CI:
            pytest.fail(f"bin/fetch-wheels failed in CI: {done.stderr[-2000:]}")
        pytest.skip("no package index reachable to fill a wheel folder (bin/fetch-wheels failed)")
    return folder


def source_copy(tmp_path):
    """The project's tracked files, as a fresh clone has them (no .venv)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    copy = tmp_path / "motion-server"
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def test_setup_from_a_wheel_folder_installs_the_locked_versions_with_no_network(tmp_path, wheel_folder):
    copy = source_copy(tmp_path)
    (copy / ".venv" / "bin").mkdir(parents=True)       # what a set-up killed half-way left
    done = subprocess.run(_no_network_prefix() + ["bin/setup", "--wheels", str(wheel_folder)], cwd=copy,
                          env=OFFLINE_ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "removing the .venv a failed set-up left" in done.stderr
    runtime = pins(copy / "requirements.lock")
    assert frozen(copy) == runtime                       # the runtime only: no pytest on the event laptop
    version = subprocess.run([str(copy / ".venv/bin/motion-server"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("motion-server ")
    tested = subprocess.run(_no_network_prefix() + ["bin/test", "-q", "-p", "no:cacheprovider",
                                                    "tests/unit/ops/test_init.py"], cwd=copy,
                            env={**OFFLINE_ENV, "MOTION_WHEELS": str(wheel_folder)}, capture_output=True, text=True,
                            timeout=600)
    assert tested.returncode == 0, tested.stdout[-2000:] + tested.stderr[-2000:]
    assert frozen(copy) == sorted(runtime + pins(copy / "requirements-test.lock"))


def pins(lock):
    """name==version of each package a lock file pins (setuptools aside: the venv brings its own)."""
    return sorted(line.split()[0].lower() for line in lock.read_text().splitlines()
                  if "==" in line and not line.startswith(("#", " ", "setuptools")))


def frozen(copy):
    listed = subprocess.run([str(copy / ".venv/bin/python"), "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True, env=OFFLINE_ENV).stdout.lower().split()
    return sorted(p for p in listed if not p.startswith("setuptools"))


def test_a_python_without_venv_gets_one_line_naming_the_debian_package_and_no_venv(tmp_path):
    copy = source_copy(tmp_path)
    # Debian's python3.X without python3.X-venv: ensurepip cannot be used
    shadow = tmp_path / "shadow" / "ensurepip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('ensurepip is disabled in Debian')\n")
    done = subprocess.run(["bin/setup"], cwd=copy, env={**OFFLINE_ENV, "PYTHONPATH": str(shadow.parent)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert f"apt-get install python{VERSION}-venv" in done.stderr
    assert not (copy / ".venv").exists()


def test_the_wheel_installed_without_the_source_tree_renders_and_serves_the_dashboard(tmp_path, wheel_folder):
    copy = source_copy(tmp_path)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(dist), str(copy)], check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-c", "from setuptools import build_meta; build_meta.build_sdist('sdist')"],
                   cwd=copy, check=True, capture_output=True, timeout=300)
    [sdist] = (copy / "sdist").glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        carried = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert all(name in carried for name in shipped.FILES), sorted(set(shipped.FILES) - carried)
    shutil.rmtree(copy)                                  # nothing left to read templates from
    venv = tmp_path / "venv"
    subprocess.run([BASE_PYTHON, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-index",
                    "--find-links", str(wheel_folder), "--find-links", str(dist), "motion-server"],
                   check=True, env=OFFLINE_ENV, timeout=300)
    event = tmp_path / "event"
    event.mkdir()
    server = str(venv / "bin/motion-server")

    def run(*args):
        return subprocess.run([server, *args], cwd=event, capture_output=True, text=True, timeout=120)

    assert run("init").returncode == 0 and run("init", "--systemd", "--cron", "--logrotate").returncode == 0
    written = (event / "motion-server.yaml").read_text()
    assert written == (REPO / "motion-server.example.yaml").read_text()
    (event / "motion-server.yaml").write_text(written.replace("name: Speed event", "name: Wheel test"))
    assert f"WorkingDirectory={event}\n" in (event / "systemd/motion-server@.service").read_text()
    assert (event / "logrotate.d/motion-server").is_file() and (event / "cron.d/motion-server").is_file()

    dashboard = run("dashboard", "--once")
    assert dashboard.returncode == 0, dashboard.stderr
    assert "Wheel test" in (event / "spool/html/index.html").read_text()
    check = run("check")
    assert check.returncode in (0, 1) and "configuration" in check.stdout and "Traceback" not in check.stderr
    status = run("status", "--json")
    assert status.returncode == 0 and '"devices"' in status.stdout, status.stderr
    served_page_runs_its_script_under_its_csp(server, event, tmp_path / "chromium-profile")


def served_page_runs_its_script_under_its_csp(server, event, profile):
    """`serve` from the installed package: the CSP allows the page's own inline script, and a browser runs it."""
    log = event / "spool/log/motion-server.log"
    serving = subprocess.Popen([server, "serve", "--listen", "127.0.0.1:0"], cwd=event,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = None
        for _ in range(300):
            found = re.search(r"serving \S+ at (http://127\.0\.0\.1:\d+/)", log.read_text())
            if found:
                url = found.group(1)
                break
            assert serving.poll() is None, "serve exited"
            time.sleep(0.1)
        assert url, log.read_text()[-2000:]
        with urllib.request.urlopen(url + "index.html", timeout=10) as answer:
            csp = answer.headers["Content-Security-Policy"]
            page = answer.read().decode()
        [script_src] = [part.split()[1:] for part in csp.split(";") if part.split()[:1] == ["script-src"]]
        scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
        assert scripts, "the page has no inline script to check"
        for script in scripts:
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in script_src, csp
        if CHROMIUM is None:
            assert not CI, "chromium is not installed (apt-get install chromium); the browser check must run in CI"
            return
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              f"--user-data-dir={profile}", "--dump-dom", url + "index.html"],
                             capture_output=True, text=True, timeout=90).stdout
        assert re.search(r'id="fresh">updated \d\d:\d\d:\d\d<', dom), "the browser blocked the page's script"
    finally:
        serving.terminate()
        serving.wait(timeout=30)
