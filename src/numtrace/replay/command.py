"""``trace replay``: run the candidate script twice, once to pair its module calls with the
reference's, once to replay each paired call on the reference's recorded inputs.

The first run, in a process of its own, records the candidate's outputs (as ``trace run`` would)
so that its stages can be paired with the reference's by names, structure and values (the
alignment needs the whole execution). The second run records the candidate again and, beside each
paired module call, the same module called on the reference's inputs, into the replay trace (stage
names: the candidate's). The two recordings of the candidate are then compared byte for byte: a
stage that differs means the script is not deterministic or the replay disturbed it, and is named.

Example (a script that runs a torch model; the reference was recorded with ``trace run --inputs``):
    trace replay -o replay.safetensors --candidate-out candidate.safetensors reference.safetensors port.py
    trace diff reference.safetensors candidate.safetensors --replay replay.safetensors
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from .. import backends
from ..errors import UsageError
from ..formats import load
from ..run import run_script
from ..trace import Trace
from ..tracer import Recording
from .plan import ReplayPlan
from .session import Replayer


@dataclass
class ReplayResult:
    exit_code: int
    out: str
    candidate: str | None
    replayed: dict[str, str]
    skipped: dict[str, str]
    #: candidate stages whose two recordings differ (not deterministic, or disturbed)
    differing: list[str] = field(default_factory=list)
    status: str = "complete"
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """What ``trace replay`` says on stderr: what was replayed, what was not and why."""
        total = len(self.replayed) + len(self.skipped)
        kept = f" and {self.candidate}" if self.candidate else ""
        out = [
            f"trace replay: replayed {len(self.replayed)} of {total} module calls on the reference's inputs; "
            f"wrote {self.out}{kept}" + ("" if self.exit_code == 0 else f" (the script {self.status})")
        ]
        reasons: dict[str, list[str]] = {}
        for stage, why in self.skipped.items():
            reasons.setdefault(why, []).append(stage)
        for why, stages in sorted(reasons.items(), key=lambda item: -len(item[1])):
            shown = ", ".join(stages[:3]) + (f" and {len(stages) - 3} more" if len(stages) > 3 else "")
            out.append(f"  not replayed ({len(stages)}): {why}: {shown}")
        if self.differing:
            out.append(
                f"trace replay: the candidate's outputs differ between its two runs at {len(self.differing)} "
                f"stage{'s' if len(self.differing) != 1 else ''} (first {self.differing[0]}): the script is not "
                "deterministic, or the replay disturbed it; the pairing may not hold there"
            )
        return out


def replay_script(
    reference_path: str,
    script: str,
    args: list[str],
    out: str,
    *,
    backend: str = "torch",
    names=None,
    candidate_out: str | None = None,
) -> ReplayResult:
    """Pair, then replay (module docstring); never raises for the script's own errors."""
    backends.replaying(backend)  # one line for a backend whose capture cannot replay
    with load(reference_path, role="reference trace") as reference:
        _check_inputs(reference)
        folder = tempfile.mkdtemp(prefix="numtrace-replay-")
        first = os.path.join(folder, "first.safetensors")
        second = candidate_out or os.path.join(folder, "candidate.safetensors")
        try:
            _first_run(script, args, first, backend)
            with load(first, role="candidate trace") as candidate:
                plan = ReplayPlan(reference, candidate, names)
            recording = Recording(out, backend=backend, context={"argv": json.dumps([script, *args])})
            replayer = Replayer(plan, reference, recording.start(active=False))
            run = None
            try:
                run = run_script(script, args, second, backend=backend, replay=replayer)
            finally:
                replayer.finish(run.status if run is not None else "error: the replaying run did not finish").close()
            with load(first) as one, load(second) as two:
                differing = differing_stages(one, two)
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the first recording; the second unless kept
    return ReplayResult(
        run.exit_code,
        out,
        candidate_out,
        replayer.replayed,
        replayer.skipped,
        differing,
        run.status,
        replayer.seconds,
    )


def _first_run(script: str, args: list[str], out: str, backend: str) -> None:
    """``trace run`` of the script in a process of its own: a script that changes modules it
    imports (a patched function, a cached model) must meet them fresh in the replaying run."""
    if not os.path.exists(script):
        raise UsageError(f"script {script!r} not found")
    command = [sys.executable, "-m", "numtrace", "run", "--backend", backend, "-o", out, script, *args]
    done = subprocess.run(command, stderr=subprocess.PIPE, text=True)
    for line in done.stderr.splitlines():
        if not line.startswith("trace run: wrote"):
            print(line, file=sys.stderr)
    if not os.path.exists(out):
        raise UsageError(f"the candidate's first run recorded nothing (exit status {done.returncode})")


def _check_inputs(reference: Trace) -> None:
    from .plan import recorded_inputs

    if not recorded_inputs(list(reference.order)):
        raise UsageError(
            f"{reference.label} records no module inputs; record the reference with trace run --inputs (docs/replay.md)"
        )


def differing_stages(first: Trace, second: Trace) -> list[str]:
    """The stages whose bytes differ between two recordings of one script (or that only one has)."""
    names_a, names_b = set(first.order), set(second.order)
    out = [name for name in first.order if name not in names_b] + [n for n in second.order if n not in names_a]
    for name in first.order:
        if name not in names_b:
            continue
        info_a, info_b = first.info(name), second.info(name)
        if info_a.shape != info_b.shape or info_a.dtype != info_b.dtype:
            out.append(name)
            continue
        chunks = zip(first.iter_chunks(name, 1 << 20), second.iter_chunks(name, 1 << 20))
        if any(a.tobytes() != b.tobytes() for a, b in chunks):
            out.append(name)
    return out
