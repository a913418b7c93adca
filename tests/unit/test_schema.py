"""The committed JSON Schemas match the model, and accept and reject what the loader does."""

import json

from opslabs.model import CHECK_KINDS
from opslabs.schema import schemas


def test_committed_schemas_are_up_to_date(repo):
    for filename, schema in schemas().items():
        committed = json.loads((repo / "schema" / filename).read_text())
        assert committed == schema, f"schema/{filename} is stale: run `opslabs schema`"


def test_task_schema_forbids_unknown_keys_everywhere():
    task = schemas()["task.schema.json"]
    assert task["additionalProperties"] is False
    for name, definition in task["$defs"].items():
        if definition.get("type") == "object" and "properties" in definition:
            assert definition.get("additionalProperties") is False, name


def test_a_step_s_checks_are_exactly_the_nine_kinds_each_requiring_its_kind_key():
    task = schemas()["task.schema.json"]
    checks = task["$defs"]["Step"]["properties"]["checks"]["items"]
    targets = sorted(option["$ref"].rsplit("/", 1)[1] for option in checks["oneOf"])
    assert targets == sorted(f"{kind.capitalize()}Check" for kind in CHECK_KINDS)
    for kind in CHECK_KINDS:
        assert kind in task["$defs"][f"{kind.capitalize()}Check"]["required"]
