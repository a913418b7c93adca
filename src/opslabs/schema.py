"""JSON Schemas generated from the model, for editors (yaml-language-server)."""

from __future__ import annotations

import json
from pathlib import Path

from opslabs.model import Area, Task


def schemas() -> dict[str, dict]:
    result = {}
    for name, model in (("area", Area), ("task", Task)):
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://opslabs.dev/schema/{name}.schema.json"
        result[f"{name}.schema.json"] = schema
    return result


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, schema in schemas().items():
        path = out / filename
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
