"""The object behind the ``numtrace`` pytest fixture: a recording, golden traces, kept reports.

While the test runs, an in-memory recording is active: every ``numtrace.tap``
of the test and of the code it calls lands in it. A *check* takes the stages
tapped so far (since the test began or the previous check), compares them,
and starts a new recording for what follows:

- ``check_golden(name=None)`` compares them with the golden trace
  ``<golden dir>/<test id>[.<name>].safetensors``; with ``--numtrace-update``
  it writes that file instead, only when the stages changed beyond their
  tolerance: an identical recording, or one whose every stage still MATCHes
  the golden (float32 results differ in the last bits between CPUs), leaves
  the committed golden byte for byte as it is (``--numtrace-force-update``
  rewrites it anyway).
- ``check_against(reference)`` compares them with any reference trace (a path,
  a Trace, a finished ``numtrace.record()``, a dict of arrays).

Both fail with the report of :func:`~numtrace.testing.assert_traces_close`,
use the ``[tool.numtrace]`` tolerances with the call's own on top, and with
``--numtrace-report DIR`` keep ``reference.safetensors``,
``candidate.safetensors``, ``report.json`` and ``report.txt`` in
``DIR/<test id>[.<name>]/``.

Example::

    def test_port(numtrace):
        with numtrace.record() as ref:       # nested: the reference goes to its own recording
            reference_frontend(clip)
        port_frontend(clip)                  # lands in the fixture's recording
        numtrace.check_against(ref.trace, tolerance={"db": {"atol": 0.01}})
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

import numtrace as _numtrace

from ..formats import load, save
from ..trace import MemoryTrace, Trace
from .assertions import TraceMismatch, as_trace, assert_traces_close, check_traces
from .tolerances import merge_tables, tolerance_table

if TYPE_CHECKING:
    from ..tracer import Recording

_UNSAFE = re.compile(r"[^A-Za-z0-9_.,=+-]+")


def golden_stem(nodeid: str) -> str:
    """A file name stem for a test id: ``tests/test_a.py::test_b[x-1]`` -> ``tests.test_a__test_b-x-1``.

    A short hash of the id is appended when characters had to be replaced (or
    the name is long), so two tests never share a golden.

    Example:
        >>> golden_stem("test_port.py::TestMel::test_db[short]")
        'test_port__TestMel__test_db-short'
    """
    path, _, rest = nodeid.partition("::")
    path = path[:-3] if path.endswith(".py") else path
    text = path.replace("/", ".").replace("\\", ".") + ("__" + rest.replace("::", "__") if rest else "")
    text = text.replace("[", "-").replace("]", "")
    stem = _UNSAFE.sub("_", text).strip("._-") or "test"
    if stem != text or len(stem) > 120:
        stem = f"{stem[:100]}-{hashlib.sha1(nodeid.encode('utf-8')).hexdigest()[:8]}"
    return stem


class NumtraceFixture:
    """What a test gets from the ``numtrace`` fixture (see the module docstring)."""

    tap = staticmethod(_numtrace.tap)
    scope = staticmethod(_numtrace.scope)
    record = staticmethod(_numtrace.record)

    def __init__(self, settings, nodeid: str, path: Path | None = None) -> None:
        self.settings = settings
        self.nodeid = nodeid
        #: the test as it is named on the command line, from where pytest was started
        self.selector = (
            nodeid if path is None or "::" not in nodeid else settings.shown(Path(path)) + nodeid[nodeid.find("::") :]
        )
        self.stem = golden_stem(nodeid)
        self._recording: Recording | None = None
        self._checked: set[str] = set()

    def __repr__(self) -> str:
        return f"<numtrace fixture of {self.nodeid}: {len(self.names)} stage(s) tapped since the last check>"

    @property
    def updating(self) -> bool:
        """True under ``--numtrace-update``: golden checks write instead of compare."""
        return self.settings.update

    @property
    def tolerances(self):
        """The ``[tool.numtrace]`` ToleranceTable (None when not configured)."""
        return self.settings.tolerances

    @property
    def names(self) -> list[str]:
        """Stages tapped since the test began or the previous check."""
        return self._recording.names if self._recording is not None else []

    def golden_path(self, name: str | None = None) -> Path:
        """Where the golden trace of this test (and check ``name``) lives."""
        suffix = "" if name is None else "." + (_UNSAFE.sub("_", name).strip("._-") or "check")
        return self.settings.golden_dir / f"{self.stem}{suffix}.safetensors"

    def start(self) -> None:
        self._recording = _numtrace.record(metadata={"test": self.nodeid}).start()

    def collect(self) -> Trace:
        """The stages tapped so far, as a trace; later taps go to a fresh recording."""
        assert self._recording is not None  # started with the test, restarted by every collect
        trace = self._recording.stop()
        trace.label = f"<stages tapped by {self.nodeid}>"
        self.start()
        return trace

    def check_golden(self, name: str | None = None, *, tolerance=None, only=None, fail_on: str | None = None):
        """Compare the stages tapped so far with this test's golden trace (or write it when updating).

        ``only`` (globs) names the stages to compare, and to store when updating.
        Returns the DiffReport (None when it wrote the golden).
        """
        __tracebackhide__ = True
        key = name if name is not None else ""
        if key in self._checked:
            what = "without a name" if name is None else f"with the name {name!r}"
            pytest.fail(
                f"numtrace.check_golden() was already called {what} in this test; "
                "give each golden check of a test its own name: check_golden('encoder')",
                pytrace=False,
            )
        self._checked.add(key)
        trace = self.collect()
        if not trace.order:
            pytest.fail(
                "numtrace.check_golden(): this test tapped no stage (nothing to compare); "
                "tap them with numtrace.tap(name, array) before the check",
                pytrace=False,
            )
        path = self.golden_path(name)
        if self.updating:
            selected = _select(trace, only)
            if not selected.order:
                pytest.fail(
                    f"numtrace.check_golden(only={only!r}): no tapped stage matches; tapped: {', '.join(trace.order)}",
                    pytrace=False,
                )
            self._write_golden(selected, path, merge_tables(self.settings.tolerances, tolerance_table(tolerance)))
            return None
        if not path.is_file():
            pytest.fail(
                f"numtrace: no golden trace for this test: {self.settings.shown(path)} does not exist.\n"
                f"Record it by running the test once with --numtrace-update:\n"
                f'    pytest --numtrace-update "{self.selector}"\n'
                f"then review the file and commit it.",
                pytrace=False,
            )
        golden = load(path, role="golden trace")
        golden.label = f"{self.settings.shown(path)} (golden)"
        try:
            return self._check(golden, trace, name, tolerance, only, None, fail_on, copy_from=path)
        finally:
            golden.close()

    def check_against(
        self, reference, *, name: str | None = None, tolerance=None, only=None, map=None, fail_on: str | None = None
    ):
        """Compare the stages tapped so far (the candidate) with ``reference``; returns the DiffReport."""
        __tracebackhide__ = True
        return self._check(reference, self.collect(), name, tolerance, only, map, fail_on)

    def finish(self, failed: bool) -> None:
        """Stop the recording; when the test failed and a report dir is set, keep its stages."""
        trace = self._recording.stop() if self._recording is not None else None
        self._recording = None
        if failed and trace is not None and trace.order and self.settings.report_dir is not None:
            folder = self.settings.report_dir / self.stem
            folder.mkdir(parents=True, exist_ok=True)
            write_trace(trace, folder / "recorded.safetensors", self.nodeid)
            if folder not in self.settings.kept:
                self.settings.kept.append(folder)

    def _check(self, reference, trace: Trace, name, tolerance, only, map, fail_on, copy_from=None):
        __tracebackhide__ = True
        table = merge_tables(self.settings.tolerances, tolerance_table(tolerance))
        rule = fail_on or self.settings.fail_on
        try:
            return assert_traces_close(reference, trace, table, only=only, map=map, fail_on=rule)
        except TraceMismatch as err:
            kept = self._keep(copy_from or reference, trace, err, name)
            if kept is None:
                raise
            raise TraceMismatch(f"{err}\n\nnumtrace kept the traces and the report in {kept}", err.report) from None

    def _keep(self, reference, trace: Trace, err: TraceMismatch, name: str | None) -> str | None:
        if self.settings.report_dir is None:
            return None
        folder = self.settings.report_dir / (self.stem + ("" if name is None else "." + _UNSAFE.sub("_", name)))
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(reference, (str, os.PathLike)) and Path(reference).is_file():
            shutil.copyfile(reference, folder / ("reference" + Path(reference).suffix))
        else:
            source, _ = as_trace(reference, "reference")
            write_trace(source, folder / "reference.safetensors", self.nodeid)
        write_trace(trace, folder / "candidate.safetensors", self.nodeid)
        report = {"test": self.nodeid, **err.report.to_dict()}
        (folder / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        (folder / "report.txt").write_text(str(err) + "\n", encoding="utf-8")
        self.settings.kept.append(folder)
        return self.settings.shown(folder)

    def _write_golden(self, trace: Trace, path: Path, table) -> None:
        if path.is_file():
            with load(path, role="golden trace") as old:
                if same_trace(old, trace):
                    self.settings.unchanged.append(path)
                    return
                if not self.settings.force_update and still_matches(old, trace, table):
                    self.settings.within.append(path)
                    return
            how = "changed"
        else:
            how = "new"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_trace(trace, path, self.nodeid)
        self.settings.written.append((path, how))


def _select(trace: Trace, only) -> Trace:
    """The stages of ``trace`` that match a glob of ``only`` (all of them when None)."""
    if only is None:
        return trace
    globs = [only] if isinstance(only, str) else list(only)
    names = [name for name in trace.order if any(fnmatchcase(name, glob) for glob in globs)]
    return MemoryTrace({name: (trace.read(name), trace.info(name).dtype) for name in names}, label=trace.label)


def write_trace(trace: Trace, path: Path, test: str) -> str:
    """Save ``trace`` (recorded dtypes kept) with stable metadata: no timestamp, the test's id."""
    stages = {name: (trace.read(name), trace.info(name).dtype) for name in trace.order}
    return save(path, stages, metadata={"numtrace.test": test}, order=list(trace.order))


def still_matches(golden: Trace, trace: Trace, table) -> bool:
    """Whether ``trace`` has the golden's stages in its order, every one MATCH within ``table``'s
    tolerances (the rule a check applies, at its strictest): then the golden need not change."""
    if list(golden.order) != list(trace.order):
        return False
    try:
        check_traces(golden, trace, table, fail_on="any", diagnose=False)
    except TraceMismatch:
        return False
    return True


def same_trace(a: Trace, b: Trace) -> bool:
    """Same stage order, shapes, recorded dtypes and values (bit for bit; NaN equals NaN)."""
    if list(a.order) != list(b.order):
        return False
    for name in a.order:
        if a.info(name) != b.info(name):
            return False
        x, y = a.read(name), b.read(name)
        if not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc" and y.dtype.kind in "fc"):
            return False
    return True
