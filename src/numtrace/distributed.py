"""Which rank of a distributed run this process is, as the launchers people use say it.

``torchrun`` (torch.distributed, any backend) sets ``RANK`` and ``WORLD_SIZE`` (with
``LOCAL_RANK``). MLX's launcher (``mlx.launch``, ``mx.distributed``) sets ``MLX_RANK``, and the
world size as ``MLX_WORLD_SIZE`` (the nccl backend) or as the length of the host list in the file
``MLX_HOSTFILE`` names (ring; a blank file: one process) or ``MLX_IBV_DEVICES`` names (jaccl,
jaccl-ring); with ``--backend mpi`` it runs ``mpirun``, whose processes have
``OMPI_COMM_WORLD_RANK`` and ``OMPI_COMM_WORLD_SIZE`` (Open MPI; ``PMI_RANK`` and ``PMI_SIZE``
with MPICH), and no ``MLX_RANK``. A process group that a program's torch.distributed set up
without a launcher (``mp.spawn``) tells its rank too.

A recording made in a run of more than one rank writes one trace per rank, the rank before the
extension (:func:`rank_path`): each process writes its own file only, so a crash on one rank
leaves every other rank's trace whole and its own partial trace readable. A rank whose launcher
does not say how many ranks run still writes its own file (with a warning, and no
``numtrace.world_size``); a launcher that says how many run but not which one this is gets a
warning that every process writes the same file.

Example:
    >>> rank_info({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    RankInfo(rank=1, world_size=2, launcher='torchrun')
    >>> rank_info({"OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_SIZE": "4"})
    RankInfo(rank=3, world_size=4, launcher='mpirun')
    >>> rank_info({}) is None, rank_path("out/tp.safetensors", 3)
    (True, 'out/tp.rank3.safetensors')
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Mapping, NamedTuple

from .errors import warn_once

RANK_SUFFIX = re.compile(r"\.rank(\d+)$")

#: (rank variable, world size variable, launcher) of the launchers without their own branch below
MPI_VARIABLES = (
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "mpirun"),  # Open MPI
    ("PMI_RANK", "PMI_SIZE", "mpirun"),  # MPICH, Intel MPI (Hydra)
)


class RankInfo(NamedTuple):
    rank: int
    #: None: the launcher names this process's rank but not how many ranks run
    world_size: int | None
    launcher: str


def rank_info(environ: Mapping[str, str] | None = None) -> RankInfo | None:
    """This process's rank, the world size and the launcher; None outside a run of several ranks.

    From ``environ`` (the process's environment when None; then also from a torch.distributed
    process group already up, when the environment says nothing).

    Example:
        >>> rank_info({"MLX_RANK": "1", "MLX_WORLD_SIZE": "2"})
        RankInfo(rank=1, world_size=2, launcher='mlx.launch')
        >>> rank_info({"MLX_RANK": "1"})  # the launcher's host list unreadable: the size unknown
        RankInfo(rank=1, world_size=None, launcher='mlx.launch')
    """
    env = os.environ if environ is None else environ
    found = _from_environment(env)
    if found is None:
        return _from_torch() if environ is None else None
    rank, world, launcher = found
    try:
        number = int(rank)
        size = None if world is None else int(world)
    except ValueError:
        return None
    if size is None:
        return RankInfo(number, None, launcher) if number >= 0 else None
    return RankInfo(number, size, launcher) if size > 1 and 0 <= number < size else None


def _from_environment(env: Mapping[str, str]) -> tuple[str, str | None, str] | None:
    """(rank, world size or None, launcher) as the environment says them; None when it does not."""
    if "RANK" in env and "WORLD_SIZE" in env and ("LOCAL_RANK" in env or "TORCHELASTIC_RUN_ID" in env):
        return env["RANK"], env["WORLD_SIZE"], "torchrun"
    if "MLX_RANK" in env:
        size = env.get("MLX_WORLD_SIZE") or _hosts(env.get("MLX_HOSTFILE")) or _hosts(env.get("MLX_IBV_DEVICES"))
        return env["MLX_RANK"], size, "mlx.launch"
    for rank, size, launcher in MPI_VARIABLES:
        if rank in env:
            return env[rank], env.get(size), launcher
    return None


def _hosts(path: str | None) -> str | None:
    """How many hosts the JSON list in file ``path`` names (a blank file: one); None when unreadable."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        hosts = json.loads(text) if text.strip() else [None]
    except (OSError, ValueError):
        return None
    return str(len(hosts)) if isinstance(hosts, list) and hosts else None


def _from_torch() -> RankInfo | None:
    """The rank of a torch.distributed process group already up (never imports torch)."""
    dist = _torch_distributed()
    if dist is None:
        return None
    rank, size = dist.get_rank(), dist.get_world_size()
    return RankInfo(rank, size, "torch.distributed") if size > 1 else None


def _torch_distributed():
    """``torch.distributed`` when the program imported it and its default process group is up."""
    dist = sys.modules.get("torch.distributed")
    try:
        return dist if dist is not None and dist.is_available() and dist.is_initialized() else None
    except Exception:  # a half-imported or broken torch: no group known
        return None


def per_rank(path: str | None, environ: Mapping[str, str] | None = None) -> tuple[str | None, dict[str, str]]:
    """The path a recording writes in this process (:func:`rank_path` under a launcher) and the
    metadata that says its rank (``numtrace.rank``, ``numtrace.world_size``, ``numtrace.launcher``,
    and ``numtrace.dist_backend`` when the environment tells it); warns when the launcher says
    only half of it (module docstring).

    Example:
        >>> per_rank("tp.safetensors", {"MLX_RANK": "0", "MLX_WORLD_SIZE": "2", "NCCL_HOST_IP": "10.0.0.1"})
        ('tp.rank0.safetensors', {'numtrace.rank': '0', 'numtrace.world_size': '2', \
'numtrace.launcher': 'mlx.launch', 'numtrace.dist_backend': 'nccl'})
    """
    env = os.environ if environ is None else environ
    info = rank_info(environ)
    if info is None:
        size = _size_only(env)
        if size is not None and path is not None:
            warn_once(
                f"distributed:no-rank:{path}",
                f"the launcher says {size} processes run but not which one this is: each writes {path}, "
                "and the last to finish overwrites the others",
            )
        return path, {}
    where = rank_path(path, info.rank) if path is not None else None
    metadata = {"numtrace.rank": str(info.rank)}
    if info.world_size is None:
        warn_once(
            f"distributed:no-size:{path}",
            f"{info.launcher} names this process rank {info.rank} but not how many ranks run: "
            f"it writes {where or 'its own trace'}, without numtrace.world_size",
        )
    else:
        metadata["numtrace.world_size"] = str(info.world_size)
    metadata["numtrace.launcher"] = info.launcher
    metadata.update(backend_metadata(environ))
    return where, metadata


def _size_only(env: Mapping[str, str]) -> int | None:
    """A world size over 1 that a launcher's variables give without a rank; None otherwise."""
    for name in ("WORLD_SIZE", "MLX_WORLD_SIZE", *(size for _, size, _ in MPI_VARIABLES)):
        try:
            size = int(env.get(name, ""))
        except ValueError:
            continue
        if size > 1:
            return size
    return None


def backend_metadata(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{"numtrace.dist_backend": NAME}``: the communication backend of this process's run, or {}
    when nothing tells it. torch.distributed's (``gloo``, ``nccl``, ``mpi``...) while its process
    group is up (torch imported by the program: never here); else MLX's, as its launcher's
    environment says it: ``ring`` (``MLX_HOSTFILE``), ``jaccl`` or ``jaccl-ring``
    (``MLX_IBV_DEVICES``), ``nccl`` (``NCCL_HOST_IP``), ``mpi`` (an MPI rank, with MLX imported).
    With ``environ`` given, from it alone. A recording asks at each stage until it knows, and when
    it stops: a program often destroys its process group before that.

    Example:
        >>> backend_metadata({"MLX_RANK": "1", "MLX_IBV_DEVICES": "/tmp/devices.json", "MLX_JACCL_RING": "1"})
        {'numtrace.dist_backend': 'jaccl-ring'}
        >>> backend_metadata({})
        {}
    """
    env = os.environ if environ is None else environ
    dist = _torch_distributed() if environ is None else None
    name = None
    if dist is not None:
        try:
            name = str(dist.get_backend())
        except Exception:  # a group torch cannot name the backend of
            name = None
    elif "MLX_RANK" in env:
        if env.get("MLX_HOSTFILE"):
            name = "ring"
        elif env.get("MLX_IBV_DEVICES"):
            name = "jaccl-ring" if env.get("MLX_JACCL_RING") == "1" else "jaccl"
        elif env.get("NCCL_HOST_IP"):
            name = "nccl"
    elif any(rank in env for rank, _, _ in MPI_VARIABLES) and "mlx.core" in sys.modules:
        name = "mpi"
    return {"numtrace.dist_backend": name} if name else {}


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
