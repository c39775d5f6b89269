"""Builds the wheel with the files shipped beside the code inside the package.

The templates, example configuration, systemd units, crontabs, logrotate file
and licence stay at the top of the source tree (the layout the project is read
by); an installed package has no source tree, so a wheel carries them as
jobs/share/, where jobs/shipped.py looks first. Everything else is in
pyproject.toml.
"""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from jobs.shipped import FILES  # noqa: E402  (the one list of what ships)


class BuildWithShippedFiles(build_py):
    def run(self):
        super().run()
        if not self.editable_mode:  # an editable install reads them in place
            share = Path(self.build_lib) / "jobs" / "share"
            shutil.rmtree(share, ignore_errors=True)
            share.mkdir(parents=True)
            for name in FILES:
                source = HERE / name
                if source.is_dir():
                    shutil.copytree(source, share / name, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(source, share / name)


setup(cmdclass={"build_py": BuildWithShippedFiles})
