"""Bad configuration gets one clear error naming the file and key, exit status 2.

Those that need sockets, processes or the simulated fleet are in
tests/integration/test_config_cli.py.
"""


import pytest

from jobs import config
from jobs.config import ConfigError


def load_text(tmp_path, text):
    path = tmp_path / "motion-server.yaml"
    path.write_text(text)
    return config.load(path)


def test_defaults_without_a_file(tmp_path):
    cfg = config.load(cwd=tmp_path)
    assert cfg.network.port == 80
    assert cfg.paths.spool == str(tmp_path / "spool")
    assert cfg.paths.tracks == str(tmp_path / "spool" / "tracks")
    assert cfg.filters.min_500m_knots == 1.0  # light-wind sessions are real sessions
    assert cfg.checks.approved_firmwares == []  # not checked unless the event lists them
    assert cfg.origin == "built-in defaults"


def test_motion_server_yaml_in_the_working_directory_is_used(tmp_path):
    (tmp_path / "motion-server.yaml").write_text("network:\n  port: 8080\n")
    assert config.load(cwd=tmp_path).network.port == 8080


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    folder = tmp_path / "event"
    folder.mkdir()
    cfg = load_text(folder, "event:\n  roster: motions.csv\npaths:\n  spool: data/spool\n")
    assert cfg.event.roster == str(folder / "motions.csv")
    assert cfg.paths.spool == str(folder / "data" / "spool")


def test_a_good_file_is_read_whole(tmp_path):
    cfg = load_text(tmp_path, """
event: {name: Speed Week, timezone: Europe/London}
network: {port: 8081, not_found_addresses: [10.10.10.10, 10.0.0.1], probe_timeout: 1}
threads: {download: 16}
checks: {settings: {gnss_rate: 10}}
""")
    assert cfg.event.name == "Speed Week"
    assert str(cfg.tz) == "Europe/London"
    assert cfg.network.probe_timeout == 1.0 and isinstance(cfg.network.probe_timeout, float)
    assert cfg.threads.download == 16
    assert cfg.checks.settings == {"gnss_rate": "10", "one_log_per_day": "0", "timezone": "60", "led_flash": "1"}


def test_event_keys_for_a_real_event(tmp_path):
    cfg = load_text(tmp_path, """
event:
  roster: [motions.csv, motions-extra.csv]
  extra_devices: ["500-503", 1203, "1203"]
  first_day: 2026-07-12
  last_day: "2026-07-18"
checks: {settings: {led_flash: ~, speed_unit: kn}}
""")
    assert cfg.event.roster == [str(tmp_path / "motions.csv"), str(tmp_path / "motions-extra.csv")]
    assert cfg.event.extra_devices == [500, 501, 502, 503, 1203]
    assert (cfg.event.first_day, cfg.event.last_day) == ("2026-07-12", "2026-07-18")
    assert cfg.checks.settings == {"gnss_rate": "5", "one_log_per_day": "0", "timezone": "60", "speed_unit": "kn"}


@pytest.mark.parametrize("text, key, expected", [
    ("netwrk:\n  port: 80\n", "netwrk", "unknown key"),
    ("network:\n  prot: 80\n", "network.prot", "unknown key"),
    ("network:\n  port: eighty\n", "network.port", "expected a whole number"),
    ("network:\n  port: 70000\n", "network.port", "expected a port number"),
    ("network:\n  port: true\n", "network.port", "expected a whole number"),
    ("network:\n  probe_timeout: soon\n", "network.probe_timeout", "expected a number"),
    ("network:\n  probe_timeout: 0\n", "network.probe_timeout", "above 0"),
    ("network:\n  not_found_addresses: [nowhere]\n", "network.not_found_addresses", "IP addresses"),
    ("network:\n  not_found_addresses: 10.10.10.10\n", "network.not_found_addresses", "a list"),
    ("event:\n  timezone: Mars/Olympus\n", "event.timezone", "IANA time zone"),
    ("event:\n  roster: [a, 5]\n", "event.roster", "a list of file names"),
    ("event:\n  roster: []\n", "event.roster", "a list of file names"),
    ("event:\n  extra_devices: [500-]\n", "event.extra_devices", "a range such as 500-1100"),
    ("event:\n  extra_devices: [1100-500]\n", "event.extra_devices", "low <= high"),
    ("event:\n  extra_devices: [1-20000]\n", "event.extra_devices", "at most 10000"),
    ("event:\n  first_day: soon\n", "event.first_day", "a date YYYY-MM-DD"),
    ("checks:\n  required_settings: [gnss]\n", "checks.required_settings", "names from gnss_rate"),
    ("event: 5\n", "event", "expected a mapping"),
    ("threads:\n  download: 0\n", "threads.download", "above 0"),
    ("threads:\n  download: 2.5\n", "threads.download", "whole number"),
    ("intervals:\n  detect: -1\n", "intervals.detect", "above 0"),
    ("checks:\n  settings:\n    gnss: 5\n", "checks.settings.gnss", "unknown key"),
    ("retention:\n  tracks: sometimes\n", "retention.tracks", "true or false"),
    ("log:\n  level: LOUD\n", "log.level", "one of DEBUG"),
    ("dashboard:\n  listen: 8080\n", "dashboard.listen", "a string"),
    ("dashboard:\n  listen: everywhere\n", "dashboard.listen", "host:port"),
    ("- just\n- a list\n", "top level", "expected a mapping"),
    ("spool:\n  lease_s: 0\n", "spool.lease_s", "at least 60 seconds"),
    ("spool:\n  lease_s: -5\n", "spool.lease_s", "at least 60 seconds"),
    ("spool:\n  lease_s: 59.9\n", "spool.lease_s", "at least 60 seconds"),
    ("dashboard:\n  max_clients: 0\n", "dashboard.max_clients", "from 1 to 1000"),
    ("dashboard:\n  max_clients: 2.5\n", "dashboard.max_clients", "a whole number"),
    ("limits:\n  max_track_bytes: 0\n", "limits.max_track_bytes", "above 0"),
    ("limits:\n  max_log_entries: lots\n", "limits.max_log_entries", "a whole number"),
])
def test_each_kind_of_mistake_names_file_key_and_expectation(tmp_path, text, key, expected):
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, text)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "motion-server.yaml") + ": ")
    assert key in message and expected in message


def test_limits_and_the_lease_have_working_defaults(tmp_path):
    cfg = config.load(cwd=tmp_path)
    assert cfg.limits.max_track_bytes == 200_000_000 and cfg.limits.max_log_entries == 1000
    assert cfg.dashboard.max_clients == 64
    assert load_text(tmp_path, "spool:\n  lease_s: 60\n").spool.lease_s == 60.0


def test_broken_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"line 2, column \d+: not valid YAML"):
        load_text(tmp_path, "event:\n  name: a: b\n")


def test_a_missing_file_is_an_error_not_defaults(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        config.load(tmp_path / "nope.yaml")


def test_the_example_config_is_valid_and_complete(tmp_path):
    from tests.builders import REPO
    cfg = config.load(REPO / "motion-server.example.yaml")
    example = (REPO / "motion-server.example.yaml").read_text()
    for section, keys in config.DEFAULTS.items():
        for key in keys:
            assert f"{key}:" in example, f"{section}.{key} is not documented in the example"
    assert cfg.network.port == 80


def test_event_sessions_a_default_and_per_date_lists_and_the_old_session_as_the_default(tmp_path):
    import datetime as dt

    path = tmp_path / "m.yaml"
    path.write_text("event:\n  timezone: Europe/London\n  session: ['09:00', '17:00']\n"
                    "  sessions:\n    2025-10-11: ['11:00-12:30', '13:30-16:00']\n"
                    "  course: [[50.5, -2.5], [50.6, -2.5], [50.6, -2.4]]\n")
    cfg = config.load(path)
    london = dt.timezone(dt.timedelta(hours=1))
    assert config.session_windows(cfg, dt.date(2025, 10, 11)) == [
        (dt.datetime(2025, 10, 11, 11, tzinfo=london).timestamp(), dt.datetime(2025, 10, 11, 12, 30, tzinfo=london).timestamp()),
        (dt.datetime(2025, 10, 11, 13, 30, tzinfo=london).timestamp(), dt.datetime(2025, 10, 11, 16, tzinfo=london).timestamp())]
    # No list for the date and no default: the old event.session is the day's one window.
    assert config.session_windows(cfg, dt.date(2025, 10, 12)) == [
        (dt.datetime(2025, 10, 12, 9, tzinfo=london).timestamp(), dt.datetime(2025, 10, 12, 17, tzinfo=london).timestamp())]
    assert cfg.event.course == [[50.5, -2.5], [50.6, -2.5], [50.6, -2.4]]


@pytest.mark.parametrize("text, key", [
    ("  sessions:\n    default: ['16:00-10:00']\n", "event.sessions.default"),
    ("  sessions:\n    default: ['10-16']\n", "event.sessions.default"),
    ("  sessions:\n    monday: ['10:00-16:00']\n", "event.sessions.monday"),
    ("  sessions:\n    default: '10:00-16:00'\n", "event.sessions.default"),
    ("  course: [[50.5, -2.5], [50.6, -2.5]]\n", "event.course"),
    ("  course: [[95, -2.5], [50.6, -2.5], [50.6, -2.4]]\n", "event.course"),
])
def test_a_bad_session_window_or_course_is_named(tmp_path, text, key):
    path = tmp_path / "m.yaml"
    path.write_text("event:\n" + text)
    with pytest.raises(config.ConfigError, match=key.replace(".", r"\.")):
        config.load(path)
