"""The arguments of a replayed call: the reference's recorded inputs in place of the candidate's
own arrays, laid out and typed as the candidate's call takes them.

Each array argument of the live call is matched with a reference input: the one recorded under the
same key (``0``, ``1``... for positional arguments, the keyword's name; for a positional argument,
only if its shape lays out as the live one's), else, for a positional argument, the reference's
only input or the first one left whose shape lays out as the live argument's (a rotation called
once per tensor against one called on queries and keys together). A matched input is laid out as
the live one (:func:`~numtrace.compare.pairing.layout.lay_out_as`: singleton axes, a transposed
layout such as NCL against NLC) and converted to its framework, dtype and device. Everything else
comes from the live call: non-array arguments, and keyword arrays the reference has no input for
(a mask, a rotary table). A positional array without a counterpart, or an argument that holds
state (a key/value cache object), means the call is not replayed, with the reason.

Example:
    >>> import numpy as np
    >>> arrays = NumpyArrays()
    >>> live = (np.zeros((1, 3, 2), np.float32),)
    >>> args, kwargs, notes = replay_arguments(live, {"scale": 2.0}, {"": np.arange(6.0).reshape(1, 2, 3)}, arrays)
    >>> args[0].dtype, args[0].shape, kwargs, notes
    (dtype('float32'), (1, 3, 2), {'scale': 2.0}, ['input 0 transposed (1, 0)'])
    >>> replay_arguments((np.zeros(4), np.zeros(4)), {}, {"0": np.ones(4)}, arrays)
    'its input 1 (shape (4,)) has no counterpart among the reference inputs recorded (0 (4,))'
"""

from __future__ import annotations

import functools
import types
from typing import Any, Protocol

import numpy as np

from ..compare.pairing.layout import lay_out_as, layouts

_PLAIN = (type(None), bool, int, float, complex, str, bytes, slice, type(Ellipsis), type, np.dtype, np.generic)
_CALLABLES = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)


class Arrays(Protocol):
    """A framework's arrays, as a replay needs them (each backend provides one)."""

    def handles(self, x: Any) -> bool: ...

    def to_numpy(self, x: Any) -> tuple[np.ndarray, str]: ...

    def from_numpy(self, values: np.ndarray, like: Any) -> Any: ...

    def plain(self, x: Any) -> bool: ...


class NumpyArrays:
    """NumPy arrays (the doctests' framework)."""

    def handles(self, x: Any) -> bool:
        return isinstance(x, np.ndarray)

    def to_numpy(self, x: Any) -> tuple[np.ndarray, str]:
        return x, str(x.dtype)

    def from_numpy(self, values: np.ndarray, like: Any) -> Any:
        return np.asarray(values, dtype=like.dtype)

    def plain(self, x: Any) -> bool:
        return False


def holds_state(value: Any, arrays: Arrays) -> str | None:
    """The type name of an argument that may hold state (an object that is neither data, a
    container of data, a function nor one of the framework's plain objects such as a dtype),
    None for a plain argument."""
    if isinstance(value, _PLAIN) or isinstance(value, _CALLABLES) or arrays.handles(value) or arrays.plain(value):
        return None
    if isinstance(value, (tuple, list)):
        return next((found for item in value if (found := holds_state(item, arrays))), None)
    if isinstance(value, dict):
        return next((found for item in value.values() if (found := holds_state(item, arrays))), None)
    return type(value).__name__


def replay_arguments(
    args: tuple, kwargs: dict, reference: dict[str, np.ndarray], arrays: Arrays
) -> tuple[tuple, dict, list[str]] | str:
    """``(args, kwargs, notes)`` for the replayed call, or why it cannot be made (module docstring).

    ``reference`` holds the reference's recorded inputs of the paired call, ``{key: values}`` in
    recorded order (key ``""`` when it had one input).
    """
    for key, value in [*((str(i), a) for i, a in enumerate(args)), *kwargs.items()]:
        state = holds_state(value, arrays)
        if state is not None:
            return f"argument {key} is a {state}, which may hold state (a cache): replaying would change it"
    unused = dict(reference)
    notes: list[str] = []
    new_args = list(args)
    new_kwargs = dict(kwargs)
    for key, value, positional in [
        *((str(i), a, True) for i, a in enumerate(args)),
        *((k, v, False) for k, v in kwargs.items()),
    ]:
        if not arrays.handles(value):
            continue
        found = _counterpart(key, tuple(value.shape), positional, unused)
        if found is None:
            if positional:
                recorded = ", ".join(f"{k or '0'} {tuple(v.shape)}" for k, v in reference.items())
                return (
                    f"its input {key} (shape {tuple(value.shape)}) has no counterpart among the reference "
                    f"inputs recorded ({recorded})"
                )
            notes.append(f"{key} taken from the live call")
            continue
        values, how = lay_out_as(unused.pop(found), tuple(value.shape), functools.partial(_live_values, value, arrays))
        if values is None:
            return f"its input {key}: the reference's {how}"
        if how:
            notes.append(f"input {key} {how}")
        converted = arrays.from_numpy(values, like=value)
        if positional:
            new_args[int(key)] = converted
        else:
            new_kwargs[key] = converted
    return tuple(new_args), new_kwargs, notes


def _counterpart(key: str, shape: tuple, positional: bool, unused: dict[str, np.ndarray]) -> str | None:
    def fits(k: str) -> bool:
        return layouts(unused[k].shape, shape) is not None

    if key in unused and (fits(key) or not positional):
        return key
    if not positional:
        return None
    if "" in unused:
        return ""
    return next((k for k in unused if fits(k)), None)


def _live_values(value: Any, arrays: Arrays) -> np.ndarray | None:
    """The live argument's values, to choose between layouts its shape alone cannot tell."""
    try:
        return arrays.to_numpy(value)[0]
    except Exception:  # an array numtrace cannot convert: its shape decides
        return None
