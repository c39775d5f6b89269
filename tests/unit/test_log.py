"""One log file for every job: whole lines from many writers, logrotate-safe.

Those that need sockets, processes or the simulated fleet are in
tests/integration/test_log_processes.py.
"""

import logging
import os

from jobs import log
from tests.builders import log_config


def test_a_rotated_log_is_reopened(tmp_path):
    path = tmp_path / "motion-server.log"
    log.setup(log_config(path), console=False)
    log.get("detect").info("before rotation", extra={"device": 470})
    os.rename(path, tmp_path / "motion-server.log.1")
    log.get("detect").info("after rotation")
    assert "before rotation" in (tmp_path / "motion-server.log.1").read_text()
    assert path.read_text().endswith("INFO detect - after rotation\n")


def test_device_text_is_quoted_and_newlines_cannot_forge_lines(tmp_path):
    path = tmp_path / "motion-server.log"
    log.setup(log_config(path), console=False)
    log.get("inspect").warning("username %s", log.quoted("K888\n2026-01-01 INFO fake line"))
    assert len(path.read_text().splitlines()) == 1
    assert log.quoted("a" * 200).endswith("…'")


def test_a_debug_line_no_handler_keeps_is_not_even_made(tmp_path):
    path = tmp_path / "motion-server.log"
    log.setup(log_config(path), console=False)
    assert not log.get("detect").isEnabledFor(logging.DEBUG)   # detect skips 900 debug lines a sweep on this
    log.setup(log_config(path, level="DEBUG"), console=False)
    log.get("detect").debug("wanted now")
    assert path.read_text().endswith("DEBUG detect - wanted now\n")
