"""Heatmaps as PNG images without matplotlib: a colour map, and a minimal PNG encoder (zlib only).

The HTML report embeds its heatmaps as ``data:`` URIs, so it needs neither matplotlib nor a
network. :func:`heatmap` maps a 2-D array to colours (a sequential map for values, a diverging one
centred on 0 for differences; NaN and Inf grey) and :func:`encode_png` writes 8-bit RGB.

Example:
    >>> import numpy as np
    >>> png = encode_png(heatmap(np.arange(12.0).reshape(3, 4)))
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n", len(png) > 60
    (True, True)
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

#: a perceptually ordered sequential map (dark blue, teal, green, yellow), by anchor colours
SEQUENTIAL = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=float)
#: a diverging map for differences: blue (negative), near-white (0), red (positive)
DIVERGING = np.array([[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]], dtype=float)
NONFINITE = np.array([150, 150, 150], dtype=float)
#: heatmaps larger than this along an axis are shown with a stride (the report stays small)
MAX_SIDE = 320


def _lookup(t: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Colours for ``t`` in [0, 1] by linear interpolation between the anchors."""
    position = np.clip(t, 0.0, 1.0) * (len(anchors) - 1)
    low = np.minimum(position.astype(int), len(anchors) - 2)
    frac = (position - low)[..., None]
    return anchors[low] * (1.0 - frac) + anchors[low + 1] * frac


def heatmap(values: np.ndarray, diverging: bool = False, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """An (rows, cols, 3) uint8 image of a 2-D array (``bounds``: the values at the ends of the map)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D array, got shape {v.shape}")
    step = [max(1, -(-n // MAX_SIDE)) for n in v.shape]
    v = v[:: step[0], :: step[1]]
    finite = np.isfinite(v)
    if bounds is None:
        lo, hi = (float(v[finite].min()), float(v[finite].max())) if finite.any() else (0.0, 1.0)
        if diverging:
            lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
    else:
        lo, hi = bounds
    span = hi - lo if hi > lo else 1.0
    t = np.where(finite, (np.where(finite, v, lo) - lo) / span, 0.0)
    rgb = _lookup(t, DIVERGING if diverging else SEQUENTIAL)
    rgb[~finite] = NONFINITE
    return np.round(rgb).astype(np.uint8)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (rows, cols, 3) uint8 image."""
    rows, cols, _ = rgb.shape
    raw = b"".join(b"\x00" + np.ascontiguousarray(rgb[r]).tobytes() for r in range(rows))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", cols, rows, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
