"""The device client: every call bounded in time and size, every failure a clear DeviceError.

Those that need sockets, processes or the simulated fleet are in
tests/integration/device/test_device_probe.py.
"""

import gzip
import socket
from types import SimpleNamespace

import pytest
import requests
import responses

from jobs import device
from jobs.device import DeviceError, api

CFG = SimpleNamespace(network=SimpleNamespace(json_max_bytes=1000, json_connect_timeout=1.0, json_read_timeout=1.0))


def get(path="/info.json", port=80, cfg=CFG):
    return api.get_json(api.session(), "127.0.1.1", port, path, cfg)


@responses.activate
def test_a_good_document_is_returned_parsed():
    responses.get("http://127.0.1.1/info.json", json={"motion": {"identifier": 470}})
    assert get() == {"motion": {"identifier": 470}}


@responses.activate
def test_the_port_is_part_of_the_url_when_not_80():
    responses.get("http://127.0.1.1:8080/logs.json", json={"logs": []})
    assert get("/logs.json", port=8080) == {"logs": []}


@pytest.mark.parametrize("kwargs, message", [
    (dict(status=500, body="oops"), "/info.json: HTTP 500"),
    (dict(body="{not json"), "/info.json: not valid JSON"),
    (dict(body=b"\xff\xfe{}"), "/info.json: not UTF-8 text"),
    (dict(body="x" * 1001), "/info.json: more than the 1000 bytes allowed"),
    (dict(body="{}", headers={"Content-Length": "5000000"}), "/info.json: 5000000 bytes, more than the 1000 allowed"),
    (dict(body=requests.ConnectTimeout("timed out")), "/info.json: no answer within 1 s"),
    (dict(body=requests.ConnectionError("[Errno 111] Connection refused")), "/info.json: connection refused"),
    (dict(status=302, headers={"Location": "http://elsewhere/"}), "/info.json: HTTP 302"),
    (dict(body="{}", headers={"Content-Length": "9" * 400}), "/info.json: 99999999999999999999 bytes, more than"),
    (dict(body=gzip.compress(b'{"motion": {}}'), headers={"Content-Encoding": "gzip"}),
     "/info.json: sent 'gzip'-encoded although asked for identity"),
])
@responses.activate
def test_each_failure_is_one_clear_error(kwargs, message):
    responses.get("http://127.0.1.1/info.json", **kwargs)
    with pytest.raises(DeviceError) as err:
        get()
    assert str(err.value).startswith(message)


@responses.activate
def test_the_device_is_asked_for_uncompressed_bodies():
    # Bodies are read raw to bound them: a gzip answer would not be JSON.
    responses.get("http://127.0.1.1/info.json", json={})
    get()
    assert responses.calls[0].request.headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("depth", [100_000, 5_000])
@responses.activate
def test_json_nested_deeper_than_the_decoder_is_the_devices_error_not_a_recursion_error(depth):
    roomy = SimpleNamespace(network=SimpleNamespace(json_max_bytes=1_000_000, json_connect_timeout=1.0,
                                                    json_read_timeout=1.0))
    responses.get("http://127.0.1.1/logs.json", body="[" * depth + "]" * depth)
    with pytest.raises(DeviceError) as err:
        get("/logs.json", cfg=roomy)
    assert str(err.value) == "/logs.json: not valid JSON for a Motion (nested too deep)"


@responses.activate
def test_an_integer_beyond_the_decoders_digit_limit_is_not_valid_json():
    roomy = SimpleNamespace(network=SimpleNamespace(json_max_bytes=1_000_000, json_connect_timeout=1.0,
                                                    json_read_timeout=1.0))
    responses.get("http://127.0.1.1/logs.json", body='{"logs": [{"size": ' + "9" * 5000 + "}]}")
    with pytest.raises(DeviceError, match="/logs.json: not valid JSON"):
        get("/logs.json", cfg=roomy)


def test_hosts_file_first_and_not_found_addresses_mean_absent(tmp_path, monkeypatch):
    hosts = tmp_path / "hosts"
    hosts.write_text("# event fleet\n127.0.1.1 motion-470 other-name\n10.10.10.10 motion-601\n\n")
    names = device.read_hosts_file(hosts)
    asked = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda name, *a, **k: asked.append(name) or
                        [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.10.10.10", 0))])
    assert device.resolve(470, names) == "127.0.1.1"
    assert device.resolve(601, names) is None       # the router's "not found" answer
    assert device.resolve(602, names) is None       # the resolver's answer is "not found" too
    assert asked == ["motion-602"]
    assert device.resolve(602, names, not_found=()) == "10.10.10.10"


def test_the_hosts_file_is_read_again_only_when_it_changed(tmp_path, monkeypatch):
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.1.1 motion-470\n")
    cfg = SimpleNamespace(network=SimpleNamespace(hosts_file=str(hosts)))
    reads = []
    real_read = device.read_hosts_file
    monkeypatch.setattr(device, "read_hosts_file", lambda path: reads.append(path) or real_read(path))
    assert device.hosts_for(cfg) == {"motion-470": "127.0.1.1"}
    assert device.hosts_for(cfg) == {"motion-470": "127.0.1.1"} and len(reads) == 1
    hosts.write_text("127.0.1.2 motion-470\n127.0.1.3 motion-471\n")   # edited during the day
    assert device.hosts_for(cfg) == {"motion-470": "127.0.1.2", "motion-471": "127.0.1.3"} and len(reads) == 2
    hosts.unlink()
    assert device.hosts_for(cfg) == {}


def test_a_failing_lookup_is_absent(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert device.resolve(470, {}) is None


@pytest.mark.parametrize("path, ok", [
    ("/logs/0470_2022-07-16-1202.oao", True),
    ("/0470.oao", True),
    ("/logs/../../etc/passwd", False),
    ("../x.oao", False),
    ("/logs/%2e%2e/x.oao", False),
    ("/logs//x.oao", False),
    ("/logs/./x.oao", False),
    ("/logs/x.oao?y=1", False),
    ("http://elsewhere/x.oao", False),
    ("/logs/x\n.oao", False),
    ("/logs/x.oao\n", False),         # '$' matches before a final newline: a full match is needed
    ("", False),
    (None, False),
    (42, False),
    ("/" + "a" * 300, False),
])
def test_track_paths_from_the_device_are_checked(path, ok):
    assert (device.track_path_problem(path) is None) == ok
