"""torch's module hooks: zero-edit capture of every model a script calls, and ``numtrace.watch``.

Two process-wide hooks (``torch.nn.modules.module.register_module_forward_pre_hook``
and ``..._forward_hook``) see every module call; a per-thread stack of the
modules being called gives each call its name:

- A module called with no module of a known model around it is a *root*,
  named by its own ``named_modules()``. The first root gets no prefix (its
  children are ``encoder.0``..., its own output ``output``, as with
  ``numtrace.watch``); every later root is prefixed with its class name,
  ``Decoder``, then ``Decoder_2``... for other instances of that class.
- A module called from inside a root is named by its path in that root
  (``model.encoder(x)`` called from the script directly is ``encoder`` too).
  A module the root does not contain is named under the module that called
  it (``model.layers.0.self_attn.Func``) when it has no parameter and no
  buffer: a module created on the fly, a function wrapped as a module (HF
  transformers' kernel wrappers). One with parameters (a model calling
  another top-level model) becomes a root of its own: a *nested root*.
- A ``torch.compile``'d model is named as the model it wraps (no
  ``_orig_mod.``); a TorchScript module records only its output (TorchScript
  runs its submodules without hooks), said once as a warning.

The hooks never return a value, are removed by the returned undo callable
(``trace run`` calls it in a ``finally``), and do nothing in forked children.
``watch_model`` (``numtrace.watch`` for torch) hooks one model's modules instead. Every
captured tensor is copied when its hook fires (:func:`record`), so what a module returned is
what is recorded, whatever the program does to it later. The public surface is
:mod:`numtrace.backends.torch` (``watch``, ``capture``).

Example:
    >>> import torch, numtrace
    >>> with numtrace.record() as rec:
    ...     undo = capture()
    ...     try:
    ...         _ = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh())(torch.ones(1, 2))
    ...     finally:
    ...         undo()
    >>> rec.trace.order
    ['0', '1', 'output']
"""

from __future__ import annotations

import sys
import threading
import weakref
from types import FrameType
from typing import Any, Callable, Container, Iterable

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from ..errors import warn_once
from ..probes import StageFilter
from ..tracer import active_recording
from ..watch import Watch
from . import torch_sites
from .torch_sites import (
    Site,
    eager,
    is_compiled_wrapper,
    is_script_module,
    module_filter,
    module_path,
    named_modules,
    tap_weights,
)

_Entry = tuple  # (weakref to the module, its Site, its _Root)


class _Root:
    """A model first called as the outermost module: its prefix and the sites of its modules."""

    def __init__(
        self,
        module: nn.Module,
        prefix: str,
        selected: StageFilter,
        known: dict[int, _Entry],
        forget: Callable[[Any], None],
    ) -> None:
        self.ref = weakref.ref(module, forget)
        self.prefix = prefix
        self.selected = selected
        self.sites: dict[int, _Entry] = {}
        self.known = known  # every root's modules, for calls from outside any root
        self.refresh()

    def refresh(self) -> None:
        """(Re)build the name map: models may add modules after their first call."""
        module = self.ref()
        if module is None:
            return
        for path, sub in module.named_modules():
            entry = self.sites.get(id(sub))
            if entry is not None and entry[0]() is sub:
                continue
            # the OptimizedModule around a compiled model has the same name as the model: only the model records
            site = Site(self.prefix, module_path(path), sub, self.selected, silent=is_compiled_wrapper(sub))
            self.sites[id(sub)] = entry = (weakref.ref(sub), site, self)
            old = self.known.get(id(sub))
            if old is None or old[0]() is not sub:
                self.known[id(sub)] = entry

    def site(self, module: nn.Module) -> Site | None:
        entry = self.sites.get(id(module))
        return entry[1] if entry is not None and entry[0]() is module else None


class TorchCapture:
    """The process-wide hooks and the roots seen so far; ``start()`` then ``stop()``."""

    def __init__(
        self,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        inputs: bool = False,
        weights: bool = False,
        gate: Callable[[], bool] | None = None,
        unprefixed_first: bool = True,
        replay: Any = None,
    ) -> None:
        self.selected = module_filter(include, exclude)
        self.replay = replay  # a numtrace.replay.session.Replayer: each recorded call is made again on reference inputs
        self.inputs = inputs
        self.weights = weights
        self.gate = gate  # while it returns False, calls are neither named nor recorded (fastai: training)
        self._unprefixed_free = unprefixed_first  # False: "" waits for adopt(model, unprefixed=True)
        self.roots: list[_Root] = []
        self._known: dict[int, _Entry] = {}
        self._prefixes: dict[str, int] = {}
        self._local = threading.local()
        self._lock = threading.RLock()  # a root forgotten by the garbage collector may come in while it is held
        self._handles: list[Any] = []
        self._seen: set[int] = set()  # modules whose hooks fired

    def start(self) -> "TorchCapture":
        self._handles = [
            torch_module.register_module_forward_pre_hook(eager(self._before)),
            torch_module.register_module_forward_hook(eager(self._after), with_kwargs=True, always_call=True),
        ]
        return self

    def stop(self) -> None:
        for handle in self._handles:
            handle.remove()
            # RemovableHandle forgets this table (torch 2.13): leave nothing behind
            torch_module._global_forward_hooks_with_kwargs.pop(handle.id, None)
        self._handles = []
        self._say_unhooked()

    def _say_unhooked(self) -> None:
        """Name the modules of the models called whose hooks never fired (:func:`say_unhooked`)."""
        modules = ((ref(), site.stage) for root in self.roots for ref, site, _ in root.sites.values())
        say_unhooked(modules, self._seen)

    def _stack(self) -> list[tuple[nn.Module, Site | None, _Root | None]]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def _before(self, module: nn.Module, args: tuple) -> None:
        if torch_sites.forked_child or (self.gate is not None and not self.gate()):
            return
        if self.replay is not None and self.replay.replaying:
            return  # the calls a replay makes are not the candidate's
        stack = self._stack()
        root = stack[-1][2] if stack else None
        site = root.site(module) if root is not None else None
        if site is None:
            caller = next((entry[1] for entry in reversed(stack) if entry[1] is not None), None)
            root, site = self._resolve(module, root, caller)
        stack.append((module, site, root))
        self._seen.add(id(module))
        if self.inputs and site is not None:
            site.tap_inputs(args, _call_kwargs())

    def _after(self, module: nn.Module, args: tuple, *rest: Any) -> None:
        stack = self._stack()
        for depth in range(len(stack) - 1, -1, -1):
            if stack[depth][0] is module:
                break
        else:
            return  # called while the gate was closed, or before start()
        site = stack[depth][1]
        del stack[depth:]
        # (module, args, kwargs, output) normally; (module, args, None) when forward raised
        if len(rest) == 2 and site is not None:
            site.tap_output(rest[1])
            if self.replay is not None and site.record_output:
                from .torch_replay import replay_call

                replay_call(self.replay, module, site.output_name(rest[1]), args, rest[0], rest[1])

    def adopt(self, module: nn.Module, unprefixed: bool = False) -> None:
        """Name ``module`` as a root now, unless it is known; ``unprefixed``: it may take the empty prefix."""
        if unprefixed and not any(root.ref() is module for root in self.roots):
            self._unprefixed_free = True
        self._resolve(module, None)

    def _resolve(
        self, module: nn.Module, current: _Root | None, caller: Site | None = None
    ) -> tuple[_Root, Site | None]:
        """A module the current root has no name for: added to it since, part of a known root, a
        module created on the fly inside a model (no parameter, no buffer: a function wrapped as a
        module), named under ``caller``, the module that called it; or a new root."""
        with self._lock:
            if current is not None:
                current.refresh()  # one walk of the model; a module built inside a forward costs one per call
                site = current.site(module)
                if site is not None:
                    return current, site
            entry = self._known.get(id(module))
            if entry is not None and entry[0]() is module:
                return entry[2], entry[1]
            if current is not None and caller is not None and _parameter_free(module):
                return current, Site("", _under(caller.scope, module), module, self.selected)
            root = _Root(module, self._new_prefix(module), self.selected, self._known, self._forget)
            self.roots.append(root)
        if is_script_module(module):
            warn_once(
                f"script:{type(module).__name__}",
                f"{root.prefix or 'the model'} is a "
                "TorchScript module: only its output is recorded (TorchScript runs its submodules "
                "without hooks)",
            )
        if self.weights:
            tap_weights(module, root.prefix, self.selected)
        return root, root.site(module)

    def _forget(self, ref: Any) -> None:
        """A root model was garbage-collected (a module built per call, say): drop its names."""
        with self._lock:
            for root in [r for r in self.roots if r.ref is ref]:
                self.roots.remove(root)
                for key, entry in list(root.sites.items()):
                    if self._known.get(key) is entry:
                        del self._known[key]

    def _new_prefix(self, module: nn.Module) -> str:
        if self._unprefixed_free:
            self._unprefixed_free = False
            return ""
        target = module._orig_mod if is_compiled_wrapper(module) else module
        name = type(target).__name__
        count = self._prefixes.get(name, 0) + 1
        self._prefixes[name] = count
        return name if count == 1 else f"{name}_{count}"


def say_unhooked(modules: Iterable[tuple[nn.Module | None, str]], seen: Container[int]) -> None:
    """Warn (once per class) about the modules whose hooks never fired because their class replaces
    ``nn.Module.__call__`` (a monkeypatched port): nothing vanishes without a word.

    ``modules``: ``(module, its stage)``, None for one collected since; ``seen``: the ids of the
    modules whose hooks fired.

    Example:
        >>> import warnings
        >>> class Block(nn.Linear):
        ...     def __call__(self, x):  # what `Block.__call__ = patched` leaves
        ...         return self.forward(x)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     say_unhooked([(Block(1, 1), "blocks.0"), (nn.Linear(1, 1), "head")], seen=set())
        >>> str(caught[0].message).split(":")[0]
        'blocks.0 never recorded'
    """
    unseen: dict[type, list[str]] = {}
    for module, stage in modules:
        if module is not None and id(module) not in seen and type(module).__call__ is not nn.Module.__call__:
            unseen.setdefault(type(module), []).append(stage)
    for cls, stages in unseen.items():
        call = cls.__call__
        shown = ", ".join(stages[:3]) + (f" and {len(stages) - 3} more" if len(stages) > 3 else "")
        warn_once(
            f"unhooked:{id(cls)}",
            f"{shown} never recorded: {cls.__qualname__}.__call__ "
            f"is {getattr(call, '__module__', '?')}.{getattr(call, '__qualname__', call)}, not "
            "nn.Module's, which bypasses torch's module hooks unless it calls super().__call__; "
            "patch forward instead",
        )


def _parameter_free(module: nn.Module) -> bool:
    """No parameter and no buffer of its own or below: a function wrapped as a module, not a model."""
    return next(module.parameters(), None) is None and next(module.buffers(), None) is None


def _under(scope: str, module: nn.Module) -> str:
    """The path of a module created on the fly: its class name under the module that called it."""
    name = type(module).__name__
    return f"{scope}.{name}" if scope else name


def watch_model(
    model: nn.Module,
    *,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    inputs: bool = False,
    weights: bool = False,
    prefix: str = "",
) -> Watch:
    """``numtrace.watch`` for torch: a forward hook (and pre-hook, for inputs) on each selected module.

    A module whose class replaces ``nn.Module.__call__`` (``Block.__call__ = patched``, before or
    after the watch) never reaches its hooks: after each call of the model, and on detach, the
    modules of such a class none of whose instances' hooks fired are named (:func:`say_unhooked`).
    """
    selected = module_filter(include, exclude)
    handles: list[Any] = []
    refused: dict[int, tuple[Site, nn.Module]] = {}
    stages: list[str] = []
    hooked: dict[type, list[tuple[weakref.ref, str]]] = {}
    fired: set[int] = set()  # the modules whose hooks fired
    weights_done: weakref.WeakSet = weakref.WeakSet()

    def tap_weights_once() -> None:
        recording = active_recording()
        if recording is not None and recording not in weights_done:
            weights_done.add(recording)
            tap_weights(model, prefix, selected)

    for path, module in named_modules(model):
        site = Site(prefix, path, module, selected)
        site.record_inputs = site.record_inputs and inputs
        if not (site.record_output or site.record_inputs):
            continue
        stages.append(site.stage)
        if is_script_module(module):
            refused[id(module)] = (site, module)
            continue
        handles.extend(_hook(module, site, tap_weights_once if weights else None, fired))
        hooked.setdefault(type(module), []).append((weakref.ref(module), site.stage))

    def check_hooks(*_: Any) -> None:
        """Name the modules of the classes patched so that no instance's hooks fired (a class
        whose own ``__call__`` calls ``super().__call__`` fires them: its modules not called yet
        are not named)."""
        for cls, entries in hooked.items():
            if cls.__call__ is not nn.Module.__call__ and not any(id(ref()) in fired for ref, _ in entries):
                say_unhooked(((ref(), stage) for ref, stage in entries), fired)

    if refused:
        handles.append(_hook_refused(refused))
        names = ", ".join(site.stage for site, _ in refused.values())
        warn_once(
            f"script:{id(model)}",
            f"TorchScript modules refuse hooks; only their outputs are recorded, not their submodules ({names})",
        )
    root = model._orig_mod if is_compiled_wrapper(model) else model
    if not is_script_module(root):  # a ScriptModule refuses hooks (and runs its submodules without them)
        handles.append(root.register_forward_hook(eager(check_hooks)))  # after each call of the model
    _warn_if_compiled_late(model)
    if weights:
        tap_weights_once()

    def detach() -> None:
        check_hooks()
        for handle in handles:
            handle.remove()
        handles.clear()

    return Watch(model, detach, stages)


def _hook(module: nn.Module, site: Site, before: Any, fired: set[int]) -> Iterable[Any]:
    def pre(mod: nn.Module, args: tuple, kwargs: dict) -> None:
        fired.add(id(mod))
        if before is not None:
            before()
        site.tap_inputs(args, kwargs)

    def post(mod: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        fired.add(id(mod))
        if before is not None:
            before()
        site.tap_output(output)

    handles = []
    if site.record_inputs:
        handles.append(module.register_forward_pre_hook(eager(pre), with_kwargs=True))
    if site.record_output:
        handles.append(module.register_forward_hook(eager(post), with_kwargs=True))
    return handles


def _hook_refused(refused: dict[int, tuple[Site, nn.Module]]) -> Any:
    """ScriptModules refuse their own hooks, but the process-wide hook still sees their calls."""

    def post(mod: nn.Module, args: tuple, output: Any) -> None:
        entry = refused.get(id(mod))
        if entry is not None and entry[1] is mod:
            entry[0].tap_output(output)

    return torch_module.register_module_forward_hook(eager(post))


def _warn_if_compiled_late(model: nn.Module) -> None:
    compiled = is_compiled_wrapper(model) or getattr(model, "_compiled_call_impl", None) is not None
    if compiled and getattr(torch._dynamo.config, "skip_nnmodule_hook_guards", False):
        frames = torch._dynamo.utils.counters.get("frames", {}).get("ok", 0)
        if frames:
            warn_once(
                f"compiled:{id(model)}",
                "this torch.compile'd model may have been compiled already; "
                "hooks added after its first compiled call are ignored (torch._dynamo.config."
                "skip_nnmodule_hook_guards): watch it before its first call, or call torch._dynamo.reset()",
            )


def _call_kwargs() -> dict | None:
    """The keyword arguments of the module call being made.

    torch's process-wide pre-hook is given positional arguments only; the
    keywords are read from ``Module._call_impl``'s frame (checked against
    torch 2.13). If torch's call path differs, only positional inputs are
    recorded.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_name != "inner":  # past _before and torch.compiler.disable's wrapper
        frame = frame.f_back
    if frame is not None and frame.f_back is not None and frame.f_back.f_code is nn.Module._call_impl.__code__:
        kwargs = frame.f_locals.get("kwargs")
        return kwargs if isinstance(kwargs, dict) else None
    return None


def capture(
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    *,
    inputs: bool = False,
    weights: bool = False,
    gate: Callable[[], bool] | None = None,
    replay: Any = None,
) -> Callable[[], None]:
    """Start recording every module call into the active recording; returns the undo callable.
    ``replay``: a :class:`numtrace.replay.session.Replayer` that makes each call again on the
    reference's inputs."""
    hooks = TorchCapture(include, exclude, inputs=inputs, weights=weights, gate=gate, replay=replay).start()
    return hooks.stop
