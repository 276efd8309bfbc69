"""The safetensors writer's layout: data written once after a reserved header region.

A large trace keeps its header in the reserved room (padded with JSON whitespace); a small one
is compacted; a header that outgrows the room moves the data once. Every variant must read back
bit for bit with numtrace's reader, the ``safetensors`` package and (when installed) MLX.
"""

from __future__ import annotations

import json
import os
import struct
import sys

import numpy as np
import pytest

from numtrace.formats import load
from numtrace.formats import safetensors as st
from numtrace.formats.writer import publish_file
from numtrace.trace import ORDER_KEY


def _header(path) -> tuple[int, bytes]:
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return length, f.read(length)


def _stages(count: int, size: int, name: str = "layer") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(count)
    return {f"{name}.{i}": rng.standard_normal(size).astype(np.float32) for i in range(count)}


def _write(path, stages, **metadata) -> str:
    with st.SafetensorsWriter(path) as writer:
        for name, values in stages.items():
            writer.add(name, values)
        return writer.close(metadata=metadata)


def _check_roundtrip(path, stages) -> None:
    from safetensors.numpy import load_file

    with load(path) as trace:
        assert trace.order == list(stages)
        for name, values in stages.items():
            assert np.array_equal(trace.read(name), values)
    theirs = load_file(str(path))
    assert set(theirs) == set(stages)
    for name, values in stages.items():
        assert np.array_equal(theirs[name], values)


def test_small_trace_is_compact(tmp_path):
    stages = _stages(3, 10)
    path = _write(tmp_path / "t.safetensors", stages)
    length, header = _header(path)
    compact = len(json.dumps(json.loads(header), ensure_ascii=False, separators=(",", ":")))
    assert length == compact + (-compact % 8) and os.path.getsize(path) == 8 + length + 3 * 10 * 4
    _check_roundtrip(path, stages)


def test_large_trace_keeps_its_header_in_the_reserve(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "COMPACT_BELOW", 1000)
    stages = _stages(4, 1000)
    path = _write(tmp_path / "t.safetensors", stages, model="tiny")
    length, header = _header(path)
    assert 8 + length == st.HEADER_RESERVE  # written in place, padded
    assert header.rstrip(b" ").endswith(b"}") and header[-1:] == b" "
    assert json.loads(header)["__metadata__"]["model"] == "tiny"
    assert os.path.getsize(path) == st.HEADER_RESERVE + 4 * 1000 * 4
    _check_roundtrip(path, stages)


def test_reserve_grows_while_data_is_small(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "HEADER_RESERVE", 256)
    monkeypatch.setattr(st, "COMPACT_BELOW", 2000)
    stages = _stages(300, 4, name="a.rather.long.module.path.to.make.the.header.grow")
    path = _write(tmp_path / "t.safetensors", stages)
    length, header = _header(path)
    assert 8 + length > 256 and (8 + length) % 8 == 0
    _check_roundtrip(path, stages)
    with load(path) as trace:
        assert json.loads(trace.metadata[ORDER_KEY]) == list(stages)


def test_header_outgrowing_the_reserve_moves_large_data_once(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "HEADER_RESERVE", 64)
    monkeypatch.setattr(st, "COMPACT_BELOW", 16)  # data is "large" at once: no growth while writing
    stages = _stages(5, 3000)
    path = _write(tmp_path / "t.safetensors", stages, note="x" * 500)
    length, _ = _header(path)
    assert 8 + length > 64 and (8 + length) % 8 == 0
    assert os.path.getsize(path) == 8 + length + 5 * 3000 * 4
    _check_roundtrip(path, stages)


def test_failed_stage_leaves_no_bytes_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "COMPACT_BELOW", 0)
    writer = st.SafetensorsWriter(tmp_path / "t.safetensors")
    writer.add("a", np.arange(5, dtype=np.float32))
    with pytest.raises(Exception, match="elements"):
        writer.add_raw_chunks("b", (10,), "float32", [np.zeros(4, np.float32)])
    writer.add("c", np.ones(2, np.float32))
    path = writer.close()
    assert os.path.getsize(path) == st.HEADER_RESERVE + 7 * 4
    _check_roundtrip(path, {"a": np.arange(5, dtype=np.float32), "c": np.ones(2, np.float32)})


def test_mlx_reads_a_padded_header(tmp_path, monkeypatch):
    mx = pytest.importorskip("mlx.core")
    monkeypatch.setattr(st, "COMPACT_BELOW", 0)
    stages = _stages(2, 50)
    path = _write(tmp_path / "t.safetensors", stages)
    assert 8 + _header(path)[0] == st.HEADER_RESERVE
    arrays = mx.load(str(path))
    for name, values in stages.items():
        assert np.array_equal(np.array(arrays[name]), values)


@pytest.mark.parametrize("setting, expected", [(None, False), ("0", False), ("1", True), ("yes", True)])
def test_fsync_only_when_asked(tmp_path, monkeypatch, setting, expected):
    if setting is None:
        monkeypatch.delenv("NUMTRACE_FSYNC", raising=False)
    else:
        monkeypatch.setenv("NUMTRACE_FSYNC", setting)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    writer = st.SafetensorsWriter(tmp_path / "t.safetensors")
    assert writer.durable is expected
    writer.add("x", np.ones(3))
    writer.close()
    assert bool(synced) is expected
    assert st.SafetensorsWriter(tmp_path / "u.safetensors", durable=True).durable is True


def test_replacing_a_trace_leaves_the_new_one(tmp_path):
    path = tmp_path / "t.safetensors"
    first = _stages(2, 100)
    _write(path, first)
    with load(path) as old:  # a reader of the old file keeps reading the old file
        second = {"z": np.zeros(7, np.float32)}
        _write(path, second)
        assert np.array_equal(old.read("layer.0"), first["layer.0"])
    _check_roundtrip(path, second)
    assert sorted(os.listdir(tmp_path)) == ["t.safetensors"]


def _publish(temp, path) -> None:
    cleaner = publish_file(str(temp), str(path), durable=False)
    if cleaner is not None:
        cleaner.join()


def test_publish_file_onto_a_symlink_replaces_the_link(tmp_path):
    real, link, new = tmp_path / "real", tmp_path / "link", tmp_path / "new"
    real.write_text("real")
    link.symlink_to(real)
    new.write_text("new")
    _publish(new, link)
    assert link.read_text() == "new" and not link.is_symlink() and real.read_text() == "real"
    assert sorted(os.listdir(tmp_path)) == ["link", "real"]


@pytest.mark.parametrize("exchange_works", [True, False])
def test_publish_file_replaces_atomically_with_or_without_the_swap(tmp_path, monkeypatch, exchange_works):
    from numtrace.formats import writer

    if not exchange_works:
        monkeypatch.setattr(writer, "_exchange", lambda first, second: False)
    monkeypatch.setattr(writer, "REMOVE_BESIDE_FROM", 1000)
    target, temp = tmp_path / "t.st", tmp_path / ".t.st.1.tmp"
    target.write_bytes(b"old" * 1000)
    temp.write_bytes(b"new")
    cleaner = publish_file(str(temp), str(target), durable=False)
    assert target.read_bytes() == b"new"  # in place the moment publish_file returns
    if not exchange_works:
        assert cleaner is None
    elif sys.platform.startswith("linux"):
        assert cleaner is not None  # the 3000-byte older trace is deleted beside the program
    if cleaner is not None:
        cleaner.join()
    assert sorted(os.listdir(tmp_path)) == ["t.st"]
    temp.write_bytes(b"first")
    target.unlink()
    assert publish_file(str(temp), str(target), durable=False) is None  # nothing to replace: a rename
    assert target.read_bytes() == b"first"


def test_the_swap_is_used_on_linux(tmp_path):
    from numtrace.formats import writer

    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("A")
    b.write_text("B")
    assert writer._exchange(str(a), str(b)) is True
    assert (a.read_text(), b.read_text()) == ("B", "A")
    assert writer._exchange(str(a), str(tmp_path / "missing")) is False
