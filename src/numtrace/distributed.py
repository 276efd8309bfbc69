"""Which rank of a distributed run this process is, as the launchers people use say it.

``torchrun`` (torch.distributed, any backend) sets ``RANK`` and ``WORLD_SIZE`` (with
``LOCAL_RANK``); MLX's launcher (``mlx.launch``, ``mx.distributed``) sets ``MLX_RANK``, and the world
size as ``MLX_WORLD_SIZE`` or as the length of the host list in ``MLX_HOSTFILE`` (the ring
backend). A recording made in a run of more than one rank writes one trace per rank, the rank
before the extension (:func:`rank_path`): each process writes its own file only, so a crash on
one rank leaves every other rank's trace whole and its own partial trace readable.

Example:
    >>> rank_info({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    RankInfo(rank=1, world_size=2, launcher='torchrun')
    >>> rank_info({}) is None, rank_path("out/tp.safetensors", 3)
    (True, 'out/tp.rank3.safetensors')
"""

from __future__ import annotations

import json
import os
import re
from typing import Mapping, NamedTuple

RANK_SUFFIX = re.compile(r"\.rank(\d+)$")


class RankInfo(NamedTuple):
    rank: int
    world_size: int
    launcher: str


def rank_info(environ: Mapping[str, str] | None = None) -> RankInfo | None:
    """This process's rank, the world size and the launcher; None outside a run of several ranks."""
    env = os.environ if environ is None else environ
    found = None
    if "RANK" in env and "WORLD_SIZE" in env and ("LOCAL_RANK" in env or "TORCHELASTIC_RUN_ID" in env):
        found = (env["RANK"], env["WORLD_SIZE"], "torchrun")
    elif "MLX_RANK" in env:
        size = env.get("MLX_WORLD_SIZE") or str(_hosts(env.get("MLX_HOSTFILE")))
        found = (env["MLX_RANK"], size, "mlx.launch")
    if found is None:
        return None
    try:
        rank, world = int(found[0]), int(found[1])
    except ValueError:
        return None
    return RankInfo(rank, world, found[2]) if world > 1 and 0 <= rank < world else None


def _hosts(path: str | None) -> int:
    try:
        with open(path or "", encoding="utf-8") as handle:
            hosts = json.load(handle)
    except (OSError, ValueError):
        return 0
    return len(hosts) if isinstance(hosts, list) else 0


def rank_path(path: str, rank: int) -> str:
    """``tp.safetensors`` -> ``tp.rank0.safetensors`` (the extension kept)."""
    stem, ext = os.path.splitext(path)
    return f"{stem}.rank{rank}{ext}"


def rank_files(path: str) -> list[str]:
    """The rank traces a path names: ``tp.safetensors`` (or ``tp.rank*.safetensors``) when
    ``tp.rank0.safetensors``, ``tp.rank1.safetensors``... exist, in rank order; [] when none do.

    Example:
        >>> rank_files("/nonexistent/tp.safetensors")
        []
    """
    stem, ext = os.path.splitext(path)
    stem = stem[: -len(".rank*")] if stem.endswith(".rank*") else stem
    folder = os.path.dirname(stem) or "."
    prefix = os.path.basename(stem) + ".rank"
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        head, tail = os.path.splitext(name)
        match = RANK_SUFFIX.search(head)
        if tail == ext and match and head == prefix + match.group(1):
            found.append((int(match.group(1)), os.path.join(os.path.dirname(stem), name)))
    return [p for _, p in sorted(found)]
