"""`pytest` collects cleanly where torch, mlx and fastai are not installed: skip, never error.

The frameworks are hidden from a child pytest by a meta-path finder that refuses them (as if they
were not installed), and only collection runs.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from numtrace.backends import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
#: every optional framework of the backend registry (all but NumPy), and the packages fastai brings
HIDDEN = tuple(b.framework.split(".")[0] for b in REGISTRY if b.framework != "numpy") + ("fasttransform", "torchvision")

HIDE = textwrap.dedent(f'''
    import sys

    class Hide:
        """{", ".join(HIDDEN)} are not installed here."""
        hidden = {HIDDEN!r}

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.hidden:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Hide())
''')


def test_collection_without_torch_mlx_or_fastai_has_no_error(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(HIDE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "src/numtrace",
            "tests/backends",
            "tests/unit/test_backends_seam.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "error" not in result.stdout.lower().splitlines()[-1]
    assert "could not import 'torch'" in result.stdout or "tests collected" in result.stdout
