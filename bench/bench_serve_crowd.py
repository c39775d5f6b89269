"""serve under a hostile crowd: latency of normal requests while one address holds 70 idle
connections (reopened as soon as they are dropped) and 300 slow ones (a header byte every 0.1 s),
and the server's CPU meanwhile. Normal requests come from the crowd's own address and another.

    .venv/bin/python bench/bench_serve_crowd.py [--seconds 10]
"""

import argparse
import http.client
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import common  # noqa: F401 - puts the checkout on sys.path
from jobs import config
from jobs.ops import serve


def connect(port, sent=b""):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if sent:
        sock.sendall(sent)
    sock.setblocking(False)
    return sock


def dropped(sock):
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def crowd(port, idle, slow, stop, counts):
    socks = [(connect(port), False) for _ in range(idle)] + [(connect(port, b"GET / HTTP/1.1\r\n"), True)
                                                            for _ in range(slow)]
    while not stop.is_set():
        for i, (sock, trickles) in enumerate(socks):
            if dropped(sock):
                sock.close()
                counts["dropped"] += 1
                try:
                    socks[i] = (connect(port, b"GET / HTTP/1.1\r\n" if trickles else b""), trickles)
                except OSError:
                    pass
            elif trickles:
                try:
                    sock.send(b"X")
                except OSError:
                    pass
        stop.wait(0.1)
    for sock, _ in socks:
        sock.close()


def get(port, source):
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/status.json")
        status = conn.getresponse().status
    except OSError:
        status = None
    finally:
        conn.close()
    return status, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    (folder / "html").mkdir()
    (folder / "html" / "status.json").write_text('{"event": "bench"}\n' + " " * 20000)
    cfg_path = folder / "motion-server.yaml"
    cfg_path.write_text(f"paths:\n  spool: {folder}/spool\n  html: {folder}/html\n  log: {folder}/m.log\n")
    srv, _, _ = serve.start(config.load(cfg_path), listen="127.0.0.1:0")
    port = srv.server_address[1]
    stop, counts = threading.Event(), {"dropped": 0}
    holder = threading.Thread(target=crowd, args=(port, 70, 300, stop, counts), daemon=True)
    holder.start()
    time.sleep(1.5)
    results = {"127.0.0.1": [], "127.0.0.2": []}
    ends = time.monotonic() + args.seconds
    while time.monotonic() < ends:
        for source, found in results.items():
            found.append(get(port, source))
        time.sleep(0.1)
    stop.set()
    holder.join()
    srv.shutdown()
    srv.server_close()
    for source, found in results.items():
        ok = sorted(took for status, took in found if status == 200)
        print(f"from {source} (crowd's address: {source == '127.0.0.1'}): {len(ok)} of {len(found)} answered 200, "
              f"median {statistics.median(ok) * 1000:.1f} ms, max {max(ok) * 1000:.1f} ms")
    print(f"crowd connections let go and reopened: {counts['dropped']}")


if __name__ == "__main__":
    main()
