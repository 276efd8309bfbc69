"""`trace diff` never passes what it did not compare.

Each of these exited 0 before: two traces with no stage in common ("No divergence: every stage
present on both sides matches"), a candidate whose `trace run` crashed halfway, a `--tol` glob
that matches no stage, a misspelt `--tol` key, a `--map` entry that applies to nothing.
"""

import json
import textwrap

import numpy as np

import numtrace


def save(path, stages):
    numtrace.save(path, stages, order=list(stages))
    return path


def test_two_traces_with_no_stage_in_common_do_not_pass(invoke, tmp_path):
    a = save(tmp_path / "a.safetensors", {"encoder.out": np.ones(3), "decoder.out": np.ones(3)})
    b = save(tmp_path / "b.safetensors", {"enc.output": np.ones((2, 2)), "dec.y": np.zeros(4)})
    code, out, _ = invoke("diff", a, b, "--width", "200")
    assert code == 1
    assert "No divergence" not in out
    assert "Not verified: nothing was compared: the two traces have no stage in common." in out
    code, out, _ = invoke("diff", a, b, "--json")
    report = json.loads(out)
    assert code == 1 and report["compared"] == 0
    assert report["incomplete"] == ["nothing was compared: the two traces have no stage in common"]
    assert invoke("diff", a, b, "--allow-incomplete")[0] == 0
    assert invoke("diff", a, b, "--fail-on", "never")[0] == 0
    assert invoke("diff", a, b, "--allow-incomplete", "--fail-on", "missing")[0] == 1


CRASHING = textwrap.dedent("""
    import sys
    import numpy as np
    import numtrace

    x = np.linspace(0.0, 1.0, 64)
    for name in ("frontend", "encoder", "decoder", "vocoder"):
        if name == "decoder" and "--crash" in sys.argv:
            raise RuntimeError("boom in the decoder")
        x = numtrace.tap(name, np.tanh(x + 0.5))
""")


def test_a_candidate_whose_run_crashed_does_not_pass_and_says_what_it_lacks(invoke, tmp_path):
    script = tmp_path / "pipeline.py"
    script.write_text(CRASHING)
    ref, cand = tmp_path / "ref.safetensors", tmp_path / "cand.safetensors"
    assert invoke("run", "-o", ref, script)[0] == 0
    assert invoke("run", "-o", cand, script, "--crash")[0] == 1
    code, out, _ = invoke("diff", ref, cand, "--width", "250")
    assert code == 1
    assert "(recording did not complete: error: RuntimeError: boom in the decoder)" in out
    assert (
        "Not verified: the candidate's recording did not complete (error: RuntimeError: boom in the "
        "decoder): 2 stages of the reference are not in it, the first decoder."
    ) in " ".join(out.split())
    report = json.loads(invoke("diff", ref, cand, "--json")[1])
    assert report["status"] == {"a": "complete", "b": "error: RuntimeError: boom in the decoder"}
    assert report["summary"]["MATCH"] == 2 and report["compared"] == 2
    assert invoke("diff", ref, cand, "--allow-incomplete")[0] == 0  # judged on the stages it has
    # the same holds the other way round, and in Python
    assert invoke("diff", cand, ref)[0] == 1
    report = numtrace.diff(ref, cand)
    assert not report and report.failed(allow_incomplete=True) is False


def test_a_tolerance_rule_that_matches_no_stage_is_bad_input(invoke, tmp_path):
    a = save(tmp_path / "a.safetensors", {"model.decoder.out": np.ones(3), "model.out": np.ones(3)})
    b = save(
        tmp_path / "b.safetensors",
        {"model.decoder.out": np.ones(3), "model.out": np.ones(3) + 0.5, "swift.final": np.ones(1)},
    )
    code, _, err = invoke("diff", a, b, "--tol", "decoder.*=atol=1")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "tolerance rule 'decoder.*' matches no stage of the reference (closest: model.decoder.out)" in err
    code, _, err = invoke("diff", a, b, "--tol", "model.out=atl=0.1")
    assert code == 2 and "unknown key 'atl' (did you mean 'atol'?)" in err
    # a misspelt key after a good one, or first in a list, is named the same way, in one line
    for text, key, closest in (("model.out=rtol=0.1,atl=1", "atl", "atol"), ("rtl=0.1,atol=1", "rtl", "rtol")):
        code, _, err = invoke("diff", a, b, "--tol", text)
        assert code == 2 and err.count("\n") == 1
        assert f"bad tolerance {text!r}: unknown key {key!r} (did you mean {closest!r}?); expected RTOL" in err
    code, _, err = invoke("diff", a, b, "--tol", "atl=0.1")  # reads as GLOB=RTOL: glob 'atl'
    assert code == 2 and "tolerance rule 'atl' matches no stage of the reference (did you mean 'atol'?)" in err
    code, _, err = invoke("diff", a, b, "--tol", "swift.*=1")
    assert code == 2 and "it matches the candidate's swift.final" in err
    toml = tmp_path / "tol.toml"
    toml.write_text('[tolerance]\n"model.otu" = 0.1\n')
    code, _, err = invoke("diff", a, b, "--tol-file", toml)
    assert code == 2 and "'model.otu' matches no stage of the reference (closest: model.out" in err
    toml.write_text('[tolerance]\n"model.out" = {rtl = 0.1}\n')
    code, _, err = invoke("diff", a, b, "--tol-file", toml)
    assert code == 2 and err.count("\n") == 1
    assert "bad tolerance for 'model.out': {'rtl': 0.1}; unknown key 'rtl' (did you mean 'rtol'?); expected" in err
    # a rule that matches a stage excluded by --only is fine: it matches a stage of the trace
    assert invoke("diff", a, b, "--only", "model.decoder.*", "--tol", "model.out=1")[0] == 0
    assert invoke("diff", a, b, "--tol", "model.out=atol=1")[0] == 0


def test_a_map_entry_that_matches_no_stage_is_bad_input(invoke, tmp_path):
    a = save(tmp_path / "a.safetensors", {"decoder.final_proj": np.ones(3)})
    b = save(tmp_path / "b.safetensors", {"swift.decoder.finalProj": np.ones(3)})
    good = tmp_path / "good.toml"
    good.write_text('strip_prefix_b = ["swift."]\n')
    assert invoke("diff", a, b, "--map", good)[0] == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('strip_prefix_b = ["swift."]\nignore_b = ["cache.*"]\n[rename]\n"decoder.finalProjection" = "x"\n')
    code, _, err = invoke("diff", a, b, "--map", bad)
    assert code == 2 and err.count("\n") == 1
    assert "ignore_b 'cache.*' matches no stage of the candidate" in err
    assert "rename 'decoder.finalProjection' matches no stage of the candidate (closest: decoder.finalProj)" in err
    assert invoke("diff", a, b, "--map", bad, "--stage", "decoder.final_proj")[0] == 2
    misspelt = tmp_path / "misspelt.toml"
    misspelt.write_text('strip_prefixes_b = ["swift."]\n')
    code, _, err = invoke("diff", a, b, "--map", misspelt)
    assert code == 2 and err.count("\n") == 1
    assert f"map file {str(misspelt)!r}: unknown key 'strip_prefixes_b' (did you mean 'strip_prefix_b'?)" in err


def test_plot_refuses_options_that_match_no_stage_too(invoke, tmp_path):
    a = save(tmp_path / "a.safetensors", {"model.out": np.ones(3)})
    code, _, err = invoke("plot", a, a, "-o", tmp_path / "x.png", "--tol", "mdl.*=1e-3")
    assert code == 2 and "tolerance rule 'mdl.*' matches no stage of the reference" in err
    assert not (tmp_path / "x.png").exists()
