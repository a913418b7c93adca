"""Build hook: every build (wheel, sdist-to-wheel, editable) first installs the browser assets with
`npm ci` from frontend/package-lock.json and copies them into the package (scripts/vendor-frontend.py),
so a wheel carries them while the repository never commits them. Everything else is in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithFrontend(build_py):
    def run(self):
        # Before build_py lists the package data, so the generated files are in the wheel.
        subprocess.run([sys.executable, str(ROOT / "scripts" / "vendor-frontend.py")], check=True)
        super().run()


setup(cmdclass={"build_py": BuildPyWithFrontend})
