"""Where the files shipped beside the code are: templates, the example
configuration, the systemd units, crontabs and the logrotate file.

One lookup for every command. In a source tree (and an editable install) they
are the checkout's top-level folders and files; a wheel has no source tree, so
setup.py copies the same names into the package as jobs/share/.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
ROOT = _PACKAGE / "share" if (_PACKAGE / "share").is_dir() else _PACKAGE.parent

# What setup.py copies into jobs/share/ and MANIFEST.in puts in the sdist.
FILES = ("templates", "motion-server.example.yaml", "systemd", "cron.d", "crontab.example", "logrotate.d",
         "LICENSE")


def path(name):
    """The shipped file or folder `name` (one of FILES, or a path inside one)."""
    return ROOT / name


TEMPLATES = path("templates")
