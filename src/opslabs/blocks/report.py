"""The stored block report (what `opslabs validate` and `verify` found) and the coverage table.

`mkdocs build` and `make serve` only read this file: they never need Docker or the linters.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from opslabs.blocks.check import STATUSES, Judged

from opslabs.blocks.fence import SHELLS
from opslabs.store.results import write_atomically

STATE = ".opslabs"  # beside the knowledge base folder: a run on another folder never touches this one's


def report_path_for(labs_root: Path) -> Path:
    return Path(labs_root).parent / STATE / "blocks.json"


def cache_path_for(labs_root: Path) -> Path:
    return Path(labs_root).parent / STATE / "cache" / "blocks.json"


def build_report(judged: list[Judged]) -> dict:
    blocks = [j.as_dict() for j in judged]
    return {"generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "blocks": blocks,
            "coverage": coverage(blocks)}


def write_report(path: Path, report: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps(report, indent=1))


def read_report(path: Path) -> dict:
    """The stored report; an absent or unreadable one means nothing was checked yet."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("blocks"), list) else {}


def by_page(report: dict) -> dict[str, dict[int, dict]]:
    pages: dict[str, dict[int, dict]] = {}
    for block in report.get("blocks", []):
        pages.setdefault(block["page"], {})[block["index"]] = block
    return pages


def _counts(blocks: list[dict]) -> dict:
    status = Counter(b["status"] for b in blocks)
    shell = [b for b in blocks if b["language"] in SHELLS]
    row = {s: status.get(s, 0) for s in STATUSES}
    row["total"] = len(blocks)
    row["shell"] = len(shell)
    row["shell_executed"] = sum(1 for b in shell if b["status"] == "executed")
    row["checked_percent"] = _percent(row["executed"] + row["validated"], len(blocks))
    row["shell_executed_percent"] = _percent(row["shell_executed"], len(shell))
    return row


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def coverage(blocks: list[dict]) -> dict:
    """Totals, one row per area, and the inventory: why each block that is not executed is not."""
    areas: dict[str, list[dict]] = {}
    for block in blocks:
        areas.setdefault(block["page"].split("/")[0], []).append(block)
    checkers = Counter(b["checker"] for b in blocks if b["status"] in ("executed", "validated"))
    inventory = [{"where": f"{b['file']}:{b['line']}", "page": b["page"], "language": b["language"], "status": b["status"],
                  "why_not_executed": b["reason"] if b["status"] in ("unchecked", "fragment") else
                  f"validated by {b['checker']}; no lab runs it"}
                 for b in blocks if b["status"] != "executed"]
    return {"total": _counts(blocks), "areas": {area: _counts(rows) for area, rows in sorted(areas.items())},
            "checkers": dict(checkers.most_common()), "not_executed": inventory}


def page_summary(blocks: list[dict]) -> str:
    """One line for a guide page: "14 of 16 code blocks checked: 6 executed by the lab, 5 shellcheck, …"."""
    if not blocks:
        return ""
    checked = [b for b in blocks if b["status"] in ("executed", "validated")]
    parts = []
    executed = sum(1 for b in checked if b["status"] == "executed")
    if executed:
        parts.append(f"{executed} executed in the lab")
    for checker, count in Counter(b["checker"] for b in checked if b["status"] == "validated").most_common():
        parts.append(f"{count} {checker}")
    text = f"{len(checked)} of {len(blocks)} code blocks checked"
    if parts:
        text += ": " + ", ".join(parts)
    rest = [b for b in blocks if b["status"] not in ("executed", "validated")]
    if rest:
        reasons = Counter(b["reason"] for b in rest)
        text += f"; {len(rest)} not checked (" + "; ".join(f"{n}× {r}" if n > 1 else r for r, n in reasons.items()) + ")"
    return text


def check_and_report(catalog, report_path: Path | None | bool = True, cache_path: Path | None = None):
    """Judge every block (cached), store the report; returns (report, problems).

    By default the report and cache live beside the knowledge base (`labs/../.opslabs/`);
    `report_path=None` stores no report.
    """
    from opslabs.blocks.cache import Cache
    from opslabs.blocks.check import judge_all

    cache = Cache(cache_path or cache_path_for(catalog.root))
    problems: list = []
    judged = judge_all(catalog, cache, problems)
    cache.save()
    report = build_report(judged)
    if report_path is not None:
        write_report(report_path_for(catalog.root) if report_path is True else report_path, report)
    return report, problems
