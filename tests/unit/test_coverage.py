"""The knowledge base keeps its promise: what the pages show was executed or validated.

Issue 9's floor: at least 90 % of all code blocks executed or validated, at least 40 % of the
shell blocks executed by labs in CI, and every block that is not checked says why.
"""

from pathlib import Path

from opslabs.blocks.report import check_and_report
from opslabs.load import load_catalog

REPO = Path(__file__).resolve().parents[2]


def test_code_blocks_are_executed_or_validated_and_every_other_one_says_why():
    report, problems = check_and_report(load_catalog(REPO / "labs"), report_path=None, cache_path=REPO / ".opslabs/cache/blocks.json")
    assert not problems, "\n".join(map(str, problems[:20]))
    total = report["coverage"]["total"]
    assert total["checked_percent"] >= 90, total
    assert total["shell_executed_percent"] >= 40, total
    for block in report["blocks"]:
        if block["status"] in ("unchecked", "fragment"):
            assert block["reason"].strip(), f"{block['file']}:{block['line']} is {block['status']} without a reason"
    inventory = report["coverage"]["not_executed"]
    assert len(inventory) == total["total"] - total["executed"]
    assert all(row["why_not_executed"] for row in inventory)
