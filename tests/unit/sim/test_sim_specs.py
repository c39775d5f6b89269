"""The simulated fleet behaves like real devices, faults included, checked with plain requests.

These run in this process on files only; the tests that run the fleet on loopback
are in tests/integration/sim/test_sim.py.
"""

import datetime as dt

import pytest

from jobs.sim import DeviceSpec, scenario
from jobs.sim.scenario import ScenarioError


def test_per_device_rates_spread_around_the_real_median():
    from jobs.sim.fleet import MEDIAN_RATE, spread_rate, spread_rates
    rates = [spread_rate(d) for d in range(520, 1046)]
    assert rates == [spread_rate(d) for d in range(520, 1046)]          # the same every run
    mib = 1 << 20
    assert 0.5 * mib <= min(rates) and max(rates) <= 1.3 * mib + 1
    assert 0.6 * mib < sorted(rates)[len(rates) // 2] < 0.8 * mib
    specs = spread_rates([DeviceSpec(id=1), DeviceSpec(id=2, rate=5.0), DeviceSpec(id=3, rate=0)])
    assert [s.rate for s in specs] == [spread_rate(1, MEDIAN_RATE), 5.0, 0]


def test_addresses_move_to_the_next_block_after_254_devices():
    from jobs.sim.fleet import address_for
    assert [address_for(i) for i in (0, 253, 254, 299)] == ["127.0.1.1", "127.0.1.254", "127.0.2.1", "127.0.2.46"]


# --- scenario files and the command line ------------------------------------

def test_a_scenario_file_describes_devices_tracks_and_faults(tmp_path, fixtures):
    path = tmp_path / "fleet.yaml"
    path.write_text(f"""
timezone: Europe/London
devices:
  - id: 470
    firmware: old
    faults: {{stall: 5}}
    tracks:
      - start: 2026-07-16T13:02:00+01:00
        size: 100000
      - source: {fixtures}/oao/0470_2022-07-16-1202.oao
  - id: 601
    count: 3
    arrive: 10
    tracks: 2
""")
    specs, options = scenario.load(path)
    assert [s.id for s in specs] == [470, 601, 602, 603]
    assert specs[0].tracks[0].start == dt.datetime(2026, 7, 16, 12, 2, tzinfo=dt.timezone.utc)
    assert specs[0].faults == {"stall": 5} and specs[3].arrive == 10 and len(specs[3].tracks) == 2
    path.write_text("- id: 5\n  batery: 3\n")
    with pytest.raises(ScenarioError, match="device 1: unknown key 'batery'"):
        scenario.load(path)


def test_a_scenario_file_gives_the_real_shapes(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text("""
devices:
  - id: 520
    class: Foil
    timezone_minutes: 120
    hardware_code: 101
    old_tracks: {count: 2, year: 2024}
    tracks:
      - {start: "2026-07-16T13:02:00+01:00", summary: false}
      - {start: "2026-07-16T15:02:00+01:00", damaged_at: 0.5}
  - {id: 900, roster: extra}
  - {id: 901, in_roster: false}
""")
    specs, _ = scenario.load(path)
    spare, buoy, device_ = specs[2], specs[1], specs[0]
    assert (device_.craft_class, device_.timezone_minutes, device_.hardware_code) == ("Foil", 120, 101)
    assert [t.earlier_event for t in device_.tracks] == [True, True, False, False]
    assert [t.start.year for t in device_.tracks[:2]] == [2024, 2024]
    assert (device_.tracks[2].summary, device_.tracks[3].damaged_at) == (False, 0.5)
    assert buoy.roster_file == "extra" and spare.in_roster is False
    for bad, message in (("roster: spare", "roster: found 'spare'"), ("tracks: [{damaged_at: 2}]", "damaged_at"),
                         ("old_tracks: 3", "old_tracks: expected")):
        path.write_text(f"- id: 5\n  {bad}\n")
        with pytest.raises(ScenarioError, match=message):
            scenario.load(path)


def test_a_scenario_gives_a_device_shared_rows_in_the_roster(tmp_path):
    """A second entry under a virtual Motion ID (event.shared_devices); the fleet writing its row
    is tested on loopback in tests/integration/track/test_roster_truth.py."""
    path = tmp_path / "fleet.yaml"
    path.write_text('- {id: 806, shared_rows: [{Motion ID: 1806, Entrant ID: "1001F", Craft Type: Foil}], '
                    'arrive: null}\n')
    specs, _ = scenario.load(path)
    assert specs[0].shared_rows == [{"Motion ID": 1806, "Entrant ID": "1001F", "Craft Type": "Foil"}]
    path.write_text("- {id: 5, shared_rows: 1806}\n")
    with pytest.raises(ScenarioError, match="shared_rows: expected a list"):
        scenario.load(path)


def test_a_scenario_track_can_hold_suspect_data_and_a_drive_home(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text("- id: 5\n  tracks:\n    - {suspect_at: 0.5, drive_home_s: 600, drive_home_knots: 55}\n")
    specs, _ = scenario.load(path)
    track = specs[0].tracks[0]
    assert (track.suspect_at, track.drive_home_s, track.drive_home_knots) == (0.5, 600, 55)
    for bad, message in (("{suspect_at: 1.5}", "suspect_at"), ("{drive_home_s: -1}", "drive_home_s"),
                         ("{drive_home_knots: fast}", "drive_home_knots"),
                         ("{source: x.oao, suspect_at: 0.5}", "suspect_at")):
        path.write_text(f"- id: 5\n  tracks:\n    - {bad}\n")
        with pytest.raises(ScenarioError, match=message):
            scenario.load(path)
