"""The replay beside a live run: each paired module call is made again on the reference's inputs.

A backend that captures module calls (``trace run --backend torch|mlx|fastai``) calls
:meth:`Replayer.after_call` once a live call has returned and its output is recorded, with
a ``rerun(args, kwargs)`` that calls the same module again without recording it and without
disturbing the live run (no gradient, its random state and buffers put back: the backend's
part). The replayer finds the reference call it pairs with (:mod:`numtrace.replay.plan`),
builds the arguments (:mod:`numtrace.replay.inputs`), makes the call and records its output
under the live call's stage name into the replay trace; a call it cannot replay is kept with
the reason (:attr:`Replayer.skipped`), none is dropped silently.

Example:
    >>> import numpy as np
    >>> from numtrace.trace import MemoryTrace
    >>> from numtrace.tracer import Recording
    >>> from numtrace.replay.inputs import NumpyArrays
    >>> from numtrace.replay.plan import ReplayPlan
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> ref = MemoryTrace({"fc.input": x, "fc": x * 2}, order=["fc.input", "fc"])
    >>> replayer = Replayer(ReplayPlan(ref, MemoryTrace({"fc": x * 2 + 1})), ref, Recording().start(active=False))
    >>> double = lambda v: v * 2
    >>> replayer.after_call("fc", [""], (x + 7,), {}, NumpyArrays(), lambda a, k: double(*a, **k))
    >>> replayer.finish().read("fc").tolist() == (x * 2).tolist(), replayer.replayed
    (True, {'fc': 'fc'})
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ..trace import Trace
from ..tracer import CALL_INDEX_SEPARATOR, Recording
from .inputs import Arrays, replay_arguments
from .plan import ReplayPlan, Target

REPLAY_KEY = "replay"


class Replayer:
    """Replays the candidate's module calls on the reference's inputs (module docstring)."""

    def __init__(self, plan: ReplayPlan, reference: Trace, recording: Recording) -> None:
        self.plan = plan
        self.reference = reference
        self.recording = recording
        self.calls: dict[str, int] = {}
        #: ``{candidate stage: the reference call replayed}``, ``{stage: why not}``, ``{stage: notes}``
        self.replayed: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.notes: dict[str, list[str]] = {}
        self.seconds = 0.0
        self._local = threading.local()

    @property
    def replaying(self) -> bool:
        """True inside a replayed call (on this thread): the backends' hooks let its calls pass."""
        return getattr(self._local, "depth", 0) > 0

    def after_call(
        self,
        stage: str,
        keys: list[str],
        args: tuple,
        kwargs: dict,
        arrays: Arrays,
        rerun: Callable[[tuple, dict], Any],
    ) -> None:
        """A live call whose output was recorded as ``stage`` (flattened ``keys``, ``[""]`` for one
        array) has returned: replay it if it pairs with a reference call that recorded inputs."""
        count = self.calls.get(stage, 0)
        self.calls[stage] = count + 1
        name = stage if count == 0 else f"{stage}{CALL_INDEX_SEPARATOR}{count}"
        started = time.perf_counter()
        try:
            target = self.plan.target(name, keys)
            if isinstance(target, str):
                self.skipped[name] = target
                return
            self._replay(name, target, args, kwargs, arrays, rerun)
        finally:
            self.seconds += time.perf_counter() - started

    def _replay(
        self, name: str, target: Target, args: tuple, kwargs: dict, arrays: Arrays, rerun: Callable[[tuple, dict], Any]
    ) -> None:
        reference = {key: self.reference.read(stage) for key, stage in target.inputs.items()}
        made = replay_arguments(args, kwargs, reference, arrays)
        if isinstance(made, str):
            self.skipped[name] = made
            return
        new_args, new_kwargs, notes = made
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            output = rerun(new_args, new_kwargs)
        except Exception as error:  # the module refused the reference's inputs: say so, go on
            self.skipped[name] = f"the replayed call raised {type(error).__name__}: {error}"
            return
        finally:
            self._local.depth -= 1
        try:
            self.recording.tap(name, output)
        except Exception as error:
            self.skipped[name] = f"its replayed output cannot be recorded ({error})"
            return
        self.replayed[name] = target.module + target.call
        if notes:
            self.notes[name] = notes

    def summary(self) -> dict:
        """What the replay did, as stored in the replay trace's ``numtrace.replay`` metadata."""
        return {
            "reference": self.reference.label,
            "replayed": self.replayed,
            "not_replayed": self.skipped,
            "notes": self.notes,
        }

    def finish(self, status: str | None = None) -> Trace:
        """Stop the replay recording (its metadata says what was replayed) and return its trace."""
        self.recording.set_context(REPLAY_KEY, self.summary())
        return self.recording.stop(status)
