import json

import numpy as np
import pytest

import numtrace


def test_identical_traces_match_and_exit_zero(invoke, traces):
    code, out, err = invoke("diff", traces["ref"], traces["same"])
    assert code == 0, err
    assert out.count("MATCH") >= 3
    assert "3 stages: 3 MATCH, 0 SMALL, 0 LARGE, 0 MISSING. No divergence" in out


def test_offset_is_large_first_divergence_marked_and_exit_one(invoke, traces):
    code, out, _ = invoke("diff", traces["ref"], traces["offset"])
    assert code == 1
    assert "First divergence: decoder.final_proj (LARGE: max |Δ| 1.46" in out
    assert "▶" in out
    # the rows come in the reference's execution order
    assert out.index("encoder.out") < out.index("decoder.final_proj") < out.index("decoder.vocoder")


def test_json_report_follows_spec_section_3(invoke, traces):
    code, out, _ = invoke("diff", traces["ref"], traces["offset"], "--json")
    assert code == 1
    report = json.loads(out)
    assert report["a"] == str(traces["ref"]) and report["b"] == str(traces["offset"])
    assert report["first_divergence"] == "decoder.final_proj"
    assert [s["name"] for s in report["stages"]] == ["encoder.out", "decoder.final_proj", "decoder.vocoder"]
    stage = report["stages"][1]
    assert stage["verdict"] == "LARGE"
    assert "name_b" not in stage
    assert stage["a"]["shape"] == [1, 80, 50] and stage["a"]["dtype"] == "float32"
    for key in ("min", "max", "mean", "std"):
        assert isinstance(stage["a"][key], float) and isinstance(stage["b"][key], float)
    assert stage["b"]["mean"] == pytest.approx(stage["a"]["mean"] - 1.46, abs=1e-4)
    assert stage["diff"]["abs_max"] == pytest.approx(1.46, abs=1e-4)
    assert stage["diff"]["abs_mean"] == pytest.approx(1.46, abs=1e-4)
    assert isinstance(stage["diagnosis"], list)
    assert report["stages"][0]["verdict"] == "MATCH"


def test_fail_on_changes_what_fails(invoke, traces):
    assert invoke("diff", traces["ref"], traces["offset"], "--fail-on", "never")[0] == 0
    code, out, _ = invoke("diff", traces["ref"], traces["drift"], "--json")
    verdicts = {s["name"]: s["verdict"] for s in json.loads(out)["stages"]}
    assert verdicts["decoder.final_proj"] == "SMALL", verdicts
    assert code == 0
    assert invoke("diff", traces["ref"], traces["drift"], "--fail-on", "small")[0] == 1


def test_only_and_tolerance_overrides(invoke, traces):
    code, out, _ = invoke("diff", traces["ref"], traces["offset"], "--only", "encoder.*", "--json")
    assert code == 0
    assert [s["name"] for s in json.loads(out)["stages"]] == ["encoder.out"]
    code, out, _ = invoke("diff", traces["ref"], traces["offset"], "--tol", "decoder.*=atol=3", "--json")
    assert code == 0, out
    assert {s["verdict"] for s in json.loads(out)["stages"]} == {"MATCH"}


def test_tolerance_file(invoke, traces, tmp_path):
    toml = tmp_path / "tol.toml"
    toml.write_text('[tolerance]\n"decoder.*" = {rtol = 0.0, atol = 3.0}\n')
    assert invoke("diff", traces["ref"], traces["offset"], "--tol-file", toml)[0] == 0


@pytest.mark.parametrize(
    "args", [["--tol", "decoder.*=banana"], ["--only", "nothing.matches"], ["--tol-file", "missing.toml"]]
)
def test_bad_arguments_exit_two_with_one_line(invoke, traces, args):
    code, out, err = invoke("diff", traces["ref"], traces["same"], *args)
    assert code == 2
    assert err.startswith("trace: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in out + err


def test_help_states_what_small_means(invoke):
    code, out, _ = invoke("diff", "--help")
    assert code == 0
    assert "SMALL" in out and "10" in out


def test_foreign_save_file_traces_without_metadata(invoke, tmp_path):
    from safetensors.numpy import save_file

    steps = {f"step.{i}": np.full(3, float(i), np.float32) for i in range(12)}
    save_file(steps, str(tmp_path / "a.safetensors"))
    save_file({**steps, "step.10": steps["step.10"] + 1}, str(tmp_path / "b.safetensors"))
    code, out, _ = invoke("diff", tmp_path / "a.safetensors", tmp_path / "b.safetensors", "--json")
    report = json.loads(out)
    assert code == 1
    assert [s["name"] for s in report["stages"]][:3] == ["step.0", "step.1", "step.2"]
    assert [s["name"] for s in report["stages"]][-2:] == ["step.10", "step.11"]
    assert report["first_divergence"] == "step.10"


def test_missing_stages_are_reported(invoke, tmp_path):
    numtrace.save(tmp_path / "a.st", {"x": np.zeros(2), "only_a": np.zeros(1)})
    numtrace.save(tmp_path / "b.st", {"x": np.zeros(2), "only_b": np.zeros(1)})
    code, out, _ = invoke("diff", tmp_path / "a.st", tmp_path / "b.st", "--json")
    stages = json.loads(out)["stages"]
    assert code == 0
    assert [(s["name"], s["verdict"]) for s in stages] == [("x", "MATCH"), ("only_a", "MISSING"), ("only_b", "MISSING")]
    assert invoke("diff", tmp_path / "a.st", tmp_path / "b.st", "--fail-on", "missing")[0] == 1


def test_diff_across_containers(invoke, traces, tmp_path):
    pytest.importorskip("h5py")
    h5 = tmp_path / "offset.h5"
    code, out, _ = invoke("convert", traces["offset"], h5)
    assert code == 0 and str(h5) in out
    code, out, _ = invoke("diff", traces["ref"], h5, "--json")
    assert code == 1
    assert json.loads(out)["first_divergence"] == "decoder.final_proj"


def test_float64_against_float32_is_all_match(invoke, tmp_path):
    rng = np.random.default_rng(3)
    stages = {"x": rng.standard_normal((64, 64)), "y": np.exp(rng.standard_normal(100)) * 1e-3}
    numtrace.save(tmp_path / "f64.st", stages)
    numtrace.save(tmp_path / "f32.st", {k: v.astype(np.float32) for k, v in stages.items()})
    code, out, _ = invoke("diff", tmp_path / "f64.st", tmp_path / "f32.st", "--json")
    assert code == 0
    assert {s["verdict"] for s in json.loads(out)["stages"]} == {"MATCH"}
    assert {d["kind"] for s in json.loads(out)["stages"] for d in s["diagnosis"]} == {"dtype"}


def test_installed_console_scripts(trace_cmd, traces):
    ok = trace_cmd("diff", traces["ref"], traces["same"])
    assert ok.returncode == 0, ok.stderr
    assert "No divergence" in ok.stdout
    bad = trace_cmd("diff", traces["ref"], traces["offset"])
    assert bad.returncode == 1
    missing = trace_cmd("diff", traces["ref"], "/nonexistent/x.safetensors")
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "not found" in missing.stderr
    assert "Traceback" not in missing.stderr
