"""The JSON text of a diff report, written as it is encoded: one line per stage.

``trace diff --json`` prints the report (docs/report.md) indented by two spaces, except that
each object of ``stages`` takes one line: a 20,000-stage report stays greppable
(``trace diff a b --json | grep LARGE``), and is encoded by the json module's C encoder (an
indented encoding runs in pure Python, 3x slower) piece by piece, never held as one string.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> write_report({"a": "ref", "stages": [{"name": "x", "verdict": "MATCH"}], "compared": 1}, out)
    >>> print(out.getvalue(), end="")
    {
      "a": "ref",
      "stages": [
        {"name": "x", "verdict": "MATCH"}
      ],
      "compared": 1
    }
"""

from __future__ import annotations

import json
from typing import TextIO

_FIELD = json.JSONEncoder(indent=2, allow_nan=False)
_LINE = json.JSONEncoder(allow_nan=False)  # no indent: the C encoder, ", " and ": " separators


def write_report(report: dict, out: TextIO) -> None:
    """Write ``report`` (a :meth:`DiffReport.to_dict`) to ``out``, newline-terminated."""
    out.write("{")
    for i, (key, value) in enumerate(report.items()):
        out.write(("," if i else "") + f"\n  {json.dumps(key)}: ")
        if key == "stages" and isinstance(value, list) and value:
            out.write("[")
            for j, stage in enumerate(value):
                out.write(("," if j else "") + "\n    " + _LINE.encode(stage))
            out.write("\n  ]")
        else:
            out.write(_FIELD.encode(value).replace("\n", "\n  "))
    out.write("\n}\n")
