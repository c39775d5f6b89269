"""The device client: every call bounded in time and size, every failure a clear DeviceError.

The tests here need probing a real listening socket on loopback;
the others are in tests/unit/device/test_device.py.
"""

import socket


from jobs import device


def test_probe_connects_and_refused_is_false():
    with socket.socket() as server:
        server.bind(("127.0.1.77", 0))
        server.listen()
        port = server.getsockname()[1]
        assert device.probe("127.0.1.77", port, 1.0) is True
    assert device.probe("127.0.1.77", port, 1.0) is False
