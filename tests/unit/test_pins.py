"""Package pins in guide snippets are compared with the real registries (PyPI, npm, Debian)."""

from pathlib import Path

import pytest

from opslabs.blocks.extract import Block
from opslabs.blocks.fence import Fence
from opslabs.blocks.pins import check_pins, find_pins


def block(text: str) -> Block:
    return Block("area/task", Path("labs/area/task.yaml"), 10, 1, Fence("bash"), text)


def test_pins_are_found_in_pip_npm_and_apt_commands_only():
    pins = find_pins([block(
        "pip install -q 'pre-commit==4.5.1' requests\n"
        "python3 -m pip download \"PyYAML==6.0.3\" -d /w\n"
        "npx --yes @redocly/cli@2.77.0 lint && npm install --save-dev newman@6.2.2\n"
        "sudo apt-get install -y trivy=0.75.0 curl\n"
        "echo name==1.0 version=2\n"
        'pip install "apache-airflow==${AIRFLOW_VERSION}"\n')])
    assert [(p.registry, p.name, p.version) for p in pins] == [
        ("pypi", "pre-commit", "4.5.1"), ("pypi", "PyYAML", "6.0.3"), ("npm", "@redocly/cli", "2.77.0"),
        ("npm", "newman", "6.2.2"), ("debian", "trivy", "0.75.0")]


def test_a_pin_the_registry_no_longer_serves_fails_and_a_served_one_passes():
    results = check_pins(find_pins([block("pip install PyYAML==6.0.3 PyYAML==99.0.0\nnpm install left-pad@1.3.0 left-pad@99.0.0\n")]))
    if any(r.status == "skipped" for r in results):
        pytest.skip(f"a registry cannot be reached here: {[r.detail for r in results if r.status == 'skipped'][0]}")
    assert [r.status for r in results][1::2] == ["missing", "missing"]
    assert "pypi does not serve PyYAML==99.0.0" in results[1].detail
    assert all(r.status in ("current", "newer") for r in results[0::2])
