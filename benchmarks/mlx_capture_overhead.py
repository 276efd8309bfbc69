"""Capture overhead of MLX module capture on a small transformer forward (MLX, CPU or GPU).

Times (median and minimum of --repeat runs, after a warm-up) one forward of a pre-norm
transformer (by default 4 layers, width 128, 4 heads, MLP 512, 1 x 64 tokens: 1.1 M parameters,
52 modules) including ``mx.eval`` of its output, one recording per forward:

- bare: no capture;
- watched, no recording: ``numtrace.watch(model)`` attached (once, outside the timing), nothing
  recorded: the wrappers' cost;
- watch in memory: every module output recorded in memory (evaluated in one ``mx.eval`` with the
  output, then converted to NumPy and copied);
- watch to disk: the same into a safetensors trace, one file per forward (its fixed cost, file
  creation, fsync and rename, is counted in every forward);
- zero-edit to disk: ``trace run --backend mlx``'s class-level capture, same recording;
- one eval per module: as "watch in memory" but evaluating each capture as it comes (the design
  numtrace avoids), for comparison.

The same cases on a chain of 200 Linear(8, 8) modules, whose compute is negligible, give the cost
per module call.

Run:  python benchmarks/mlx_capture_overhead.py [--repeat 30] [--layers 4] [--dim 128] [--tokens 64]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time

import mlx.core as mx
import mlx.nn as nn

import numtrace
from numtrace.backends import mlx_batch
from numtrace.backends.mlx_capture import capture


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiHeadAttention(dim, heads, bias=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def __call__(self, x: mx.array) -> mx.array:
        h = self.norm1(x)
        x = x + self.attn(h, h, h)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, layers: int, dim: int, heads: int, vocab: int = 1000) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = [Block(dim, heads) for _ in range(layers)]
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, vocab)

    def __call__(self, tokens: mx.array) -> mx.array:
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def timed(groups: list, repeat: int) -> dict[str, list[float]]:
    """Round-robin over every case (a busy machine slows them alike); each group's context (a watch
    attached, zero-edit capture started) is entered and left outside the timed region."""
    times: dict[str, list[float]] = {label: [] for _, cases in groups for label, _ in cases}
    for round_ in range(repeat + 2):  # two warm-up rounds
        for context, cases in groups:
            with context():
                for label, run in cases:
                    start = time.perf_counter()
                    run()
                    if round_ >= 2:
                        times[label].append(time.perf_counter() - start)
    return times


class Chain(nn.Module):
    """Many tiny modules: the compute is negligible, what is left is the cost per module call."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.layers = [nn.Linear(8, 8) for _ in range(n)]

    def __call__(self, x: mx.array) -> mx.array:
        for layer in self.layers:
            x = layer(x)
        return x


@contextlib.contextmanager
def zero_edit():
    undo = capture()
    try:
        yield
    finally:
        undo()


def measure(model: nn.Module, x: mx.array, path: str, repeat: int) -> dict[str, list[float]]:
    def bare() -> None:
        mx.eval(model(x))

    def recorded(target=None):
        def run() -> None:
            with numtrace.record(target):
                mx.eval(model(x))

        return run

    def one_by_one() -> None:
        add = mlx_batch.Batch.add

        def eager_add(self, *item):
            add(self, *item)
            self.flush([])

        mlx_batch.Batch.add = eager_add
        try:
            recorded()()
        finally:
            mlx_batch.Batch.add = add

    return timed(
        [
            (contextlib.nullcontext, [("bare", bare)]),
            (
                lambda: numtrace.watch(model),
                [
                    ("watched, no recording", bare),
                    ("watch in memory", recorded()),
                    ("watch to disk", recorded(path)),
                    ("one eval per module", one_by_one),
                ],
            ),
            (zero_edit, [("zero-edit to disk", recorded(path))]),
        ],
        repeat,
    )


def table(times: dict[str, list[float]]) -> None:
    base, base_min = statistics.median(times["bare"]), min(times["bare"])
    print(f"{'case':<24} {'median ms':>10} {'min ms':>8} {'x bare (median)':>16} {'x bare (min)':>13}")
    for label, values in times.items():
        median, low = statistics.median(values), min(values)
        print(f"{label:<24} {median * 1e3:>10.2f} {low * 1e3:>8.2f} {median / base:>16.2f} {low / base_min:>13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--chain", type=int, default=200)
    args = parser.parse_args()

    mx.random.seed(0)
    model = Transformer(args.layers, args.dim, 4)
    mx.eval(model.parameters())
    tokens = mx.random.randint(0, 1000, (args.batch, args.tokens))
    path = os.path.join(tempfile.mkdtemp(), "trace.safetensors")
    with numtrace.record() as rec, numtrace.watch(model):
        model(tokens)
    megabytes = sum(rec.trace.info(n).nbytes for n in rec.trace.order) / 2**20
    params = sum(p.size for _, p in mlx_batch.weights_of(model))

    times = measure(model, tokens, path, args.repeat)
    print(
        f"mlx {mx.__version__} on {mx.default_device()}; {args.layers} layers, width {args.dim}, "
        f"batch {args.batch} x {args.tokens} tokens; {params / 1e6:.1f} M parameters; "
        f"{len(model.named_modules())} modules; {len(rec.trace)} stages, {megabytes:.1f} MiB recorded per forward"
    )
    table(times)

    chain = Chain(args.chain)
    mx.eval(chain.parameters())
    times = measure(chain, mx.ones((1, 8)), path, args.repeat)
    print(f"\nper module call: a chain of {args.chain} Linear(8, 8) (compute negligible)")
    table(times)
    calls = args.chain + 1
    print(f"{'extra per module call':<24} {'median us':>10} {'min us':>8}")
    for label in ("watched, no recording", "watch in memory", "one eval per module"):
        extra = [(pick(times[label]) - pick(times["bare"])) / calls * 1e6 for pick in (statistics.median, min)]
        print(f"{label:<24} {extra[0]:>10.1f} {extra[1]:>8.1f}")
    # "to disk" writes one trace file per forward (spill, header, fsync, rename): a cost per file
    extra = [(pick(times["watch to disk"]) - pick(times["watch in memory"])) * 1e3 for pick in (statistics.median, min)]
    print(f"{'a trace file (to disk)':<24} {extra[0]:>7.1f} ms {extra[1]:>5.1f} ms  (with {calls} tiny stages)")


if __name__ == "__main__":
    main()
