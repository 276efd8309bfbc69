"""Zero-edit capture for ``trace run --backend mlx``: every MLX model the script calls, no edit.

**How.** While capture is active, the ``__call__`` of every ``mlx.nn.Module``
subclass is wrapped at class level: the classes defined when the run starts
(found through ``__subclasses__``) and the ones the script defines later
(through ``Module.__init_subclass__``). The alternative, swapping each
model's class when it is first called (what :func:`numtrace.watch` does for
one model), was rejected for the zero-edit case because:

- the script's objects are never modified: nothing per instance to restore
  when the script crashes, and ``undo`` only puts the class attributes back;
- names follow the call, as in the torch backend's process-wide hooks (the
  same rules, so a PyTorch script and its MLX port get the same names): a
  module called with no module of a known model around it is a *root*. The
  first root gets no prefix (its output is ``output``, its children
  ``encoder.layers.0``), later roots their class name (``Vocoder``,
  ``Vocoder_2``). A module called from inside a root, or called directly
  but belonging to a known root (``model.encoder(x)``), is named by its
  path in that root; a module the root does not contain is named under the
  module that called it when it has no parameter (a module created on the
  fly: ``model.layers.0.attn.Scale``), else it becomes a root of its own (a
  nested root). Repeated names get call indices (``output@1``);
- ``super().__call__`` reaches the base class's wrapper too: a call whose
  module is already the innermost captured call passes straight through, so
  each module call is recorded once;
- a class whose ``__call__`` the script replaces after it was wrapped
  (``Block.__call__ = patched``, monkeypatching a port) is wrapped again
  when numtrace next looks: when a model is first called (every class in
  it), at every outermost call (the classes of the models known so far) and
  when a module is called outside any known model (every class). One line
  on stderr says so; a replacement numtrace never saw is named when capture
  ends, as not recorded.

A root's module names are computed on its first call and kept while it
lives (recomputed when a module called under it is not found: the tree
changed). Without a recording the wrapper costs one function call and one
test per module call. Modules watched explicitly with ``numtrace.watch`` are
recorded by their watch, under its names.

**mx.compile.** While capture is active ``mx.compile`` is replaced by a
version that makes the captures taken while MLX traces the function extra
compiled outputs, recorded after every call (:mod:`.mlx_compile`). A
function compiled (traced) before the recording started cannot be
recorded: one line on stderr says so.

Example:
    >>> import mlx.core as mx, mlx.nn as nn, numtrace
    >>> with numtrace.record() as rec:
    ...     undo = capture()        # trace run: after starting the recording
    ...     try:
    ...         _ = nn.Sequential(nn.Linear(2, 2), nn.Tanh())(mx.ones((1, 2)))
    ...     finally:
    ...         undo()              # trace run: before stopping it
    >>> rec.trace.order
    ['layers.0', 'layers.1', 'output']
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from typing import Any

import mlx.core as mx

from ..errors import UsageError
from ..probes import StageFilter
from .mlx_batch import ACTIVE, GENERATED, STATE, Site, module_paths, run_captured, say, weights_of
from .mlx_compile import compile_recording
from .naming import stage_name

_current: "_Session | None" = None


class _Root:
    """A model first called as the outermost module: its prefix and the sites of its modules."""

    def __init__(self, module: Any, prefix: str, session: "_Session") -> None:
        self.ref = weakref.ref(module)
        self.prefix, self.session = prefix, session
        self.sites: dict[int, tuple[Any, Site]] = {}
        self.misses: set[int] = set()
        self.refresh()

    def refresh(self) -> None:
        """(Re)build the name map: models may add modules after their first call."""
        model = self.ref()
        if model is None:
            return
        paths = module_paths(model)
        self.session.ensure_wrapped({type(sub) for _, sub in paths})
        for path, sub in paths:
            known = self.sites.get(id(sub))
            if known is not None and known[0]() is sub:
                continue
            stage = stage_name(self.prefix, path)
            site = Site(self.prefix, path, sub, self.session.inputs, self.session.selects(stage))
            self.sites[id(sub)] = (weakref.ref(sub), site)

    def site(self, module: Any) -> Site | None:
        entry = self.sites.get(id(module))
        if entry is None or entry[0]() is not module:
            if id(module) in self.misses:
                return None
            self.refresh()
            entry = self.sites.get(id(module))
            if entry is None or entry[0]() is not module:
                self.misses.add(id(module))
                return None
        return entry[1]


class _Session:
    def __init__(
        self, include: list[str] | None, exclude: list[str] | None, inputs: bool, weights: bool, replay: Any = None
    ) -> None:
        self.selected = StageFilter(include, exclude)
        self.inputs, self.weights = inputs, weights
        self.replay = replay  # a numtrace.replay.session.Replayer: each recorded call is made again on reference inputs
        self.roots: list[_Root] = []
        self._prefixes: dict[str, int] = {}
        self._lock = threading.RLock()
        self.patched: list[tuple[type, Any, Any]] = []
        self.module_base: type | None = None
        #: class -> the wrapper installed on it, for the classes of the known models' modules
        self.watched: dict[type, Any] = {}

    def selects(self, stage: str) -> bool:
        return self.selected(stage)

    def resolve(
        self, module: Any, current: "_Root | None" = None, caller: Site | None = None
    ) -> tuple[_Root, Site, list]:
        """A module outside the current root: part of a known root; a module created on the fly
        inside a model (no parameter: a function wrapped as a module), named under ``caller``, the
        module that called it; or a new root (with its weights)."""
        with self._lock:
            self.roots = [root for root in self.roots if root.ref() is not None]
            for root in self.roots:
                site = root.site(module)
                if site is not None:
                    return root, site, []
            if current is not None and caller is not None and not weights_of(module):
                stage = f"{caller.scope}.{type(module).__name__}" if caller.scope else type(module).__name__
                return current, Site("", stage, module, self.inputs, self.selects(stage)), []
            self.ensure_wrapped([cls for cls, _, _ in self.patched])  # a replaced call may hide its caller
            root = _Root(module, self._new_prefix(module), self)
            self.roots.append(root)
        pre = []
        if self.weights:
            named = ((stage_name(root.prefix, name), p) for name, p in weights_of(module))
            pre = [(name, p) for name, p in named if self.selects(name)]
        site = root.site(module)
        assert site is not None  # a new root's sites include its own module (path "")
        return root, site, pre

    def _new_prefix(self, module: Any) -> str:
        # as in the torch backend: the first root has no prefix, later ones their class name
        if not self.roots:
            return ""
        name = type(module).__name__
        count = self._prefixes.get(name, 0) + 1
        self._prefixes[name] = count
        return name if count == 1 else f"{name}_{count}"

    def ensure_wrapped(self, classes) -> None:
        """Wrap ``classes`` (those not generated by ``watch``) whose ``__call__`` is no wrapper of ours
        (replaced by the program after capture began), and watch them for replacement from now on."""
        base = self.module_base
        if base is None:
            return
        with self._lock:
            for cls in classes:
                owner = next((k for k in cls.__mro__ if "__call__" in k.__dict__), None)
                if owner is None or GENERATED in cls.__dict__:
                    continue
                target = owner if issubclass(owner, base) else cls  # a mixin's __call__ is wrapped on cls
                call = owner.__dict__["__call__"]
                if inspect.isfunction(call) and not getattr(call, "_numtrace_zero_edit", False):
                    # every class was wrapped when capture began or when it was defined: this call
                    # was assigned since
                    say(
                        f"rewrapped:{id(target)}:{id(call)}",
                        f"{_qualname(target)}.__call__ was replaced after capture began (by {_qualname(call)}); "
                        "wrapped again: its calls are recorded from now on",
                    )
                    self.wrap(target, base)
                wrapper = target.__dict__.get("__call__")
                if getattr(wrapper, "_numtrace_zero_edit", False):
                    self.watched[target] = wrapper

    def check_replaced(self) -> None:
        """At every outermost call: wrap again the watched classes whose wrapper was replaced."""
        replaced = [cls for cls, wrapper in self.watched.items() if cls.__dict__.get("__call__") is not wrapper]
        if replaced:
            self.ensure_wrapped(replaced)

    def wrap(self, cls: type, module_base: type) -> None:
        if GENERATED in cls.__dict__:
            return
        own = cls.__dict__.get("__call__")
        if own is None:  # inherited: wrap it here only if it comes from a non-Module mixin
            owner = next((k for k in cls.__mro__ if "__call__" in k.__dict__), None)
            if owner is None or issubclass(owner, module_base):
                return
            target = owner.__dict__["__call__"]
        else:
            target = own
        if not inspect.isfunction(target) or getattr(target, "_numtrace_zero_edit", False):
            return
        wrapper = _wrapper(target, self)
        type.__setattr__(cls, "__call__", wrapper)
        self.patched.append((cls, own, wrapper))


def _wrapper(call: Any, session: _Session) -> Any:
    @functools.wraps(call)
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not ACTIVE or _current is not session or (session.replay is not None and session.replay.replaying):
            return call(self, *args, **kwargs)  # (the calls a replay makes are not the candidate's)
        stack = STATE.stack
        site = caller = None
        if not stack:
            session.check_replaced()
        else:
            top, root = stack[-1]
            if top is self or root is None:  # a super().__call__ chain, or inside an explicit watch
                return call(self, *args, **kwargs)
            site = root.site(self)
        pre = None
        if site is None:
            if stack:
                caller = next((s for m, r in reversed(stack) if (s := _site_of(m, r)) is not None), None)
            root, site, pre = session.resolve(self, root if stack else None, caller)
            if caller is not None and root.site(self) is None:  # named under its caller: known while it runs
                return _replayed(
                    session, self, call, args, kwargs, site, _run_on_the_fly(self, call, args, kwargs, site, root)
                )
        elif not (site.record_output or site.inputs):
            return call(self, *args, **kwargs)
        return _replayed(
            session, self, call, args, kwargs, site, run_captured(self, call, args, kwargs, (site,), root, pre)
        )

    __call__._numtrace_zero_edit = True  # type: ignore[attr-defined]
    return __call__


def _replayed(session: _Session, module: Any, call: Any, args: tuple, kwargs: dict, site: Site, output: Any) -> Any:
    """``output``, once the replayer (``trace replay``) has made the call again on reference inputs."""
    if session.replay is not None and site.record_output:
        from .mlx_replay import replay_call

        replay_call(session.replay, module, call, site, args, kwargs, output)
    return output


_on_the_fly = threading.local()  # id(module) -> Site of the modules created on the fly now running


def _site_of(module: Any, root: Any) -> Site | None:
    """The site of a module on the call stack: its root's, or the one it was named on the fly."""
    active = getattr(_on_the_fly, "sites", None)
    if active and id(module) in active:
        return active[id(module)]
    return root.site(module) if root is not None else None


def _run_on_the_fly(module: Any, call: Any, args: tuple, kwargs: dict, site: Site, root: Any) -> Any:
    active = getattr(_on_the_fly, "sites", None)
    if active is None:
        active = _on_the_fly.sites = {}
    previous = active.get(id(module))
    active[id(module)] = site
    try:
        return run_captured(module, call, args, kwargs, (site,), root)
    finally:
        if previous is None:
            active.pop(id(module), None)
        else:
            active[id(module)] = previous


def _qualname(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or repr(obj)
    return f"{getattr(obj, '__module__', None) or '?'}.{name}"


def _subclasses(base: type) -> list[type]:
    found: dict[type, None] = {}
    pending: list[type] = list(base.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls not in found:
            found[cls] = None
            pending.extend(cls.__subclasses__())
    return list(found)


def capture(
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    *,
    inputs: bool = False,
    weights: bool = False,
    replay: Any = None,
    **_other: Any,
) -> Any:
    """Start zero-edit capture of every MLX model called from now on; return the callable that undoes it.

    ``include``/``exclude`` select modules by stage name (cheaply, before anything is held);
    ``inputs`` also records ``<module>.input``; ``weights`` records each root's parameters on its
    first call; ``replay``, a :class:`numtrace.replay.session.Replayer`, makes each recorded call
    again on the reference's inputs (``trace replay``). Options meant for other backends are ignored.
    """
    global _current
    import mlx.nn as nn

    if _current is not None:
        raise UsageError("zero-edit MLX capture is already active; undo it before starting another")
    session = _current = _Session(include, exclude, inputs, weights, replay)
    module = nn.Module
    previous_hook = module.__dict__.get("__init_subclass__")
    original_compile = mx.compile

    def hook(cls: type, **kwargs: Any) -> None:
        if previous_hook is not None:
            previous_hook.__func__(cls, **kwargs)
        else:
            super(module, cls).__init_subclass__(**kwargs)
        if _current is session:
            session.wrap(cls, module)

    def undo() -> None:
        global _current
        if _current is not session:
            return
        _current = None
        if getattr(mx.compile, "_numtrace_original", None) is original_compile:
            mx.compile = original_compile
        if previous_hook is None:
            if "__init_subclass__" in module.__dict__:
                type.__delattr__(module, "__init_subclass__")
        else:
            type.__setattr__(module, "__init_subclass__", previous_hook)
        last = {cls: wrapper for cls, _, wrapper in session.patched}
        for cls, wrapper in last.items():
            call = cls.__dict__.get("__call__")
            if call is not wrapper and inspect.isfunction(call):
                say(
                    f"unseen:{id(cls)}:{id(call)}",
                    f"{_qualname(cls)}.__call__ was replaced during the run (by "
                    f"{_qualname(call)}) and no model numtrace saw used it: calls through it were not recorded",
                )
        for cls, own, wrapper in reversed(session.patched):
            if cls.__dict__.get("__call__") is wrapper:
                if own is None:
                    type.__delattr__(cls, "__call__")
                else:
                    type.__setattr__(cls, "__call__", own)
        session.patched.clear()

    session.module_base = module
    try:
        for cls in _subclasses(module):
            session.wrap(cls, module)
        type.__setattr__(module, "__init_subclass__", classmethod(hook))
        mx.compile = compile_recording(original_compile, lambda: _current is session)
    except BaseException:
        undo()
        raise
    return undo
