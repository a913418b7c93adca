"""The results file: what the last verification found, per lab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DEFAULT_RESULTS = Path(".opslabs/results.json")


def read_results(path: Path) -> dict[str, dict[str, Any]]:
    """{lab id: result}; an absent or unreadable file means nothing was verified yet."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    labs = data.get("labs", []) if isinstance(data, dict) else []
    return {lab["id"]: lab for lab in labs if isinstance(lab, dict) and "id" in lab}


def write_results(path: Path, labs: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**meta, "labs": labs}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a file
