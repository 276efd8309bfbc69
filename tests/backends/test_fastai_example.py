"""examples/fastai_to_torch end to end: both unmodified scripts traced with `trace run`, then diffed."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastai")

from torch_models import trace_cli  # noqa: E402

import numtrace  # noqa: E402

pytestmark = pytest.mark.slow  # each test starts `trace run` processes that import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastai_to_torch"
RENAMES = [
    "synthesize_clip=data.x.SynthesizeClip",
    "mel_spectrogram=data.x.MelSpectrogram",
    "power_to_db=data.x.PowerToDb",
    "pad_spectrogram=data.x.PadSpectrogram",
]


def test_the_diff_points_at_the_padding_transform(tmp_path):
    for script in ("fastai_pipeline.py", "torch_port.py", "port_frontend.py", "clips.py"):
        text = (EXAMPLE / script).read_text()
        assert "import numtrace" not in text and "from numtrace" not in text
    reference, candidate, weights = tmp_path / "fastai.safetensors", tmp_path / "port.safetensors", tmp_path / "w.pt"
    result = trace_cli(
        "run",
        "--backend",
        "fastai",
        "-o",
        reference,
        EXAMPLE / "fastai_pipeline.py",
        "--state-dict",
        weights,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    probes = [arg for spec in RENAMES for arg in ("--probe-function", f"port_frontend:{spec}")]
    result = trace_cli(
        "run",
        "--backend",
        "torch",
        "-o",
        candidate,
        *probes,
        EXAMPLE / "torch_port.py",
        "--state-dict",
        weights,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr

    report = numtrace.diff(reference, candidate)
    assert report.first_divergence == "data.x.PadSpectrogram@1"  # clip 0 is cropped, clip 1 is the first padded
    verdicts = {s.name: str(s.verdict.value if hasattr(s.verdict, "value") else s.verdict) for s in report.stages}
    for name in (
        "data.x.SynthesizeClip",
        "data.x.MelSpectrogram",
        "data.x.PowerToDb",
        "data.x.PadSpectrogram",
        "data.x.PowerToDb@1",
        "data.x.PowerToDb@3",
    ):
        assert verdicts[name] == "MATCH", name
    for name in ("data.x.PadSpectrogram@1", "data.x.PadSpectrogram@2", "data.x.PadSpectrogram@3", "0", "output"):
        assert verdicts[name] == "LARGE", name
    # fastai's learn.pred has no stage of its own in the port: it is the model's output (its twin)
    pred = next(s for s in report.stages if s.name == "pred")
    assert pred.twin == ("a", "output") and pred.name_b == "output" and pred.verdict.value == "LARGE"
    with numtrace.load(reference) as a, numtrace.load(candidate) as b:
        ref_pad, port_pad = a.read("data.x.PadSpectrogram@1"), b.read("data.x.PadSpectrogram@1")
        frames = a.read("data.x.PowerToDb@1").shape[-1]  # 201 real frames, then padding to 312
        np.testing.assert_allclose(ref_pad[:, :frames], port_pad[:, :frames], atol=1e-3)  # the real frames agree
        assert (ref_pad[:, frames:] == 0.0).all()
        assert (port_pad[:, frames:] == port_pad.min()).all() and port_pad.min() < -60
