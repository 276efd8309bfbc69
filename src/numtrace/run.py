"""``trace run``: run a script exactly as ``python SCRIPT ARGS`` would, with a recording active.

The script sees the same ``sys.argv``, ``sys.path[0]`` (its own directory)
and ``__name__ == "__main__"``. Whatever happens in it (an exception,
``sys.exit``, Ctrl-C) the stages tapped so far are written, and the status
is returned as Python would report it.

Example:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> script = os.path.join(d, "s.py")
    >>> _ = open(script, "w").write("import numtrace\\nnumtrace.tap('x', 1.0)\\n")
    >>> result = run_script(script, [], os.path.join(d, "out.safetensors"))
    >>> result.exit_code, result.stages
    (0, 1)
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import threading
import traceback
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from . import backends, probe_function
from .errors import NumtraceWarning, UsageError
from .report.progress import Progress
from .tracer import Recording


@dataclass
class RunResult:
    exit_code: int
    out: str
    stages: int
    status: str


def default_output(script: str) -> str:
    """``pipeline.py`` -> ``pipeline.safetensors`` in the current directory."""
    stem = os.path.splitext(os.path.basename(script))[0] or "trace"
    return f"{stem}.safetensors"


def backend_module(backend: str) -> ModuleType | None:
    """The numtrace module that captures ``backend``'s modules, imported now (None for a backend
    without modules, numpy): a missing framework is a usage error, not the script's.

    Example:
        >>> backend_module("numpy") is None
        True
    """
    entry = backends.backend(backend)
    if not entry.models:
        return None
    try:
        return backends.module_of(entry)
    except ImportError as err:
        raise UsageError(
            f"--backend {backend} needs {backend}, which cannot be imported ({err}): pip install 'numtrace[{backend}]'"
        ) from None


def run_script(
    script: str,
    args: list[str],
    out: str,
    *,
    backend: str = "numpy",
    probes: list[str] | None = None,
    max_calls: int | None = None,
    inputs: bool = False,
    weights: bool = False,
    probe_functions: list[str] | None = None,
    stats: bool = False,
    stats_axis: int | None = None,
    replay: Any = None,
) -> RunResult:
    """Run ``script`` under a recording that writes ``out``; never raises for the script's errors.

    ``inputs``/``weights`` also record module inputs and parameters (module
    backends); ``probe_functions`` are ``module:function[=STAGE]`` specs whose
    return values are recorded at every call (see ``numtrace.probe_function``);
    ``stats`` records sketches instead of tensors (see ``numtrace.compare.sketches.format``);
    ``replay``, a :class:`numtrace.replay.session.Replayer`, makes every module call again on the
    reference's inputs (``trace replay``, module backends).
    """
    if not os.path.exists(script):
        raise UsageError(f"script {script!r} not found")
    if os.path.isdir(script):
        raise UsageError(f"{script!r} is a directory; give the path of a Python script")
    entry = backends.backend(backend)
    if (inputs or weights) and not entry.models:
        models = ", ".join(b.name for b in backends.REGISTRY if b.models)
        raise UsageError(
            f"--inputs and --weights record module inputs and parameters: use them with --backend {models}"
        )
    capture_module = backend_module(backend)
    recording = Recording(
        out,
        backend=backend,
        include=probes or None,
        max_calls=max_calls,
        context={"argv": json.dumps([script, *args])},
        stats=stats,
        stats_axis=stats_axis,
    )
    saved_argv, saved_path0 = sys.argv, sys.path[0] if sys.path else None
    sys.argv = [script, *args]
    script_dir = os.path.dirname(os.path.abspath(script))
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.append(script_dir)
    undo_probes = None
    try:  # after sys.path[0] is the script's directory: probed functions may live beside it
        undo_probes = probe_function.install(probe_functions, script=script) if probe_functions else None
    except BaseException:
        sys.argv = saved_argv
        if saved_path0 is not None:
            sys.path[0] = saved_path0
        raise
    with warnings_as_lines(), Progress(f"recording {out}", unit="", after=2.0) as bar:
        recording.on_stage = lambda stage, count, nbytes: bar.update(0, None, f"{count} stages, {_size(nbytes)}")
        recording.start()
        exit_code, status, undo_capture = 0, "complete", None
        undo_signal = _terminate_as_exit()
        try:
            if capture_module is not None:
                options = {
                    "include": probes or None,
                    **({"inputs": True} if inputs else {}),
                    **({"weights": True} if weights else {}),
                    **({"replay": replay} if replay is not None else {}),
                }
                undo_capture = capture_module.capture(**options)
            runpy.run_path(script, run_name="__main__")
        except SystemExit as stop:
            exit_code = _exit_code(stop.code)
            status = "complete" if exit_code == 0 else f"exited with status {exit_code}"
        except KeyboardInterrupt:
            exit_code, status = 130, "interrupted: KeyboardInterrupt"
            print("KeyboardInterrupt", file=sys.stderr)
        except BaseException as error:  # the script's own failure: report it as Python would
            exit_code, status = 1, f"error: {type(error).__name__}: {error}"
            _print_script_traceback(error)
        finally:
            undo_signal()
            if undo_probes is not None:
                undo_probes()
            if undo_capture is not None:
                undo_capture()
            sys.argv = saved_argv
            if saved_path0 is not None:
                sys.path[0] = saved_path0
            trace = recording.stop(status)
            stages = len(trace)
            trace.close()
    return RunResult(exit_code, recording.path or out, stages, status)


@contextmanager
def warnings_as_lines():
    """While the script runs, numtrace's own warnings print as one line on stderr,
    ``numtrace: <message>``, every time one is raised (the script's other warnings show as Python
    shows them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", NumtraceWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
            if issubclass(category, NumtraceWarning):
                print(f"numtrace: {message}", file=sys.stderr, flush=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _terminate_as_exit():
    """While the script runs, SIGTERM (a launcher stopping the other ranks when one fails, a job
    scheduler) exits as ``sys.exit(143)`` would, so the stages recorded so far are written;
    returns the undo callable."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum, frame):  # noqa: ANN001
        raise SystemExit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _size(nbytes: int) -> str:
    """``12.3 MiB``"""
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_script_traceback(error: BaseException) -> None:
    """The traceback Python would print, without numtrace's and runpy's frames."""
    tb = error.__traceback__
    while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb, file=sys.stderr)


def _is_ours(filename: str) -> bool:
    return filename == __file__ or filename == runpy.__file__ or filename.startswith("<frozen runpy")
