import json
import textwrap

import numpy as np
import pytest

import numtrace


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def script(tmp_path):
    write(tmp_path / "helper.py", "SCALE = 2.0\n")
    return write(
        tmp_path / "pipe.py",
        """
        import sys
        import numpy as np
        import numtrace
        from helper import SCALE          # sys.path[0] is the script's directory

        if __name__ == "__main__":
            args = sys.argv[1:]
            x = numtrace.tap("input", np.arange(4.0) * SCALE)
            for step in range(3):
                x = numtrace.tap("step", x + 1)
            numtrace.tap("argv", np.array([len(args)]))
            print("argv", args)
            if "--crash" in args:
                raise ValueError("boom at stage 3")
            if "--exit" in args:
                sys.exit(3)
            numtrace.tap("output", x)
    """,
    )


def test_run_records_the_taps_and_passes_arguments_through(invoke, script, tmp_path):
    out = tmp_path / "t.safetensors"
    code, stdout, stderr = invoke("run", "-o", out, script, "--dtype", "float32", "-o", "x")
    assert code == 0, stderr
    assert "argv ['--dtype', 'float32', '-o', 'x']" in stdout
    with numtrace.load(out) as trace:
        assert trace.order == ["input", "step", "step@1", "step@2", "argv", "output"]
        assert trace.read("output").tolist() == [3.0, 5.0, 7.0, 9.0]
        assert trace.read("argv").tolist() == [4]
        assert json.loads(trace.metadata["numtrace.argv"]) == [str(script), "--dtype", "float32", "-o", "x"]
        assert trace.metadata["numtrace.status"] == "complete"
    assert "wrote 6 stages" in stderr


def test_a_crashing_script_keeps_its_stages_and_exits_nonzero(trace_cmd, script, tmp_path):
    out = tmp_path / "partial.safetensors"
    result = trace_cmd("run", "-o", out, script, "--crash")
    assert result.returncode == 1
    assert "ValueError: boom at stage 3" in result.stderr
    assert 'pipe.py", line' in result.stderr
    assert "numtrace" not in result.stderr.split("Traceback")[1].split("ValueError")[0]
    assert "wrote 5 stages" in result.stderr
    with numtrace.load(out) as trace:
        assert trace.order == ["input", "step", "step@1", "step@2", "argv"]
        assert trace.metadata["numtrace.status"] == "error: ValueError: boom at stage 3"


def test_sys_exit_status_is_kept(invoke, script, tmp_path):
    out = tmp_path / "t.safetensors"
    code, _, _ = invoke("run", "-o", out, script, "--exit")
    assert code == 3
    with numtrace.load(out) as trace:
        assert "argv" in trace.order and "output" not in trace.order


def test_probe_and_max_calls(invoke, script, tmp_path):
    out = tmp_path / "t.safetensors"
    assert invoke("run", "-o", out, "--probe", "step*", "--max-calls", "2", script)[0] == 0
    with numtrace.load(out) as trace:
        assert trace.order == ["step", "step@1"]


def test_default_output_is_named_after_the_script(invoke, script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke("run", script)[0] == 0
    assert (tmp_path / "pipe.safetensors").is_file()


@pytest.mark.parametrize("target, message", [("missing.py", "not found"), (".", "directory")])
def test_run_rejects_what_is_not_a_script(invoke, tmp_path, target, message):
    code, _, err = invoke("run", "-o", tmp_path / "t.st", tmp_path / target)
    assert code == 2 and message in err and err.count("\n") == 1


def test_show_lists_stages_and_metadata(invoke, script, tmp_path):
    out = tmp_path / "t.safetensors"
    invoke("run", "-o", out, script)
    code, stdout, _ = invoke("show", out)
    assert code == 0
    assert "order: recorded" in stdout
    assert "backend: numpy" in stdout
    for name in ("input", "step@2", "output"):
        assert name in stdout
    code, stdout, _ = invoke("show", out, "--json")
    shown = json.loads(stdout)
    assert [s["name"] for s in shown["stages"]][:2] == ["input", "step"]
    assert shown["stages"][-1]["mean"] == pytest.approx(6.0)
    assert shown["metadata"]["numtrace.backend"] == "numpy"


def test_show_of_a_foreign_file_says_the_order_is_natural(invoke, tmp_path):
    from safetensors.numpy import save_file

    save_file({"b": np.zeros(1), "a": np.ones(2)}, str(tmp_path / "f.safetensors"))
    code, stdout, _ = invoke("show", tmp_path / "f.safetensors")
    assert code == 0
    assert "natural sort" in stdout


@pytest.mark.parametrize("suffix", [".h5", ".st"])
def test_convert_round_trip_is_lossless(invoke, tmp_path, suffix):
    if suffix == ".h5":
        pytest.importorskip("h5py")
    src = tmp_path / "src.safetensors"
    numtrace.save(
        src, {"z": np.arange(5, dtype=np.int8), "a": np.linspace(0, 1, 7, dtype=np.float16)}, metadata={"note": "ü"}
    )
    mid, back = tmp_path / f"mid{suffix}", tmp_path / "back.safetensors"
    assert invoke("convert", src, mid)[0] == 0
    assert invoke("convert", mid, back)[0] == 0
    with numtrace.load(src) as a, numtrace.load(back) as b:
        assert a.order == b.order == ["z", "a"]
        assert a.user_metadata == b.user_metadata == {"note": "ü"}
        for name in a.order:
            assert a.info(name) == b.info(name)
            np.testing.assert_array_equal(a.read(name), b.read(name))


def test_convert_to_an_unknown_extension_exits_two(invoke, tmp_path):
    src = tmp_path / "src.safetensors"
    numtrace.save(src, {"x": np.zeros(1)})
    code, _, err = invoke("convert", src, tmp_path / "out.npz")
    assert code == 2 and err.count("\n") == 1


def test_no_arguments_prints_help(invoke):
    code, out, _ = invoke()
    assert code == 2 and "diff" in out and "run" in out and "show" in out


def test_show_prints_names_and_headers_literally(invoke, tmp_path):
    numtrace.save(tmp_path / "t.st", {"[bold]x[/bold]": np.arange(3.0)})
    code, stdout, _ = invoke("show", tmp_path / "t.st")
    assert code == 0
    assert "[min, max] mean±std" in stdout
    assert "[bold]x[/bold]" in stdout
