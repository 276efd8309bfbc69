"""Stages compared on several threads, reported in order (``trace diff --jobs``).

NumPy releases the GIL inside its kernels, so the statistics of different stages can run at the
same time on several cores. :func:`in_order` computes the large stages ahead on worker threads, at
most ``2 * jobs`` stages in flight (memory stays bounded: a stage holds its read buffers while it
is compared), and small ones on the calling thread when their turn comes (a thread's hand-off
would cost more than they do); results come back in the order of ``items``, each exactly what a
single thread computes, so a report does not depend on ``jobs``.

Example:
    >>> list(in_order([1, 2, 3, 4], lambda x: x * x, lambda x: x % 2 == 0, jobs=2))
    [(1, 1), (2, 4), (3, 9), (4, 16)]
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: stages of at least this many elements (the reference's, or a candidate-only stage's) are compared ahead on threads
PARALLEL_MIN_ELEMENTS = 1 << 16


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the system has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def in_order(
    items: Iterable[T], compute: Callable[[T], R], ahead: Callable[[T], bool], jobs: int
) -> Iterator[tuple[T, R]]:
    """``(item, compute(item))`` in the order of ``items``; with ``jobs`` > 1, the items for which
    ``ahead(item)`` holds are computed on worker threads, up to ``2 * jobs`` items in advance."""
    if jobs <= 1:
        for item in items:
            yield item, compute(item)
        return
    window: deque[tuple[T, Future | None]] = deque()
    source = iter(items)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="numtrace-diff") as pool:
        try:
            for item in source:
                window.append((item, pool.submit(compute, item) if ahead(item) else None))
                while len(window) > 2 * jobs:
                    yield _done(window.popleft(), compute)
            while window:
                yield _done(window.popleft(), compute)
        finally:
            for _, future in window:  # an error or an abandoned report: stop what has not started
                if future is not None:
                    future.cancel()


def _done(entry: tuple[T, Future | None], compute: Callable[[T], R]) -> tuple[T, R]:
    item, future = entry
    return item, (future.result() if future is not None else compute(item))
