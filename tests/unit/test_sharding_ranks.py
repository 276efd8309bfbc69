"""How the ranks of a sharded run hold a stage, from synthetic rank traces (no launcher): which rank
disagrees when two ranks tie, the drill-down of one stage (``trace diff --stage``), and a stage too
large to combine."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import numtrace
from numtrace import sharded
from numtrace.cli import app
from numtrace.compare.sharding import decide
from numtrace.report.table import sharding_note
from numtrace.sharded import ShardedTrace
from numtrace.trace import MemoryTrace
from report_schema import check_cli_output

A = np.linspace(-1.0, 1.0, 48).reshape(6, 8)


@pytest.mark.parametrize("odd", [0, 1])
def test_of_two_ranks_the_one_off_the_reference_disagrees(odd):
    ranks = [A, A]
    ranks[odd] = A + 0.5
    plan = decide(A, ranks)
    finding = plan.findings[0]
    assert (finding.kind, finding["ranks"], finding["agree"]) == ("rank_disagrees", [odd], [1 - odd])
    assert plan.to_dict() == {"kind": "replicated", "ranks": 2, "disagree": [odd]}
    assert plan.pick == odd and np.array_equal(plan.combined, A + 0.5)  # the stage is the wrong rank's: it fails
    without = decide(None, ranks)  # no reference to tell: the later rank is the odd one
    assert without.findings[0]["ranks"] == [1] and without.findings[0]["agree"] == [0]


def test_of_four_ranks_in_two_pairs_the_pair_off_the_reference_disagrees():
    plan = decide(A, [A + 1, A + 1, A, A])
    assert (plan.findings[0]["ranks"], plan.findings[0]["agree"], plan.pick) == ([0, 1], [2, 3], 0)


def _rank(values: dict, r: int, world: int = 2) -> MemoryTrace:
    return MemoryTrace(values, metadata={"numtrace.rank": str(r), "numtrace.world_size": str(world)})


@pytest.mark.parametrize("odd", [0, 1])
def test_the_diff_names_the_odd_rank_and_compares_its_values(odd):
    x = [A, A]
    x[odd] = A + 0.5
    reference = MemoryTrace({"x": A, "y": A * 2})
    run = ShardedTrace([_rank({"x": x[r], "y": A * 2}, r) for r in range(2)], "dp.safetensors")
    report = numtrace.diff(reference, run)
    stage = report["x"]
    assert stage.verdict.value == "LARGE" and report.first_divergence == "x"
    assert (stage.diagnosis[0].kind, stage.diagnosis[0]["ranks"]) == ("rank_disagrees", [odd])
    assert stage.sharding == {"kind": "replicated", "ranks": 2, "disagree": [odd]}
    assert stage.b.mean == pytest.approx(A.mean() + 0.5) and stage.diff.abs_max == pytest.approx(0.5)
    assert report["y"].verdict.value == "MATCH"


def _save_run(folder, name: str, ranks: list[dict]) -> str:
    for r, stages in enumerate(ranks):
        numtrace.save(
            folder / f"{name}.rank{r}.safetensors",
            stages,
            metadata={"numtrace.rank": str(r), "numtrace.world_size": str(len(ranks))},
            order=list(stages),
        )
    return str(folder / f"{name}.safetensors")


def _diff_stage(*args):
    result = CliRunner().invoke(app, ["diff", *map(str, args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    check_cli_output(["diff", *args], result.stdout, result.exit_code)
    return result.exit_code, result.stdout


def test_the_stage_drill_down_of_a_sharded_run_says_how_its_ranks_hold_it(tmp_path):
    bias = np.linspace(0.1, 0.8, 8)
    up, down = A * 3, A @ np.eye(8) + bias
    numtrace.save(tmp_path / "single.safetensors", {"up": up, "down": down}, order=["up", "down"])
    parts = [A @ np.eye(8) * 0.25 + bias, A @ np.eye(8) * 0.75 + bias]  # no all-reduce: parts plus the bias
    run = _save_run(tmp_path, "tp", [{"up": up[:, 4 * r : 4 * r + 4], "down": parts[r]} for r in range(2)])
    code, out = _diff_stage(tmp_path / "single.safetensors", run, "--stage", "down", "--json")
    detail = json.loads(out)
    assert code == 1 and detail["verdict"] == "LARGE"
    assert detail["sharding"] == {"kind": "partial", "ranks": 2}
    assert detail["diagnosis"][0]["kind"] == "partial_sum" and detail["diagnosis"][0]["bias_on_every_rank"]
    # the stage compared is rank 0's part, as in the whole diff
    assert detail["b"]["mean"] == pytest.approx(float(parts[0].mean()))
    whole = numtrace.diff(tmp_path / "single.safetensors", run)
    assert detail["sharding"] == whole["down"].sharding  # the sharding finding first, as in the whole diff
    assert detail["diagnosis"][0] == whole["down"].to_dict()["diagnosis"][0]
    assert "the parts sum to the reference" in detail["words"] and detail["words"].endswith("2 ranks, partial sums")
    code, out = _diff_stage(tmp_path / "single.safetensors", run, "--stage", "up", "--json")
    detail = json.loads(out)
    assert (code, detail["verdict"], detail["sharding"]) == (0, "MATCH", {"kind": "sharded", "ranks": 2, "axis": 1})
    assert detail["b"]["shape"] == [6, 8] and detail["profiles"][1]["length"] == 8  # the shards combined
    code, out = _diff_stage(tmp_path / "single.safetensors", run, "--stage", "down", "--width", "200")
    assert code == 1 and "2 ranks, partial sums" in out and "a missing all-reduce?" in out


def test_a_stage_too_large_to_combine_says_so(monkeypatch):
    monkeypatch.setattr(sharded, "COMBINE_MAX_ELEMENTS", 20)
    reference = MemoryTrace({"up": A, "small": A[:2, :4]})
    run = ShardedTrace([_rank({"up": A[:, 4 * r : 4 * r + 4], "small": A[:2, :4]}, r) for r in range(2)], "tp")
    report = numtrace.diff(reference, run)
    assert report["up"].sharding == {"kind": "not_combined", "ranks": 2, "limit": 20}
    assert report["up"].b.shape == (6, 4)  # rank 0's shard, as it holds it
    assert sharding_note(report["up"]) == "2 ranks, not combined (over 20 elements per rank): rank 0's values"
    assert report["small"].sharding == {"kind": "replicated", "ranks": 2}  # 8 elements: combined
    from report_schema import check_report

    check_report(json.loads(json.dumps(report.to_dict())))
