"""The device's HTTP API as the server asks it: JSON documents and track bodies.

Everything a device sends is untrusted: every call has a timeout, every answer
a deadline (headers, a JSON document) or a rate floor (a track), every body a
size cap, and every error becomes a DeviceError whose message an operator can
act on.
"""

import http.client
import json
import re
import socket
import threading
import time
from contextlib import contextmanager

import requests
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from jobs.device import DeviceError, TooSlow, base_url

# requests' timeouts bound each read, not a whole answer: a device that sends a
# byte a second never trips them. These bound the whole, on the socket itself
# (see `Deadline`): a read blocked inside the HTTP library (a chunk-size line
# sent a digit a second, endless trailer lines) ends when its deadline does.
HEADERS_WITHIN_S = 30.0  # an answer's status line and headers, however they trickle
JSON_DEADLINE_S = 30.0   # the most one JSON document may take, headers and body
# A track must average network.min_rate bytes/s over every RATE_WINDOW_S, and
# bring all its bytes within size / min_rate + TRACK_GRACE_S: a WiFi that slow
# is not delivering it, and the worker is wanted by the rest of the fleet.
RATE_WINDOW_S = 30.0
TRACK_GRACE_S = 60.0     # connecting, the first bytes, a pause or two
# A track's socket holds this much (SO_RCVBUF, within net.core.rmem_max): a
# worker pausing to gather bytes (jobs.track.fetch) must not pause longer than it holds.
RECEIVE_BUFFER = 1 << 20


def get_json(session, address, port, path, cfg):
    """GET a JSON document from the device, at most network.json_max_bytes long."""
    url = base_url(address, port) + path
    limit = cfg.network.json_max_bytes
    timeout = (cfg.network.json_connect_timeout, cfg.network.json_read_timeout)
    deadline = time.monotonic() + JSON_DEADLINE_S
    try:
        with answer_within(JSON_DEADLINE_S, f"not all sent within {JSON_DEADLINE_S:g} s"), \
                session.get(url, timeout=timeout, stream=True, allow_redirects=False) as answer:
            if answer.status_code != 200:
                raise DeviceError(f"{path}: HTTP {answer.status_code}")
            _refuse_encoded(answer, path)
            declared = answer.headers.get("Content-Length", "")
            # isdigit() alone takes '²' (int() refuses it) and int() refuses 5,000 digits:
            # either would escape as a ValueError, an "internal error".
            if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
                raise DeviceError(f"{path}: {declared[:20]} bytes, more than the {limit} allowed")
            body = b""
            for chunk in pieces(answer, 65536):
                body += chunk
                if len(body) > limit:
                    raise DeviceError(f"{path}: more than the {limit} bytes allowed")
                if time.monotonic() > deadline:
                    raise DeviceError(f"{path}: too slow: not all sent within {JSON_DEADLINE_S:g} s "
                                      f"({len(body)} bytes so far)")
    except TooSlow as exc:
        raise DeviceError(f"{path}: too slow: {exc}") from None
    except requests.Timeout:
        raise DeviceError(f"{path}: no answer within {timeout[1]:.0f} s") from None
    except requests.RequestException as exc:
        raise DeviceError(f"{path}: {reason(exc)}") from None
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise DeviceError(f"{path}: not UTF-8 text") from None
    except ValueError as exc:
        raise DeviceError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:  # [[[[... nested deeper than the decoder's stack; valid JSON, no Motion's
        raise DeviceError(f"{path}: not valid JSON for a Motion (nested too deep)") from None


def _refuse_encoded(answer, path):
    """The body is read raw (see `pieces`): one the device compressed anyway is refused by name."""
    encoding = answer.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise DeviceError(f"{path}: sent {encoding[:20]!r}-encoded although asked for identity")


def pieces(answer, size):
    """The body of a streamed answer as it arrives, at most `size` bytes a piece.

    iter_content() returns only whole pieces: a device trickling a byte a second,
    each inside the read timeout, would hold one call for hours. read1 returns
    what one read brought, so the caller can look at the clock between pieces.
    Errors are requests' own, as iter_content raises them.
    """
    read1 = getattr(answer.raw, "read1", None)
    if read1 is None:  # urllib3 before 2.3: whole pieces only
        yield from _cut_short(answer.iter_content(size))
        return
    while True:
        try:
            piece = read1(size)
        except ProtocolError as exc:
            _raise_if_cut()
            raise requests.exceptions.ChunkedEncodingError(exc) from None
        except ReadTimeoutError as exc:
            _raise_if_cut()
            raise requests.exceptions.ConnectionError(exc) from None
        except (OSError, ValueError, http.client.HTTPException):
            _raise_if_cut()   # a socket shut down under the library's reader
            raise
        if not piece:
            _raise_if_cut()   # the body "ended" because its deadline shut the socket
            return
        _deadline().moved(time.monotonic())
        yield piece


def _cut_short(pieces):
    try:
        yield from pieces
    except Exception:
        _raise_if_cut()
        raise
    _raise_if_cut()


# --- one deadline for a whole answer, enforced on the socket ---------------------

_current = threading.local()


class Deadline:
    """One answer's deadline: at `at` (monotonic), or when no body byte came for
    `stall_s`, every socket the answer uses is shut down, which ends the read it
    waits in, wherever in the HTTP library that read is. A thread watches it.
    """

    def __init__(self, seconds, why, stall_s=None, stall_why=None):
        now = time.monotonic()
        self.at, self.why = now + seconds, why
        self.stall_s, self.stall_why = stall_s, stall_why
        self.last_piece = None      # the stall clock runs once the body starts (see `moved`)
        self.struck = None          # why it struck, once it did
        self._sockets = []
        self._done = False
        self._wake = threading.Condition()
        self._watcher = threading.Thread(target=self._watch, name="answer deadline", daemon=True)

    def moved(self, now):
        """The headers or a piece of the body arrived at `now`: the stall clock starts again."""
        with self._wake:
            first, self.last_piece = self.last_piece is None, now
            if first:   # the watcher sleeps till the whole deadline: it now strikes sooner
                self._wake.notify()

    def guard(self, sock):
        """Shut `sock` down at the deadline (at once if it has passed)."""
        with self._wake:
            self._sockets.append(sock)
            if self.struck:
                _shut(sock)

    def _next(self):
        """(when it strikes, why)."""
        if self.stall_s is not None and self.last_piece is not None and self.last_piece + self.stall_s < self.at:
            return self.last_piece + self.stall_s, self.stall_why
        return self.at, self.why

    def _watch(self):
        with self._wake:
            while not self._done:
                at, why = self._next()
                left = at - time.monotonic()
                if left <= 0:
                    self.struck = why
                    for sock in self._sockets:
                        _shut(sock)
                    return
                self._wake.wait(left)

    def start(self):
        self._watcher.start()

    def stop(self):
        with self._wake:
            self._done = True
            self._wake.notify()


class _NoDeadline:
    struck = None

    def moved(self, now):
        pass

    def guard(self, sock):
        pass


_NONE = _NoDeadline()


def _deadline():
    return getattr(_current, "deadline", None) or _NONE


def _raise_if_cut():
    struck = _deadline().struck
    if struck:
        raise TooSlow(struck)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


@contextmanager
def answer_within(seconds, why, stall_s=None, stall_why=None):
    """Every request made in this block (in this thread) must bring its whole answer
    (status line, headers, body, chunk lines and trailers) within `seconds`, and,
    with `stall_s`, a piece of body at least every `stall_s`; else TooSlow(why).
    The sockets are shut down at the deadline, so the block always ends."""
    deadline = Deadline(seconds, why, stall_s, stall_why)
    outer, _current.deadline = getattr(_current, "deadline", None), deadline
    deadline.start()
    try:
        yield deadline
    except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException):
        if deadline.struck:
            raise TooSlow(deadline.struck) from None
        raise
    finally:
        deadline.stop()
        _current.deadline = outer


# What a failed GET of a track can raise: requests' errors, and TooSlow for headers trickled in.
NETWORK_ERRORS = (requests.RequestException, TooSlow)


def gather_limit(answer, most):
    """The bytes a pause may let `answer`'s socket gather, at most `most`: half the
    receive buffer its connection was granted (the kernel counts its overhead in
    it), or 64 KB when that is not known (half the smallest buffer Linux starts with)."""
    granted = getattr(getattr(answer.raw, "connection", None), "receive_buffer", None)
    return min(most, granted // 2 if isinstance(granted, int) and granted > 0 else 64 * 1024)


def network_cause(exc, network):
    """Why fetching a track failed, in the operator's words; `network` is the configuration's section."""
    if isinstance(exc, TooSlow):
        return f"too slow: {exc}"
    if _deadline().struck:   # the answer's deadline shut its socket: whatever broke, that is why
        return f"too slow: {_deadline().struck}"
    text = str(exc)
    if isinstance(exc, requests.ConnectTimeout):
        return f"no connection within {network.track_connect_timeout:g} s"
    if isinstance(exc, requests.ReadTimeout) or "Read timed out" in text:
        return f"no data for {network.track_read_timeout:g} s"
    if any(cut in text for cut in ("IncompleteRead", "Connection broken", "Connection reset", "RemoteDisconnected")):
        return "connection closed"
    return reason(exc)


def reason(exc):
    """A short human reason for a requests failure (no 200-character repr)."""
    text = str(exc)
    for known in ("Connection refused", "Connection reset", "Read timed out", "timed out",
                  "Network is unreachable", "No route to host", "IncompleteRead", "RemoteDisconnected"):
        if known in text:
            return known.lower()
    return re.sub(r"\s+", " ", text)[:120]


def session():
    """A requests session that ignores proxy settings (devices are on the LAN), bounds headers
    and asks for uncompressed bodies."""
    s = requests.Session()
    s.trust_env = False
    # Bodies are read raw to bound them (see `pieces`): a gzip answer would come
    # back as compressed bytes, so the device is asked not to compress.
    s.headers["Accept-Encoding"] = "identity"
    s.mount("http://", _Adapter())
    return s


class _Connection(urllib3.connection.HTTPConnection):
    """A connection whose answers must bring their status line and headers within HEADERS_WITHIN_S.

    They are read inside getresponse, one read at a time, each under the read
    timeout: a device trickling them would hold the worker for hours. A timer
    shuts the socket down at the deadline, which ends the read it waits in.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("socket_options", [*urllib3.connection.HTTPConnection.default_socket_options,
                                             (socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)])
        super().__init__(*args, **kwargs)
        self.receive_buffer = None

    def connect(self):
        super().connect()
        _deadline().guard(self.sock)
        # What the kernel granted (net.core.rmem_max caps it, 208 KB on a stock
        # system), counting its own overhead: about half of it holds data.
        self.receive_buffer = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    def request(self, *args, **kwargs):
        if self.sock is not None:   # a kept-alive connection: this answer's deadline holds it too
            _deadline().guard(self.sock)
        return super().request(*args, **kwargs)

    def getresponse(self, *args, **kwargs):
        cut = threading.Event()
        timer = threading.Timer(HEADERS_WITHIN_S, _cut, (self.sock, cut))
        timer.daemon = True
        timer.start()
        try:
            response = super().getresponse(*args, **kwargs)
        except Exception:
            if cut.is_set():
                raise TooSlow(f"headers not all sent within {HEADERS_WITHIN_S:g} s") from None
            _raise_if_cut()
            raise
        finally:
            timer.cancel()
        if cut.is_set():  # the deadline struck as the last header came: the socket is gone
            raise TooSlow(f"headers not all sent within {HEADERS_WITHIN_S:g} s")
        return response


def _cut(sock, cut):
    cut.set()
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _Connection


class _Adapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {**self.poolmanager.pool_classes_by_scheme, "http": _Pool}
