"""motion-server serve: the dashboard folder over HTTP, for every screen in the tent.

The one long-running process, and it holds no state: it only reads the files
the dashboard stage replaces atomically, so a reader gets the old page or the
new one, never half of either. Nothing outside `paths.html` is ever served,
whatever the URL: the real path of every request (symlinks resolved) must lie
inside the real folder. Every answer says `Cache-Control: no-store`, so a TV
that has been on all week never shows an old page.

Anyone on the event WiFi can connect, so a connection is bounded: one loop
holds them all (an idle or slow one costs a socket, never a thread), each
address at most dashboard.max_clients at once and all together OPEN_MAX (the
oldest is closed with a 503 to make room, a screen retries in 5 s), its
request line and headers within HEADERS_WITHIN_S in total however they
trickle, its answer taken within WRITE_WITHIN_S, and a failing accept() (out
of file descriptors) pauses accepting instead of spinning on it.
"""

import base64
import hashlib
import io
import ipaddress
import os
import queue
import re
import selectors
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote, unquote

from jobs import log, runner, shipped
from jobs.spool.files import is_temporary

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
ALLOWED = "GET, HEAD"
HEADERS_WITHIN_S = 10.0  # a request line and its headers, in total: a byte every 20 s holds nothing
WRITE_WITHIN_S = 30.0    # an answer not taken by then: a phone that went to sleep is let go
HEAD_MAX = 64 * 1024     # a request line and headers longer than this are no screen's
OPEN_MAX = 1000          # connections held at once, every address together (each a file descriptor)
EVICT_AFTER_S = 1.0      # a connection this old may be closed to make room: a screen's own request is in by then
WORKERS = 8              # requests answered at once: a page is a file read, a few ms
SWEEP_S = 0.1            # how often deadlines and the limit per address are looked at
ACCEPT_BACKOFF_S = 0.5   # after accept() fails (EMFILE): the listener stays readable, so no pause = 100 % CPU
TOO_LARGE = (b"HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
BUSY = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
        b"Retry-After: 5\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nBusy, retry.\n")
FRESHNESS_SCRIPT = shipped.TEMPLATES / "_fresh.html"


def _inline_script_hashes(template):
    """CSP sources for the inline scripts of our own template, exactly as the pages carry them.

    The pages' freshness warning is an inline script: allowing its hash (not
    'unsafe-inline') keeps it running while any other inline script, such as
    one smuggled in by a device's string, stays blocked.
    """
    try:
        text = template.read_text(encoding="utf-8")
    except OSError:
        return ""
    bodies = re.findall(r"<script>(.*?)</script>", text, re.S)
    return "".join(f" 'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in bodies)


# Inline style attributes (progress bars) and <style> blocks need 'unsafe-inline' for styles only.
CSP = (f"default-src 'self'; script-src 'self'{_inline_script_hashes(FRESHNESS_SCRIPT)}; "
       "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def configure(parser):
    parser.add_argument("--listen", metavar="HOST:PORT",
                        help="address and port to serve on (default: dashboard.listen, e.g. 0.0.0.0:8080)")


def parse_listen(text):
    """('0.0.0.0', 8080) from '0.0.0.0:8080'; '[::]:8080' for IPv6; port 0 picks a free one."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isascii() or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"listen address {text!r}: expected host:port, such as 0.0.0.0:8080")
    return host, int(port)


def resolve_request(root, url_path):
    """The real file a URL path names inside `root`, or an HTTP status saying why not.

    Returns (path, None), (None, status) or (None, ("redirect", location)).
    UnicodeDecodeError when the percent-escapes are not UTF-8.
    """
    path = unquote(url_path.split("?", 1)[0].split("#", 1)[0], errors="strict")
    if "\x00" in path or "\\" in path:
        return None, HTTPStatus.BAD_REQUEST
    parts = [p for p in path.split("/") if p]
    # '.' and '..' are refused outright; dot-files are atomic writes in progress.
    if any(p in (".", "..") or is_temporary(p) for p in parts):
        return None, HTTPStatus.NOT_FOUND
    real = _inside(root, os.path.join(root, *parts))
    if real is None:
        return None, HTTPStatus.FORBIDDEN
    if os.path.isdir(real):
        if parts and not path.endswith("/"):
            # Relative links in the folder's page need the slash. The location is
            # rebuilt from the checked parts, so '//host' cannot redirect elsewhere.
            return None, ("redirect", "/" + quote("/".join(parts)) + "/")
        real = _inside(root, os.path.join(real, "index.html"))
        if real is None:
            return None, HTTPStatus.FORBIDDEN
    if not os.path.isfile(real):
        return None, HTTPStatus.NOT_FOUND
    return real, None


def _inside(root, path):
    """The real path of `path` if it lies inside the real folder `root`, else None.

    The real path decides, so a symlink inside the folder cannot lead out of it.
    """
    real = os.path.realpath(path)
    return real if real == root or real.startswith(root + os.sep) else None


class DashboardHandler(BaseHTTPRequestHandler):
    """GET and HEAD of files inside the html folder; nothing else."""

    server_version = "motion-server"
    sys_version = ""
    timeout = 30            # a phone that went to sleep mid-request frees its thread

    def setup(self):
        super().setup()
        # Each read may wait only what is left of the headers' deadline (see _Deadline).
        self.rfile.close()
        self.rfile = io.BufferedReader(_Deadline(self.connection, time.monotonic() + HEADERS_WITHIN_S))

    def parse_request(self):
        parsed = super().parse_request()
        self.connection.settimeout(self.timeout)  # the answer's writes: back to the plain timeout
        return parsed

    def do_GET(self):
        self._serve(body=True)

    def do_HEAD(self):
        self._serve(body=False)

    def __getattr__(self, name):
        # http.server answers 501 for a method it has no do_<METHOD> for; every
        # method other than GET and HEAD is refused with 405 instead.
        if name.startswith("do_"):
            return self._refuse_method
        raise AttributeError(name)

    def _refuse_method(self):
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", ALLOWED)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def end_headers(self):
        # Every answer, errors included: a TV must never show a cached page.
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()

    def _serve(self, body):
        root = os.path.realpath(self.server.root)
        try:
            real, why = resolve_request(root, self.path)
        except UnicodeDecodeError:
            real, why = None, HTTPStatus.BAD_REQUEST
        if isinstance(why, tuple):
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", why[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if why is not None:
            if why == HTTPStatus.FORBIDDEN:
                self.server.log.info("refused %s from %s: outside %s", log.quoted(self.path),
                                     self.client_address[0], root)
            explain = "No dashboard yet: is the dashboard stage running?" if self.path == "/" else None
            self.send_error(why, explain=explain)
            return
        try:
            # O_NOFOLLOW: the checked path cannot have become a symlink since.
            with open(os.open(real, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
                data = f.read()
                modified = os.fstat(f.fileno()).st_mtime
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", TYPES.get(os.path.splitext(real)[1].lower(), "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        # The pages show how fresh they are from document.lastModified.
        self.send_header("Last-Modified", formatdate(modified, usegmt=True))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format, *args):
        # Screens refresh every 5 s: requests go to the log only at DEBUG.
        self.server.log.debug("%s %s", self.client_address[0], format % args)


class _Deadline(socket.SocketIO):
    """A socket reader whose every read waits at most until `deadline`.

    The socket timeout bounds one read, and a client sending a byte every
    20 s never trips a 30 s one; here each read gets only the time left, so
    the request line and headers together take at most HEADERS_WITHIN_S.
    http.server answers the TimeoutError by closing the connection.
    """

    def __init__(self, sock, deadline):
        super().__init__(sock, "rb")
        self._deadline = deadline

    def readinto(self, buffer):
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"request not sent within {HEADERS_WITHIN_S:g} s")
        self._sock.settimeout(left)
        return super().readinto(buffer)


class _BufferedHandler(DashboardHandler):
    """The handler run on a request already read whole: nothing it does waits on the client.

    The accept loop (DashboardServer) gathers the request line and headers from
    every connection without a thread; a worker then answers into a buffer,
    which the loop sends as the client takes it.
    """

    def setup(self):
        self.connection = self.request
        self.rfile = io.BytesIO(self.request.head)
        self.wfile = io.BytesIO()

    def parse_request(self):
        return BaseHTTPRequestHandler.parse_request(self)

    def finish(self):
        self.request.answer = self.wfile.getvalue()


class _Client:
    """One connection as the accept loop holds it: what it sent, what it is sent, by when."""

    def __init__(self, sock, address, now):
        self.sock, self.address, self.opened = sock, address, now
        self.deadline = now + HEADERS_WITHIN_S
        self.head = bytearray()
        self.answer = None
        self.sent = 0
        self.state = "reading"   # reading -> answering (a worker has it) -> writing


class DashboardServer:
    """Every connection is held by one loop (selectors), not by a thread: an idle or
    slow client costs a socket, never a worker. A request read whole goes to one of
    a few workers; its answer is sent by the loop as the client takes it.

    Bounds: each address at most `max_clients` connections open for more than
    EVICT_AFTER_S (its oldest beyond are closed with a 503: a screen retries in
    5 s), every address together at most OPEN_MAX (the oldest such makes room,
    else the new one gets the 503). A new connection is never the one let go:
    so one address holding 70 idle connections, or 300 slow ones, cannot keep
    any screen, its own included, from its page.
    """

    def __init__(self, address, root, logger, max_clients=64):
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.socket = socket.create_server(address, family=family, backlog=128)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self.root = root
        self.log = logger
        self.max_clients = max_clients
        # Below the process's file descriptors, with room for the log, the pages and the workers.
        self.open_max = max(8, min(OPEN_MAX, _files_allowed() - 32))
        self.accept_failing = False
        self._clients = {}           # socket -> _Client
        self._done = queue.SimpleQueue()   # clients a worker answered
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._workers = ThreadPoolExecutor(max_workers=min(max_clients, WORKERS), thread_name_prefix="serve")
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._next_sweep = 0.0

    # ---- the loop ---------------------------------------------------------------

    def serve_forever(self, poll_interval=0.2):
        sel = self._selector
        sel.register(self.socket, selectors.EVENT_READ, "accept")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        accept_again = None
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if accept_again is not None and now >= accept_again:
                    sel.register(self.socket, selectors.EVENT_READ, "accept")
                    accept_again = None
                for key, events in sel.select(self._next_timeout(now, poll_interval, accept_again)):
                    if key.data == "accept":
                        if not self._accept():
                            sel.unregister(self.socket)   # the listener stays readable: no pause = 100 % CPU
                            accept_again = time.monotonic() + ACCEPT_BACKOFF_S
                    elif key.data == "wake":
                        self._answered()
                    elif events & selectors.EVENT_READ and key.data.state == "reading":
                        self._read(key.data)
                    elif events & selectors.EVENT_WRITE:
                        self._write(key.data)
                self._expire(time.monotonic())
        finally:
            self._stopped.set()

    def _next_timeout(self, now, poll_interval, accept_again):
        soonest = min((c.deadline for c in self._clients.values() if c.state != "answering"),
                      default=now + poll_interval)
        if accept_again is not None:
            soonest = min(soonest, accept_again)
        return max(0.0, min(soonest - now, poll_interval))

    def _accept(self):
        """Take every waiting connection; False when accept() fails (out of file descriptors)."""
        while True:
            try:
                sock, address = self.socket.accept()
            except BlockingIOError:
                return True
            except OSError as exc:
                if not self.accept_failing:  # one line per streak, not one per retry
                    self.log.warning("cannot accept connections (%s); retrying every %g s",
                                     exc.strerror or exc, ACCEPT_BACKOFF_S)
                self.accept_failing = True
                return False
            if self.accept_failing:
                self.log.info("accepting connections again")
                self.accept_failing = False
            sock.setblocking(False)
            now = time.monotonic()
            if len(self._clients) >= self.open_max and not self._evict_oldest(self._clients.values(), now):
                self._turn_away(sock, address[0], f"{len(self._clients)} connections already")
                continue
            client = _Client(sock, address, now)
            self._clients[sock] = client
            self._selector.register(sock, selectors.EVENT_READ, client)

    def _limit_addresses(self, now):
        """Each address keeps at most max_clients connections older than EVICT_AFTER_S: its oldest
        beyond are closed with a 503. A new connection always gets EVICT_AFTER_S to send its
        request: a screen's is in within milliseconds, an idle crowd's never."""
        by_address = {}
        for client in self._clients.values():
            if client.state != "answering" and now - client.opened > EVICT_AFTER_S:
                by_address.setdefault(client.address[0], []).append(client)
        for host, old in by_address.items():
            if len(old) > self.max_clients:
                old.sort(key=lambda c: c.opened)
                for client in old[:len(old) - self.max_clients]:
                    self._close(client, BUSY if client.state == "reading" else None)
                self.log.debug("%s: %d connections let go (dashboard.max_clients %d)", host,
                               len(old) - self.max_clients, self.max_clients)

    def _evict_oldest(self, crowd, now):
        """Close the oldest connection of `crowd` open for over EVICT_AFTER_S and not being answered."""
        waiting = [c for c in crowd if c.state != "answering" and now - c.opened > EVICT_AFTER_S]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c.opened)
        self._close(oldest, BUSY if oldest.state == "reading" else None)
        return True

    def _read(self, client):
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(client)
            return
        client.head += data
        if b"\r\n\r\n" in client.head or b"\n\n" in client.head:
            client.head = bytes(client.head)
            client.state = "answering"
            self._selector.unregister(client.sock)
            self._workers.submit(self._answer, client)
        elif len(client.head) > HEAD_MAX:
            self._close(client, TOO_LARGE)

    def _answer(self, client):
        """In a worker: the answer to a request read whole, into client.answer."""
        try:
            _BufferedHandler(client, client.address, self)
        except Exception as exc:  # noqa: BLE001 - one request's failure, never the server's
            self.log.warning("answering %s failed: %s", client.address[0], exc)
            client.answer = b""
        self._done.put(client)
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass   # the wake socket is full: the loop is being woken already

    def _answered(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            try:
                client = self._done.get_nowait()
            except queue.Empty:
                return
            if client.sock not in self._clients:
                continue
            client.state, client.deadline = "writing", time.monotonic() + WRITE_WITHIN_S
            client.answer = memoryview(client.answer or b"")
            self._selector.register(client.sock, selectors.EVENT_WRITE, client)
            self._write(client)

    def _write(self, client):
        try:
            client.sent += client.sock.send(client.answer[client.sent:client.sent + 262144])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        if client.sent >= len(client.answer):
            self._close(client)

    def _expire(self, now):
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_S
        for client in [c for c in self._clients.values() if c.state != "answering" and now > c.deadline]:
            self._close(client)   # the request not sent within HEADERS_WITHIN_S, or the answer not taken
        self._limit_addresses(now)

    def _close(self, client, last_words=None):
        self._clients.pop(client.sock, None)
        try:
            self._selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        if last_words:
            try:
                client.sock.send(last_words)   # a few bytes that fit the socket's buffer, never waited on
            except OSError:
                pass
        try:
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        client.sock.close()

    def _turn_away(self, sock, host, why):
        self.log.debug("%s turned away: %s", host, why)
        try:
            sock.send(BUSY)
        except OSError:
            pass
        sock.close()

    # ---- stopping ---------------------------------------------------------------------

    def shutdown(self):
        """Stop the loop and wait for it (from another thread)."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._stopped.wait()

    def server_close(self):
        for client in list(self._clients.values()):
            self._close(client)
        self._workers.shutdown(wait=False)
        for sock in (self.socket, self._wake_r, self._wake_w):
            sock.close()
        self._selector.close()


def _files_allowed():
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return soft if soft != resource.RLIM_INFINITY else 1 << 20
    except (ImportError, OSError, ValueError):
        return 1024


SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def machine_addresses():
    """Every IPv4 address of this machine, found without external services or programs.

    Each interface is asked for its address over an AF_INET socket: `ip` would
    need a netlink socket, which the systemd unit's RestrictAddressFamilies
    refuses (and a program to run).
    """
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(info[4][0])
    except OSError:
        pass
    try:
        interfaces = [name for _, name in socket.if_nameindex()]
    except OSError:
        interfaces = []
    for name in interfaces:
        address = _interface_address(name)
        if address:
            found.add(address)
    # Only 127.0.0.1 stands for loopback; Debian's 127.0.1.1 hostname line is no use to a TV.
    lan = sorted((a for a in found if not ipaddress.ip_address(a).is_loopback), key=ipaddress.ip_address)
    return lan + ["127.0.0.1"]


def _interface_address(name):
    """The IPv4 address of the interface `name`, or None (none, down, or not Linux)."""
    try:
        import fcntl
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            answer = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
    except (ImportError, OSError, UnicodeEncodeError):
        return None
    return socket.inet_ntoa(answer[20:24])


def urls_for(host, port):
    """The URLs a browser can use for a server bound to host:port."""
    if host in ("0.0.0.0", "", "::"):
        return [f"http://{address}:{port}/" for address in machine_addresses()]
    shown = f"[{host}]" if ":" in host else host
    return [f"http://{shown}:{port}/"]


def start(cfg, listen=None):
    """Serve cfg.paths.html in a background thread: (server, thread, urls).

    Stop it with server.shutdown(). OSError when the address cannot be bound.
    """
    logger = log.get("serve")
    host, port = parse_listen(listen or cfg.dashboard.listen)
    server = DashboardServer((host, port), cfg.paths.html, logger, cfg.dashboard.max_clients)
    urls = urls_for(host, server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="serve", daemon=True)
    thread.start()
    logger.info("serving %s at %s", cfg.paths.html, " ".join(urls))
    if not os.path.isdir(cfg.paths.html):
        logger.warning("%s does not exist yet: the dashboard stage writes it", cfg.paths.html)
    return server, thread, urls


def main(cfg, args):
    log.setup(cfg)
    logger = log.get("serve")
    stop = threading.Event()

    # Before the server starts: a SIGTERM right after the start line is still a clean stop.
    runner.stop_on_signals(stop, logger)
    try:
        server, _, _ = start(cfg, args.listen)
    except ValueError as exc:
        logger.error("%s", exc)
        return 2
    except OSError as exc:
        logger.error("cannot listen on %s: %s", args.listen or cfg.dashboard.listen, exc.strerror or exc)
        return 1
    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    return 0
