"""Sharded runs, launched for real: 2 (and 4) processes on CPU under torchrun (gloo) and MLX's
launcher (ring backend), each recording its own rank's trace, diffed against the same model on
one process (examples/sharded: a column-parallel then row-parallel MLP with an explicit
all-reduce, then a column-parallel layer that gathers its output; bugs planted by flags). The
correct sharded run is all MATCH; each planted sharding bug is named at the stage where it is
made (with 2 processes; ``--swap``, a rank order to find among 24, with 4 too)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import numtrace
from numtrace.sharded import open_candidate

pytestmark = pytest.mark.slow  # every test launches several Python processes

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
TORCH = (ROOT / "examples" / "sharded" / "tp_torch.py").read_text()
MLX = (ROOT / "examples" / "sharded" / "tp_mlx.py").read_text()
BIN = Path(sys.executable).parent


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}


def _trace_run(backend, out, script, *args, inputs=False):
    command = [sys.executable, "-m", "numtrace", "run", "--backend", backend, *(["--inputs"] if inputs else [])]
    return [*command, "-o", str(out), str(script), *args]


def torchrun(ranks, out, script, *args, inputs=False):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    command = launcher + _trace_run("torch", out, script, *args, inputs=inputs)[1:]  # torchrun runs `-m numtrace`
    return subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300, cwd=Path(out).parent)


def mlx_launch(ranks, out, script, *args):
    launcher = [str(BIN / "mlx.launch"), "--backend", "ring", "-n", str(ranks), "--python", sys.executable, "--"]
    command = launcher + [str(BIN / "trace")] + _trace_run("mlx", out, script, *args)[3:]
    env = {**_env(), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=Path(out).parent)


@pytest.fixture(scope="module")
def torch_setup(tmp_path_factory):
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("tp_torch")
    (root / "tp.py").write_text(TORCH)
    for name, inputs in (("single", False), ("single_inputs", True)):
        done = subprocess.run(_trace_run("torch", root / f"{name}.safetensors", root / "tp.py", inputs=inputs),
                              capture_output=True, text=True, env=_env(), cwd=root)  # fmt: skip
        assert done.returncode == 0, done.stderr
    return root


def _kinds(report):
    return {
        s.name: (s.verdict.value, (s.sharding or {}).get("kind"), [f.kind for f in s.diagnosis]) for s in report.stages
    }


@pytest.mark.parametrize("ranks", [2, 4])
def test_a_correct_tensor_parallel_run_matches_the_single_process(torch_setup, ranks):
    root = torch_setup
    done = torchrun(ranks, root / f"ok{ranks}.safetensors", root / "tp.py")
    assert done.returncode == 0, done.stderr
    for rank in range(ranks):
        with numtrace.load(root / f"ok{ranks}.rank{rank}.safetensors") as trace:
            assert trace.metadata["numtrace.rank"] == str(rank)
            assert (trace.metadata["numtrace.world_size"], trace.metadata["numtrace.launcher"]) == (
                str(ranks),
                "torchrun",
            )
            assert trace.metadata["numtrace.dist_backend"] == "gloo"  # the example destroys its group at the end
    report = numtrace.diff(root / "single.safetensors", root / f"ok{ranks}.safetensors")
    assert report.counts["MATCH"] == len(report.stages) == 6
    assert report["up"].sharding == {"kind": "sharded", "ranks": ranks, "axis": 1}
    assert report["down"].sharding == {"kind": "replicated", "ranks": ranks}


@pytest.mark.parametrize(
    "bug, stage, kind, ranks",
    [
        ("--swap", "up", "shard_order", 2),
        ("--swap", "up", "shard_order", 4),
        ("--no-all-reduce", "down", "partial_sum", 2),
        ("--wrong-axis", "expand", "shard_axis", 2),
    ],
)
def test_each_planted_sharding_bug_is_named_where_it_is_made(torch_setup, bug, stage, kind, ranks):
    root = torch_setup
    out = root / f"bug{bug}{ranks}.safetensors"
    done = torchrun(ranks, out, root / "tp.py", bug)
    assert done.returncode == 0, done.stderr
    report = numtrace.diff(root / "single.safetensors", out)
    assert report.first_divergence == stage and report.root_cause == stage
    assert report[stage].diagnosis[0].kind == kind
    if bug == "--swap":  # the row-parallel sum does not depend on which rank held which shard
        assert report["up"].diagnosis[0]["order"] == list(range(ranks))[::-1]
        assert report["down"].verdict.value == "MATCH"
    if bug == "--no-all-reduce":
        assert report["down"].sharding["kind"] == "partial" and report["down"].diagnosis[0]["bias_on_every_rank"]
    data = json.loads(json.dumps(report.to_dict()))
    from report_schema import check_report

    check_report(data)


def test_a_rank_with_other_data_is_flagged_and_rank_against_rank_drifts(torch_setup):
    root = torch_setup
    out = root / "other.safetensors"
    assert torchrun(2, out, root / "tp.py", "--other-data", inputs=True).returncode == 0
    report = numtrace.diff(root / "single_inputs.safetensors", out)
    assert report.first_divergence == "input"
    finding = report["input"].diagnosis[0]
    assert (finding.kind, finding["ranks"], finding["agree"]) == ("rank_disagrees", [1], [0])
    assert report["input"].sharding == {"kind": "replicated", "ranks": 2, "disagree": [1]}
    # data parallel: two ranks of one run, diffed against each other
    ranks = numtrace.diff(root / "other.rank0.safetensors", root / "other.rank1.safetensors")
    assert ranks.first_divergence == "input" and ranks["input"].diagnosis[0].kind == "offset"


CRASH = """
import os, torch, torch.distributed as dist
from torch import nn
dist.init_process_group("gloo")
model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
model(torch.ones(2, 4))
if dist.get_rank() == 1:
    raise RuntimeError("rank 1 fails")
dist.barrier()  # rank 0 waits for a rank that is gone, until the launcher stops it
"""


def test_a_crash_on_one_rank_leaves_every_ranks_trace_readable(torch_setup):
    root = torch_setup
    (root / "crash.py").write_text(CRASH)
    done = torchrun(2, root / "crash.safetensors", root / "crash.py")
    assert done.returncode != 0
    statuses = []
    for rank in range(2):
        with numtrace.load(root / f"crash.rank{rank}.safetensors") as trace:
            assert trace.order == ["0", "1", "output"]
            statuses.append(trace.metadata["numtrace.status"])
    assert statuses[1] == "error: RuntimeError: rank 1 fails" and statuses[0] != "complete"
    with open_candidate(str(root / "crash.safetensors")) as run:  # a diff of it says it is incomplete
        assert run.metadata["numtrace.status"].startswith("rank 0: ")


def test_a_missing_rank_is_one_line_and_exit_2(torch_setup, tmp_path):
    root = torch_setup
    torchrun(2, tmp_path / "half.safetensors", root / "tp.py")
    os.remove(tmp_path / "half.rank1.safetensors")
    done = subprocess.run([sys.executable, "-m", "numtrace", "diff", str(root / "single.safetensors"),
                           str(tmp_path / "half.safetensors")], capture_output=True, text=True, env=_env())  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "the rank traces do not make one run of 2 ranks (rank 1 missing)" in done.stderr


@pytest.fixture(scope="module")
def mlx_setup(tmp_path_factory):
    pytest.importorskip("mlx.core")
    if not (BIN / "mlx.launch").exists():
        pytest.skip("mlx.launch is not installed beside this Python")
    root = tmp_path_factory.mktemp("tp_mlx")
    (root / "tp.py").write_text(MLX)
    done = subprocess.run(_trace_run("mlx", root / "single.safetensors", root / "tp.py"), capture_output=True,
                          text=True, env=_env(), cwd=root)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root


@pytest.mark.parametrize("bug", ["", "--swap", "--no-all-reduce", "--wrong-axis"])
def test_mlx_launch_ring_runs_like_torchrun(mlx_setup, bug):
    root = mlx_setup
    out = root / f"run{bug or '-ok'}.safetensors"
    done = mlx_launch(2, out, root / "tp.py", *([bug] if bug else []))
    assert done.returncode == 0, done.stdout + done.stderr
    with numtrace.load(root / f"run{bug or '-ok'}.rank1.safetensors") as trace:
        assert trace.metadata["numtrace.launcher"] == "mlx.launch" and trace.metadata["numtrace.world_size"] == "2"
        assert trace.metadata["numtrace.dist_backend"] == "ring"
    report = numtrace.diff(root / "single.safetensors", out)
    expected = {"": None, "--swap": "up", "--no-all-reduce": "down", "--wrong-axis": "expand"}[bug]
    assert report.first_divergence == expected
    if expected is None:
        assert report.counts["MATCH"] == 6
    else:
        kind = {"up": "shard_order", "down": "partial_sum", "expand": "shard_axis"}[expected]
        assert report[expected].diagnosis[0].kind == kind
