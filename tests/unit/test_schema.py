"""The committed JSON Schemas match the model, and accept and reject what the loader does."""

import json

from opslabs.schema import schemas


def test_committed_schemas_are_up_to_date(repo):
    for filename, schema in schemas().items():
        committed = json.loads((repo / "schema" / filename).read_text())
        assert committed == schema, f"schema/{filename} is stale: run `opslabs schema`"


def test_task_schema_forbids_unknown_keys_and_knows_every_check_kind():
    task = schemas()["task.schema.json"]
    assert task["additionalProperties"] is False
    kinds = {name for definition in task["$defs"].values() for name in definition.get("properties", {})}
    assert {"file", "package", "service", "port", "process", "command", "http", "user", "group"} <= kinds
