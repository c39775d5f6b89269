"""The device's JSON is checked field by field: both firmware generations read,
anything else refused with the document and the field named.

The tests here need the simulated fleet on loopback;
the others are in tests/unit/device/test_documents.py.
"""


from jobs.device import documents


def test_the_simulated_devices_real_shapes_are_read(tmp_path):
    # What real devices send (motion-device.md): the reader must take the simulator's
    # documents as they are, extra fields, no custom_led, and zeros of a missing summary.
    import datetime as dt
    import requests
    from jobs.sim import DeviceSpec, Fleet, TrackSpec
    start = dt.datetime(2026, 7, 16, 12, 2, tzinfo=dt.timezone.utc)
    spec = DeviceSpec(id=520, hardware_code=101, username="WSW",
                      tracks=[TrackSpec(start=start, size=20_000), TrackSpec(start=start, size=30_000, summary=False)])
    session = requests.Session()
    session.trust_env = False
    with Fleet([spec], folder=tmp_path) as fleet:
        info = documents.info(session.get(fleet.url(520, "/info.json")).json())
        settings = documents.settings(session.get(fleet.url(520, "/settings.json")).json())
        logs = documents.logs(session.get(fleet.url(520, "/logs.json")).json())
    assert (info["firmware_name"], info["hardware_code"], info["hardware"]) == (
        "9008 Weymouth SW (3232)", 101, "Wireless Mini M8")
    assert settings == {"gnss_rate": "5", "one_log_per_day": "0", "timezone": "60", "username": "WSW",
                        "speed_unit": "kn", "distance_unit": "km"}   # no custom_led: no led_flash
    assert logs[0]["file"] == "/logs/2026/07/0520_2026-07-16-1302.oao" and logs[0]["best500"] > 0
    assert (logs[1]["size"], logs[1]["end"], logs[1]["duration"], logs[1]["best500"]) == (30_000, 0, 0, 0)
