"""Long per-index tables, summarized the way numpy prints a long array.

A per-index table (``trace diff --stage``'s error profile along an axis, a
sketch's channel means) has one row per index on a short axis (at most
:data:`SHOW_ALL` indices). On a longer one, consecutive indices with the same
label (their verdict) share one row, and when there are still more than
:data:`SHOW_ALL` rows, only the first and last :data:`EDGE` rows and the
:data:`WORST` rows with the largest score are kept; each gap between kept rows
becomes a :class:`Hidden` marker that says how many rows (and which indices)
it stands for.

Example:
    >>> labels = ["MATCH"] * 250 + ["LARGE"] * 62
    >>> summarize_rows(labels, [0.0] * 250 + [42.0] * 62)
    [(0, 250), (250, 312)]
    >>> scores = [0.0] * 40; scores[20] = 5.0; scores[21] = 3.0
    >>> rows = summarize_rows(["MATCH", "SMALL"] * 20, scores, edge=2, worst=2)
    >>> rows  # doctest: +NORMALIZE_WHITESPACE
    [(0, 1), (1, 2), Hidden(start=2, stop=20, rows=18), (20, 21), (21, 22),
     Hidden(start=22, stop=38, rows=16), (38, 39), (39, 40)]
    >>> hidden_text(rows[2])
    '… 18 rows hidden (indices 2-19) …'
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

#: an axis of at most this many indices gets one row per index; also the most rows kept in full
SHOW_ALL = 24
#: rows kept at each end of a long table
EDGE = 3
#: rows with the largest score kept in between
WORST = 6


class Hidden(NamedTuple):
    """Rows left out: they cover indices ``start`` to ``stop - 1``."""

    start: int
    stop: int
    rows: int


def runs(labels: Sequence) -> list[tuple[int, int]]:
    """Half-open ranges of consecutive equal labels.

    Example:
        >>> runs(["a", "a", "b", "a"])
        [(0, 2), (2, 3), (3, 4)]
    """
    out: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((start, i))
            start = i
    return out


def _score(scores: Sequence, row: tuple[int, int]) -> float:
    kept = [s for s in scores[row[0] : row[1]] if s is not None]
    return max(kept) if kept else float("-inf")


def summarize_rows(
    labels: Sequence, scores: Sequence, *, show_all: int = SHOW_ALL, edge: int = EDGE, worst: int = WORST
) -> list:
    """Rows of a per-index table: ``(start, stop)`` ranges and :class:`Hidden` gaps (module docstring)."""
    n = len(labels)
    if n <= show_all:
        return [(i, i + 1) for i in range(n)]
    rows = runs(labels)
    if len(rows) <= show_all:
        return rows
    keep = set(range(edge)) | set(range(len(rows) - edge, len(rows)))
    ranked = sorted(range(len(rows)), key=lambda k: (-_score(scores, rows[k]), k))
    keep.update(ranked[:worst])
    out: list = []
    gap: list[tuple[int, int]] = []
    for k, row in enumerate(rows):
        if k not in keep:
            gap.append(row)
            continue
        if gap:
            out.append(Hidden(gap[0][0], gap[-1][1], len(gap)))
            gap = []
        out.append(row)
    return out


def index_text(row: tuple[int, int]) -> str:
    """``7`` for one index, ``3-9`` for a range.

    Example:
        >>> index_text((7, 8)), index_text((3, 10))
        ('7', '3-9')
    """
    lo, hi = row
    return str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}"


def hidden_text(gap: Hidden) -> str:
    """The line standing for a :class:`Hidden` gap."""
    rows = f"{gap.rows} row{'s' if gap.rows != 1 else ''}"
    return f"… {rows} hidden (indices {index_text((gap.start, gap.stop))}) …"


_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list, width: int = 64) -> str:
    """Values as block characters (None as a space), at most ``width`` of them (means of runs).

    Example:
        >>> sparkline([0.0, 0.0, 1.0, 4.0])
        '▁▁▃█'
    """
    groups = _groups(len(values), width)
    means = [_mean(values[lo:hi]) for lo, hi in groups]
    top = max((m for m in means if m is not None), default=0.0)
    if not top:
        return "".join(" " if m is None else _BLOCKS[0] for m in means)
    return "".join(
        " " if m is None else _BLOCKS[min(len(_BLOCKS) - 1, int(m / top * (len(_BLOCKS) - 1) + 0.5))] for m in means
    )


def _groups(length: int, most: int) -> list[tuple[int, int]]:
    if length <= most:
        return [(i, i + 1) for i in range(length)]
    bounds = [round(i * length / most) for i in range(most + 1)]
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def _mean(values: list):
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None
