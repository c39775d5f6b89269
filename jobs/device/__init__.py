"""The Motion device as the server finds it: its name, its address, a probe of its port.

Also what every stage says of a device: DeviceError, and whether a track's path
on the device is acceptable. The HTTP half (requests, urllib3: a tenth of a
second to import) is jobs.device.api, imported only by the stages that talk HTTP,
so a detect or disconnect run under cron does not pay for it.
"""

import os
import re
import socket


class DeviceError(Exception):
    """The device did something wrong or went away; the message says what."""


class TooSlow(Exception):
    """The device trickles its answer's headers: given up (not an OSError, so it is not retried)."""


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
    """The IPv4 address of motion-<device>, or None if the network does not know it."""
    return look_up(device, hosts, not_found)[0]


# getaddrinfo's answers for a name the resolver does not know (an absent device)
UNKNOWN_NAME = (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME))


def look_up(device, hosts=None, not_found=("10.10.10.10",)):
    """(address or None, "answers" | "not found" | "no answer") for motion-<device>.

    `hosts` ({name: address}, from the hosts file) is asked first. Some routers
    answer a fixed address for every unknown name; those count as not found.
    A name the resolver does not know is normal for an absent device; a
    resolver that does not answer at all is not (`check` tells them apart).
    """
    name = hostname(device)
    address = (hosts or {}).get(name)
    if address is None:
        try:
            address = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
        except socket.gaierror as exc:
            return None, "not found" if exc.errno in UNKNOWN_NAME else "no answer"
        except (OSError, UnicodeError, IndexError):
            return None, "no answer"
    if address in not_found:
        return None, "not found"
    return address, "answers"


def probe(address, port, timeout):
    """True if a TCP connection to address:port succeeds; closed at once."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def base_url(address, port):
    return f"http://{address}:{port}" if port != 80 else f"http://{address}"


# A track's path on the device is opaque device input. It is only ever sent back
# to the same device, never used for a local name, but a path that tries to
# escape or smuggle a query is refused so that a hostile device stands out.
SAFE_TRACK_PATH = re.compile(r"/[A-Za-z0-9._/-]{1,200}")  # fullmatch: '$' would pass a final newline


def track_path_problem(path):
    """Why `path` (logs.json's `file`) is not acceptable, or None if it is."""
    if not isinstance(path, str) or not SAFE_TRACK_PATH.fullmatch(path):
        return "file path is not a plain /path of letters, digits, '.', '_', '-'"
    if any(part in ("", ".", "..") for part in path[1:].split("/")):
        return "file path has an empty, '.' or '..' segment"
    return None


# The hosts file as last read, by its identity: detect asks for it every sweep,
# and it may be edited during the day.
_hosts_read = {}


def hosts_for(cfg):
    """The hosts file's names ({name: address}), read again only when the file changed.
    The dict is shared between calls: never change it."""
    path = cfg.network.hosts_file
    try:
        info = os.stat(path) if path else None
    except OSError:
        info = None
    if info is None:
        return {}
    identity = (info.st_ino, info.st_mtime_ns, info.st_size)
    last = _hosts_read.get(path)
    if last is None or last[0] != identity:
        last = _hosts_read[path] = (identity, read_hosts_file(path))
    return last[1]
