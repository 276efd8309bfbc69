"""Validate every ``--json`` report the tests produce against the published schema (docs/report.schema.json).

``check_cli_output(args, stdout)`` is called by the CLI test fixtures on every ``trace diff ...
--json`` they run (and ``--stage ... --json``, whose object is ``$defs/stage_detail``), so a field
that drifts from the documented contract fails the test that printed it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "report.schema.json"


@functools.lru_cache(maxsize=None)
def validator(kind: str = "report") -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    if kind != "report":
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{kind}"}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check_report(data, kind: str = "report") -> None:
    """Raise ``jsonschema.ValidationError`` unless ``data`` (JSON text or object) fits the schema."""
    if isinstance(data, str):
        data = json.loads(data)
    validator(kind).validate(data)


def check_cli_output(args, stdout: str, exit_code: int) -> None:
    """When ``args`` ran ``trace diff ... --json`` and it printed a report, validate it."""
    args = [str(a) for a in args]
    if not args or args[0] != "diff" or "--json" not in args or exit_code not in (0, 1) or not stdout.strip():
        return
    check_report(stdout, "stage_detail" if "--stage" in args else "report")
