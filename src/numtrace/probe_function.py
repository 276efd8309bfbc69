"""``trace run --probe-function pkg.module:func``: record a plain function's return value at every call.

A spec is ``module:qualname`` with an optional ``=STAGE``:

- ``frontend:mel_spectrogram`` records each call's result as ``mel_spectrogram``
  (then ``mel_spectrogram@1``...), the qualified name after the colon;
- ``frontend:Frontend.pad`` probes a method (plain, static or class method);
- ``frontend:pad_frames=data.x.PadSpectrogram`` records under a name of your
  choice, e.g. the reference's stage name, so that ``trace diff`` pairs them.

The function is replaced by a wrapper in its module and in every module that
already imported it by name (``from frontend import pad_frames``); modules that
import it later get the wrapper. Tuples, dicts and dataclasses are flattened as
by ``tap``; a result holding no array is skipped. ``install`` returns the undo
callable that puts every original back.

Example:
    >>> import numtrace
    >>> undo = install(["numtrace.dtypes:coarser"])   # any importable function
    >>> undo()
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable

from .errors import TapError, UsageError
from .tracer import active_recording, flatten


@dataclass
class ProbeSpec:
    module: str
    qualname: str
    stage: str


def parse(spec: str) -> ProbeSpec:
    """``pkg.mod:Class.func=stage`` -> its parts; a bad spec raises UsageError."""
    target, _, stage = spec.partition("=")
    module, colon, qualname = target.strip().partition(":")
    if not colon or not module or not qualname or not all(p.isidentifier() for p in qualname.split(".")):
        raise UsageError(
            f"--probe-function {spec!r}: expected MODULE:FUNCTION (e.g. mypkg.audio:mel_spectrogram), "
            "optionally followed by =STAGE"
        )
    return ProbeSpec(module, qualname, stage.strip() or qualname)


def _resolve(spec: ProbeSpec) -> tuple[Any, str, Any]:
    """``(owner, attribute, raw attribute)`` of the function a spec names."""
    try:
        owner: Any = importlib.import_module(spec.module)
    except Exception as err:  # the module's own import error: say which spec needed it
        raise UsageError(
            f"--probe-function {spec.module}:{spec.qualname}: cannot import {spec.module!r} "
            f"({type(err).__name__}: {err})"
        ) from None
    *path, attr = spec.qualname.split(".")
    for part in path:
        owner = getattr(owner, part, None)
    raw = vars(owner).get(attr) if owner is not None and hasattr(owner, "__dict__") else None
    if raw is None and owner is not None:
        raw = getattr(owner, attr, None)
    function = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
    if not callable(function):
        raise UsageError(f"--probe-function {spec.module}:{spec.qualname}: no such function in {spec.module!r}")
    return owner, attr, raw


def _refuse_script(spec: ProbeSpec, script: str | None) -> None:
    if script is None or spec.module in sys.modules:
        return
    try:
        found = importlib.util.find_spec(spec.module)
    except (ImportError, ValueError):
        return
    origin = getattr(found, "origin", None)
    if origin and os.path.exists(origin) and os.path.samefile(origin, script):
        raise UsageError(
            f"--probe-function {spec.module}:{spec.qualname}: {script} is the script itself; "
            "its functions exist only once it runs: move them to a module it imports"
        )


def _wrap(function: Callable, stage: str) -> Callable:
    @functools.wraps(function)
    def probed(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        recording = active_recording()
        if recording is not None and flatten(result):
            try:
                recording.tap(stage, result)
            except TapError as err:
                print(f"numtrace: --probe-function {stage}: not recorded: {err}", file=sys.stderr)
        return result

    probed.__numtrace_probe__ = function  # type: ignore[attr-defined]
    return probed


def install(specs: list[str], script: str | None = None) -> Callable[[], None]:
    """Wrap every function named by ``specs``; returns the callable that undoes it.

    ``script``: the script ``trace run`` is about to run, whose own functions
    cannot be probed (importing it as a module would run it a second time).
    """
    parsed = [parse(spec) for spec in specs]
    for spec in parsed:
        _refuse_script(spec, script)
    patches: list[tuple[Any, str, Any, Any]] = []  # (owner, attribute, original, replacement)
    try:
        for spec in parsed:
            owner, attr, raw = _resolve(spec)
            function = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
            probed = _wrap(function, spec.stage)
            replacement = type(raw)(probed) if isinstance(raw, (staticmethod, classmethod)) else probed
            found = [(owner, attr, raw, replacement)]
            if isinstance(owner, types.ModuleType):  # also where it was imported by name
                for module in list(sys.modules.values()):
                    if isinstance(module, types.ModuleType) and module is not owner:
                        found.extend(
                            (module, name, raw, replacement)
                            for name, value in list(vars(module).items())
                            if value is raw
                        )
            for target, name, _, new in found:  # now, so that a second spec for it wraps this wrapper
                setattr(target, name, new)
                patches.append((target, name, raw, new))
    except BaseException:
        _undo(patches)
        raise
    return lambda: _undo(patches)


def _undo(patches: list[tuple[Any, str, Any, Any]]) -> None:
    for owner, name, original, replacement in reversed(patches):
        if vars(owner).get(name) is replacement:
            setattr(owner, name, original)
