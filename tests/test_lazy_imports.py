"""numtrace never imports torch, mlx, fastai (or matplotlib) on its own.

Like array-api-compat's promise: `import numtrace` and `trace diff` leave the
frameworks unimported, so a diff starts fast and works where none is installed.
"""

import json
import subprocess
import sys

import numpy as np

import numtrace
from report_schema import check_cli_output

HEAVY = ("torch", "mlx", "fastai", "matplotlib", "h5py")


def _run(code: str) -> tuple[list[str], str]:
    """The heavy modules imported after running ``code``, and what ``code`` printed."""
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    *printed, last = result.stdout.strip().splitlines()
    return json.loads(last), "\n".join(printed)


def _imported_after(code: str) -> list[str]:
    return _run(code)[0]


def test_import_numtrace_imports_no_framework():
    assert _imported_after("import numtrace") == []


def test_tap_and_record_import_no_framework(tmp_path):
    code = f"""
import numpy as np, numtrace
with numtrace.record({str(tmp_path / "t.safetensors")!r}):
    numtrace.tap('x', np.zeros(3))
"""
    assert _imported_after(code) == []


def test_trace_diff_and_show_import_no_framework(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    numtrace.save(a, {"x": np.zeros(3)})
    numtrace.save(b, {"x": np.ones(3)})
    for argv in (
        ["trace", "diff", str(a), str(b)],
        ["trace", "diff", "--json", str(a), str(b)],
        ["trace", "show", str(a)],
    ):
        code = f"""
import sys
sys.argv = {argv!r}
from numtrace.cli import main
try:
    main()
except SystemExit as stop:
    print("\\nexit status", stop.code)
"""
        imported, printed = _run(code)
        assert imported == [], argv
        output, status = printed.rsplit("\nexit status ", 1)
        check_cli_output(argv[1:], output, int(status))
