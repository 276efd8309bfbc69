import json
import math

import numpy as np
import pytest

from numtrace.compare import verdict as verdict_module
from numtrace.compare.verdict import (
    SMALL_FACTOR,
    VERDICT_HELP,
    Tolerance,
    ToleranceTable,
    Verdict,
    classify,
    default_tolerance,
    load_tolerance_toml,
    parse_tol_option,
)
from numtrace.errors import NumtraceError, ToleranceError

# --- verdicts -----------------------------------------------------------------


def test_verdict_is_a_json_friendly_string_enum():
    assert Verdict.MATCH == "MATCH" and Verdict("LARGE") is Verdict.LARGE
    assert json.dumps({"v": Verdict.SMALL}) == '{"v": "SMALL"}'
    assert str(Verdict.MISSING) == "MISSING"
    assert [v.value for v in Verdict] == ["MATCH", "SMALL", "LARGE", "MISSING"]
    assert Verdict.MATCH.severity < Verdict.SMALL.severity < Verdict.LARGE.severity


def test_classify_boundaries():
    assert SMALL_FACTOR == 10
    assert classify(0.0) is Verdict.MATCH
    assert classify(1.0) is Verdict.MATCH
    assert classify(float(np.nextafter(1.0, 2.0))) is Verdict.SMALL
    assert classify(10.0) is Verdict.SMALL
    assert classify(10.000001) is Verdict.LARGE
    assert classify(math.inf) is Verdict.LARGE


def test_verdict_help_states_the_rule_and_module_docstring_agrees():
    for phrase in (
        "|b - a| <= rtol*|a| + atol",
        "MATCH    ratio <= 1",
        "SMALL    1 < ratio <= 10",
        "more than 10x its tolerance",
        "NaN vs NaN",
        "shapes that differ",
        "MISSING",
        "3.45e-4",
        "0.088",
    ):
        assert phrase in VERDICT_HELP, phrase
    doc = verdict_module.__doc__
    assert "1 < ratio <= 10" in doc and "ratio <= 1, every element within tolerance" in doc


# --- tolerances ---------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, rtol",
    [
        ("float64", 1.4901161193847656e-08),
        ("float32", 3.4526698300124393e-04),
        ("float16", 0.03125),
        ("bfloat16", 0.08838834764831845),
        ("complex64", 3.4526698300124393e-04),
    ],
)
def test_default_tolerance_is_sqrt_eps_of_the_coarser_dtype(dtype, rtol):
    assert default_tolerance(dtype, "float64").rtol == pytest.approx(rtol, rel=1e-12)
    assert default_tolerance("float64", dtype).rtol == pytest.approx(rtol, rel=1e-12)
    assert default_tolerance(dtype, dtype).atol is None


def test_default_tolerance_exact_dtypes():
    assert default_tolerance("int64", "int32") == Tolerance(0.0, 0.0)
    assert default_tolerance("bool", "bool") == Tolerance(0.0, 0.0)
    # one floating side: the float's tolerance
    assert default_tolerance("int64", "float32").rtol == pytest.approx(3.4527e-4, rel=1e-4)


def test_resolve_atol_relative_and_absolute():
    tol = Tolerance(1e-3)
    assert tol.resolve_atol(10.0, "float64", "float64") == pytest.approx(1e-2 + np.finfo(np.float64).tiny)
    # the coarser dtype's tiny is added
    assert tol.resolve_atol(0.0, "float32", "float16") == float(np.finfo(np.float16).tiny)
    assert Tolerance(1e-3, 1e-6).resolve_atol(1e9, "float32", "float32") == 1e-6
    assert Tolerance(0.0, 0.0).resolve_atol(5.0, "int64", "int64") == 0.0


@pytest.mark.parametrize(
    "rtol, atol", [(-1.0, None), (math.nan, None), (math.inf, None), (1e-3, -1e-6), (1e-3, math.nan), ("1", None)]
)
def test_tolerance_validates(rtol, atol):
    with pytest.raises(ToleranceError):
        Tolerance(rtol, atol)


def test_tolerance_ints_become_floats_and_to_dict():
    tol = Tolerance(0, 1)
    assert isinstance(tol.rtol, float) and isinstance(tol.atol, float)
    assert type(Tolerance(np.float32(0.5)).rtol) is float
    assert tol.to_dict() == {"rtol": 0.0, "atol": 1.0}
    assert Tolerance(1e-3).to_dict() == {"rtol": 1e-3, "atol": None}


# --- --tol parsing --------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1e-3", (None, Tolerance(1e-3))),
        (" 0.01 ", (None, Tolerance(0.01))),
        ("0", (None, Tolerance(0.0))),
        ("decoder.*=1e-3", ("decoder.*", Tolerance(1e-3))),
        ("decoder.*=rtol=1e-3,atol=1e-6", ("decoder.*", Tolerance(1e-3, 1e-6))),
        ("decoder.*=atol=1e-6,rtol=1e-3", ("decoder.*", Tolerance(1e-3, 1e-6))),
        ("mel=rtol=1e-2", ("mel", Tolerance(1e-2))),
        ("decoder.*=atol=2", ("decoder.*", Tolerance(0.0, 2.0))),
        ("atol=1e-6", (None, Tolerance(0.0, 1e-6))),
        ("rtol=1e-4", (None, Tolerance(1e-4))),
        ("rtol=1e-4, atol=1e-8", (None, Tolerance(1e-4, 1e-8))),
        ("weird=na.me=1e-3", ("weird=na.me", Tolerance(1e-3))),
        ("btol=1e-3", ("btol", Tolerance(1e-3))),
        ("layers.[0-3].*=5e-4", ("layers.[0-3].*", Tolerance(5e-4))),
    ],
)
def test_parse_tol_option_forms(text, expected):
    assert parse_tol_option(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "banana",
        "decoder.*=banana",
        "decoder.*=",
        "=1e-3",
        "-1e-3",
        "nan",
        "inf",
        "x=-1",
        "rtol=1e-3,rtol=1e-4",
        "rtol=1e-3,btol=1",
        "atol=x",
        "x=rtol=",
        "x=rtol=1e-3,",
        "atol",
        "x=rtol=1e-3,btol=1",
        "weird=name=1e-3",
        "model.out=atl=0.1",
    ],
)
def test_parse_tol_option_errors_quote_the_text_and_the_forms(text):
    with pytest.raises(ToleranceError) as info:
        parse_tol_option(text)
    message = str(info.value)
    assert repr(text) in message
    assert "GLOB=RTOL" in message and "atol=1e-6" in message
    assert "\n" not in message
    assert isinstance(info.value, NumtraceError)


def test_a_misspelt_key_after_a_glob_is_named_with_the_closest_key():
    """'model.out=atl=0.1' once became the glob 'model.out=atl' with rtol 0.1, matching nothing."""
    with pytest.raises(ToleranceError, match=r"unknown key 'atl' \(did you mean 'atol'\?\)"):
        parse_tol_option("model.out=atl=0.1")
    with pytest.raises(ToleranceError, match=r"unknown key 'tolerance'; expected"):
        parse_tol_option("mel=tolerance=0.1")


def test_unmatched_rules_are_listed_in_order():
    table = ToleranceTable.from_options(["decoder.*=atol=1", "enc*=1e-3", "x=1e-2", "1e-4"])
    assert table.unmatched(["encoder.conv", "encoder.out"]) == ["decoder.*", "x"]
    assert table.unmatched([]) == ["decoder.*", "enc*", "x"]


# --- the table ------------------------------------------------------------------


def test_lookup_last_matching_glob_wins_then_default_then_dtype_default():
    table = ToleranceTable(
        [("decoder.*", Tolerance(1e-3)), ("decoder.proj", Tolerance(1e-2)), ("decoder.*", Tolerance(5e-3))]
    )
    assert table.lookup("decoder.proj", "float32", "float32") == Tolerance(5e-3)
    assert table.lookup("encoder", "float32", "float32") == default_tolerance("float32", "float32")
    table.default = Tolerance(1e-4, 1e-6)
    assert table.lookup("encoder", "float32", "float32") == Tolerance(1e-4, 1e-6)
    # globs are case-sensitive fnmatch on the stage name
    assert table.lookup("Decoder.proj", "float32", "float32") == Tolerance(1e-4, 1e-6)


def test_default_override_leaves_integer_stages_exact_unless_a_glob_names_them():
    table = ToleranceTable.from_options(["1e-3", "ids=atol=1"])
    assert table.lookup("tokens", "int64", "int64") == Tolerance(0.0, 0.0)
    assert table.lookup("ids", "int64", "int64") == Tolerance(0.0, 1.0)
    assert table.lookup("x", "int64", "float32") == Tolerance(1e-3)


def test_from_options_cli_rules_come_after_toml_rules(tmp_path):
    path = tmp_path / "tol.toml"
    path.write_text('[tolerance]\ndefault = 1e-4\n"decoder.*" = {rtol = 1e-3}\n"mel" = 1e-2\n')
    table = ToleranceTable.from_options(["mel=5e-2", "2e-4"], str(path))
    assert table.rules == [("decoder.*", Tolerance(1e-3)), ("mel", Tolerance(1e-2)), ("mel", Tolerance(5e-2))]
    assert table.default == Tolerance(2e-4)
    assert table.lookup("mel", "float32", "float32") == Tolerance(5e-2)
    assert ToleranceTable.from_options([], None) == ToleranceTable()


def test_load_tolerance_toml_every_value_form(tmp_path):
    path = tmp_path / "tol.toml"
    path.write_text(
        "[tolerance]\n"
        "default = {rtol = 1e-4, atol = 1e-6}\n"
        '"decoder.*" = {rtol = 1e-3}\n'
        '"mel" = 1e-2\n'
        '"ids" = {atol = 1}\n'
        '"post" = "rtol=2e-3,atol=1e-7"\n'
        '"zero" = 0\n'
    )
    table = load_tolerance_toml(str(path))
    assert load_tolerance_toml(path) == table  # a Path works too
    assert table.default == Tolerance(1e-4, 1e-6)
    assert table.rules == [
        ("decoder.*", Tolerance(1e-3)),
        ("mel", Tolerance(1e-2)),
        ("ids", Tolerance(0.0, 1.0)),
        ("post", Tolerance(2e-3, 1e-7)),
        ("zero", Tolerance(0.0)),
    ]


@pytest.mark.parametrize(
    "content, needle",
    [
        ("[tolerance\n", "not valid TOML"),
        ("[other]\nx = 1\n", "no [tolerance] table"),
        ("tolerance = 3\n", "no [tolerance] table"),
        ('[tolerance]\n"mel" = true\n', "'mel'"),
        ('[tolerance]\n"mel" = -1e-3\n', "'mel'"),
        ('[tolerance]\n"mel" = {rtol = 1e-3, btol = 1}\n', "'mel'"),
        ('[tolerance]\n"mel" = {}\n', "'mel'"),
        ('[tolerance]\n"mel" = [1e-3]\n', "'mel'"),
        ('[tolerance]\n"mel" = "banana"\n', "'mel'"),
        ("[tolerance]\ndefault = {rtol = -1}\n", "'default'"),
    ],
)
def test_load_tolerance_toml_errors(tmp_path, content, needle):
    path = tmp_path / "tol.toml"
    path.write_text(content)
    with pytest.raises(ToleranceError) as info:
        load_tolerance_toml(str(path))
    assert needle in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_load_tolerance_toml_missing_file(tmp_path):
    with pytest.raises(ToleranceError, match="cannot read tolerance file"):
        load_tolerance_toml(str(tmp_path / "missing.toml"))
