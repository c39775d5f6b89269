"""What one simulated device answers: its JSON documents, its tracks and its faults.

Faults are read from the device's `faults` dict at each request (see the
jobs.sim docs for the list), so a test can switch them while the fleet runs.
"""

import io
import json
import re
import socket
import time
from http.server import BaseHTTPRequestHandler

CHUNK = 64 * 1024
JSON_PATHS = ("/info.json", "/settings.json", "/logs.json")
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
DEFAULT_OVERSIZED = 5_000_000
# Firmware names real devices gave over four speed weeks, most common first: the
# naming changes from year to year. The first is every new-shape device's default.
FIRMWARE_NAMES = ("9008 Weymouth SW (3232)", "9010 (3232) Weymouth SW", "9002 Weymouth Speed Week",
                  "9004 Weymouth Speed Week", "3232 Release")
HARDWARE_NAMES = {101: "Wireless Mini M8", 105: "Wireless Mini M10", 106: "Wireless Mini M10",
                  107: "Wireless Mini M10", 108: "Wireless Mini M10"}
DEEP = 100_000                         # deep_json: valid JSON nested deeper than any decoder's stack
FIRMWARES = {
    "new": {"hardware": {"code": 106, "name": "Wireless Mini M10"},
            "firmware": {"code": 3232, "name": FIRMWARE_NAMES[0], "special": ""}},
    "old": {"hardware": "wireless-mini", "firmware": 3129},
}


def targets(value, path, is_track):
    """Whether a fault aimed at `value` hits this request: a path, "tracks", "*"/True, or a list."""
    if isinstance(value, (list, tuple, set)):
        return any(targets(v, path, is_track) for v in value)
    if value is True or value == "*":
        return True
    if value == "tracks":
        return is_track
    return isinstance(value, str) and value == path


def info_json(device, faults):
    spec = device.spec
    shape = json.loads(json.dumps(FIRMWARES[spec.firmware]))
    if spec.firmware == "new":
        if spec.hardware_code is not None:
            shape["hardware"] = {"code": spec.hardware_code,
                                 "name": HARDWARE_NAMES.get(spec.hardware_code, "Wireless Mini")}
        if spec.firmware_code is not None:
            shape["firmware"]["code"] = spec.firmware_code
        if spec.firmware_name is not None:
            shape["firmware"]["name"] = spec.firmware_name
    elif spec.firmware_code is not None:
        shape["firmware"] = spec.firmware_code
    motion = {"wifi": "station", "username": spec.username,
              "identifier": faults.get("wrong_id", spec.id), **shape,
              "filesystem": {"level": spec.storage},
              "battery": {"level": spec.battery, "charging": spec.charging},
              "units": {"speed": "kn", "distance": "km"}}
    return {"motion": motion}


def settings_json(device):
    """The real shape: the documented strings, a hardware object, wifi networks with a trust
    flag and no custom_led (spec.settings "led_flash" adds one, as older examples had)."""
    spec = device.spec
    settings = {"username": spec.username, "speed_unit": "kn", "distance_unit": "km",
                "gnss_rate": "5", "one_log_per_day": "0", "timezone": str(spec.timezone_minutes),
                "hardware": {"code": str(spec.hardware_code or 106),
                             "name": HARDWARE_NAMES.get(spec.hardware_code or 106, "Wireless Mini")},
                "wifi": [{"login": "WSW", "password_length": "0", "trust": "1"}]
                + [{"login": "", "password_length": "0", "trust": "0"}] * 3}
    for key, value in spec.settings.items():
        if key == "led_flash":
            led = settings.setdefault("custom_led", {"flash": "1", "substract": "0",
                                                     "rows": [{"code": c} for c in ("23", "24", "67", "68")]})
            led["flash"] = str(value)
        elif value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return {"settings": settings}


def logs_json(device, faults):
    logs = device.logs(listing=True)
    hostile = faults.get("hostile_path")
    if hostile:
        for n, file in enumerate(hostile if isinstance(hostile, (list, tuple)) else [hostile]):
            like = dict(logs[0]) if logs else {"size": 1000, "start_date": int(time.time() * 1000) - 3600_000,
                                               "end_date": int(time.time() * 1000), "duration": 3600_000,
                                               "distance": 1_000_000, "2s_best": 8000, "10s_best": 7800,
                                               "500m_best": 7500, "timezone": 60, "mode": 0}
            like["file"] = file
            logs.append(like)
    return {"logs": logs}


def json_body(device, path, faults):
    if path == "/info.json":
        doc = info_json(device, faults)
    elif path == "/settings.json":
        doc = settings_json(device)
    else:
        doc = logs_json(device, faults)
    body = json.dumps(doc).encode()
    if targets(faults.get("oversized"), path, False):
        body = _oversized(doc, path, int(faults.get("oversized_bytes", DEFAULT_OVERSIZED)))
    if targets(faults.get("deep_json"), path, False):
        body = b"[" * DEEP + b"]" * DEEP
    if targets(faults.get("bad_json"), path, False):
        body = body[:max(1, len(body) // 2)]      # cut mid-document: not JSON any more
    return body


def _oversized(doc, path, size):
    """The document made valid JSON larger than `size` bytes."""
    if path == "/logs.json":
        sample = dict(doc["logs"][0]) if doc["logs"] else {"size": 1000, "start_date": 0, "end_date": 0}
        sample["file"] = "/logs/padding_0000000.oao"
        count = size // len(json.dumps(sample)) + 1
        doc["logs"] += [dict(sample, file=f"/logs/padding_{n:07d}.oao") for n in range(count)]
        return json.dumps(doc).encode()
    top = next(iter(doc))
    doc[top]["padding"] = "x" * size
    return json.dumps(doc).encode()


class DeviceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"      # one request per connection, like the device's small server
    server_version = "Motion"
    sys_version = ""
    timeout = 120                      # a client that went away frees its thread eventually

    def setup(self):
        super().setup()
        self.device = self.server.device
        with self.device.lock:
            self.device.connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        finally:
            with self.device.lock:
                self.device.connections.discard(self.connection)

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):
        pass                           # the fleet's access log records every request

    def do_GET(self):
        faults = dict(self.device.faults)
        path = self.path
        served = self.device.track(path)
        is_track = served is not None
        self.sent = 0
        self.range_start = None
        self.complete = False
        status = None
        try:
            if targets(faults.get("delay_path", "*"), path, is_track) and faults.get("delay"):
                self.device.offline_event.wait(float(faults["delay"]))
            if targets(faults.get("http500"), path, is_track):
                status = self._simple(500, b"Internal Server Error\n")
            elif path in JSON_PATHS:
                body = json_body(self.device, path, faults)
                status = self._send_body(path, faults, False, len(body), lambda: io.BytesIO(body))
            elif is_track:
                status = self._send_body(path, faults, True, *self.device.track_source(served))
            else:
                status = self._simple(404, b"Not Found\n")
        except OSError:
            status = status or getattr(self, "_status", None)
        finally:
            self.device.fleet.record_access(device=self.device.id, path=path, status=status or getattr(self, "_status", None),
                                            bytes=self.sent, range=self.range_start, complete=self.complete)

    def _simple(self, status, body):
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.sent = len(body)
        self.complete = True
        return status

    def _requested_start(self, faults, size):
        """The Range start to honour, or None (absent, malformed, or range support off)."""
        if faults.get("range", True) is False:
            return None
        match = RANGE.match(self.headers.get("Range", "").strip())
        if not match:
            return None
        return int(match.group(1))

    def _send_body(self, path, faults, is_track, size, opener):
        start = self._requested_start(faults, size)
        if start is not None and start >= size:
            self._status = 416
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.complete = True
            return 416
        self.range_start = start
        offset = start or 0
        length = size - offset
        self._status = 206 if start is not None else 200
        self.send_response(self._status)
        self.send_header("Content-Type", "application/json" if path.endswith(".json") else "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if start is not None:
            self.send_header("Content-Range", f"bytes {offset}-{size - 1}/{size}")
        self.send_header("Accept-Ranges", "none" if faults.get("range", True) is False else "bytes")
        self.end_headers()
        with opener() as source:
            source.seek(offset)
            self._stream(source, length, self._plan(faults, path, is_track, length))
        return self._status

    def _plan(self, faults, path, is_track, length):
        """Where in this body the faults strike: {"cut": n, "stall": (at, s), "leave": n}."""
        plan = {}
        if faults.get("truncate") is not None and targets(faults.get("truncate_path", "tracks"), path, is_track):
            plan["cut"] = int(faults["truncate"])
        if faults.get("stall") and targets(faults.get("stall_path", "tracks"), path, is_track):
            plan["stall"] = (length // 2, float(faults["stall"]))
        if faults.get("leave_after_bytes") is not None and targets(faults.get("leave_path", "tracks"), path, is_track):
            plan["leave"] = int(faults["leave_after_bytes"])
            plan["leave_for"] = faults.get("leave_for")
        if is_track and self.device.spec.rate:
            plan["rate"] = float(self.device.spec.rate)
        if is_track and faults.get("segment"):
            plan["segment"] = max(1, int(faults["segment"]))
        return plan

    def _stream(self, source, length, plan):
        rate = plan.get("rate")
        chunk_size = plan.get("segment") or (CHUNK if not rate else max(512, min(CHUNK, int(rate / 20))))
        if "segment" in plan:  # each write its own segment, as the radio delivers them, not coalesced by Nagle
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stops = [length]
        for key in ("cut", "leave"):
            if key in plan:
                stops.append(plan[key])
        if "stall" in plan:
            stops.append(plan["stall"][0])
        began = time.monotonic()
        stalled = False
        while self.sent < length:
            if "stall" in plan and not stalled and self.sent >= plan["stall"][0]:
                stalled = True
                if self.device.offline_event.wait(plan["stall"][1]):
                    return                                   # left during the stall
            if "cut" in plan and self.sent >= plan["cut"]:
                self.close_connection = True
                return
            if "leave" in plan and self.sent >= plan["leave"]:
                self._leave(plan.get("leave_for"))
                return
            if self.device.offline_event.is_set():
                return
            upto = min((s for s in stops if s > self.sent), default=length)
            data = source.read(min(chunk_size, upto - self.sent))
            if not data:
                return
            self.wfile.write(data)
            self.sent += len(data)
            if rate:
                ahead = began + self.sent / rate - time.monotonic()
                if ahead > 0 and self.device.offline_event.wait(ahead):
                    return
        self.complete = True

    def _leave(self, leave_for):
        fleet = self.device.fleet
        fleet.set_online(self.device.id, False)
        if leave_for is not None:
            fleet.rejoin_later(self.device.id, float(leave_for))
