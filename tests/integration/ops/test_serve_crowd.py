"""serve for a tent full of screens: idle or slow connections cost no worker, one address cannot take
every slot, and normal requests are answered under 300 slow connections and under 70 idle ones from
one address (which reconnect when dropped). Real sockets against a server on loopback; a second
loopback address (127.0.0.2) stands for another screen.
"""

import http.client
import socket
import threading
import time

import pytest

from jobs import config
from jobs.ops import serve
from tests.builders import config_file

STATUS = '{"event": "Crowd week"}\n'


@pytest.fixture
def crowd_server(tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "HEADERS_WITHIN_S", 30.0)   # the crowd is not let go by the deadline
    html = tmp_path / "html"
    html.mkdir()
    (html / "status.json").write_text(STATUS)
    cfg_path = config_file(tmp_path, paths={"spool": f"{tmp_path}/spool", "html": str(html), "log": f"{tmp_path}/log/m.log"})
    servers = []

    def start(max_clients=64):
        cfg = config.load(cfg_path)
        cfg.dashboard.max_clients = max_clients
        srv, _, _ = serve.start(cfg, listen="127.0.0.1:0")
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def connect(port, source="127.0.0.1", sent=b""):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    if sent:
        sock.sendall(sent)
    sock.setblocking(False)
    return sock


def get(port, source="127.0.0.1"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/status.json")
        answer = conn.getresponse()
        return answer.status, answer.read().decode()
    finally:
        conn.close()


def closed(sock):
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def last_words(sock):
    """What the server sent before it closed the connection (waits for the close)."""
    sock.setblocking(True)
    sock.settimeout(5)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


class Crowd:
    """`count` connections from `source` that send nothing (or trickle a header byte each round),
    each opened again as soon as the server drops it, until stopped."""

    def __init__(self, port, count, source="127.0.0.1", trickle=False):
        self.port, self.source, self.trickle = port, source, trickle
        self.socks = [connect(port, source, b"GET / HTTP/1.1\r\n" if trickle else b"") for _ in range(count)]
        self.reopened = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)
        self.thread.start()

    def _hold(self):
        while not self.stop.is_set():
            for i, sock in enumerate(self.socks):
                if closed(sock):
                    sock.close()
                    try:
                        self.socks[i] = connect(self.port, self.source)
                        self.reopened += 1
                    except OSError:
                        pass
                elif self.trickle:
                    try:
                        sock.send(b"X")
                    except OSError:
                        pass
            self.stop.wait(0.1)

    def close(self):
        self.stop.set()
        self.thread.join()
        for sock in self.socks:
            sock.close()


@pytest.mark.parametrize("count, trickle", [(70, False), (300, True)], ids=["70 idle", "300 slow"])
def test_normal_requests_are_answered_under_a_crowd_from_one_address(crowd_server, count, trickle):
    port = crowd_server().server_address[1]
    crowd = Crowd(port, count, trickle=trickle)
    try:
        time.sleep(1.5)                      # the crowd is old enough to be made room for
        answers = [get(port, source) for _ in range(10) for source in ("127.0.0.1", "127.0.0.2")]
    finally:
        crowd.close()
    assert answers == [(200, STATUS)] * 20


def test_idle_connections_cost_no_worker_thread(crowd_server):
    srv = crowd_server(max_clients=400)
    before = threading.active_count()
    socks = [connect(srv.server_address[1], "127.0.0.3") for _ in range(200)]
    try:
        time.sleep(0.5)
        held = sum(not closed(sock) for sock in socks)
        threads = threading.active_count()
        assert get(srv.server_address[1]) == (200, STATUS)
    finally:
        for sock in socks:
            sock.close()
    assert held == 200 and threads <= before


def test_one_address_cannot_take_every_slot_and_the_oldest_makes_room(crowd_server):
    srv = crowd_server(max_clients=5)
    port = srv.server_address[1]
    others = [connect(port, "127.0.0.4") for _ in range(3)]
    mine = [connect(port, "127.0.0.5") for _ in range(5)]
    try:
        time.sleep(1.2)
        newest = connect(port, "127.0.0.5")   # over its address's limit once it is not new: the oldest is let go
        time.sleep(1.5)
        assert last_words(mine[0]).startswith(b"HTTP/1.0 503 ")
        assert not any(closed(sock) for sock in mine[1:] + [newest])
        assert not any(closed(sock) for sock in others)     # another address's connections are untouched
        assert get(port, "127.0.0.5") == (200, STATUS)
    finally:
        for sock in others + mine:
            sock.close()
