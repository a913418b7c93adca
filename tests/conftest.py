import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO

# YAML labs under fixtures/ are inputs of the tests, not tests of their own.
collect_ignore_glob = ["*/fixtures/*"]
