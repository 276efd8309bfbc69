"""The backend seam: one registry of frameworks, one module per framework with the same names.

:data:`REGISTRY` is the single list of backends: ``trace run --backend``'s
choices, ``numtrace.record(backend=...)``, ``numtrace.watch``, ``trace run``'s
zero-edit capture and every array conversion read it. Each entry names the
numtrace module of one framework; that module defines the same four names:

- ``ADAPTER``: converts the framework's arrays (``name``, ``handles(x)``,
  ``to_numpy(x) -> (values, recorded dtype)``, ``version()``), or None when
  another backend's arrays are used (fastai's are torch tensors);
- ``watches(model) -> bool`` and ``watch(model, **options) -> Watch``
  (:func:`numtrace.watch`);
- ``capture(include, exclude, *, inputs, weights) -> undo``: record every
  module call of every model from now on (``trace run --backend NAME``).

Replaying is a capability on top: an entry with ``replays`` set promises that
its ``capture`` also takes ``replay=`` (a
:class:`numtrace.replay.session.Replayer`) and calls each recorded module
again on the reference's inputs (``trace replay --backend NAME``). Any other
backend is refused by :func:`replaying` with one line, before the script runs.

A backend is consulted only when its framework is already in ``sys.modules``,
i.e. when the user's program imported it: numtrace itself never imports
torch, mlx or fastai. Adding a framework is one module and one line here.
The modules that import a framework are named after its module, ``torch``,
``torch_hooks``, ``mlx_capture``... (:func:`framework_of`): the test
collection skips them where the framework is not installed.

Example:
    >>> import numpy as np
    >>> values, dtype = to_numpy(np.float32(1.5))
    >>> values, dtype
    (array(1.5, dtype=float32), 'float32')
    >>> [backend.name for backend in REGISTRY], [backend.name for backend in REGISTRY if backend.replays]
    (['numpy', 'torch', 'mlx', 'fastai'], ['torch', 'mlx', 'fastai'])
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..errors import TapError, UsageError


class Adapter(Protocol):
    name: str

    def handles(self, x: Any) -> bool: ...

    def to_numpy(self, x: Any) -> tuple[np.ndarray, str]: ...

    def version(self) -> str: ...


class Backend(NamedTuple):
    """One framework: its ``--backend`` name, the numtrace module of its four names, the
    ``sys.modules`` key that says the program uses it, and what it records."""

    name: str
    module: str
    framework: str
    arrays: bool  # its module's ADAPTER converts arrays (checked before importing the module)
    models: bool  # it records model modules (watch, capture)
    summary: str
    replays: bool = False  # its capture takes replay= (trace replay), see the module docstring


#: every backend, in the order arrays and models are offered to them
REGISTRY: tuple[Backend, ...] = (
    Backend(
        "numpy", "numtrace.backends.numpy", "numpy", True, False, "NumPy arrays and Python numbers, by numtrace.tap"
    ),
    Backend("torch", "numtrace.backends.torch", "torch", True, True, "PyTorch tensors and every nn.Module call", True),
    Backend("mlx", "numtrace.backends.mlx", "mlx.core", True, True, "MLX arrays and every mlx.nn.Module call", True),
    Backend(
        "fastai",
        "numtrace.backends.fastai",
        "fastai",
        False,
        True,
        "fastai Learners: the data pipeline, the model, predictions and loss (validation only)",
        True,
    ),
)

_by_type: dict[type, Adapter] = {}


def names() -> list[str]:
    """The names ``trace run --backend`` and ``record(backend=...)`` accept, in registry order."""
    return [entry.name for entry in REGISTRY]


def backend(name: str) -> Backend:
    """The registry entry called ``name``; UsageError naming the choices otherwise."""
    for entry in REGISTRY:
        if entry.name == name:
            return entry
    raise UsageError(f"unknown backend {name!r}; choose one of {', '.join(names())}")


def replaying(name: str) -> Backend:
    """The registry entry called ``name`` when it can replay (``trace replay``); UsageError otherwise.

    Example:
        >>> replaying("numpy")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        numtrace.errors.UsageError: backend numpy cannot replay: ...; use --backend torch, mlx, fastai
    """
    entry = backend(name)
    if not entry.replays:
        able = ", ".join(b.name for b in REGISTRY if b.replays)
        raise UsageError(
            f"backend {name} cannot replay: trace replay calls the candidate's modules again; use --backend {able}"
        )
    return entry


def framework_of(module: str) -> str | None:
    """The framework (its top-level import name) that module ``module`` (a dotted or bare name, or a
    file's stem) imports when imported, or None: a backend's module is named as in its registry
    entry, its helper modules start with that name and ``_`` (``torch_hooks``; the tests' helpers
    too, ``torch_models``).

    Example:
        >>> framework_of("numtrace.backends.mlx_capture"), framework_of("torch_models"), framework_of("naming")
        ('mlx', 'torch', None)
    """
    stem = module.rsplit(".", 1)[-1]
    for entry in REGISTRY:
        own = entry.module.rsplit(".", 1)[-1]
        if stem == own or stem.startswith(own + "_"):
            return entry.framework.split(".", 1)[0]
    return None


def module_of(entry: Backend) -> ModuleType:
    """The backend's numtrace module (importing it imports its framework)."""
    return importlib.import_module(entry.module)


def loaded(arrays: bool = False, models: bool = False) -> list[ModuleType]:
    """The modules of the backends whose framework the running program has imported."""
    return [
        module_of(b)
        for b in REGISTRY
        if b.framework in sys.modules and (b.arrays or not arrays) and (b.models or not models)
    ]


def loaded_adapters() -> list[Adapter]:
    """Adapters whose framework the running program has imported."""
    return [module.ADAPTER for module in loaded(arrays=True)]


def adapter_for(x: Any) -> Adapter | None:
    """The adapter that can convert ``x``, or None (cached per type)."""
    kind = type(x)
    adapter = _by_type.get(kind)
    if adapter is None:
        adapter = next((a for a in loaded_adapters() if a.handles(x)), None)
        if adapter is not None:
            _by_type[kind] = adapter
    return adapter


def is_array(x: Any) -> bool:
    return adapter_for(x) is not None


def to_numpy(x: Any) -> tuple[np.ndarray, str]:
    """Convert an array of any loaded framework to (NumPy values, recorded dtype)."""
    adapter = adapter_for(x)
    if adapter is None:
        frameworks = ", ".join(b.name for b in REGISTRY if b.arrays and b.name != "numpy")
        raise TapError(
            f"cannot record a {type(x).__module__}.{type(x).__qualname__}; numtrace records "
            f"NumPy arrays, Python numbers, and the arrays of {frameworks} (with their backends)"
        )
    return adapter.to_numpy(x)


def framework_versions() -> dict[str, str]:
    """Versions of Python and of every framework the program has imported."""
    versions = {"python": sys.version.split()[0]}
    for adapter in loaded_adapters():
        versions[adapter.name] = adapter.version()
    return versions
