"""A fast start for ``trace diff``: its arguments parsed from the command's own typer declarations.

typer (>= 0.2x) builds a pydantic validator for every parameter of the
command it runs, importing pydantic on the way: about 0.2 s of every start,
half the start-up of a small ``trace diff`` (benchmarks/startup.py). This
module reads the ``diff`` command's parameters (their names, flags, types and
defaults) from its signature and calls the very same function. Anything it
does not handle exactly as typer would (``--help``, an unknown or repeated
flag form, a value of the wrong type, a missing argument, ``--``) returns
None, and the caller runs the typer app, which prints its usual usage error.
``NUMTRACE_CLI_FAST=0`` turns the fast path off.

Example:
    >>> from numtrace import cli
    >>> parse(cli.diff, ["a.st", "b.st", "--json", "--only", "enc.*", "--only=dec.*"])["only"]
    ['enc.*', 'dec.*']
    >>> parse(cli.diff, ["a.st", "--help"]) is None
    True
    >>> parse(cli.diff, ["a.st", "b.st", "--jobs", "2", "--replay", "r.st"])["jobs"]  # every option of diff
    2
"""

from __future__ import annotations

import inspect
import os
import typing
from enum import Enum

_SCALARS = (str, int)


def run(argv: list[str], diff) -> int | None:
    """Run ``trace diff ...`` (``diff``: the ``trace diff`` command's function) without typer's
    parser; its exit status, or None to let typer run it."""
    if not argv or argv[0] != "diff" or os.environ.get("NUMTRACE_CLI_FAST", "1") == "0":
        return None
    arguments = parse(diff, argv[1:])
    if arguments is None:
        return None
    import typer

    try:
        diff(**arguments)
    except typer.Exit as done:
        return done.exit_code
    return 0


def _kind(annotation) -> tuple[str, type] | None:
    """("flag" | "one" | "many", value type) of an annotation, or None if not handled here."""
    if annotation is bool:
        return "flag", bool
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union and len(args) == 2 and type(None) in args:  # Optional[X]
        annotation = args[0] if args[1] is type(None) else args[1]
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, typing.List) and len(args) == 1 and args[0] in _SCALARS:
        return "many", args[0]
    if annotation in _SCALARS or (isinstance(annotation, type) and issubclass(annotation, Enum)):
        return "one", annotation
    return None


def _convert(value: str, kind: type):
    try:
        return kind(value)
    except ValueError:
        return None


def parse(command, args: list[str]) -> dict | None:
    """Keyword arguments for ``command`` from ``args``, or None when typer must do it."""
    import typer.models

    hints = typing.get_type_hints(command)
    positional: list[tuple[str, type]] = []
    flags: dict[str, tuple[str, tuple[str, type]]] = {}
    values: dict[str, typing.Any] = {}
    for name, parameter in inspect.signature(command).parameters.items():
        info, kind = parameter.default, _kind(hints.get(name))
        if kind is None or getattr(info, "callback", None) is not None:
            return None
        if isinstance(info, typer.models.ArgumentInfo):
            if kind[0] != "one" or info.default is not ...:
                return None
            positional.append((name, kind[1]))
        elif isinstance(info, typer.models.OptionInfo):
            assert info.param_decls is not None  # typer.Option(...) always passes its declarations as a tuple
            if any("/" in d or not d.startswith("--") for d in info.param_decls) or any(
                getattr(info, k, None) is not None for k in ("min", "max", "envvar")
            ):
                return None
            flags.update({decl: (name, kind) for decl in info.param_decls})
            values[name] = [] if kind[0] == "many" else info.default
        else:
            return None
    given: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-") or arg == "-":
            given.append(arg)
            continue
        decl, eq, inline = arg.partition("=")
        if decl not in flags:
            return None  # --help, --, an unknown option, a short option: typer's business
        name, (how, value_type) = flags[decl]
        if how == "flag":
            if eq:
                return None
            values[name] = True
            continue
        if not eq:
            if not rest:
                return None
            inline = rest.pop(0)
        value = _convert(inline, value_type)
        if value is None:
            return None
        if how == "many":
            values[name].append(value)
        else:
            values[name] = value
    if len(given) != len(positional):
        return None
    for name, value_type in positional:
        values[name] = value_type(given.pop(0))
    return {name: (value or None) if isinstance(value, list) else value for name, value in values.items()}
