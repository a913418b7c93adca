#!/usr/bin/env python3
"""Install the browser assets from frontend/package-lock.json (`npm ci`) and copy the files the
package serves into src/opslabs/web/static/vendor/ (generated, never committed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FRONTEND = ROOT / "frontend"
VENDOR = ROOT / "src" / "opslabs" / "web" / "static" / "vendor"
# node_modules path -> name served under /static/vendor/
FILES = {
    "@xterm/xterm/lib/xterm.js": "xterm.js",
    "@xterm/xterm/css/xterm.css": "xterm.css",
    "@xterm/addon-fit/lib/addon-fit.js": "addon-fit.js",
    "axe-core/axe.min.js": "axe.min.js",  # only the browser tests inject it; not served by the web app
}


def main() -> int:
    modules = FRONTEND / "node_modules"
    lock = FRONTEND / "package-lock.json"
    stamp = modules / ".package-lock.json"  # npm writes it on every install
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        if shutil.which("npm") is None:
            print("error: npm is needed to install the browser assets (Debian: apt-get install npm)", file=sys.stderr)
            return 1
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(FRONTEND)], check=True, timeout=600)
    VENDOR.mkdir(parents=True, exist_ok=True)
    for source, name in FILES.items():
        shutil.copyfile(modules / source, VENDOR / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
