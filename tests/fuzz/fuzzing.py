"""Shared harness of the fuzz tests (imported as ``fuzzing``; pytest puts this directory on sys.path).

It runs the CLI in-process under a time limit, a memory cap and a pickle
tripwire, and checks that the outcome is clean (a verdict, or exit 2 with one
line, never a traceback): :func:`check_file` runs ``trace show`` on a file and
``trace diff`` with it on either side of a good trace; :func:`check_bytes` does
the same for a mutated file's bytes (written next to the good trace, removed
afterwards) and, when the mutation must be refused, asserts that every command
refused it; :func:`flip_bits` and :func:`scratch_dir` are the mutations' helpers.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import shutil
import signal
import sys
import tempfile
import tracemalloc
from typing import Iterable, Iterator, NamedTuple

from typer.testing import CliRunner

from numtrace.cli import app
from report_schema import check_cli_output


def examples(default: int) -> int:
    """Examples per fuzz test: ``default`` (a few seconds each, for ``make test``), or
    ``NUMTRACE_FUZZ_EXAMPLES`` for a longer fuzzing session."""
    return int(os.environ.get("NUMTRACE_FUZZ_EXAMPLES", default))


#: an example that runs longer than this is a hang
TIME_LIMIT_S = 20
#: no example may allocate more than this (headers below claim terabytes)
MEMORY_CAP = 256 << 20


class Outcome(NamedTuple):
    code: int
    stdout: str
    stderr: str


class Hang(Exception):
    pass


def _forbidden(*args, **kwargs):
    raise AssertionError("a trace reader tried to unpickle data")


@contextlib.contextmanager
def guarded():
    """Time limit (SIGALRM), memory cap (tracemalloc peak) and no unpickling, around one example."""

    def on_alarm(signum, frame):
        raise Hang(f"an example ran longer than {TIME_LIMIT_S} s")

    torch_before = "torch" in sys.modules
    saved = signal.signal(signal.SIGALRM, on_alarm), pickle.load, pickle.loads
    pickle.load = pickle.loads = _forbidden
    signal.alarm(TIME_LIMIT_S)
    tracemalloc.start()
    try:
        yield
        _, peak = tracemalloc.get_traced_memory()
        assert peak < MEMORY_CAP, f"an example allocated {peak} bytes"
    finally:
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, saved[0])
        pickle.load, pickle.loads = saved[1], saved[2]
    assert torch_before or "torch" not in sys.modules, "a trace reader imported torch"


def run_cli(*args) -> Outcome:
    """``trace ARGS`` in-process; an exception other than SystemExit (a traceback) is re-raised."""
    with guarded():
        result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    check_cli_output(args, result.stdout, result.exit_code)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def assert_clean(outcome: Outcome, codes=(0, 1, 2)) -> None:
    """Exit 0/1 (a verdict) or 2 with exactly one 'trace: error:' line on stderr; never a traceback."""
    assert outcome.code in codes, outcome
    assert "Traceback" not in outcome.stderr and "Traceback" not in outcome.stdout, outcome.stderr
    if outcome.code == 2:
        lines = outcome.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("trace: error: "), outcome.stderr


def check_file(path, good) -> list[Outcome]:
    """``trace show`` of ``path`` and ``trace diff`` with it on each side of a good trace: all clean."""
    outcomes = [run_cli("show", path), run_cli("diff", path, good, "--json"), run_cli("diff", good, path)]
    for outcome in outcomes:
        assert_clean(outcome)
    return outcomes


def assert_refused(outcomes: list[Outcome]) -> None:
    """Every command refused the file: exit 2 with one line."""
    for outcome in outcomes:
        assert outcome.code == 2, outcome


def scratch_dir(prefix: str) -> str:
    """A temporary directory for a fuzz module's files, removed when the test process exits."""
    directory = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, directory, True)
    return directory


@contextlib.contextmanager
def written(content: bytes, near: str, suffix: str) -> Iterator[str]:
    """``content`` in a new file with ``suffix`` beside the file ``near``; removed afterwards."""
    fd, path = tempfile.mkstemp(suffix=suffix, dir=os.path.dirname(near))
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    try:
        yield path
    finally:
        os.remove(path)


def check_bytes(content: bytes, good: str, refused: bool, suffix: str | None = None) -> list[Outcome]:
    """:func:`check_file` of ``content`` written to a file (``suffix``: the good trace's); when
    ``refused``, every command must have refused it (:func:`assert_refused`)."""
    with written(content, good, suffix or os.path.splitext(good)[1]) as path:
        outcomes = check_file(path, good)
    if refused:
        assert_refused(outcomes)
    return outcomes


def flip_bits(content: bytes, bits: Iterable[int]) -> bytes:
    """``content`` with each bit numbered in ``bits`` (8 per byte, lowest first) inverted."""
    out = bytearray(content)
    for bit in bits:
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)
