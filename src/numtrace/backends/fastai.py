"""fastai backend: a Learner callback that records the data pipeline, the model, predictions and loss.

``NumtraceCallback`` records, for every batch of a validation pass
(``learn.validate()``, ``learn.get_preds()``, ``learn.predict()``, the
validation of each epoch of ``fit``; never training batches):

- each Transform of the data pipeline, in the order fastai runs it (a
  Pipeline sorts its transforms by ``order``; transforms that do not apply to
  the validation split are left out, as fastai skips them):
  ``data.x.<Transform>`` for the dataset's input pipeline (``data.y.<...>``
  for targets; ``x0``, ``x1``... when there are several), then
  ``data.after_item.<...>``, ``data.before_batch.<...>``,
  ``data.after_batch.<...>``. A Transform is named by its class
  (``PadSpectrogram``), or by its function for ``Transform(func)``; a second
  one of the same name in a pipeline is ``Name_2``.
- every module of ``learn.model`` (names as ``numtrace.watch``), then
  ``pred`` (``learn.pred``) and ``loss``.

Each stage is recorded once per item or batch, so repeated names get call
indices (``data.x.PadSpectrogram@3``). With ``num_workers > 0`` the dataset
transforms, ``after_item`` and ``before_batch`` run in worker processes and
cannot be recorded: the callback says so in one warning line and records the
rest (``single_process=True`` runs the pass in the main process instead).

``trace run --backend fastai`` adds the callback to every Learner the script
creates (through ``fastai.learner.defaults.callbacks``) and records every
module call as ``--backend torch`` does, except during training; the first
Learner's model takes the unprefixed names, other models their class name.

Example:
    with numtrace.record("fastai.safetensors"):
        preds, _ = learn.get_preds(cbs=[NumtraceCallback()])
"""

from __future__ import annotations

import copyreg
import functools
import re
import weakref
from typing import Any, Callable

from fastai.callback.core import Callback
from fastai.learner import defaults
from fasttransform.transform import Pipeline, Transform

from ..errors import UsageError, warn_once
from ..tracer import active_recording, flatten
from . import torch_hooks, torch_sites
from .torch import watch as watch_torch

_stage_of: "weakref.WeakKeyDictionary[Pipeline, str]" = weakref.WeakKeyDictionary()
_original_class: "weakref.WeakKeyDictionary[Pipeline, type]" = weakref.WeakKeyDictionary()
_tapped_classes: dict[type, type] = {}


def transform_names(transforms: list) -> list[str | None]:
    """Readable stage names of a Pipeline's transforms (None for fastai's ``noop``)."""
    names: list[str | None] = []
    counts: dict[str, int] = {}
    for t in transforms:
        name = (getattr(t, "_name", None) if type(t) is Transform else None) or type(t).__name__
        name = re.sub(r"\W", "_", str(name).rsplit(".", 1)[-1])
        if name == "noop":
            names.append(None)
            continue
        counts[name] = counts.get(name, 0) + 1
        names.append(name if counts[name] == 1 else f"{name}_{counts[name]}")
    return names


def _tapped_call(self: Pipeline, o: Any) -> Any:
    """``Pipeline.__call__`` (``compose_tfms`` over ``self.fs``), recording each transform's result."""
    prefix, split_idx = _stage_of.get(self), self.split_idx
    for f, name in zip(list(self.fs), transform_names(self.fs)):
        o = f(o, split_idx=split_idx)
        applies = getattr(f, "split_idx", None) in (None, split_idx)
        if prefix and name and applies and flatten(o):
            torch_sites.record(f"{prefix}.{name}", o)
    return o


def _reduce_ex(self: Pipeline, protocol: int) -> Any:
    """Pickle (or deepcopy) as the plain Pipeline it is: the copy needs no numtrace."""
    original = _original_class.get(self, type(self).__mro__[1])
    # copyreg._reconstructor (what object.__reduce_ex__ itself returns) is private: typeshed leaves it out
    return copyreg._reconstructor, (original, object, None), dict(self.__dict__)  # type: ignore[attr-defined]


def tap_pipeline(pipeline: Pipeline, stage: str) -> None:
    """Record each transform of ``pipeline`` under ``stage.<name>`` until :func:`untap_pipeline`."""
    cls = type(pipeline)
    if pipeline in _original_class:
        _stage_of[pipeline] = stage
        return
    tapped = _tapped_classes.get(cls)
    if tapped is None:  # Pipeline.__call__ is looked up on the class: swap the instance's class
        tapped = type(
            cls.__name__, (cls,), {"__call__": _tapped_call, "__reduce_ex__": _reduce_ex, "__module__": cls.__module__}
        )
        _tapped_classes[cls] = tapped
    _original_class[pipeline] = cls
    _stage_of[pipeline] = stage
    pipeline.__class__ = tapped


def untap_pipeline(pipeline: Pipeline) -> None:
    original = _original_class.pop(pipeline, None)
    _stage_of.pop(pipeline, None)
    if original is not None:
        pipeline.__class__ = original


def data_pipelines(dl: Any) -> list[tuple[str, Pipeline, bool]]:
    """``(stage prefix, pipeline, runs in worker processes)`` for a fastai DataLoader, in run order."""
    found = []
    dataset: Any = getattr(dl, "dataset", None)
    tls = getattr(dataset, "tls", None)
    if tls is not None:
        n_inp = getattr(dataset, "n_inp", 1)
        roles = [("x", i, n_inp) if i < n_inp else ("y", i - n_inp, len(tls) - n_inp) for i in range(len(tls))]
        for (role, i, count), tl in zip(roles, tls):
            if isinstance(getattr(tl, "tfms", None), Pipeline):
                found.append((f"data.{role}" if count == 1 else f"data.{role}{i}", tl.tfms, True))
    elif isinstance(getattr(dataset, "tfms", None), Pipeline):
        found.append(("data.x", dataset.tfms, True))
    for event, in_workers in (("after_item", True), ("before_batch", True), ("after_batch", False)):
        pipeline = getattr(dl, event, None)
        if isinstance(pipeline, Pipeline):
            found.append((f"data.{event}", pipeline, in_workers))
    return found


class NumtraceCallback(Callback):
    """Record validation and prediction passes of a Learner (see the module docstring).

    Options: ``modules`` (watch ``learn.model``), ``data`` (the pipelines),
    ``include``/``exclude`` globs over module stage names, ``inputs`` and
    ``weights`` (as ``numtrace.watch``), ``prefix`` for module names,
    ``single_process`` (run a pass with ``num_workers=0`` to see every transform).
    """

    order = 100  # after the other after_pred callbacks: `pred` is what the loss sees
    run_train = False

    def __init__(
        self,
        *,
        modules: bool = True,
        data: bool = True,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        inputs: bool = False,
        weights: bool = False,
        prefix: str = "",
        single_process: bool = False,
    ) -> None:
        super().__init__()
        self._nt_options = dict(include=include, exclude=exclude, inputs=inputs, weights=weights, prefix=prefix)
        self._nt_modules, self._nt_data, self._nt_single = modules, data, single_process
        self._nt_undo: list[Callable[[], None]] = []
        self._nt_weighed: weakref.WeakSet = weakref.WeakSet()  # recordings that have the weights already

    def before_validate(self) -> None:
        self._nt_release()
        dl = self.learn.dl
        workers = getattr(getattr(dl, "fake_l", None), "num_workers", 0) or 0
        if workers and self._nt_single:
            single = dl.fake_l.no_multiproc()
            single.__enter__()
            self._nt_undo.append(lambda: single.__exit__(None, None, None))
            workers = 0
        if self._nt_data:
            for stage, pipeline, in_workers in data_pipelines(dl):
                if workers and in_workers:
                    continue
                tap_pipeline(pipeline, stage)
                self._nt_undo.append(functools.partial(untap_pipeline, pipeline))
            if workers:
                warn_once(
                    "fastai-workers",
                    f"this DataLoader uses num_workers={workers}: its dataset "
                    "transforms, after_item and before_batch run in worker processes and are not recorded "
                    "(after_batch, the model, pred and loss are); use num_workers=0 to record them",
                )
        if self._nt_modules:
            options = dict(self._nt_options)
            recording = active_recording()
            if recording is None or recording in self._nt_weighed:
                options["weights"] = False
            elif options["weights"]:
                self._nt_weighed.add(recording)
            self._nt_undo.append(watch_torch(self.learn.model, **options).detach)

    def after_pred(self) -> None:
        torch_sites.record("pred", self.learn.pred)

    def after_loss(self) -> None:
        if len(self.learn.yb):
            torch_sites.record("loss", self.learn.loss)

    def after_validate(self) -> None:
        self._nt_release()

    # a pass that raised never reaches after_validate: whatever comes next puts things back
    before_fit = before_train = after_fit = after_validate

    def _nt_release(self) -> None:
        undo, self._nt_undo = self._nt_undo, []
        for step in reversed(undo):
            step()

    def __setattr__(self, name: str, value: Any) -> None:
        # `get_preds(cbs=...)` removes the callback in a `finally` (learn = None): undo even after an error
        if name == "learn" and value is None and "_nt_undo" in self.__dict__:
            self._nt_release()
        super().__setattr__(name, value)


class _CaptureState:
    active = False
    training = 0
    hooks: torch_hooks.TorchCapture | None = None


class NumtraceCaptureCallback(NumtraceCallback):
    """Added to every Learner by ``trace run --backend fastai``; modules come from the process-wide capture."""

    name = "numtrace_capture"

    def __init__(self) -> None:
        super().__init__(modules=False)
        self._nt_training = False

    def after_create(self) -> None:
        if _CaptureState.hooks is not None:  # the Learner's model takes the unprefixed names
            _CaptureState.hooks.adopt(self.learn.model, unprefixed=True)

    def before_train(self) -> None:
        super().before_train()
        if _CaptureState.active and not self._nt_training:
            self._nt_training = True
            _CaptureState.training += 1

    def before_validate(self) -> None:
        self._nt_stop_training()
        if _CaptureState.active:
            super().before_validate()
            if _CaptureState.hooks is not None:
                _CaptureState.hooks.adopt(self.learn.model, unprefixed=True)

    def after_pred(self) -> None:
        if _CaptureState.active:
            super().after_pred()

    def after_loss(self) -> None:
        if _CaptureState.active:
            super().after_loss()

    def after_train(self) -> None:
        self._nt_stop_training()

    def after_fit(self) -> None:
        super().after_fit()
        self._nt_stop_training()

    def _nt_stop_training(self) -> None:
        if self.__dict__.get("_nt_training"):
            self._nt_training = False
            _CaptureState.training -= 1

    def __reduce__(self) -> Any:
        return (Callback, ())  # `learn.export()` must not make the exported Learner depend on numtrace


def capture(
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    *,
    inputs: bool = False,
    weights: bool = False,
    replay: Any = None,
) -> Callable[[], None]:
    """Start zero-edit capture of every Learner's validation passes; returns the undo callable.
    ``replay``: see :func:`numtrace.backends.torch.capture` (the model's modules are replayed)."""
    hooks = torch_hooks.TorchCapture(
        include,
        exclude,
        inputs=inputs,
        weights=weights,
        unprefixed_first=False,
        gate=lambda: _CaptureState.training == 0,
        replay=replay,
    ).start()
    defaults.callbacks.append(NumtraceCaptureCallback)
    _CaptureState.active, _CaptureState.training, _CaptureState.hooks = True, 0, hooks

    def undo() -> None:
        _CaptureState.active, _CaptureState.hooks = False, None
        if NumtraceCaptureCallback in defaults.callbacks:
            defaults.callbacks.remove(NumtraceCaptureCallback)
        hooks.stop()
        for pipeline in list(_original_class):
            untap_pipeline(pipeline)

    return undo


#: fastai's arrays are torch tensors: the torch backend converts them
ADAPTER = None


def watches(model: Any) -> bool:
    return False


def watch(model: Any, **options: Any) -> Any:
    raise UsageError(
        "numtrace.watch takes the model itself (learn.model, a torch.nn.Module); record a whole "
        "Learner with NumtraceCallback or `trace run --backend fastai`"
    )
