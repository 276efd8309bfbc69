"""Rank detection and per-rank trace files, without launching anything: the launchers' environment
variables, set by hand."""

import json

import numpy as np
import pytest

import numtrace
from numtrace.distributed import rank_files, rank_info, rank_path
from numtrace.errors import UsageError
from numtrace.sharded import ShardedTrace, open_candidate
from numtrace.trace import MemoryTrace


def test_the_launchers_are_recognised(tmp_path):
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps([["127.0.0.1:5000"], ["127.0.0.1:5001"], ["127.0.0.1:5002"]]))
    assert rank_info({"RANK": "0", "WORLD_SIZE": "4", "LOCAL_RANK": "0"}) == (0, 4, "torchrun")
    assert rank_info({"MLX_RANK": "2", "MLX_HOSTFILE": str(hosts)}) == (2, 3, "mlx.launch")
    assert rank_info({"MLX_RANK": "1", "MLX_WORLD_SIZE": "2"}) == (1, 2, "mlx.launch")
    assert rank_info({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}) is None  # one process: one trace
    assert rank_info({"RANK": "3", "WORLD_SIZE": "2"}) is None  # no launcher says so
    assert rank_info({"MLX_RANK": "x", "MLX_WORLD_SIZE": "2"}) is None
    assert rank_path("run.h5", 1) == "run.rank1.h5"


def test_a_recording_under_a_launcher_writes_its_rank(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with numtrace.record(tmp_path / "tp.safetensors") as rec:
        numtrace.tap("x", np.ones(3))
    assert rec.path == str(tmp_path / "tp.rank1.safetensors") and not (tmp_path / "tp.safetensors").exists()
    with numtrace.load(rec.path) as trace:
        assert (trace.metadata["numtrace.rank"], trace.metadata["numtrace.world_size"]) == ("1", "2")
        assert trace.metadata["numtrace.launcher"] == "torchrun"
    assert rank_files(str(tmp_path / "tp.safetensors")) == [str(tmp_path / "tp.rank1.safetensors")]
    assert rank_files(str(tmp_path / "tp.rank*.safetensors")) == [str(tmp_path / "tp.rank1.safetensors")]


def test_rank_traces_must_make_one_run(tmp_path):
    def rank(r, world=2):
        return MemoryTrace({"x": np.ones(2)}, metadata={"numtrace.rank": str(r), "numtrace.world_size": str(world)})

    assert [t.metadata["numtrace.rank"] for t in ShardedTrace([rank(1), rank(0)], "tp").ranks] == ["0", "1"]
    crashed = rank(1)
    crashed.metadata["numtrace.status"] = "error: RuntimeError: boom"
    assert ShardedTrace([rank(0), crashed], "tp").metadata["numtrace.status"] == "rank 1: error: RuntimeError: boom"
    with pytest.raises(UsageError, match=r"do not make one run of 3 ranks \(rank 2 missing\)"):
        ShardedTrace([rank(0, 3), rank(1, 3)], "tp")
    with pytest.raises(UsageError, match="records no rank"):
        ShardedTrace([MemoryTrace({"x": np.ones(2)})], "tp")
    with pytest.raises(numtrace.TraceFileError, match="not found"):
        open_candidate(str(tmp_path / "none.safetensors"))
