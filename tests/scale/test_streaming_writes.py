"""Writes under stress: two `trace run` writing one output, Ctrl-C during a run, and no half-written file."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from scaling import trace_run  # noqa: F401 - a fixture

from numtrace.formats import load

WRITER = """
import os, sys, time, numpy as np, numtrace
run, go = int(sys.argv[1]), sys.argv[2]
while not os.path.exists(go):  # both writers start together
    time.sleep(0.005)
for i in range(40):
    numtrace.tap(f"layer.{i}", np.full((256, 1024), run * 1000 + i, np.float32))  # 1 MiB each
"""

SLEEPER = """
import sys, time, numpy as np, numtrace
for i in range(3):
    numtrace.tap(f"step.{i}", np.full(1000, i, np.float32))
print("ready", flush=True)
time.sleep(60)
numtrace.tap("never", np.zeros(1))
"""


@pytest.mark.parametrize("suffix", [".safetensors", ".h5"])
def test_two_concurrent_runs_writing_one_output_leave_one_complete_trace(tmp_path, trace_run, suffix):
    if suffix == ".h5":
        pytest.importorskip("h5py")
    script, go, out = tmp_path / "writer.py", tmp_path / "go", tmp_path / f"out{suffix}"
    script.write_text(WRITER)
    trace = os.path.join(os.path.dirname(sys.executable), "trace")
    procs = [
        subprocess.Popen(
            [trace, "run", "-o", str(out), str(script), str(run), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in (1, 2)
    ]
    time.sleep(0.5)
    go.write_text("")
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    with load(out) as trace:  # whichever finished last: complete, and every stage from that one run
        assert trace.order == [f"layer.{i}" for i in range(40)]
        firsts = {float(trace.read(name).reshape(-1)[0]) // 1000 for name in trace.order}
        assert len(firsts) == 1 and firsts <= {1.0, 2.0}
        assert all(trace.read(f"layer.{i}")[-1, -1] % 1000 == i for i in range(40))
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(f".out{suffix}.")]
    assert leftovers == [], leftovers  # no spill or temp file left behind


@pytest.mark.parametrize("suffix", [".safetensors", ".h5"])
def test_ctrl_c_during_a_run_keeps_the_stages_tapped(tmp_path, suffix):
    if suffix == ".h5":
        pytest.importorskip("h5py")
    script, out = tmp_path / "sleeper.py", tmp_path / f"out{suffix}"
    script.write_text(SLEEPER)
    trace = os.path.join(os.path.dirname(sys.executable), "trace")
    command = [trace, "run", "-o", str(out), str(script)]
    # Ctrl-C reaches a terminal's foreground job; a shell starts background jobs with SIGINT ignored
    # and pytest, run as one, would pass that on: the run gets SIGINT's default, as in a terminal
    restore_ctrl_c = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore_ctrl_c
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "KeyboardInterrupt" in err and "Traceback" not in err
    with load(out) as trace:
        assert trace.order == ["step.0", "step.1", "step.2"]
        assert trace.metadata["numtrace.status"].startswith("interrupted")
        assert trace.read("step.2").tolist() == [2.0] * 1000


def test_a_killed_run_leaves_the_previous_file_intact(tmp_path):
    """SIGKILL (no chance to clean up) mid-run: the target is the old complete trace, never half a file."""
    script, out = tmp_path / "sleeper.py", tmp_path / "out.safetensors"
    script.write_text(SLEEPER)
    from numtrace.formats import save

    save(out, {"old": np.ones(2)})
    trace = os.path.join(os.path.dirname(sys.executable), "trace")
    proc = subprocess.Popen([trace, "run", "-o", str(out), str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.kill()
    proc.wait(timeout=60)
    with load(out) as trace:
        assert trace.order == ["old"]
