"""Validate every ``--json`` report the tests produce against the published schema (docs/report.schema.json).

``check_cli_output(args, stdout, exit_code)`` is called by the CLI test fixtures on every ``trace
diff ... --json`` they run (and ``--stage ... --json``, whose object is ``$defs/stage_detail``), and
every ``trace show ... --json`` (``$defs/show``; with a STAGE, ``$defs/show_stage``); tests that run
the command line their own way (a subprocess, their own CliRunner) call it too, so a field that
drifts from the documented contract fails the test that printed it.
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


#: options of ``trace show`` that take a value (the others are flags)
SHOW_VALUES = ("--only", "--width")


def cli_output_kind(args) -> str | None:
    """The schema (``report`` or a ``$defs`` name) of what ``trace ARGS`` prints, None when not JSON.

    >>> cli_output_kind(["diff", "a", "b", "--json"]), cli_output_kind(["show", "t", "x", "--json"])
    ('report', 'show_stage')
    """
    args = [str(a) for a in args]
    if not args or "--json" not in args:
        return None
    if args[0] == "diff":
        return "stage_detail" if any(a == "--stage" or a.startswith("--stage=") for a in args) else "report"
    if args[0] == "show":
        positional, rest = [], iter(args[1:])
        for arg in rest:
            if arg in SHOW_VALUES:
                next(rest, None)
            elif not arg.startswith("-"):
                positional.append(arg)
        return "show_stage" if len(positional) > 1 else "show"
    return None


def check_cli_output(args, stdout: str, exit_code: int) -> None:
    """When ``args`` ran ``trace diff ... --json`` or ``trace show ... --json`` and it printed its
    JSON, validate it."""
    kind = cli_output_kind(args)
    ok = (0, 1) if kind in ("report", "stage_detail") else (0,)
    if kind is None or exit_code not in ok or not stdout.strip():
        return
    check_report(stdout, kind)
