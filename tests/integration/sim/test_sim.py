"""The simulated fleet behaves like real devices, faults included, checked with plain requests.

The tests that need no socket, process or fleet are in tests/unit/sim/test_sim_specs.py.
"""

import datetime as dt
import http.client as httpclient
import json
import signal
import subprocess
import time
from zoneinfo import ZoneInfo

import pytest
import requests
import yaml

from jobs import config, device, roster, units
from jobs.track import figures, oao, integrity
from jobs.sim import DeviceSpec, Fleet, TrackSpec
from tests.builders import LONDON, REPO, wait_until

START = dt.datetime(2026, 7, 16, 13, 2, 40, tzinfo=LONDON)


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False
    return session


def run_fleet(tmp_path, *specs, **options):
    return Fleet(list(specs), folder=tmp_path, **options)


def one_track(device_id=470, size=200_000, **fields):
    return DeviceSpec(id=device_id, tracks=[TrackSpec(start=START, duration_s=1800, size=size)], **fields)


def first_file(fleet, device_id=470):
    return fleet.logs(device_id)[0]["file"]


def refused(fleet, device_id):
    return not device.probe(fleet.address(device_id), fleet.port, 0.5)


# --- what a device serves ----------------------------------------------------

def test_synthetic_tracks_parse_to_the_last_byte_and_match_logs_json(tmp_path, http):
    spec = DeviceSpec(id=470, tracks=[TrackSpec(start=START, duration_s=3600, size=2_000_000, best500_knots=20),
                                      TrackSpec(start=START + dt.timedelta(hours=2), duration_s=600, size=100_001)])
    with run_fleet(tmp_path, spec) as fleet:
        logs = http.get(fleet.url(470, "/logs.json")).json()["logs"]
        assert logs == fleet.logs(470)
        for entry in logs:
            body = http.get(fleet.url(470, entry["file"])).content
            path = tmp_path / "got.oao"
            path.write_bytes(body)
            summary = integrity.verify_file(path)
            stats = figures.file_stats(path)
            assert entry["size"] == len(body) == summary["size"]
            assert (entry["start_date"], entry["end_date"]) == (summary["first_ms"], summary["last_ms"])
            assert entry["duration"] == entry["end_date"] - entry["start_date"]
            assert entry["distance"] == pytest.approx(stats["distance"], rel=0.01)
            assert entry["500m_best"] == pytest.approx(stats["500m_best"], rel=0.02)
        assert logs[0]["start_date"] == START.timestamp() * 1000
        assert logs[0]["500m_best"] == units.mm_per_s(20)
        assert logs[1]["size"] == 100_000          # an odd size becomes the valid size below it
        assert logs[0]["file"] == "/logs/2026/07/0470_2026-07-16-1302.oao"


def test_real_files_are_served_byte_identical_with_their_own_figures(tmp_path, http, fixtures):
    sources = sorted((fixtures / "oao").glob("*.oao"))
    spec = DeviceSpec(id=470, firmware="old", tracks=[TrackSpec(source=str(p)) for p in sources])
    with run_fleet(tmp_path, spec) as fleet:
        logs = http.get(fleet.url(470, "/logs.json")).json()["logs"]
        for source, entry in zip(sources, logs):
            assert entry["file"] == f"/logs/{source.name}"
            body = http.get(fleet.url(470, entry["file"])).content
            assert body == source.read_bytes()
            summary = integrity.verify_file(source)
            assert (entry["size"], entry["start_date"], entry["end_date"]) == (
                summary["size"], summary["first_ms"], summary["last_ms"])


def test_both_firmware_shapes_and_the_settings_overrides(tmp_path, http, real_fixtures):
    old = DeviceSpec(id=470, firmware="old", battery=41, storage=97, settings={"gnss_rate": "10", "led_flash": "0"})
    new = DeviceSpec(id=601, username="K601")
    with run_fleet(tmp_path, old, new) as fleet:
        assert http.get(fleet.url(470)).json()["motion"] == {
            **json.loads((real_fixtures / "device" / "info-3129.json").read_text())["motion"],
            "filesystem": {"level": 97}, "battery": {"level": 41, "charging": False}}
        info = http.get(fleet.url(601)).json()["motion"]
        reference = json.loads((real_fixtures / "device" / "info-3232.json").read_text())["motion"]
        # The fixture's 9009 is an older example's name; real devices said 9008 most often.
        assert info == {**reference, "identifier": 601, "username": "K601",
                        "firmware": {"code": 3232, "name": "9008 Weymouth SW (3232)", "special": ""}}
        settings = http.get(fleet.url(470, "/settings.json")).json()["settings"]
        assert (settings["gnss_rate"], settings["custom_led"]["flash"], settings["timezone"]) == ("10", "0", "60")
        assert "custom_led" not in http.get(fleet.url(601, "/settings.json")).json()["settings"]
        assert http.get(fleet.url(601, "/nothing")).status_code == 404


def test_default_tracks_start_today_in_the_event_timezone(tmp_path):
    with run_fleet(tmp_path, DeviceSpec(id=5, tracks=[TrackSpec(), TrackSpec()]), timezone="Pacific/Auckland") as fleet:
        tz = ZoneInfo("Pacific/Auckland")
        starts = [dt.datetime.fromtimestamp(e["start_date"] / 1000, tz) for e in fleet.logs(5)]
        assert [s.date() for s in starts] == [dt.datetime.now(tz).date()] * 2
        assert starts[1] - starts[0] == dt.timedelta(minutes=90)


# --- what real devices send (motion-device.md) ------------------------------

def test_track_paths_are_year_month_folders_named_in_the_devices_own_offset(tmp_path, http):
    # 23:30 UTC on 31 December: in the device's +60 it is already 00:30 on 1 January,
    # whatever the fleet's zone (here Pacific/Auckland) says.
    new_year = dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.timezone.utc)
    specs = [DeviceSpec(id=47, tracks=[TrackSpec(start=new_year, size=10_000)]),
             DeviceSpec(id=48, timezone_minutes=120, tracks=[TrackSpec(start=START, size=10_000)])]
    with run_fleet(tmp_path, *specs, timezone="Pacific/Auckland") as fleet:
        [first] = fleet.logs(47)
        [second] = fleet.logs(48)
        assert first["file"] == "/logs/2026/01/0047_2026-01-01-0030.oao" and first["timezone"] == 60
        assert second["file"] == "/logs/2026/07/0048_2026-07-16-1402.oao" and second["timezone"] == 120
        assert http.get(fleet.url(48, "/settings.json")).json()["settings"]["timezone"] == "120"
        assert len(http.get(fleet.url(47, first["file"])).content) == 10_000


def test_logs_entries_carry_the_real_extra_fields_with_longer_bests_below_the_500m(tmp_path, http):
    spec = DeviceSpec(id=470, tracks=[TrackSpec(start=START, duration_s=5400, size=300_000, best500_knots=20)])
    with run_fleet(tmp_path, spec) as fleet:
        [entry] = http.get(fleet.url(470, "/logs.json")).json()["logs"]
        assert (entry["mode"], entry["timezone"]) == (0, 60)
        assert [entry[k] for k in ("spot", "wind", "board", "sail", "fin")] == [""] * 5
        for best in ("1852m_best", "a500m_best", "1h_best"):
            assert 0 < entry[best] < entry["500m_best"], best
        assert entry["1h_best"] <= entry["1852m_best"]
        # the runs repeat all along, so the best hour is close to the whole track's mean speed
        assert entry["1h_best"] == pytest.approx(entry["distance"] / 5400, rel=0.05)


def test_a_log_without_a_summary_lists_size_and_start_with_zeros_for_the_rest(tmp_path, http):
    spec = DeviceSpec(id=470, tracks=[TrackSpec(start=START, size=300_000, summary=False)])
    with run_fleet(tmp_path, spec) as fleet:
        [entry] = http.get(fleet.url(470, "/logs.json")).json()["logs"]
        assert (entry["size"], entry["start_date"]) == (300_000, START.timestamp() * 1000)
        zeros = ("end_date", "duration", "distance", "2s_best", "10s_best", "500m_best",
                 "1852m_best", "a500m_best", "1h_best")
        assert {k: entry[k] for k in zeros} == dict.fromkeys(zeros, 0)
        path = tmp_path / "whole.oao"
        path.write_bytes(http.get(fleet.url(470, entry["file"])).content)
        assert integrity.verify_file(path)["size"] == 300_000        # the file itself is a whole track


def test_a_damaged_track_is_served_as_the_device_holds_it_and_fails_at_the_announced_byte(tmp_path, http):
    spec = DeviceSpec(id=470, tracks=[TrackSpec(start=START, size=400_000, damaged_at=0.4), TrackSpec(size=50_000)])
    with run_fleet(tmp_path, spec) as fleet:
        damaged, whole = http.get(fleet.url(470, "/logs.json")).json()["logs"]
        offset = fleet.damage_offset(470, damaged["file"])
        assert fleet.damage_offset(470, whole["file"]) is None
        assert 0.35 * 400_000 < offset < 0.45 * 400_000
        first = http.get(fleet.url(470, damaged["file"])).content
        again = http.get(fleet.url(470, damaged["file"])).content
        assert first == again == fleet.track_bytes(470, damaged["file"])
        assert len(first) == damaged["size"] == 400_000
        path = tmp_path / "damaged.oao"
        path.write_bytes(first)
        with pytest.raises(oao.OAOError, match=f"at byte {offset}$"):
            integrity.verify_file(path)
        # what follows the half frame is whole frames again: the firmware went on logging
        rest = tmp_path / "rest.oao"
        rest.write_bytes(first[offset + 20:])
        assert integrity.verify_file(rest)["last_ms"] == damaged["end_date"]
        assert (damaged["start_date"], damaged["duration"]) == (START.timestamp() * 1000, 3600_000)


def test_old_tracks_stay_on_a_device_but_out_of_the_roster(tmp_path, http):
    from jobs.sim.track_files import old_tracks
    earlier = old_tracks(3, 2024)
    assert [t.start.year for t in earlier] == [2024] * 3 and all(t.earlier_event for t in earlier)
    spec = DeviceSpec(id=470, tracks=earlier + [TrackSpec(start=START, size=10_000)])
    with run_fleet(tmp_path, spec) as fleet:
        files = [e["file"] for e in http.get(fleet.url(470, "/logs.json")).json()["logs"]]
        assert [f.split("/")[2] for f in files] == ["2024", "2024", "2024", "2026"]
        assert fleet.track_days(470) == [dt.date(2026, 7, 16)]
        listed = roster.load(fleet.roster_file)
        assert listed.entrant_for(470, dt.date(2026, 7, 16)) is not None
        assert listed.entrant_for(470, earlier[0].start.date()) is None


def test_roster_has_the_class_column_and_an_extra_file_for_spares_and_buoys(tmp_path):
    specs = [DeviceSpec(id=470, craft_class="Foil"), DeviceSpec(id=601),
             DeviceSpec(id=900, roster_file="extra", entrant={"Craft Type": "Buoy"}),
             DeviceSpec(id=901, in_roster=False)]
    with run_fleet(tmp_path, *specs) as fleet:
        main = fleet.roster_file.read_text().splitlines()
        assert main[0].split(",")[8:10] == ["Craft Type", "Class"]
        assert [line.split(",")[2] for line in main[1:]] == ["470", "601"]
        assert main[1].split(",")[9] == "Foil" and main[2].split(",")[9] == ""
        extra = fleet.extra_roster_file.read_text().splitlines()
        assert extra[0] == main[0] and [line.split(",")[2] for line in extra[1:]] == ["900"]
        assert not any(",901," in line for line in main + extra)       # the spare no row names
        assert roster.load(fleet.roster_file).devices() == [470, 601]
        written = yaml.safe_load(fleet.write_config(tmp_path / "ms.yaml").read_text())
        assert written["event"]["roster"] == [str(fleet.roster_file), str(fleet.extra_roster_file)]


def test_without_extra_devices_no_extra_roster_is_written_or_configured(tmp_path):
    with run_fleet(tmp_path, DeviceSpec(id=3)) as fleet:
        assert not fleet.extra_roster_file.exists()
        written = yaml.safe_load(fleet.write_config(tmp_path / "ms.yaml").read_text())
        assert written["event"]["roster"] == str(fleet.roster_file)


def test_devices_answer_with_real_firmware_and_hardware_names(tmp_path, http):
    specs = [DeviceSpec(id=520, hardware_code=101, username="WSW"),
             DeviceSpec(id=521, hardware_code=107, firmware_name="9010 (3232) Weymouth SW")]
    with run_fleet(tmp_path, *specs) as fleet:
        m8, m10 = (http.get(fleet.url(d)).json()["motion"] for d in (520, 521))
        assert (m8["hardware"], m8["firmware"]["name"], m8["username"]) == (
            {"code": 101, "name": "Wireless Mini M8"}, "9008 Weymouth SW (3232)", "WSW")
        assert (m10["hardware"]["code"], m10["firmware"]["name"]) == (107, "9010 (3232) Weymouth SW")
        assert (m8["wifi"], m8["battery"]["charging"]) == ("station", False)
        settings = http.get(fleet.url(520, "/settings.json")).json()["settings"]
        assert "custom_led" not in settings and settings["hardware"]["code"] == "101"
        assert {w["trust"] for w in settings["wifi"]} == {"0", "1"}
        assert (settings["gnss_rate"], settings["one_log_per_day"], settings["speed_unit"],
                settings["distance_unit"]) == ("5", "0", "kn", "km")


# --- the network around the devices ----------------------------------------

def test_a_device_refuses_connections_outside_its_online_window(tmp_path, http):
    early = one_track(1)
    visitor = DeviceSpec(id=2, arrive=0.5, leave=2.0)
    with run_fleet(tmp_path, early, visitor) as fleet:
        assert not refused(fleet, 1)
        assert refused(fleet, 2)
        with pytest.raises(requests.ConnectionError):
            http.get(fleet.url(2), timeout=1)
        assert wait_until(lambda: not refused(fleet, 2))
        assert http.get(fleet.url(2)).json()["motion"]["identifier"] == 2
        assert wait_until(lambda: refused(fleet, 2))


def test_set_online_switches_a_device_off_and_back(tmp_path, http):
    with run_fleet(tmp_path, one_track(7), DeviceSpec(id=8, arrive=None)) as fleet:
        assert refused(fleet, 8)
        fleet.set_online(8, True)
        assert http.get(fleet.url(8)).status_code == 200
        fleet.set_online(7, False)
        assert refused(fleet, 7) and not fleet.online(7)
        fleet.set_online(7, True)
        assert http.get(fleet.url(7)).status_code == 200


def test_hosts_file_and_roster_are_readable_by_the_server_code(tmp_path):
    specs = [DeviceSpec(id=470, tracks=[TrackSpec(start=START), TrackSpec(start=START + dt.timedelta(days=2))]),
             DeviceSpec(id=601), DeviceSpec(id=602, in_roster=False)]
    with run_fleet(tmp_path, *specs) as fleet:
        hosts = device.read_hosts_file(fleet.hosts_file)
        assert hosts == {"motion-470": "127.0.1.1", "motion-601": "127.0.1.2", "motion-602": "127.0.1.3"}
        assert device.resolve(470, hosts) == fleet.address(470)
        listed = roster.load(fleet.roster_file)
        assert listed.warnings == [] and listed.devices() == [470, 601]
        entry = listed.entrant_for(470, dt.date(2026, 7, 17))
        assert (entry.start, entry.end, entry.file_id) == (dt.date(2026, 7, 16), dt.date(2026, 7, 18), "S470X")
        assert listed.entrant_for(601, dt.datetime.now(LONDON).date()) is not None
        assert fleet.roster_file.read_text().splitlines()[0].endswith(",Entry Type")


def test_a_track_added_while_running_is_served_and_its_day_joins_the_roster(tmp_path, http):
    with run_fleet(tmp_path, DeviceSpec(id=470, tracks=[TrackSpec(start=START, size=10_000)])) as fleet:
        entry = fleet.add_track(470, TrackSpec(start=START + dt.timedelta(days=1), size=20_000))
        assert http.get(fleet.url(470, "/logs.json")).json()["logs"][1] == entry
        assert len(http.get(fleet.url(470, entry["file"])).content) == 20_000
        assert roster.load(fleet.roster_file).entrant_for(470, dt.date(2026, 7, 17)).file_id == "S470X"


def test_a_large_roster_fleet_starts_with_only_the_present_devices_listening(tmp_path, http):
    specs = [DeviceSpec(id=1000 + n, arrive=0.0 if n % 10 == 0 else None) for n in range(300)]
    with run_fleet(tmp_path, *specs) as fleet:
        assert len(roster.load(fleet.roster_file).devices()) == 300
        assert http.get(fleet.url(1290)).json()["motion"]["identifier"] == 1290
        assert refused(fleet, 1291)
        assert sum(fleet.online(d) for d in fleet.devices) == 30


def test_write_config_is_a_valid_configuration_for_this_fleet(tmp_path):
    with run_fleet(tmp_path, DeviceSpec(id=3)) as fleet:
        path = fleet.write_config(tmp_path / "ms.yaml", **{"threads.download": 8, "intervals": {"detect": 0.2}})
        cfg = config.load(path)
        assert (cfg.network.port, cfg.network.hosts_file, cfg.event.roster) == (
            fleet.port, str(fleet.hosts_file), str(fleet.roster_file))
        assert cfg.threads.download == 8 and cfg.intervals.detect == 0.2 and cfg.intervals.download == 0.2
        assert cfg.paths.spool.startswith(str(tmp_path)) and cfg.event.timezone == "Europe/London"
        roster.load(cfg.event.roster)


def test_the_access_log_records_each_request(tmp_path, http):
    with run_fleet(tmp_path, one_track()) as fleet:
        http.get(fleet.url(470))
        http.get(fleet.url(470, first_file(fleet)), headers={"Range": "bytes=1000-"})
        accesses = fleet.accesses()  # waits for the last line: it is written after the last byte
        lines = [json.loads(line) for line in fleet.access_log.read_text().splitlines()]
        assert lines == accesses
        info, track = lines
        assert (info["device"], info["path"], info["status"], info["range"]) == (470, "/info.json", 200, None)
        assert (track["status"], track["bytes"], track["range"], track["complete"]) == (206, 199_000, 1000, True)
        assert all(isinstance(line["time"], float) for line in lines)


# --- Range and bandwidth -----------------------------------------------------

def test_range_is_honoured_with_206_and_content_range(tmp_path, http):
    with run_fleet(tmp_path, one_track()) as fleet:
        whole = fleet.track_bytes(470, first_file(fleet))
        answer = http.get(fleet.url(470, first_file(fleet)), headers={"Range": "bytes=150000-"})
        assert answer.status_code == 206
        assert answer.headers["Content-Range"] == f"bytes 150000-{len(whole) - 1}/{len(whole)}"
        assert answer.content == whole[150000:]
        beyond = http.get(fleet.url(470, first_file(fleet)), headers={"Range": f"bytes={len(whole)}-"})
        assert beyond.status_code == 416


def test_range_is_ignored_when_the_device_does_not_support_it(tmp_path, http):
    with run_fleet(tmp_path, one_track(faults={"range": False})) as fleet:
        answer = http.get(fleet.url(470, first_file(fleet)), headers={"Range": "bytes=150000-"})
        assert answer.status_code == 200 and "Content-Range" not in answer.headers
        assert answer.content == fleet.track_bytes(470, first_file(fleet))


def test_the_rate_limits_a_track_transfer(tmp_path, http):
    with run_fleet(tmp_path, one_track(size=100_000, rate=400_000)) as fleet:
        began = time.monotonic()
        assert len(http.get(fleet.url(470, first_file(fleet))).content) == 100_000
        assert time.monotonic() - began >= 0.2       # 100 kB at 400 kB/s cannot take less than 0.25 s


# --- faults -----------------------------------------------------------------

def test_http500_on_a_path(tmp_path, http):
    with run_fleet(tmp_path, one_track(faults={"http500": "/logs.json"})) as fleet:
        assert http.get(fleet.url(470, "/logs.json")).status_code == 500
        assert http.get(fleet.url(470, "/info.json")).status_code == 200
        fleet.device(470).faults["http500"] = "tracks"
        assert http.get(fleet.url(470, first_file(fleet))).status_code == 500
        assert http.get(fleet.url(470, "/logs.json")).status_code == 200


def raw_get(fleet, path, device_id=470, timeout=3.0):
    """A plain http.client request: the body can be read piece by piece, partial bodies kept."""
    connection = httpclient.HTTPConnection(fleet.address(device_id), fleet.port, timeout=timeout)
    connection.request("GET", path)
    return connection, connection.getresponse()


def test_truncate_sends_n_bytes_then_closes(tmp_path):
    with run_fleet(tmp_path, one_track(faults={"truncate": 1000})) as fleet:
        connection, answer = raw_get(fleet, first_file(fleet))
        assert answer.getheader("Content-Length") == "200000"
        with pytest.raises(httpclient.IncompleteRead) as cut:
            answer.read()
        assert len(cut.value.partial) == 1000
        connection.close()
        assert wait_until(lambda: fleet.accesses())
        assert (fleet.accesses()[-1]["bytes"], fleet.accesses()[-1]["complete"]) == (1000, False)


def test_stall_pauses_after_half_the_body(tmp_path, http):
    with run_fleet(tmp_path, one_track(faults={"stall": 2.0})) as fleet:
        connection, answer = raw_get(fleet, first_file(fleet), timeout=0.5)
        assert len(answer.read(100_000)) == 100_000
        with pytest.raises(TimeoutError):
            answer.read(1)
        connection.close()
        fleet.device(470).faults.clear()
        assert len(http.get(fleet.url(470, first_file(fleet)), timeout=(1, 0.5)).content) == 200_000


def test_delay_holds_back_the_answer_of_a_json(tmp_path, http):
    with run_fleet(tmp_path, one_track(faults={"delay": 1.0, "delay_path": "/info.json"})) as fleet:
        with pytest.raises(requests.exceptions.ReadTimeout):
            http.get(fleet.url(470), timeout=(1, 0.3))
        assert http.get(fleet.url(470, "/settings.json"), timeout=(1, 0.3)).status_code == 200


def test_bad_json_is_malformed(tmp_path, http):
    with run_fleet(tmp_path, one_track(faults={"bad_json": "/info.json"})) as fleet:
        answer = http.get(fleet.url(470))
        assert answer.status_code == 200
        with pytest.raises(ValueError):
            json.loads(answer.content)
        assert http.get(fleet.url(470, "/logs.json")).json()["logs"]


def test_wrong_id_in_info_json(tmp_path, http):
    with run_fleet(tmp_path, one_track(faults={"wrong_id": 999})) as fleet:
        assert http.get(fleet.url(470)).json()["motion"]["identifier"] == 999


def test_hostile_paths_are_added_to_logs_json(tmp_path, http):
    hostile = ["../../etc/passwd", "/etc/passwd", "/logs/%2e%2e/x.oao"]
    with run_fleet(tmp_path, one_track(faults={"hostile_path": hostile})) as fleet:
        files = [e["file"] for e in http.get(fleet.url(470, "/logs.json")).json()["logs"]]
        assert files == [first_file(fleet)] + hostile
        assert http.get(fleet.url(470, "/logs.json")).json()["logs"][1]["size"] == 200_000


def test_oversized_json_is_valid_but_larger_than_the_cap(tmp_path, http):
    with run_fleet(tmp_path, one_track(faults={"oversized": "/logs.json"})) as fleet:
        body = http.get(fleet.url(470, "/logs.json")).content
        assert len(body) > 5_000_000
        assert json.loads(body)["logs"][0] == fleet.logs(470)[0]


def test_leaving_mid_download_cuts_the_transfer_and_refuses_until_rejoining(tmp_path, http):
    spec = one_track(faults={"leave_after_bytes": 50_000, "leave_for": 0.5})
    with run_fleet(tmp_path, spec) as fleet:
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            http.get(fleet.url(470, first_file(fleet))).content
        assert refused(fleet, 470)
        assert wait_until(lambda: not refused(fleet, 470))
        del fleet.device(470).faults["leave_after_bytes"]
        resumed = http.get(fleet.url(470, first_file(fleet)), headers={"Range": "bytes=50000-"})
        assert resumed.status_code == 206 and len(resumed.content) == 150_000
        cut = fleet.accesses()[0]
        assert (cut["bytes"], cut["complete"]) == (50_000, False)


def test_a_scheduled_leave_cuts_a_slow_transfer_in_progress(tmp_path, http):
    with run_fleet(tmp_path, one_track(rate=100_000, leave=0.5)) as fleet:
        with pytest.raises(requests.RequestException):
            http.get(fleet.url(470, first_file(fleet)), timeout=3).content
        assert refused(fleet, 470)
        assert 0 < fleet.accesses()[0]["bytes"] < 200_000


def test_sim_command_serves_devices_and_stops_on_sigterm(tmp_path, motion_server):
    cwd = REPO
    process = subprocess.Popen(motion_server + ["sim", "--devices", "3", "--duration", "30", "--port", "0",
                                                "--folder", str(tmp_path / "fleet")],
                               cwd=cwd, stdout=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        port = int(first.split(" on port ")[1].split(",")[0])
        session = requests.Session()
        session.trust_env = False
        assert session.get(f"http://127.0.1.1:{port}/info.json").json()["motion"]["identifier"] == 101
        config.load(tmp_path / "fleet" / "motion-server.yaml")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not device.probe("127.0.1.1", port, 0.5)
    finally:
        process.kill()
        process.wait()
