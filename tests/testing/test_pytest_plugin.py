"""The pytest plugin, run by pytest's own pytester: fixture, golden traces, options, pyproject."""

import json
import subprocess
import sys

import numpy as np
import pytest

import numtrace
from numtrace.testing.fixture import golden_stem

pytest_plugins = ["pytester"]

# A user's test file: a small front end tapped stage by stage; BUG plants an offset in "mel".
FRONTEND = """
import os
import numpy as np
import numtrace

def frontend():
    x = numtrace.tap("audio", np.linspace(0.0, 1.0, 50))
    bug = float(os.environ.get("BUG", "0"))
    mel = numtrace.tap("mel", np.outer(np.arange(1.0, 5.0), x) + bug)
    numtrace.tap("db", 10 * np.log10(1 + mel * mel))

def test_frontend(numtrace):
    frontend()
    numtrace.check_golden()
"""
GOLDEN = "tests/golden/test_frontend__test_frontend.safetensors"


@pytest.fixture
def project(pytester):
    pytester.makepyfile(test_frontend=FRONTEND)
    return pytester


def run(pytester, *args):
    # hypothesis' own plugin imports all of hypothesis at the end of every in-process run: not needed here
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)


def test_a_missing_golden_fails_and_says_how_to_create_it(project):
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"numtrace: no golden trace for this test: {GOLDEN} does not exist.",
            "Record it by running the test once with --numtrace-update:",
            '    pytest --numtrace-update "test_frontend.py::test_frontend"',
            "then review the file and commit it.",
        ]
    )


def test_update_writes_the_golden_then_the_test_passes(project, monkeypatch):
    result = run(project, "--numtrace-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*numtrace*",
            "golden traces in tests/golden: 1 written (1 new, 0 changed), 0 unchanged",
            f"  new     {GOLDEN}",
        ]
    )
    golden = project.path / GOLDEN
    with numtrace.load(golden) as trace:
        assert trace.order == ["audio", "mel", "db"]
        assert trace.metadata["numtrace.test"] == "test_frontend.py::test_frontend"
    written = golden.read_bytes()
    run(project).assert_outcomes(passed=1)
    result = run(project, "--numtrace-update")
    result.stdout.fnmatch_lines(["golden traces in tests/golden: 0 written (0 new, 0 changed), 1 unchanged"])
    assert golden.read_bytes() == written  # an unchanged golden is not rewritten
    monkeypatch.setenv("BUG", "0.5")
    result = run(project, "--numtrace-update")
    result.stdout.fnmatch_lines(["golden traces in tests/golden: 1 written (0 new, 1 changed), 0 unchanged"])


def test_update_keeps_a_golden_the_new_recording_still_matches_unless_forced(project, monkeypatch):
    """Float32 results differ in the last bits between CPUs: an update on another machine must not
    rewrite a committed golden that the new recording still matches within tolerance."""
    run(project, "--numtrace-update").assert_outcomes(passed=1)
    golden = project.path / GOLDEN
    written = golden.read_bytes()
    monkeypatch.setenv("BUG", "1e-13")  # another CPU's rounding: not bit-identical, well within tolerance
    run(project).assert_outcomes(passed=1)
    result = run(project, "--numtrace-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "golden traces in tests/golden: 0 written (0 new, 0 changed), 0 unchanged, 1 kept: still matched within "
            "tolerance (--numtrace-force-update rewrites them)",
            f"  kept    {GOLDEN}",
        ]
    )
    assert golden.read_bytes() == written
    result = run(project, "--numtrace-force-update")
    result.stdout.fnmatch_lines(["golden traces in tests/golden: 1 written (0 new, 1 changed), 0 unchanged"])
    assert golden.read_bytes() != written
    monkeypatch.setenv("BUG", "0.5")  # a real change is still written by a plain update
    result = run(project, "--numtrace-update")
    result.stdout.fnmatch_lines(["golden traces in tests/golden: 1 written (0 new, 1 changed), 0 unchanged"])


def test_a_changed_stage_fails_with_the_report_and_no_numtrace_frames(project, monkeypatch):
    run(project, "--numtrace-update").assert_outcomes(passed=1)
    monkeypatch.setenv("BUG", "0.5")
    result = run(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       numtrace.check_golden()",
            "E       numtrace.testing.TraceMismatch: Traces differ: 2 / 3 stages (66.7%) fail "
            "(a stage fails when it is SMALL, LARGE or MISSING)",
            f"E         reference: {GOLDEN} (golden)",
            "E         candidate: <stages tapped by test_frontend.py::test_frontend>",
            "E       First divergence: mel (LARGE)",
            "E         1 MATCH   audio  max |Δ| 0",
            "E         2 LARGE   mel    max |Δ| 0.5, 100% out of tolerance; *  <- first divergence",
            "test_frontend.py:13: TraceMismatch",
        ]
    )
    assert "numtrace/testing" not in result.stdout.str()  # __tracebackhide__: only the user's frame


def test_the_report_dir_keeps_traces_and_json_of_failing_tests(project, monkeypatch):
    project.makepyfile(
        test_other="""
import numpy as np
import numtrace

def test_fails_for_another_reason(numtrace):
    numtrace.tap("x", np.ones(3))
    assert False, "not a numtrace check"

def test_passes(numtrace):
    numtrace.tap("x", np.ones(3))
"""
    )
    run(project, "--numtrace-update", "test_frontend.py")
    monkeypatch.setenv("BUG", "0.5")
    result = run(project, "--numtrace-report", "artifacts")
    result.assert_outcomes(failed=2, passed=1)
    folder = project.path / "artifacts" / "test_frontend__test_frontend"
    assert sorted(p.name for p in folder.iterdir()) == [
        "candidate.safetensors",
        "reference.safetensors",
        "report.json",
        "report.txt",
    ]
    report = json.loads((folder / "report.json").read_text())
    assert report["test"] == "test_frontend.py::test_frontend"
    assert report["first_divergence"] == "mel"
    assert (folder / "report.txt").read_text().startswith("Traces differ: 2 / 3 stages")
    assert (folder / "reference.safetensors").read_bytes() == (project.path / GOLDEN).read_bytes()
    with numtrace.load(folder / "candidate.safetensors") as candidate:
        assert candidate.read("mel")[0, 0] == 0.5
    other = project.path / "artifacts" / "test_other__test_fails_for_another_reason" / "recorded.safetensors"
    with numtrace.load(other) as recorded:
        assert recorded.order == ["x"]
    assert not (project.path / "artifacts" / "test_other__test_passes").exists()
    result.stdout.fnmatch_lines(
        [
            "E       numtrace kept the traces and the report in artifacts/test_frontend__test_frontend",
            "traces and reports of 2 failing check(s) kept in artifacts",
        ]
    )


def test_pyproject_tolerances_apply_per_stage(project, monkeypatch):
    run(project, "--numtrace-update").assert_outcomes(passed=1)
    monkeypatch.setenv("BUG", "0.001")
    run(project).assert_outcomes(failed=1)
    project.makepyprojecttoml("""
[tool.numtrace]
tolerance = {default = 1e-4, "mel" = {atol = 0.01}, "db" = {rtol = 1e-2}}
""")
    run(project).assert_outcomes(passed=1)


def test_bad_pyproject_settings_stop_the_run(project):
    project.makepyprojecttoml('[tool.numtrace]\ntolerance = {"mel" = {rtol = "lots"}}\n')
    result = run(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pyproject.toml: [[]tool.numtrace[]] tolerance for 'mel': bad tolerance rtol='lots'*"]
    )
    project.makepyprojecttoml('[tool.numtrace]\nfail_on = "sometimes"\n')
    assert run(project).ret == pytest.ExitCode.USAGE_ERROR
    project.makepyprojecttoml("[tool.numtrace]\ntolerances = 1e-3\n")
    result = run(project, "--numtrace-update")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*numtrace ignores unknown [[]tool.numtrace[]] key(s) tolerances*"])


def test_golden_dir_from_pyproject_and_from_the_command_line(project):
    project.makepyprojecttoml('[tool.numtrace]\ngolden_dir = "goldens/mel"\n')
    run(project, "--numtrace-update").assert_outcomes(passed=1)
    assert (project.path / "goldens/mel/test_frontend__test_frontend.safetensors").is_file()
    run(project, "--numtrace-update", "--numtrace-golden-dir", "elsewhere").assert_outcomes(passed=1)
    assert (project.path / "elsewhere/test_frontend__test_frontend.safetensors").is_file()
    run(project, "--numtrace-golden-dir", "elsewhere").assert_outcomes(passed=1)


def test_named_checks_check_against_and_the_module_like_fixture(pytester):
    pytester.makepyfile(
        test_checks="""
import numpy as np
import pytest

def test_two_goldens(numtrace):
    with numtrace.scope("encoder"):
        numtrace.tap("out", np.ones(3))
    numtrace.check_golden("encoder")
    numtrace.tap("mel", np.zeros(4))
    numtrace.tap("db", np.zeros(4))
    numtrace.check_golden("decoder", only="mel")

def test_unnamed_twice(numtrace):
    numtrace.tap("x", np.ones(1))
    numtrace.check_golden()
    numtrace.tap("x", np.ones(1))
    numtrace.check_golden()

def test_nothing_tapped(numtrace):
    numtrace.check_golden()

def test_against_a_nested_recording(numtrace):
    with numtrace.record() as reference:
        numtrace.tap("y", np.arange(3.0))
    numtrace.tap("y", np.arange(3.0) + 1e-12)
    assert numtrace.names == ["y"]
    report = numtrace.check_against(reference.trace)
    assert report.counts["MATCH"] == 1 and numtrace.names == []
    numtrace.tap("y", np.arange(3.0) + 1)
    with pytest.raises(AssertionError, match="First divergence: y"):
        numtrace.check_against({"y": np.arange(3.0)})
"""
    )
    result = run(pytester, "--numtrace-update")
    result.assert_outcomes(passed=2, failed=2)
    golden = pytester.path / "tests" / "golden"
    assert sorted(p.name for p in golden.iterdir()) == [
        "test_checks__test_two_goldens.decoder.safetensors",
        "test_checks__test_two_goldens.encoder.safetensors",
        "test_checks__test_unnamed_twice.safetensors",
    ]
    with numtrace.load(golden / "test_checks__test_two_goldens.decoder.safetensors") as decoder:
        assert decoder.order == ["mel"]
    result.stdout.fnmatch_lines(["*numtrace.check_golden(): this test tapped no stage (nothing to compare)*"])
    result = run(pytester)
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*numtrace.check_golden() was already called without a name in this test; "
            "give each golden check of a test its own name: check_golden('encoder')"
        ]
    )


def test_the_recording_ends_with_the_test(pytester):
    pytester.makepyfile(
        test_scope="""
import numtrace as nt

def test_records(numtrace):
    assert nt.is_recording()

def test_after():
    assert not nt.is_recording()
"""
    )
    run(pytester, "-p", "no:randomly").assert_outcomes(passed=2)


def test_the_tolerances_fixture(pytester):
    pytester.makepyprojecttoml("[tool.numtrace]\ntolerance = {default = 1e-3}\n")
    pytester.makepyfile(
        test_tol="""
from numtrace.compare import Tolerance

def test_table(numtrace_tolerances, numtrace):
    assert numtrace_tolerances.default == Tolerance(1e-3)
    assert numtrace.tolerances is numtrace_tolerances
"""
    )
    run(pytester).assert_outcomes(passed=1)


def test_loading_the_plugin_imports_neither_the_engine_nor_frameworks(pytester):
    pytester.makepyfile(
        test_modules="""
import sys
AT_COLLECTION = sorted(m for m in ("numtrace.compare", "numtrace.testing.assertions", "rich", "torch", "mlx")
                       if m in sys.modules)

def test_nothing_heavy_at_collection():
    assert "numtrace.testing.plugin" in sys.modules
    assert AT_COLLECTION == []
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_importing_the_plugin_module_alone_is_light():
    code = (
        "import sys, numtrace.testing.plugin; "
        "print(sorted(m for m in ('numtrace.compare', 'rich', 'hypothesis', 'torch', 'mlx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "nodeid, stem",
    [
        ("tests/test_mel.py::test_db", "tests.test_mel__test_db"),
        ("test_port.py::TestMel::test_db[short]", "test_port__TestMel__test_db-short"),
        ("test_a.py::test_b[1-x=2]", "test_a__test_b-1-x=2"),
    ],
)
def test_golden_names(nodeid, stem):
    assert golden_stem(nodeid) == stem


def test_golden_names_stay_distinct_when_characters_are_replaced():
    a, b = golden_stem("test_a.py::test_b[a b]"), golden_stem("test_a.py::test_b[a/b]")
    assert a != b and a.startswith("test_a__test_b-a_b-") and len(a) == len("test_a__test_b-a_b-") + 8
    assert len(golden_stem("test_a.py::test_" + "x" * 300)) <= 120


def test_traces_written_by_the_fixture_keep_recorded_dtypes(tmp_path):
    from numtrace.testing.fixture import same_trace, write_trace
    from numtrace.trace import MemoryTrace

    trace = MemoryTrace({"h": (np.array([1.0, 2.0], np.float32), "bfloat16"), "n": np.arange(3)})
    path = tmp_path / "t.safetensors"
    write_trace(trace, path, "t::x")
    with numtrace.load(path) as back:
        assert back.info("h").dtype == "bfloat16" and same_trace(back, trace)
        assert "numtrace.created" not in back.metadata
