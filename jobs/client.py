"""The device's HTTP API as the server asks it: JSON documents and track bodies.

Everything a device sends is untrusted: every call has a timeout, every answer
a deadline (headers, a JSON document) or a rate floor (a track), every body a
size cap, and every error becomes a DeviceError whose message an operator can
act on.
"""

import json
import re
import socket
import threading
import time

import requests
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from jobs.device import DeviceError, TooSlow, base_url

# requests' timeouts bound each read, not a whole answer: a device that sends a
# byte a second never trips them. These bound the whole (see `pieces`, `_Connection`).
HEADERS_WITHIN_S = 30.0  # an answer's status line and headers, however they trickle
JSON_DEADLINE_S = 30.0   # the most one JSON document may take, headers and body
# A track must average network.min_rate bytes/s over every RATE_WINDOW_S, and
# bring all its bytes within size / min_rate + TRACK_GRACE_S: a WiFi that slow
# is not delivering it, and the worker is wanted by the rest of the fleet.
RATE_WINDOW_S = 30.0
TRACK_GRACE_S = 60.0     # connecting, the first bytes, a pause or two
# A track's socket holds this much (SO_RCVBUF, within net.core.rmem_max): a
# worker pausing to gather bytes (jobs.fetch) must not pause longer than it holds.
RECEIVE_BUFFER = 1 << 20


def get_json(session, address, port, path, cfg):
    """GET a JSON document from the device, at most network.json_max_bytes long."""
    url = base_url(address, port) + path
    limit = cfg.network.json_max_bytes
    timeout = (cfg.network.json_connect_timeout, cfg.network.json_read_timeout)
    deadline = time.monotonic() + JSON_DEADLINE_S
    try:
        with session.get(url, timeout=timeout, stream=True, allow_redirects=False) as answer:
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
        yield from answer.iter_content(size)
        return
    while True:
        try:
            piece = read1(size)
        except ProtocolError as exc:
            raise requests.exceptions.ChunkedEncodingError(exc) from None
        except ReadTimeoutError as exc:
            raise requests.exceptions.ConnectionError(exc) from None
        if not piece:
            return
        yield piece


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
        # What the kernel granted (net.core.rmem_max caps it, 208 KB on a stock
        # system), counting its own overhead: about half of it holds data.
        self.receive_buffer = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

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
