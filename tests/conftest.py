"""The pytest fixtures every layer shares; what they are built from is in tests/builders.py."""

import logging
import os
import sys

import pytest

# builders' asserts (wait_until, download_once, run_once) explain themselves as a test's do.
pytest.register_assert_rewrite("tests.builders")

from tests.builders import (REAL_FIXTURES, close_motion_log, craft_dashboard_event, fixture_folder,
                            make_expired_spool, make_report_day)


@pytest.fixture(scope="session")
def fixtures():
    """The simulator-made fixture folder (see fixture_folder)."""
    return fixture_folder()


@pytest.fixture(scope="session")
def real_fixtures():
    """../shared/fixtures (real recorded tracks) when it is beside the checkout.

    A clone alone skips the tests that need it; CI has it, so there a missing
    folder is a failure, never a quiet skip.
    """
    if not (REAL_FIXTURES / "oao").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: real recorded tracks expected in {REAL_FIXTURES}")
        pytest.skip(f"real recorded tracks not here ({REAL_FIXTURES} is beside a CI checkout only)")
    return REAL_FIXTURES


@pytest.fixture
def motion_server():
    """The command line as cron runs it: this venv's motion-server."""
    return [sys.executable, "-m", "jobs"]


@pytest.fixture
def env_no_proxy(monkeypatch):
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
    return os.environ


# --- the motion logger's lines -----------------------------------------------------------

@pytest.fixture
def motion_log(caplog, monkeypatch):
    """caplog holding every line of the motion logger (the stages' log), once each,
    DEBUG and up, whatever the logging set-up of earlier tests (after log.setup
    the logger does not propagate, so caplog alone would see nothing)."""
    logger = logging.getLogger("motion")
    monkeypatch.setattr(logger, "propagate", False)
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="motion")
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def closes_motion_log():
    """For tests that set up the log in this process (cli.main, runner.run): they
    leave no handler behind for later tests to write to
    (pytestmark = pytest.mark.usefixtures("closes_motion_log"))."""
    yield
    close_motion_log()


# --- crafted days, written here rather than by the stages -----------------------------------

@pytest.fixture
def expired_spool(tmp_path):
    """A spool, log and tracks folder with things 10 days old and fresh:
    (config path, tmp_path, old day, new day, track day)."""
    return make_expired_spool(tmp_path)


@pytest.fixture
def crafted_dashboard_event(tmp_path):
    """(cfg, roster) of the event craft_dashboard_event writes: every kind of device the dashboard shows."""
    cfg, event_roster = craft_dashboard_event(tmp_path)
    return cfg, event_roster


@pytest.fixture
def report_day(tmp_path):
    """A day of ledgers and files, written here rather than by the stages: (cfg, tracks folder)."""
    return make_report_day(tmp_path)
