"""``numtrace.tap`` with no recording active: the cost of a bare Python function call, nothing more.

Times (``timeit``, best of ``--repeat`` rounds of ``--number`` calls) with no
recording active:

- **bare call**: ``identity("x", a)`` where ``def identity(name, x): return x``
  (the floor: any function call in Python);
- **tap, small**: ``numtrace.tap("x", a)`` with a 4-element array;
- **tap, 64 MiB**: the same with a 64 MiB array (no copy, no conversion: the
  time must not depend on the size);
- **tap, torch tensor** (if torch is installed): no conversion either.

Run:  python benchmarks/tap_noop.py [--repeat 7] [--number 1000000]
"""

from __future__ import annotations

import argparse
import json
import timeit

import numpy as np

import numtrace


def identity(name, x):
    return x


def run(repeat: int, number: int) -> dict:
    small, big = np.zeros(4, np.float32), np.zeros(16 * 2**20, np.float32)
    cases = {
        "bare call": (identity, small),
        "tap, small": (numtrace.tap, small),
        "tap, 64 MiB": (numtrace.tap, big),
    }
    try:
        import torch

        cases["tap, torch tensor"] = (numtrace.tap, torch.zeros(4))
    except ImportError:
        pass
    assert not numtrace.is_recording()
    result = {}
    for label, (fn, arg) in cases.items():  # round-robin rounds: a busy machine slows every case alike
        result[label] = []
    for _ in range(repeat):
        for label, (fn, arg) in cases.items():
            seconds = timeit.timeit(lambda fn=fn, arg=arg: fn("x", arg), number=number)
            result[label].append(seconds / number * 1e9)
    return {label: min(times) for label, times in result.items()}


def report(r: dict) -> str:
    base = r["bare call"]
    lines = [f"{'case (no recording active)':<28}{'ns/call':>9}{'over bare':>11}"]
    for label, ns in r.items():
        lines.append(f"{label:<28}{ns:>9.1f}{ns - base:>+11.1f}")
    lines.append("each timed call goes through a lambda; best of the rounds")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--number", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.repeat, args.number)
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
