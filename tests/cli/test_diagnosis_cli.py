"""`trace diff` with diagnosis, `--stage` drill-down, `--map`, and `trace plot`."""

import json
import subprocess
import sys

import numpy as np
import pytest

import numtrace


@pytest.fixture
def padded(tmp_path):
    """A reference and a port that pads its spectrogram with 0.0 dB and names stages its own way."""
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(4000)
    mel = rng.uniform(-70, -5, (1, 64, 120))
    ref = tmp_path / "ref.safetensors"
    port = tmp_path / "port.safetensors"
    standardized = mel.copy()
    standardized[:, :, 100:] = mel.min()
    port_standardized = standardized.copy()
    port_standardized[:, :, 100:] = 0.0
    numtrace.save(
        ref,
        {"audio": audio, "frontend.mel": mel, "frontend.standardized": standardized},
        order=["audio", "frontend.mel", "frontend.standardized"],
    )
    numtrace.save(
        port,
        {"audio": audio, "frontEnd/melSpec": mel.reshape(64, 120), "frontEnd/standardized": port_standardized},
        order=["audio", "frontEnd/melSpec", "frontEnd/standardized"],
    )
    mapping = tmp_path / "map.toml"
    mapping.write_text('[rename]\n"frontEnd/melSpec" = "frontend.mel"\n')
    return ref, port, mapping


def test_table_has_a_diagnosis_column_and_the_summary_names_the_root_cause(invoke, padded):
    ref, port, mapping = padded
    code, out, _ = invoke("diff", ref, port, "--map", mapping, "--width", "220")
    assert code == 1
    assert "diagnosis" in out and "★" in out
    assert "0.0 padding in indices 100-119 of axis 2 (20 of 120" in out
    first = json.loads(invoke("diff", ref, port, "--map", mapping, "--json")[1])["first_divergence"]
    assert f"Root cause: {first}, where the error is born" in out.replace("\n", " ")
    assert "frontend.mel" in out and "↔ frontEnd/melSpec" in out  # the pairing shows as a ↔ b
    assert "paired by" not in out
    assert "singleton axes squeezed" in out


def test_json_has_root_cause_growth_and_findings(invoke, padded):
    ref, port, mapping = padded
    code, out, _ = invoke("diff", ref, port, "--json", "--map", mapping)
    report = json.loads(out)
    assert code == 1 and report["root_cause"] == report["first_divergence"] == "frontend.standardized"
    stages = {s["name"]: s for s in report["stages"]}
    assert stages["frontend.mel"]["name_b"] == "frontEnd/melSpec" and stages["frontend.mel"]["pairing"] == "mapped"
    assert stages["frontend.mel"]["verdict"] == "MATCH"
    std = stages["frontend.standardized"]
    assert std["name_b"] == "frontEnd/standardized" and std["pairing"] == "normalized"
    assert std["diagnosis"][0] == {
        **std["diagnosis"][0],
        "kind": "padding",
        "axis": 2,
        "start": 100,
        "stop": 120,
        "value": 0.0,
    }
    assert std["growth"] > 1e6 and std["rel_err"] > 0.1


def test_without_the_map_the_renamed_stage_is_paired_by_alignment_and_says_so(invoke, padded):
    ref, port, mapping = padded
    code, out, _ = invoke("diff", ref, port, "--json")
    mel = next(s for s in json.loads(out)["stages"] if s["name"] == "frontend.mel")
    assert mel["name_b"] == "frontEnd/melSpec" and mel["pairing"] == "aligned" and mel["verdict"] == "MATCH"
    assert 0.5 < mel["pairing_score"] <= 1 and mel["note"].startswith("paired by alignment (score ")
    code, out, _ = invoke("diff", ref, port, "--json", "--map", mapping)
    mel = next(s for s in json.loads(out)["stages"] if s["name"] == "frontend.mel")
    assert mel["pairing"] == "mapped" and "pairing_score" not in mel
    mapping.write_text("automatic = false\n")  # no automatic pairing: the renamed stage is unpaired
    code, out, _ = invoke("diff", ref, port, "--json", "--map", mapping)
    verdicts = [(s["name"], s["verdict"]) for s in json.loads(out)["stages"]]
    assert ("frontend.mel", "MISSING") in verdicts and ("frontEnd/melSpec", "MISSING") in verdicts


def test_stage_drill_down(invoke, padded):
    ref, port, _ = padded
    code, out, err = invoke("diff", ref, port, "--stage", "frontend.standardized", "--width", "160")
    assert code == 1, err
    assert "stage frontend.standardized ↔ frontEnd/standardized: LARGE" in out
    assert "reference: shape (1, 64, 120)" in out and "candidate: shape (1, 64, 120)" in out
    assert "diagnosis: paired by normalised name; 0.0 padding in indices 100-119 of axis 2" in out
    assert "error profile along axis 1 (64 indices)" in out and "error profile along axis 2 (120 indices)" in out
    assert "worst locations" in out
    code, out, _ = invoke("diff", ref, port, "--stage", "frontEnd/standardized", "--json")
    detail = json.loads(out)
    assert detail["name"] == "frontend.standardized" and detail["verdict"] == "LARGE"
    frames = next(p for p in detail["profiles"] if p["axis"] == 2)
    assert frames["mean_abs"][99] == pytest.approx(0.0) and frames["mean_abs"][100] > 5
    assert detail["worst"][0]["index"][2] >= 100
    assert invoke("diff", ref, port, "--stage", "audio")[0] == 0


@pytest.mark.parametrize(
    "args",
    [
        ["diff", "--stage", "nope"],
        ["diff", "--stage", "audio", "--map", "missing.toml"],
        ["plot", "--stage", "nope", "-o", "x.png"],
    ],
)
def test_bad_stage_or_map_exits_two_with_one_line(invoke, padded, args, tmp_path):
    ref, port, _ = padded
    code, out, err = invoke(args[0], ref, port, *args[1:])
    assert code == 2 and err.startswith("trace: error: ") and err.count("\n") == 1
    assert "Traceback" not in out + err


def test_bad_map_file_exits_two(invoke, padded, tmp_path):
    ref, port, _ = padded
    bad = tmp_path / "bad.toml"
    bad.write_text('rename = "x"\n')
    code, _, err = invoke("diff", ref, port, "--map", bad)
    assert code == 2 and "[rename] must be a table" in err


def _png(path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000


def test_plot_overview_and_stage(invoke, padded, tmp_path):
    ref, port, mapping = padded
    overview = tmp_path / "overview.png"
    code, out, err = invoke("plot", ref, port, "-o", overview, "--map", mapping)
    assert code == 0, err
    assert out.strip() == f"wrote {overview}" and _png(overview)
    stage = tmp_path / "stage.png"
    assert invoke("plot", ref, port, "--stage", "frontend.standardized", "-o", stage)[0] == 0 and _png(stage)
    line = tmp_path / "audio.png"
    assert invoke("plot", ref, port, "--stage", "audio", "-o", line)[0] == 0 and _png(line)
    code, _, err = invoke("plot", ref, port, "-o", tmp_path / "no" / "such" / "dir.png")
    assert code == 2 and err.startswith("trace: error: cannot write plot")


def test_drill_down_and_map_import_no_matplotlib(padded):
    ref, port, mapping = padded
    argv = ["trace", "diff", str(ref), str(port), "--stage", "frontend.standardized", "--map", str(mapping)]
    code = f"""
import sys
sys.argv = {argv!r}
from numtrace.cli import main
try:
    main()
except SystemExit:
    pass
print("HEAVY", [m for m in ("matplotlib", "torch", "mlx") if m in sys.modules])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in result.stdout, result.stdout[-500:] + result.stderr
