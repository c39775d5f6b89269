"""motion-server check: every ✘ names its fix, exit 1 with a ✘, and it changes nothing.

The tests that need no socket, process or fleet are in tests/unit/ops/test_preflight.py.
"""

import argparse
import http.server
import json
import shutil
import subprocess
import threading

import pytest

from jobs import config
from jobs.ops import preflight, serve
from tests.builders import make_event


@pytest.fixture
def served(tmp_path):
    """motion-server serve on a free loopback port, serving <tmp>/html with an index."""
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "index.html").write_text("<p>dashboard</p>")
    cfg = config.load(make_event(tmp_path, 8080))
    server, _, _ = serve.start(cfg, listen="127.0.0.1:0")
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def run_check(config_path, capsys=None):
    """check's main as the CLI calls it: (exit status, {check: result dict})."""
    cfg = config.load(config_path)
    status = preflight.main(cfg, argparse.Namespace(config=str(config_path), json=True))
    found = json.loads(capsys.readouterr().out)
    return status, {r["check"]: r for r in found}


def problems(found):
    return {name: r for name, r in found.items() if r["result"] != "ok"}


def test_a_good_setup_passes_with_exit_0(tmp_path, served, capsys):
    status, found = run_check(make_event(tmp_path, served), capsys)
    assert status == 0
    # Scheduling depends on the machine (no cron or systemd here); everything else must be ✔.
    assert set(problems(found)) <= {"scheduling"}, problems(found)
    assert "3 entrants, 2 devices" in found["roster"]["detail"]
    assert "3 sailing, 1 without a device" in found["roster"]["detail"]
    assert "2 of 2 names answer" in found["name resolution"]["detail"]
    assert found["dashboard"]["detail"] == f"served at http://127.0.0.1:{served}/"
    for name in ("spool folder", "tracks folder", "html folder", "log folder", "free space", "clock"):
        assert found[name]["result"] == "ok"


def test_every_warning_and_failure_says_what_to_do(tmp_path, capsys):
    status, found = run_check(make_event(tmp_path, 9, bad_roster=True, hosts=None,
                                         **{"checks.min_free_gb": 1e9}), capsys)
    assert status == 1
    assert problems(found)
    for r in problems(found).values():
        assert r["fix"], r


def test_a_bad_roster_line_fails_naming_the_file_and_line(tmp_path, served, capsys):
    status, found = run_check(make_event(tmp_path, served, bad_roster=True), capsys)
    assert status == 1
    roster = found["roster"]
    assert roster["result"] == "fail"
    assert f"{tmp_path / 'motions.csv'}: line 3, column End Date" in roster["detail"]
    assert "correct that line of the roster" in roster["fix"]


def test_a_folder_that_is_a_file_fails_with_the_key_to_change(tmp_path, served, capsys):
    path = make_event(tmp_path, served)
    shutil.rmtree(tmp_path / "tracks")
    (tmp_path / "tracks").write_text("not a folder")
    (tmp_path / "html-file").write_text("")
    text = path.read_text().replace("html: html", "html: html-file/html")
    path.write_text(text)
    status, found = run_check(path, capsys)
    assert status == 1
    tracks, html = found["tracks folder"], found["html folder"]
    assert (tracks["result"], html["result"]) == ("fail", "fail")
    assert "is a file, not a folder" in tracks["detail"] and "paths.tracks" in tracks["fix"]
    assert "cannot be created" in html["detail"] and "paths.html" in html["fix"]


def test_too_little_free_space_fails(tmp_path, served, capsys):
    status, found = run_check(make_event(tmp_path, served, **{"checks.min_free_gb": 1e9}), capsys)
    assert status == 1
    space = found["free space"]
    assert space["result"] == "fail"
    assert "wanted: 1e+09 GB, checks.min_free_gb" in space["detail"]
    assert "bigger disk" in space["fix"]


def test_a_missing_hosts_file_fails(tmp_path, served, capsys):
    status, found = run_check(make_event(tmp_path, served, hosts=None), capsys)
    assert status == 1
    names = found["name resolution"]
    assert names["result"] == "fail" and "does not exist" in names["detail"]
    assert "network.hosts_file" in names["fix"]


def test_names_that_give_the_not_found_address_are_only_a_warning(tmp_path, served, capsys):
    # The router answers 10.10.10.10 for unknown names: absent devices before a session.
    hosts = "10.10.10.10 motion-470\n127.0.1.2 motion-471\n"
    status, found = run_check(make_event(tmp_path, served, hosts=hosts), capsys)
    assert status == 0
    names = found["name resolution"]
    assert names["result"] == "warn"
    assert names["detail"].startswith("1 of 2 names answer, 1 not found, 0 no answer")
    assert "normal before a session" in names["fix"]


def _can_unshare():
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


def test_a_resolver_that_does_not_answer_fails(tmp_path, motion_server):
    """In a network namespace with no network the system resolver cannot answer at all."""
    if not _can_unshare():
        pytest.skip("needs `unshare -rn` (user and network namespaces)")
    path = make_event(tmp_path, 9, hosts=None)
    path.write_text(path.read_text().replace("hosts_file: hosts", "hosts_file: null"))
    done = subprocess.run(["unshare", "-rn", *motion_server, "--config", str(path), "check", "--json"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    found = {r["check"]: r for r in json.loads(done.stdout)}
    names = found["name resolution"]
    assert done.returncode == 1
    assert names["result"] == "fail", names
    assert "the system resolver does not answer" in names["detail"]
    assert "/etc/resolv.conf" in names["fix"]


def test_no_dashboard_served_is_a_warning_naming_serve(tmp_path, capsys):
    status, found = run_check(make_event(tmp_path, 9), capsys)   # port 9: nothing listens
    dashboard = found["dashboard"]
    assert dashboard["result"] == "warn"
    assert "nothing answers at http://127.0.0.1:9/" == dashboard["detail"]
    assert "motion-server serve" in dashboard["fix"]


def test_another_program_on_the_dashboard_port_is_told_apart(tmp_path, capsys):
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        status, found = run_check(make_event(tmp_path, other.server_address[1]), capsys)
    finally:
        other.shutdown()
        other.server_close()
    assert found["dashboard"]["result"] == "warn"
    assert "not motion-server serve" in found["dashboard"]["detail"]


def snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.is_dir(), p.stat().st_size if p.is_file() else 0,
                   p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_check_changes_nothing_and_creates_no_folder(tmp_path, motion_server):
    path = make_event(tmp_path, 9)
    for name in ("spool", "tracks", "html", "log"):
        (tmp_path / name).rmdir()
    before = snapshot(tmp_path)
    done = subprocess.run([*motion_server, "--config", str(path), "check"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert snapshot(tmp_path) == before
    assert "does not exist yet; the first job creates it" in done.stdout
    assert done.returncode == 0, done.stdout + done.stderr


def test_json_lists_check_result_detail_fix(tmp_path, motion_server):
    path = make_event(tmp_path, 9, **{"checks.min_free_gb": 1e9})
    done = subprocess.run([*motion_server, "--config", str(path), "check", "--json"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    found = json.loads(done.stdout)
    assert done.returncode == 1
    assert all(set(r) == {"check", "result", "detail", "fix"} for r in found)
    assert {r["result"] for r in found} <= {"ok", "warn", "fail"}
    text = subprocess.run([*motion_server, "--config", str(path), "check"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path).stdout
    assert "✘ free space" in text and "✔ roster" in text and "→ free some space" in text


@pytest.mark.parametrize("html, fragment", [
    (".", "the configuration"),          # relative to the config's folder: the event folder itself
    ("spool", "the spool (paths.spool)"),
    ("tracks", "the tracks folder (paths.tracks)"),
    ("tracks/pages", "is inside the tracks folder"),
    ("log", "the log (paths.log)"),
    ("/", "is inside paths.html /"),
])
def test_an_html_folder_that_holds_or_sits_among_our_files_fails(tmp_path, capsys, html, fragment):
    # Everything in the html folder is served to the WiFi and swept at every stage start.
    status, found = run_check(make_event(tmp_path, 9, **{"paths.html": html}), capsys)
    assert status == 1
    verdict = found["html folder contents"]
    assert verdict["result"] == "fail" and fragment in verdict["detail"] and "paths.html" in verdict["fix"]
