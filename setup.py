"""Builds the wheel with the dashboard's templates inside the package.

The templates stay in the top-level templates/ folder of the source tree (the
layout the project is read by); an installed package has no source tree, so a
wheel carries them as jobs/templates/. jobs.stages.dashboard looks there first.
Everything else is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "templates"


class BuildWithTemplates(build_py):
    def run(self):
        super().run()
        if not self.editable_mode:  # an editable install reads templates/ in place
            target = Path(self.build_lib) / "jobs" / "templates"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(TEMPLATES, target)


setup(cmdclass={"build_py": BuildWithTemplates})
