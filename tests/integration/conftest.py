import json
import subprocess
import sys
from pathlib import Path

import pytest

from opslabs import engine

FIXTURES = Path(__file__).parent / "fixtures"
LABS = FIXTURES / "labs"
BROKEN = FIXTURES / "broken" / "labs"


@pytest.fixture(scope="session", autouse=True)
def docker_engine():
    """Integration tests need the real engine; `make test` starts one (opslabs engine ensure)."""
    if not engine.engine_answers():
        pytest.fail("no Docker engine answers: run `opslabs engine ensure` first (make test does)")


def opslabs(*args: str, labs: Path = LABS, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "opslabs", "--labs", str(labs), *args],
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def leftovers(run_filter: dict | None = None) -> tuple[list, list]:
    """Containers and networks of opslabs runs (workshop labs excluded)."""
    containers = [c for c in engine.find("container", run_filter or {}) if c.get(f"{engine.LABEL}.kind") != "workshop"]
    networks = [n for n in engine.find("network", run_filter or {}) if n.get(f"{engine.LABEL}.kind") != "workshop"]
    return containers, networks


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
