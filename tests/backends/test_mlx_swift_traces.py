"""Traces written by MLX's own safetensors writer (the C++ writer mlx-swift's MLX.save uses) diff
correctly against a numtrace trace recorded from PyTorch. See docs/swift-and-mlx.md."""

import json
import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")
mx = pytest.importorskip("mlx.core")

import numtrace  # noqa: E402

ORDER = ["encoder", "ode.step", "ode.step@1", "ode.step@2", "ode.step@10", "final_proj"]


def header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


@pytest.fixture(scope="module")
def python_trace(tmp_path_factory):
    """The PyTorch side: stages tapped from torch tensors, in execution order (float32)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("py") / "python.safetensors"
    with numtrace.record(path, backend="torch"):
        for name in ORDER:
            numtrace.tap(name, torch.randn(1, 80, 12) * 3 - 5)
    return path


def swift_like(tmp_path, python_trace, name, *, metadata=True, dtype=None, change=None):
    """What a Swift port does: tapped arrays in a dictionary, saved by MLX's writer."""
    arrays = {}
    with numtrace.load(python_trace) as trace:
        for stage in reversed(ORDER):  # insertion order is not execution order
            value = mx.array(trace.read(stage))
            if change and stage in change:
                value = change[stage](value)
            arrays[stage] = value.astype(dtype) if dtype is not None else value
    meta = {"numtrace.order": json.dumps(ORDER), "port": "swift"} if metadata else None
    stem = tmp_path / name
    mx.save_safetensors(str(stem), arrays, metadata=meta)
    return tmp_path / f"{name}.safetensors"  # MLX appends the extension


def test_with_metadata_the_order_is_the_writers(tmp_path, python_trace):
    path = swift_like(tmp_path, python_trace, "swift")
    assert header(path)["__metadata__"]["numtrace.order"] == json.dumps(ORDER)
    with numtrace.load(path) as trace:
        assert trace.order == ORDER and trace.has_order
        assert trace.user_metadata == {"port": "swift"}
    report = numtrace.diff(python_trace, path)
    assert report.counts == {"MATCH": 6, "SMALL": 0, "LARGE": 0, "MISSING": 0}


def test_without_metadata_the_header_holds_null_and_order_falls_back(tmp_path, python_trace):
    path = swift_like(tmp_path, python_trace, "plain", metadata=False)
    assert header(path)["__metadata__"] is None
    with numtrace.load(path) as trace:
        assert not trace.has_order
        # natural sort: step@2 before step@10
        assert trace.order == ["encoder", "final_proj", "ode.step", "ode.step@1", "ode.step@2", "ode.step@10"]
    # in a diff, the stored order of the other side wins: stages come in execution order
    report = numtrace.diff(path, python_trace)
    assert [s.name for s in report.stages] == ORDER
    assert report.first_divergence is None


def test_data_in_arbitrary_order_reads_back_exactly(tmp_path, python_trace):
    path = swift_like(tmp_path, python_trace, "order")
    # The writer lays data out in its own order (hash order for MLX); force one that matches neither
    # the header's key order nor the execution order: data blocks reversed.
    meta = header(path)
    with open(path, "rb") as f:
        f.seek(8 + struct.unpack("<Q", f.read(8))[0])
        data = f.read()
    keys = sorted((k for k in meta if k != "__metadata__"), key=lambda k: meta[k]["data_offsets"][0], reverse=True)
    blocks, offset = [], 0
    for key in keys:
        start, stop = meta[key]["data_offsets"]
        blocks.append(data[start:stop])
        meta[key]["data_offsets"] = [offset, offset + stop - start]
        offset += stop - start
    raw = json.dumps(meta).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blocks))
    assert [k for k in keys] != ORDER and keys != sorted(keys)
    with numtrace.load(path) as swift, numtrace.load(python_trace) as python:
        assert swift.order == ORDER
        for stage in ORDER:
            np.testing.assert_array_equal(swift.read(stage), python.read(stage))
    assert numtrace.diff(python_trace, path).counts["MATCH"] == 6


def test_bfloat16_traces_match_within_bfloat16_rounding(tmp_path, python_trace):
    path = swift_like(tmp_path, python_trace, "bf16", dtype=mx.bfloat16)
    assert {v["dtype"] for k, v in header(path).items() if k != "__metadata__"} == {"BF16"}
    report = numtrace.diff(python_trace, path)
    assert report.first_divergence is None
    stage = report["final_proj"]
    assert stage.b.dtype == "bfloat16"
    assert {"kind": "dtype", "a": "float32", "b": "bfloat16"} in stage.diagnosis
    assert 0 < stage.diff.abs_max <= 2.0**-8 * np.abs(python_values(python_trace, "final_proj")).max()


def python_values(path, stage):
    with numtrace.load(path) as trace:
        return trace.read(stage)


def test_mlx_cannot_write_float64_so_a_float64_reference_is_compared_to_float32(tmp_path):
    with pytest.raises(Exception):
        mx.save_safetensors(str(tmp_path / "f64"), {"x": mx.array(np.ones(3), dtype=mx.float64)})
    reference = tmp_path / "ref.safetensors"
    values = np.random.default_rng(0).standard_normal((4, 80)) - 5.0
    numtrace.save(reference, {"mel": values})  # float64
    mx.save_safetensors(str(tmp_path / "port"), {"mel": mx.array(values.astype(np.float32))})
    report = numtrace.diff(reference, tmp_path / "port.safetensors")
    assert report["mel"].verdict.value == "MATCH"


def test_a_planted_offset_in_the_swift_trace_is_found_at_its_stage(tmp_path, python_trace):
    path = swift_like(tmp_path, python_trace, "darker", change={"final_proj": lambda v: v - 1.46})
    report = numtrace.diff(python_trace, path)
    assert report.first_divergence == "final_proj"
    assert report["final_proj"].verdict.value == "LARGE"
    assert report["final_proj"].diff.abs_mean == pytest.approx(1.46, abs=1e-5)
    assert not report
