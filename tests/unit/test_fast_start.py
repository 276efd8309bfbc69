"""``trace diff`` starts without typer's parser (numtrace/cli_fast.py) whatever options it is
given: an option the fast path cannot read (a short flag, a `min`, a callback) would silently put
pydantic back into every start (benchmarks/startup.py)."""

import inspect
import typing
from enum import Enum

import typer.models

from numtrace import cli
from numtrace.cli_fast import _kind, parse


def test_every_option_of_trace_diff_takes_the_fast_path():
    args = ["reference.safetensors", "candidate.safetensors"]
    hints = typing.get_type_hints(cli.diff)
    for name, parameter in inspect.signature(cli.diff).parameters.items():
        info = parameter.default
        if not isinstance(info, typer.models.OptionInfo):
            continue
        how, kind = _kind(hints[name])
        decl = info.param_decls[0]
        if how == "flag":
            args.append(decl)
        else:
            value = next(iter(kind)).value if isinstance(kind, type) and issubclass(kind, Enum) else kind(2)
            args += [decl, str(value)]
    parsed = parse(cli.diff, args)
    assert parsed is not None, f"trace diff {' '.join(args)} falls back to typer's parser"
    assert parsed["jobs"] == 2 and parsed["replay"] == "2"
