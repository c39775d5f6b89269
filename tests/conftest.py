import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture
def fixtures():
    return FIXTURES


@pytest.fixture
def motion_server():
    """The command line as cron runs it: this venv's motion-server."""
    return [sys.executable, "-m", "jobs"]


def write_config(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def env_no_proxy(monkeypatch):
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
    return os.environ
