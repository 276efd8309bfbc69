"""Recording through the writer thread: the same file, values as they were when tapped, errors raised.

The writer thread (numtrace.formats.staging) is opt-in (NUMTRACE_WRITER_THREAD=1); these tests turn
it on and off explicitly.
"""

import errno
import os

import numpy as np
import pytest

import numtrace
from numtrace.errors import RecordingError
from numtrace.formats import staging
from numtrace.formats.safetensors import SafetensorsWriter


def stages(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "embed": rng.standard_normal((3, 5)).astype(np.float32),
        "big": rng.standard_normal(3 << 20).astype(np.float32),  # 12 MiB: more than one staging buffer
        "ids": np.arange(7, dtype=np.int64),
        "empty": np.zeros((0, 4), np.float32),
        "half": rng.standard_normal(9).astype(np.float16),
    }


def write(path, arrays, staged: bool) -> bytes:
    with SafetensorsWriter(path, staged=staged) as writer:
        assert (writer.staging is not None) == staged
        for name, values in arrays.items():
            writer.add(name, values)
        writer.metadata["numtrace.created"] = "fixed"
    return open(path, "rb").read()


def test_the_writer_thread_writes_the_same_file_byte_for_byte(tmp_path):
    arrays = stages(np.random.default_rng(0))
    direct = write(tmp_path / "direct.safetensors", arrays, staged=False)
    staged = write(tmp_path / "staged.safetensors", arrays, staged=True)
    assert staged == direct
    with numtrace.load(tmp_path / "staged.safetensors") as trace:
        for name, values in arrays.items():
            np.testing.assert_array_equal(trace.read(name), values)


def test_a_value_changed_after_its_tap_is_recorded_as_it_was(tmp_path):
    x = np.arange(4 << 20, dtype=np.float32)  # 16 MiB: two staging buffers
    path = tmp_path / "t.safetensors"
    with SafetensorsWriter(path, staged=True) as writer:
        writer.add("x", x)
        x += 1.0  # in place, right after the tap, while the writer thread may still be writing
        writer.add("x_after", x)
    with numtrace.load(path) as trace:
        np.testing.assert_array_equal(trace.read("x"), np.arange(4 << 20, dtype=np.float32))
        np.testing.assert_array_equal(trace.read("x_after"), np.arange(4 << 20, dtype=np.float32) + 1)


def test_memory_in_flight_is_bounded_by_the_buffers(tmp_path):
    fd = os.open(tmp_path / "data.bin", os.O_RDWR | os.O_CREAT)
    try:
        writes = staging.StagedWrites(fd, buffer_bytes=1024, buffers=2)
        data = np.random.default_rng(1).integers(0, 255, 100_000, dtype=np.uint8)
        writes.write(data, 10)  # 98 pieces through 2 buffers: the caller waits for the thread
        writes.close()
        assert writes.copied == data.size and writes.write_s > 0
        assert os.pread(fd, data.size, 10) == data.tobytes()
    finally:
        os.close(fd)


def test_a_failed_write_is_raised_not_lost(tmp_path, monkeypatch):
    def full(fd, data, position):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(staging.os, "pwrite", full)
    target = tmp_path / "t.safetensors"
    writer = SafetensorsWriter(target, staged=True)
    writer.add("a", np.ones(1000, np.float32))
    with pytest.raises(RecordingError, match="No space left on device"):
        writer.close()
    assert not target.exists()
    assert [p for p in os.listdir(tmp_path)] == []  # the temp file is gone too


def test_a_crashed_run_keeps_its_stages_with_the_writer_thread(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMTRACE_WRITER_THREAD", "1")
    path = tmp_path / "crash.safetensors"
    with pytest.raises(ZeroDivisionError):
        with numtrace.record(path) as rec:
            numtrace.tap("before", np.full(3 << 20, 2.0, np.float32))
            1 / 0
    assert rec.write_timings is not None and rec.write_timings["copy_s"] > 0
    with numtrace.load(path) as trace:
        assert trace.metadata["numtrace.status"].startswith("error")
        np.testing.assert_array_equal(trace.read("before"), np.full(3 << 20, 2.0, np.float32))


@pytest.mark.parametrize(("setting", "expected"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_the_writer_thread_is_opt_in(monkeypatch, setting, expected):
    monkeypatch.setenv("NUMTRACE_WRITER_THREAD", setting)
    assert staging.use_staging() is expected
