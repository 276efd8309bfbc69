"""Rank detection and per-rank trace files, without launching anything: the launchers' environment
variables, set by hand."""

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import numtrace
from numtrace.distributed import backend_metadata, per_rank, rank_files, rank_info, rank_path
from numtrace.errors import NumtraceWarning, UsageError, forget_warnings
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


def test_every_backend_of_mlx_launch_is_recognised(tmp_path):
    # jaccl: the RDMA devices of each host, one list per rank, in the file MLX_IBV_DEVICES names
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps([[None, "rdma_en1", "rdma_en2"], ["rdma_en1", None, "rdma_en2"], ["a", "b", None]]))
    jaccl = {"MLX_RANK": "2", "MLX_IBV_DEVICES": str(devices), "MLX_JACCL_COORDINATOR": "10.0.0.1:32323"}
    assert rank_info(jaccl) == (2, 3, "mlx.launch")
    assert backend_metadata(jaccl) == {"numtrace.dist_backend": "jaccl"}
    assert backend_metadata({**jaccl, "MLX_JACCL_RING": "1"}) == {"numtrace.dist_backend": "jaccl-ring"}
    # mpi: mlx.launch runs mpirun, whose processes have no MLX_RANK
    assert rank_info({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}) == (1, 2, "mpirun")
    assert rank_info({"PMI_RANK": "0", "PMI_SIZE": "4"}) == (0, 4, "mpirun")  # MPICH
    assert rank_info({"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "1"}) is None
    # ring with one host: a blank host file, one process, one trace
    blank = tmp_path / "blank.json"
    blank.write_text("\n")
    assert rank_info({"MLX_RANK": "0", "MLX_HOSTFILE": str(blank)}) is None
    assert backend_metadata({"MLX_RANK": "0", "MLX_HOSTFILE": str(blank)}) == {"numtrace.dist_backend": "ring"}
    nccl = {"MLX_RANK": "1", "MLX_WORLD_SIZE": "2", "NCCL_HOST_IP": "10.0.0.1", "NCCL_PORT": "12345"}
    assert rank_info(nccl) == (1, 2, "mlx.launch") and backend_metadata(nccl) == {"numtrace.dist_backend": "nccl"}


def test_mpi_is_the_backend_only_of_a_program_that_imported_mlx(monkeypatch):
    mpi = {"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2"}
    monkeypatch.delitem(sys.modules, "mlx.core", raising=False)
    assert backend_metadata(mpi) == {}  # a torch program under mpirun: its process group tells, not this
    monkeypatch.setitem(sys.modules, "mlx.core", SimpleNamespace())
    assert backend_metadata(mpi) == {"numtrace.dist_backend": "mpi"}


def test_a_rank_without_a_world_size_still_writes_its_own_file(tmp_path, monkeypatch):
    forget_warnings()
    monkeypatch.setenv("MLX_RANK", "1")
    monkeypatch.setenv("MLX_HOSTFILE", str(tmp_path / "gone.json"))  # the launcher's file already removed
    with pytest.warns(NumtraceWarning, match="names this process rank 1 but not how many ranks run"):
        rec = numtrace.record(tmp_path / "tp.safetensors")
    assert rec.path == str(tmp_path / "tp.rank1.safetensors")
    with rec:
        numtrace.tap("x", np.arange(3.0))
    with numtrace.load(rec.path) as trace:
        assert trace.metadata["numtrace.rank"] == "1" and "numtrace.world_size" not in trace.metadata
        assert (trace.metadata["numtrace.launcher"], trace.metadata["numtrace.dist_backend"]) == ("mlx.launch", "ring")


def test_a_world_size_without_a_rank_is_said(tmp_path):
    forget_warnings()
    with pytest.warns(NumtraceWarning, match="says 2 processes run but not which one this is: each writes"):
        assert per_rank("tp.safetensors", {"MLX_WORLD_SIZE": "2"}) == ("tp.safetensors", {})
    assert per_rank("tp.safetensors", {}) == ("tp.safetensors", {})  # one process: nothing to say


class FakeTorchDistributed:
    """torch.distributed as a program that imported it sees it: a process group up, or not."""

    def __init__(self, backend="gloo", rank=0, world=2):
        self.up, self.backend, self.rank, self.world = True, backend, rank, world

    def is_available(self):
        return True

    def is_initialized(self):
        return self.up

    def get_backend(self):
        return self.backend

    def get_rank(self):
        return self.rank

    def get_world_size(self):
        return self.world


def test_the_torch_backend_is_recorded_while_its_process_group_is_up(tmp_path, monkeypatch):
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    dist = FakeTorchDistributed("nccl")
    dist.up = False  # the program sets its process group up after the recording starts...
    monkeypatch.setitem(sys.modules, "torch.distributed", dist)
    with numtrace.record(tmp_path / "tp.safetensors") as rec:
        numtrace.tap("before", np.ones(2))
        dist.up = True
        numtrace.tap("x", np.ones(2))
        dist.up = False  # ... and destroys it before the recording stops
    with numtrace.load(rec.path) as trace:
        assert trace.metadata["numtrace.dist_backend"] == "nccl"
    dist.up = True  # a group up at the end only: seen when the recording stops
    with numtrace.record(tmp_path / "late.safetensors") as rec:
        pass
    with numtrace.load(rec.path) as trace:
        assert (trace.metadata["numtrace.launcher"], trace.metadata["numtrace.dist_backend"]) == ("torchrun", "nccl")


def test_a_torch_process_group_without_a_launcher_names_the_rank(tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MLX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "torch.distributed", FakeTorchDistributed("gloo", rank=1, world=2))
    assert rank_info() == (1, 2, "torch.distributed")  # mp.spawn: no launcher's variables
    assert rank_info({}) is None  # an environment given: that environment alone
    with numtrace.record(tmp_path / "tp.safetensors") as rec:
        numtrace.tap("x", np.ones(2))
    with numtrace.load(rec.path) as trace:
        assert rec.path.endswith("tp.rank1.safetensors") and trace.metadata["numtrace.dist_backend"] == "gloo"


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
    assert "numtrace.dist_backend" not in trace.metadata  # no process group, no MLX launcher: nothing tells


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
    unsized = [MemoryTrace({"x": np.ones(2)}, metadata={"numtrace.rank": str(r)}) for r in (1, 0)]
    assert len(ShardedTrace(unsized, "tp").ranks) == 2  # no world size recorded: the rank traces found
    with pytest.raises(UsageError, match=r"one run of 2 ranks \(rank 1 missing\)"):
        ShardedTrace([unsized[1], MemoryTrace({"x": np.ones(2)}, metadata={"numtrace.rank": "2"})], "tp")
    with pytest.raises(numtrace.TraceFileError, match="not found"):
        open_candidate(str(tmp_path / "none.safetensors"))
