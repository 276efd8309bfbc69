"""A misspelt key in a tolerance or a map file is named with the closest key, in one line.

`--tol 'model.out=atl=0.1'` said "did you mean 'atol'", but `--tol 'model.out=rtol=0.1,atl=1'`
gave the generic "bad tolerance", a tolerance file's `{rtl = 0.1}` "expected a number (rtol)...",
and a map file's misspelt key the list of every valid key.
"""

import pytest

from numtrace.compare.pairing.names import NameMap
from numtrace.compare.verdict import load_tolerance_toml, parse_tol_option
from numtrace.errors import ToleranceError, UsageError
from numtrace.testing.tolerances import tolerance_table


@pytest.mark.parametrize(
    "text, key, closest",
    [
        ("model.out=rtol=0.1,atl=1", "atl", "atol"),  # after a glob, the second key
        ("rtol=0.1,atl=1", "atl", "atol"),  # no glob
        ("atol=1,rtl=0.1", "rtl", "rtol"),
        ("rtl=0.1,atol=1", "rtl", "rtol"),  # once the glob 'rtl=0.1,atol' with rtol 1
        ("rtl=0.1,atl=1", "rtl", "rtol"),
        ("x=rtol=1e-3,btol=1", "btol", "rtol"),
    ],
)
def test_a_misspelt_key_anywhere_in_a_tol_option_is_named_with_the_closest(text, key, closest):
    with pytest.raises(ToleranceError) as info:
        parse_tol_option(text)
    message = str(info.value)
    assert message.startswith(f"bad tolerance {text!r}: unknown key {key!r} (did you mean {closest!r}?); expected")
    assert "\n" not in message


def test_keys_far_from_any_tolerance_key_are_named_without_a_guess_and_globs_still_parse():
    with pytest.raises(ToleranceError, match=r"unknown key 'tolerance'; expected RTOL"):
        parse_tol_option("mel=rtol=0.1,tolerance=1")
    # only rtol/atol after the glob: a wrong value is the generic message, no key is blamed
    with pytest.raises(ToleranceError) as info:
        parse_tol_option("mel=rtol=0.1,atol=x")
    assert "unknown key" not in str(info.value)
    assert parse_tol_option("model.out=rtol=0.1,atol=1") == ("model.out", parse_tol_option("rtol=0.1,atol=1")[1])
    # NAME=VALUE parts none of which is near rtol/atol stay a glob (and an unmatched rule later)
    assert parse_tol_option("enc=1e-3,dec=1e-2")[0] == "enc=1e-3,dec"


@pytest.mark.parametrize(
    "value, shown",
    [
        ("{rtl = 0.1}", "{'rtl': 0.1}; unknown key 'rtl' (did you mean 'rtol'?)"),
        ("{rtol = 0.1, atl = 1}", "{'rtol': 0.1, 'atl': 1}; unknown key 'atl' (did you mean 'atol'?)"),
        ('"rtol=0.1,atl=1"', "'rtol=0.1,atl=1'; unknown key 'atl' (did you mean 'atol'?)"),
        ("{margin = 1}", "{'margin': 1}; unknown key 'margin'"),
    ],
)
def test_a_tolerance_file_entry_with_a_misspelt_key_names_the_closest(tmp_path, value, shown):
    path = tmp_path / "tol.toml"
    path.write_text(f'[tolerance]\n"model.out" = {value}\n')
    with pytest.raises(ToleranceError) as info:
        load_tolerance_toml(str(path))
    assert str(info.value) == (
        f"{path}: bad tolerance for 'model.out': {shown}; expected a number (rtol), "
        "{rtol = R, atol = A} (either key) or a string like 'rtol=1e-3,atol=1e-6'"
    )


def test_a_misspelt_tolerance_table_is_named(tmp_path):
    path = tmp_path / "tol.toml"
    path.write_text('[tolerances]\n"model.out" = 0.1\n')
    with pytest.raises(ToleranceError, match=r"has no \[tolerance\] table \(it has \[tolerances\]\); expected e.g."):
        load_tolerance_toml(str(path))


def test_tolerances_written_in_test_code_name_the_closest_key_too():
    with pytest.raises(ToleranceError, match=r"^tolerance for 'mel': bad tolerance \{'rtl': 0.1\}; unknown key 'rtl' "):
        tolerance_table({"mel": {"rtl": 0.1}})
    with pytest.raises(ToleranceError, match=r"unknown key 'atl' \(did you mean 'atol'\?\); expected a number"):
        tolerance_table({"mel": "rtol=0.1,atl=1"})
    assert tolerance_table({"mel": {"atol": 0.01}}).lookup("mel", "float32", "float32").atol == 0.01


@pytest.mark.parametrize(
    "key, closest",
    [("ignor", "ignore"), ("renames", "rename"), ("strip_prefixes_b", "strip_prefix_b"), ("automatc", "automatic")],
)
def test_a_map_file_key_is_named_with_the_closest_key_not_the_whole_list(tmp_path, key, closest):
    path = tmp_path / "map.toml"
    path.write_text(f'strip_prefix_b = ["swift."]\n{key} = ["x"]\n')
    with pytest.raises(UsageError) as info:
        NameMap.load(path)
    assert str(info.value) == f"map file {str(path)!r}: unknown key {key!r} (did you mean {closest!r}?)"


def test_a_map_file_key_close_to_none_lists_the_keys(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text("layout = []\n")
    with pytest.raises(UsageError, match=r"unknown key 'layout'; expected strip_prefix, strip_prefix_a, .* table$"):
        NameMap.load(path)
