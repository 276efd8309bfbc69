"""The JSON report's published schema (docs/report.schema.json) holds for every report numtrace makes,
and is strict enough to catch a drifting field."""

import copy
import json

import jsonschema
import numpy as np
import pytest

from numtrace.compare import diff
from numtrace.compare.detail import stage_detail
from numtrace.compare.sketches.format import SKETCH_KEY, STAGE_PREFIX, encode_info, make_sketch
from numtrace.report.stage import detail_json
from numtrace.trace import MemoryTrace
from report_schema import check_report

X = np.linspace(-10.0, 0.0, 8 * 40).reshape(8, 40)


def reports():
    a = MemoryTrace(
        {"audio": X[0].astype(np.float32), "mel": X, "db": X * 2, "ids": np.arange(4)},
        metadata={"numtrace.status": "complete"},
    )
    b = MemoryTrace(
        {"audio": X[0].astype(np.float32), "mel": X - 1.5, "db": (X * 2).T.copy(), "extra": np.ones(2)},
        metadata={"numtrace.status": "error: RuntimeError: boom"},
    )
    noise = MemoryTrace({"mel": X + np.random.default_rng(0).standard_normal(X.shape)})
    means, info = make_sketch(X)
    sketch = MemoryTrace({"mel": means}, metadata={SKETCH_KEY: "1", STAGE_PREFIX + "mel": encode_info(info)})
    return {
        "mixed": diff(a, b).to_dict(),
        "unexplained": diff(MemoryTrace({"mel": X}), noise).to_dict(),
        "sketch": diff(sketch, MemoryTrace({"mel": X * 1.01})).to_dict(),
        "nothing": diff(MemoryTrace({"x": X}), MemoryTrace({"y": X})).to_dict(),
    }


@pytest.mark.parametrize("name", ["mixed", "unexplained", "sketch", "nothing"])
def test_every_kind_of_report_fits_the_schema(name):
    data = reports()[name]
    check_report(json.loads(json.dumps(data, allow_nan=False)))


def test_stage_details_fit_the_schema():
    a, b = MemoryTrace({"mel": X}), MemoryTrace({"mel": X - 1.5})
    check_report(detail_json(stage_detail(a, b, "mel")), "stage_detail")


def test_the_schema_catches_a_drifting_field():
    good = reports()["mixed"]
    check_report(good)
    for mutate in (
        lambda r: r.pop("first_divergence"),
        lambda r: r["stages"][1].update(verdict="BIG"),
        lambda r: r["stages"][1]["diagnosis"].append({"kind": "guess"}),
        lambda r: r["stages"][1]["diagnosis"].append({"kind": "offset"}),  # no value
        lambda r: r["stages"][1]["tolerance"].update(inherited={"dtype": "float32"}),
        lambda r: r["summary"].update(PASS=1),
    ):
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            check_report(bad)


def test_trace_show_json_fits_its_schema_and_a_drifting_field_is_caught():
    from numtrace.compare.views import show_dict, stage_dict
    from report_schema import cli_output_kind

    means, info = make_sketch(X)
    sketch = MemoryTrace({"mel": means}, metadata={SKETCH_KEY: "1", STAGE_PREFIX + "mel": encode_info(info)})
    full = MemoryTrace({"mel": X, "n": np.float32(np.nan)}, metadata={"seed": "0"})
    for trace in (sketch, full):
        check_report(json.loads(json.dumps(show_dict(trace), allow_nan=False)), "show")
        for name in trace.order:
            check_report(json.loads(json.dumps(stage_dict(trace, name), allow_nan=False)), "show_stage")
    assert cli_output_kind(["show", "t.st", "--only", "mel", "--json"]) == "show"
    assert cli_output_kind(["show", "t.st", "mel", "--width", "90", "--json"]) == "show_stage"
    good_show, good_stage = show_dict(sketch), stage_dict(full, "mel")
    for kind, good, mutate in (
        ("show", good_show, lambda d: d["stages"][0].pop("hash")),  # a stats-only stage has its hash
        ("show", good_show, lambda d: d.update(order="sorted")),
        ("show", good_show, lambda d: d["metadata"].update(seed=0)),
        ("show", good_show, lambda d: d["stages"][0].pop("count")),
        ("show_stage", good_stage, lambda d: d.pop("channel_means")),
        ("show_stage", good_stage, lambda d: d.update(index=0)),
        ("show_stage", good_stage, lambda d: d.update(axis="1")),
    ):
        bad = copy.deepcopy(good)
        mutate(bad)
        with pytest.raises(jsonschema.ValidationError):
            check_report(bad, kind)
