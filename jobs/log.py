"""One log file for every job: one line per event, safe for many writers.

Each line goes to the file in a single write(2) on an O_APPEND descriptor, so
lines from concurrent processes never interleave mid-line. The handler reopens
the file when logrotate moves it away (WatchedFileHandler's check).

Format: time level stage device message, e.g.
    2026-07-16 13:02:40 INFO download 470 ALD470ANN_470_20260716_130240.oao ...
"""

import getpass
import logging
import os
import sys
import time
from logging.handlers import WatchedFileHandler
from pathlib import Path

from jobs.units import cut, printable

FORMAT = "%(asctime)s %(levelname)s %(stage)s %(device)s %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"


class _Fields(logging.Filter):
    """Every line has a stage and a device column, '-' when there is none."""

    def filter(self, record):
        if not hasattr(record, "stage"):
            record.stage = record.name.rpartition(".")[2] if record.name.startswith("motion.") else "-"
        if not hasattr(record, "device"):
            record.device = "-"
        return True


class _Printable(logging.Formatter):
    """Every control character a line holds shown escaped (a device's text reaches the log
    in Content-Lengths and error messages): the log and the terminal stay the operator's."""

    def format(self, record):
        return printable(super().format(record))


class AppendHandler(WatchedFileHandler):
    def emit(self, record):
        try:
            line = (self.format(record).replace("\n", " | ") + "\n").encode("utf-8", "backslashreplace")
            self.reopenIfNeeded()
            if self.stream is None:
                self.stream = self._open()
            os.write(self.stream.fileno(), line)
        except Exception:
            self.handleError(record)


def setup(cfg, console=True, errors_to_stderr=True, make_folder=True):
    """Send every motion.* logger to the shared file, and to stderr: every line
    when `console` (a terminal), else errors only. Under cron and systemd
    stderr is what gets mailed or kept in the journal: the errors, once each,
    and not a second copy of the whole log. A command that prints its own
    findings (verify, retry) asks for no stderr at all: they would be said twice.
    Without `make_folder` the file is written only into a log folder that exists
    (a command that only looks must not leave a spool behind)."""
    root = logging.getLogger("motion")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.propagate = False
    formatter = _Printable(FORMAT, DATEFMT)
    handlers = []
    if make_folder:
        Path(cfg.paths.log).parent.mkdir(parents=True, exist_ok=True)
    if Path(cfg.paths.log).parent.is_dir():
        to_file = AppendHandler(cfg.paths.log, encoding="utf-8")
        to_file.setLevel(cfg.log.level)
        handlers.append(to_file)
    if console or errors_to_stderr:
        to_console = logging.StreamHandler(sys.stderr)
        to_console.setLevel(cfg.log.console_level if console else logging.ERROR)
        handlers.append(to_console)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_Fields())
        root.addHandler(handler)
    # The logger passes on only what some handler keeps: a debug line nobody
    # wants is then not even made (detect would make 900 a sweep).
    if not handlers:                 # else logging's last resort would print warnings to stderr
        handlers.append(logging.NullHandler(logging.CRITICAL + 1))
    root.setLevel(min(handler.level for handler in handlers))
    return root


def is_set_up():
    """Whether `setup` gave this process the log file."""
    return any(isinstance(h, AppendHandler) for h in logging.getLogger("motion").handlers)


def append_line(path, level, stage, message):
    """One line straight into the log file, for what happens before `setup` can
    run (a configuration with a mistake in it). Only into a log folder that
    exists: a mistaken configuration creates nothing."""
    line = f"{time.strftime(DATEFMT)} {level} {stage} - {message}".replace("\n", " | ") + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        os.write(fd, line.encode("utf-8", "backslashreplace"))
    finally:
        os.close(fd)
    return True


def get(stage):
    """The logger of one stage; pass the device as extra={'device': id}."""
    return logging.getLogger(f"motion.{stage}")


def for_device(stage, device):
    """A logger whose lines all carry `device`."""
    return logging.LoggerAdapter(get(stage), {"device": device})


def quoted(text, limit=80):
    """Device-supplied text, quoted and cut, safe on one log line."""
    return repr(cut(text, limit))


def who():
    """The person at the keyboard, for the log lines of the commands a person runs:
    $USER, else the login name."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):   # no such user in the password database (a container)
        return f"uid {os.getuid()}"
