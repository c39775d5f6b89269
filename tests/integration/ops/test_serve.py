"""motion-server serve: the dashboard folder over HTTP, and nothing else.

Real HTTP requests against a server bound to 127.0.0.1 on a free port. A
secret file sits beside the html folder; no URL may return a byte of it.

The tests that need no socket, process or fleet are in tests/unit/ops/test_serve_csp.py.
"""

import http.client
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time

import pytest

from jobs import config
from jobs.ops import serve
from tests.builders import config_file

SECRET = "SECRET-8d1f7c beside the html folder"
INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>Motion test dashboard</title></head>
<body><h1>Dashboard ✔</h1><pre id="status">not loaded</pre>
<script src="status.js"></script></body></html>
"""
# A script file, not an inline one: the Content-Security-Policy blocks inline scripts.
SCRIPT = """
  // Synchronous on purpose: the page is complete only once status.json came over HTTP.
  var r = new XMLHttpRequest();
  r.open("GET", "status.json", false);
  r.send();
  document.getElementById("status").textContent = "loaded " + r.status + " " + JSON.parse(r.responseText).event;
"""
STATUS = '{"event": "Test week", "devices": []}\n'


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """An html folder with pages, sub-folders and symlinks that try to lead out."""
    tmp_path = tmp_path_factory.mktemp("site")
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text(INDEX, encoding="utf-8")
    (html / "status.json").write_text(STATUS)
    (html / "status.js").write_text(SCRIPT)
    (html / ".index.html.x1y2.tmp").write_text("half a page")
    (html / "empty").mkdir()
    (html / "day").mkdir()
    (html / "day" / "index.html").write_text("<p>day page</p>")
    (tmp_path / "secret.txt").write_text(SECRET)
    (html / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (html / "out").symlink_to(tmp_path)
    (html / "outside").mkdir()
    (html / "outside" / "index.html").symlink_to(tmp_path / "secret.txt")
    cfg_path = config_file(tmp_path, paths={"spool": f"{tmp_path}/spool", "html": str(html), "log": f"{tmp_path}/log/m.log"},
                           dashboard={"listen": "127.0.0.1:8080"})
    return tmp_path, cfg_path


@pytest.fixture(scope="module")
def server(site):
    # One server for the module: it holds no state between requests.
    folder, cfg_path = site
    srv, thread, urls = serve.start(config.load(cfg_path), listen="127.0.0.1:0")
    yield srv
    srv.shutdown()
    srv.server_close()


def raw(server, method, target):
    """One request with the target sent byte for byte (no client-side normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def test_pages_and_status_json_are_served_with_no_store_and_their_types(server):
    status, headers, body = raw(server, "GET", "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Security-Policy"].startswith("default-src 'self'; ")
    assert body.decode("utf-8") == INDEX
    status, headers, body = raw(server, "GET", "/status.json?t=1700000000")
    assert (status, headers["Content-Type"], headers["Cache-Control"]) == (200, "application/json", "no-store")
    assert body.decode() == STATUS
    status, headers, body = raw(server, "HEAD", "/status.json")
    assert (status, body, headers["Content-Length"]) == (200, b"", str(len(STATUS)))


def test_every_answer_says_no_store_even_errors(server):
    for target in ("/missing.html", "/../secret.txt", "/leak.txt", "/empty/"):
        status, headers, _ = raw(server, "GET", target)
        assert status >= 400 and headers["Cache-Control"] == "no-store", target
        assert headers["Referrer-Policy"] == "no-referrer", target
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], target
    status, headers, _ = raw(server, "POST", "/")
    assert headers["Cache-Control"] == "no-store"


TRAVERSALS = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/%2e%2e%2fsecret.txt",
    "/..%2fsecret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/day/../../secret.txt",
    "/./../secret.txt",
    "//../secret.txt",
    "/..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/secret.txt%00.html",
    "/leak.txt",
    "/out/secret.txt",
    "/out/",
    "/outside/",
    "/outside/index.html",
    "http://127.0.0.1/../secret.txt",
    "/%ff%fe/../secret.txt",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_no_url_returns_a_byte_from_outside_the_folder(server, target):
    for method in ("GET", "HEAD"):
        status, headers, body = raw(server, method, target)
        assert status in (400, 403, 404), (target, status)
        assert SECRET.encode() not in body and b"SECRET" not in body


def test_folders_are_never_listed(server):
    status, _, body = raw(server, "GET", "/empty/")
    assert status == 404 and b"index" not in body.lower().replace(b"index.html", b"")
    status, _, body = raw(server, "GET", "/day/")
    assert (status, body) == (200, b"<p>day page</p>")


def test_a_folder_without_its_slash_redirects_inside_this_server_only(server):
    status, headers, _ = raw(server, "GET", "/day")
    assert (status, headers["Location"]) == (301, "/day/")
    # '//host/...' must not turn into a redirect to another site.
    status, headers, _ = raw(server, "GET", "//day")
    assert status == 301 and headers["Location"] == "/day/"


def test_files_being_written_are_not_served(server):
    status, _, body = raw(server, "GET", "/.index.html.x1y2.tmp")
    assert status == 404 and b"half a page" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"])
def test_methods_other_than_get_and_head_are_refused_with_405(server, method):
    status, headers, body = raw(server, method, "/index.html")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert body == b""


def test_the_start_line_lists_every_address_and_loopback(monkeypatch):
    def no_programs(*args, **kwargs):
        raise AssertionError(f"serve ran a program: {args}")

    monkeypatch.setattr(subprocess.Popen, "__init__", no_programs)  # under systemd `ip` may not run
    urls = serve.urls_for("0.0.0.0", 8080)
    assert urls[-1] == "http://127.0.0.1:8080/"
    assert all(re.fullmatch(r"http://\d+\.\d+\.\d+\.\d+:8080/", u) for u in urls)
    assert serve.urls_for("127.0.0.1", 9000) == ["http://127.0.0.1:9000/"]
    monkeypatch.undo()
    if shutil.which("ip"):        # each interface's (first) LAN address, as `ip` shows it, is listed
        shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "up"], capture_output=True, text=True).stdout
        first = {}
        for interface, address in re.findall(r"^\d+: (\S+)\s+inet (\d+\.\d+\.\d+\.\d+)/", shown, re.M):
            first.setdefault(interface, address)
        lan = {a for a in first.values() if not a.startswith("127.")}
        assert lan <= {u.split("/")[2].split(":")[0] for u in urls}, (lan, urls)


def _read_until(stream, pattern, seconds):
    deadline = time.monotonic() + seconds
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.2)
        if ready:
            line = stream.readline()
            if not line:
                break
            seen += line
            found = re.search(pattern, line)
            if found:
                return found, seen
    raise AssertionError(f"no {pattern!r} within {seconds} s; got:\n{seen}")


def test_sigterm_ends_serve_at_once_with_status_0(site, motion_server):
    folder, cfg_path = site
    proc = subprocess.Popen([*motion_server, "--config", str(cfg_path), "serve", "--listen", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True, cwd=folder)
    try:
        found, _ = _read_until(proc.stderr, r"serving .* at (http://127\.0\.0\.1:(\d+)/)", 10)
        conn = http.client.HTTPConnection("127.0.0.1", int(found.group(2)), timeout=5)
        conn.request("GET", "/status.json")
        assert conn.getresponse().read().decode() == STATUS
        conn.close()
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 3
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()


def test_a_port_in_use_is_a_clear_error(site, motion_server):
    folder, cfg_path = site
    srv, _, _ = serve.start(config.load(cfg_path), listen="127.0.0.1:0")
    try:
        port = srv.server_address[1]
        done = subprocess.run([*motion_server, "--config", str(cfg_path), "serve", "--listen", f"127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=20, cwd=folder)
        assert done.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    finally:
        srv.shutdown()
        srv.server_close()


CHROMIUM = "/usr/bin/chromium"


def test_a_headless_chromium_loads_the_dashboard_over_http(server, tmp_path):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: install chromium")
        pytest.skip(f"{CHROMIUM} is not installed")
    profile = tmp_path / "chromium-profile"
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=90)
    shutil.rmtree(profile, ignore_errors=True)
    assert "<h1>Dashboard ✔</h1>" in done.stdout, done.stderr[-2000:]
    # The page's script fetched status.json from the server and parsed it.
    assert "loaded 200 Test week" in done.stdout


# --- connections: a cap, a deadline on the request, a pause after a failed accept ---

def _slow_client(port, sent=b"GET / HTTP/1.1\r\nHost: x\r\n"):
    """A connection that has sent the start of a request and will trickle the rest."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(sent)
    sock.setblocking(False)
    return sock


def _closed_by_server(sock):
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _timed_get(port, path="/status.json"):
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read(), time.monotonic() - started
    finally:
        conn.close()


@pytest.fixture
def bounded_server(site, monkeypatch):
    """A server of its own, with a short headers deadline; started by the test with its cap."""
    monkeypatch.setattr(serve, "HEADERS_WITHIN_S", 3.0, raising=False)
    started = []

    def start(max_clients):
        folder, cfg_path = site
        cfg = config.load(cfg_path)
        cfg.dashboard.max_clients = max_clients
        srv, _, _ = serve.start(cfg, listen="127.0.0.1:0")
        started.append(srv)
        return srv.server_address[1]

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


SLOWLORIS = 250


def test_a_normal_client_is_answered_quickly_while_250_slowloris_connections_are_open(bounded_server):
    port = bounded_server(max_clients=SLOWLORIS + 20)
    first = time.monotonic()
    slow = [_slow_client(port) for _ in range(SLOWLORIS)]
    try:
        latencies = []
        ends = first + 2.5                     # inside the 3 s deadline: every slow connection still open
        while time.monotonic() < ends:
            for sock in slow:
                try:
                    sock.send(b"X")            # a header byte each round: every read succeeds
                except OSError:
                    pass
            status, body, took = _timed_get(port)
            assert (status, body.decode()) == (200, STATUS)
            latencies.append(took)
            time.sleep(0.05)
        closed = sum(_closed_by_server(sock) for sock in slow)
        assert closed == 0 and len(latencies) >= 5, (closed, len(latencies))  # they were really held open
        print(f"normal client under {SLOWLORIS} slow connections: {len(latencies)} requests, "
              f"max {max(latencies) * 1000:.0f} ms, median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms")
        assert max(latencies) < 1.0
        # Trickling a byte at a time does not buy more than the deadline for the whole request.
        ends = time.monotonic() + 4.0
        while time.monotonic() < ends and not all(_closed_by_server(sock) for sock in slow):
            for sock in slow:
                try:
                    sock.send(b"X")
                except OSError:
                    pass
            time.sleep(0.2)
        assert all(_closed_by_server(sock) for sock in slow)
    finally:
        for sock in slow:
            sock.close()


def test_beyond_max_clients_from_one_address_its_oldest_gets_a_quick_503_and_a_screen_is_served(bounded_server):
    """Idle connections hold no worker: a normal request is answered beside them, and once they
    are not new, the address keeps max_clients of them (more: its oldest get a 503, closed)."""
    port = bounded_server(max_clients=3)
    idle = [_slow_client(port, b"") for _ in range(4)]
    try:
        status, body, took = _timed_get(port)
        assert (status, body.decode()) == (200, STATUS)
        deadline = time.monotonic() + 2.5
        while not _closed_by_server(idle[0]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert not any(_closed_by_server(sock) for sock in idle[1:])
    finally:
        for sock in idle:
            sock.close()


def _cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_file_descriptors_the_accept_loop_pauses_instead_of_spinning(site, motion_server):
    import resource

    folder, cfg_path = site

    def few_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    proc = subprocess.Popen([*motion_server, "--config", str(cfg_path), "serve", "--listen", "127.0.0.1:0"],
                            stderr=subprocess.PIPE, text=True, cwd=folder, preexec_fn=few_files)
    clients = []
    try:
        found, _ = _read_until(proc.stderr, r"serving .* at (http://127\.0\.0\.1:(\d+)/)", 10)
        port = int(found.group(2))
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(60)]
        # Held up to the file descriptors it has (the rest turned away with a 503), or out of them:
        # either way the loop must not spin.
        time.sleep(0.5)
        before, started = _cpu_seconds(proc.pid), time.monotonic()
        time.sleep(2.0)
        busy = (_cpu_seconds(proc.pid) - before) / (time.monotonic() - started)
        print(f"serve out of file descriptors: {busy:.0%} of a core")
        assert busy < 0.3                      # a spinning accept loop takes a whole core
        for sock in clients:
            sock.close()
        clients = []
        deadline = time.monotonic() + 15       # the accepted idle ones end at the headers deadline
        while True:
            try:
                if _timed_get(port)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        for sock in clients:
            sock.close()
        proc.kill()
        proc.wait()
        proc.stderr.close()
