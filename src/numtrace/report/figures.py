"""matplotlib for the pictures of :mod:`numtrace.report.plot` and :mod:`numtrace.report.sketch_plot`.

matplotlib is imported here only, on first use (Agg backend: no display needed);
``trace diff`` never imports it.

Example:
    >>> import os, tempfile
    >>> fig = pyplot().figure(figsize=(2, 1))
    >>> os.path.getsize(save(fig, os.path.join(tempfile.mkdtemp(), "x.png"))) > 100
    True
"""

from __future__ import annotations

from ..errors import UsageError


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend; one UsageError line naming the extra when it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError(
            "trace plot draws with matplotlib, which is not installed: pip install 'numtrace[plot]'"
        ) from None

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig, out) -> str:
    """Write ``fig`` to ``out`` (PNG) and close it; one UsageError line when it cannot be written."""
    try:
        fig.savefig(out, dpi=110, bbox_inches="tight")
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot write plot {str(out)!r}: {err}") from None
    finally:
        pyplot().close(fig)
    return str(out)
