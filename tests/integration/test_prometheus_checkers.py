"""promtool and amtool (Debian's packages, in a container when not on this machine) judge
Prometheus and Alertmanager blocks: each accepts a good block and fails the same block tampered."""

import pytest

from opslabs.blocks.checkers.base import Item
from opslabs.blocks.checkers.registry import checker_for

RULES = "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n        for: 5m\n"
CONFIG = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['localhost:9100']\n"
ALERTMANAGER = "route:\n  receiver: team\nreceivers:\n  - name: team\n"


@pytest.mark.parametrize("label,good,bad", [
    ("promtool check rules", RULES, RULES.replace("up == 0", "up === 0")),
    ("promtool check config", CONFIG, CONFIG.replace("15s", "15 seconds")),
    ("amtool check-config", ALERTMANAGER, ALERTMANAGER.replace("receiver: team", "receiver: nobody")),
])
def test_prometheus_tools_accept_good_blocks_and_fail_tampered_ones(label, good, bad):
    checker = checker_for("yaml")
    accepted, tampered = checker.judge(Item(good, "yaml")), checker.judge(Item(bad, "yaml"))
    assert (accepted.checker, accepted.unchecked, accepted.findings) == (label, "", ())
    assert tampered.checker == label and not tampered.unchecked
    assert tampered.findings, f"{label} passed a tampered block"
