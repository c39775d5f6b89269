"""motion-server serve: the dashboard folder over HTTP, for every screen in the tent.

The one long-running process, and it holds no state: it only reads the files
the dashboard stage replaces atomically, so a reader gets the old page or the
new one, never half of either. Nothing outside `paths.html` is ever served,
whatever the URL: the real path of every request (symlinks resolved) must lie
inside the real folder. Every answer says `Cache-Control: no-store`, so a TV
that has been on all week never shows an old page.

Anyone on the event WiFi can connect, so a connection is bounded: at most
dashboard.max_clients at once (more get a quick 503 and are closed, and a
screen retries in 5 s), its request line and headers within HEADERS_WITHIN_S
in total however they trickle, and a failing accept() (out of file
descriptors) pauses the loop instead of spinning on it.
"""

import base64
import hashlib
import io
import ipaddress
import os
import re
import socket
import struct
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote

from jobs import log, runner, shipped
from jobs.files import is_temporary

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
ACCEPT_BACKOFF_S = 0.5   # after accept() fails (EMFILE): the listener stays readable, so no pause = 100 % CPU
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


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True   # a stuck client never delays the stop
    request_queue_size = 128  # every screen in the tent reconnecting at once is not refused at the door

    def __init__(self, address, root, logger, max_clients=64):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.root = root
        self.log = logger
        self.max_clients = max_clients
        self.clients = 0
        self.clients_lock = threading.Lock()
        self.accept_failing = False
        super().__init__(address, DashboardHandler)

    def get_request(self):
        try:
            request = super().get_request()
        except OSError as exc:
            if not self.accept_failing:  # one line per streak, not one per retry
                self.log.warning("cannot accept connections (%s); retrying every %g s",
                                 exc.strerror or exc, ACCEPT_BACKOFF_S)
            self.accept_failing = True
            time.sleep(ACCEPT_BACKOFF_S)
            raise
        if self.accept_failing:
            self.log.info("accepting connections again")
            self.accept_failing = False
        return request

    def process_request(self, request, client_address):
        with self.clients_lock:
            full = self.clients >= self.max_clients
            if not full:
                self.clients += 1
        if full:
            self._turn_away(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._client_done()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._client_done()

    def _client_done(self):
        with self.clients_lock:
            self.clients -= 1

    def _turn_away(self, request, client_address):
        """503 and close, from the accept loop: a few bytes that fit the socket's buffer, never waited on."""
        self.log.debug("%s turned away: %d connections already", client_address[0], self.max_clients)
        try:
            request.setblocking(False)
            request.send(BUSY)
        except OSError:
            pass
        self.shutdown_request(request)


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
