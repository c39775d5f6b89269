"""The Motion device as the server reaches it: names, probes and its HTTP API.

Everything a device sends is untrusted: every call has a timeout, every body
a size cap, and every error becomes a DeviceError whose message an operator
can act on.
"""

import json
import os
import re
import socket

import requests


class DeviceError(Exception):
    """The device did something wrong or went away; the message says what."""


def hostname(device):
    return f"motion-{device}"


def read_hosts_file(path):
    """{name: address} from a file in /etc/hosts format (first address wins)."""
    names = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                for name in fields[1:]:
                    names.setdefault(name.lower(), fields[0])
    except FileNotFoundError:
        pass
    return names


def resolve(device, hosts=None, not_found=("10.10.10.10",)):
    """The IPv4 address of motion-<device>, or None if the network does not know it.

    `hosts` ({name: address}, from the hosts file) is asked first. Some routers
    answer a fixed address for every unknown name; those count as not found.
    """
    name = hostname(device)
    address = (hosts or {}).get(name)
    if address is None:
        try:
            answers = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError):
            return None
        address = answers[0][4][0] if answers else None
    if address is None or address in not_found:
        return None
    return address


def probe(address, port, timeout):
    """True if a TCP connection to address:port succeeds; closed at once."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def base_url(address, port):
    return f"http://{address}:{port}" if port != 80 else f"http://{address}"


def get_json(session, address, port, path, cfg):
    """GET a JSON document from the device, at most network.json_max_bytes long."""
    url = base_url(address, port) + path
    limit = cfg.network.json_max_bytes
    timeout = (cfg.network.json_connect_timeout, cfg.network.json_read_timeout)
    try:
        with session.get(url, timeout=timeout, stream=True, allow_redirects=False) as answer:
            if answer.status_code != 200:
                raise DeviceError(f"{path}: HTTP {answer.status_code}")
            declared = answer.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise DeviceError(f"{path}: {declared} bytes, more than the {limit} allowed")
            body = b""
            for chunk in answer.iter_content(65536):
                body += chunk
                if len(body) > limit:
                    raise DeviceError(f"{path}: more than the {limit} bytes allowed")
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


def reason(exc):
    """A short human reason for a requests failure (no 200-character repr)."""
    text = str(exc)
    for known in ("Connection refused", "Connection reset", "Read timed out", "timed out",
                  "Network is unreachable", "No route to host", "IncompleteRead", "RemoteDisconnected"):
        if known in text:
            return known.lower()
    return re.sub(r"\s+", " ", text)[:120]


# A track's path on the device is opaque device input. It is only ever sent back
# to the same device, never used for a local name, but a path that tries to
# escape or smuggle a query is refused so that a hostile device stands out.
SAFE_TRACK_PATH = re.compile(r"^/[A-Za-z0-9._/-]{1,200}$")


def track_path_problem(path):
    """Why `path` (logs.json's `file`) is not acceptable, or None if it is."""
    if not isinstance(path, str) or not SAFE_TRACK_PATH.match(path):
        return "file path is not a plain /path of letters, digits, '.', '_', '-'"
    if any(part in ("", ".", "..") for part in path[1:].split("/")):
        return "file path has an empty, '.' or '..' segment"
    return None


def session():
    """A requests session that ignores proxy settings: devices are on the LAN."""
    s = requests.Session()
    s.trust_env = False
    return s


def hosts_for(cfg):
    """The hosts file's names, re-read each call (it is small and may change)."""
    path = cfg.network.hosts_file
    return read_hosts_file(path) if path and os.path.exists(path) else {}
