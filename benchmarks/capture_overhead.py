"""Capture overhead on a ResNet-50 CPU forward: hooks on every module, recording to disk.

Times (median and minimum of --repeat runs, round-robin, after a warm-up) one eval-mode, no-grad
forward of a 1x3x224x224 batch through benchmarks/resnet50.py:

- bare: no hooks;
- hooks, nothing kept: ``trace run --backend torch``'s process-wide hooks
  naming every call, with a ``--probe`` glob that matches no stage (the
  cost of the hooks alone);
- capture to disk: the same hooks recording every module output into a new
  safetensors trace (what ``trace run --backend torch`` does), written in the forward;
- capture, writer thread: the same, the writes done by numtrace's writer thread
  (``NUMTRACE_WRITER_THREAD=1``; copies into staging buffers in the forward);
- capture, replacing: as "capture to disk", each run onto the same path, so that
  each publishes over the last run's trace (the older file is deleted on a helper
  thread, beside the next run);
- watch to disk: ``numtrace.watch(model)`` (per-module hooks), same recording;
- capture in memory: as "capture to disk", recording in memory;
- floors, the least any tool must do to keep every module output: plain
  ``register_forward_hook`` hooks that copy each tensor output (copy floor),
  or write its bytes to a new file with ``os.write`` (write floor: no header,
  no names, no atomic publish, no older file to replace).

It also prints the CPU cost of the hooks alone per module call, measured on a
chain of 200 ``nn.Identity`` modules.

Run:  python benchmarks/capture_overhead.py [--repeat 10] [--batch 1] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet50 import resnet50  # noqa: E402

import numtrace  # noqa: E402
from numtrace.backends.torch_hooks import capture  # noqa: E402


def timed(cases: list, repeat: int) -> dict[str, tuple[list[float], list[float]]]:
    """Wall and CPU seconds per run, round-robin (in a shuffled order) so that a busy machine slows all alike.

    CPU time (this process, all threads) is the steadier figure on a shared machine; it leaves out
    waiting for the disk, which wall time includes. Before each run the kernel writes back what
    earlier runs left dirty (``os.sync``, not timed), so a case does not pay for the one before.
    """
    times: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label, _ in cases}
    for label, run in cases:
        run()  # warm-up (allocators, oneDNN primitives, file system)
    order = random.Random(0)
    for _ in range(repeat):
        # A new order each round: on the benchmark VM a run that writes 155 MB right after another
        # large allocation ran up to 1.7x slower than the same run after a quiet one, whatever it was.
        for label, run in order.sample(cases, len(cases)):
            os.sync()  # the previous case's dirty pages are written back now, not during this case
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            times[label][0].append(time.perf_counter() - wall)
            times[label][1].append(time.process_time() - cpu)
    return times


def hook_cost(repeat: int) -> float:
    """CPU microseconds the capture hooks add to one module call (no stage kept)."""
    chain = torch.nn.Sequential(*[torch.nn.Identity() for _ in range(200)])
    x = torch.zeros(1)

    def forward() -> None:
        for _ in range(20):
            chain(x)

    def hooked() -> None:
        with numtrace.record(None, include=["no-such-stage"]):
            undo = capture()
            try:
                forward()
            finally:
                undo()

    times = timed([("bare", forward), ("hooked", hooked)], repeat)
    bare, with_hooks = (statistics.median(times[label][1]) for label in ("bare", "hooked"))
    return (with_hooks - bare) / (20 * 201) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = resnet50().eval()
    x = torch.randn(args.batch, 3, 224, 224)
    workdir = tempfile.mkdtemp(prefix="numtrace-bench-")
    path = os.path.join(workdir, "trace.safetensors")
    sizes: dict[str, tuple[int, int]] = {}

    def bare() -> None:
        with torch.no_grad():
            model(x)

    split: dict[str, list[dict[str, float]]] = {}

    traces: list[str] = []

    def recorded(label: str, target: str | None, how: str, probe: list[str] | None = None, thread: str = ""):
        def run() -> None:
            os.environ["NUMTRACE_WRITER_THREAD"] = thread  # "": the default for this machine's cores
            path = target
            if target == "new":  # a new file each run, as the floors write (deleted at the end, untimed)
                traces.append(os.path.join(workdir, f"trace{len(traces)}.safetensors"))
                path = traces[-1]
            with torch.no_grad(), numtrace.record(path, backend="torch", include=probe) as rec:
                if how == "capture":
                    undo = capture()
                    try:
                        model(x)
                    finally:
                        undo()
                else:
                    with numtrace.watch(model):
                        model(x)
            trace = rec.trace
            sizes[label] = (len(trace), sum(trace.info(n).nbytes for n in trace.order))
            if rec.write_timings is not None:
                split.setdefault(label, []).append(rec.write_timings)
            trace.close()

        return run

    floor_files: list[str] = []

    def floor(how: str):
        def run() -> None:
            # a new file each run: no truncation of the last one's blocks (deleted at the end, untimed)
            floor_files.append(os.path.join(workdir, f"floor{len(floor_files)}.bin"))
            fd = os.open(floor_files[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL) if how == "write" else None
            kept: list = []

            def hook(module, inputs, output) -> None:
                if isinstance(output, torch.Tensor):
                    values = output.detach().numpy()
                    if fd is None:
                        kept.append(values.copy())
                    else:
                        os.write(fd, memoryview(values.reshape(-1)).cast("B"))

            handles = [m.register_forward_hook(hook) for m in model.modules()]
            try:
                with torch.no_grad():
                    model(x)
            finally:
                for handle in handles:
                    handle.remove()
                if fd is not None:
                    os.close(fd)

        return run

    cases = [
        ("bare forward", bare),
        ("copy floor", floor("copy")),
        ("write floor", floor("write")),
        ("hooks, nothing kept", recorded("hooks, nothing kept", path, "capture", ["no-such-stage"])),
        ("capture to disk", recorded("capture to disk", "new", "capture", thread="0")),
        ("capture, writer thread", recorded("capture, writer thread", "new", "capture", thread="1")),
        ("capture, replacing", recorded("capture, replacing", path, "capture", thread="0")),
        ("watch to disk", recorded("watch to disk", "new", "watch")),
        ("capture in memory", recorded("capture in memory", None, "capture")),
    ]
    print(
        f"ResNet-50 forward, batch {args.batch}x3x224x224, float32, CPU, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, {args.repeat} runs each"
    )
    print(
        f"{'case':<24}{'wall ms':>9}{'x bare':>8}{'CPU ms':>9}{'x bare':>8}{'stages':>8}{'MB':>8}"
        f"{'min ms':>9}{'x bare':>8}   (medians; min: fastest run)"
    )
    times = timed(cases, args.repeat)
    base_wall, base_cpu = (statistics.median(t) for t in times["bare forward"])
    base_min = min(times["bare forward"][0])
    for label, _ in cases:
        wall, cpu = (statistics.median(t) for t in times[label])
        fastest = min(times[label][0])
        stages, nbytes = sizes.get(label, (0, 0))
        print(
            f"{label:<24}{wall * 1e3:>9.1f}{wall / base_wall:>8.2f}{cpu * 1e3:>9.1f}{cpu / base_cpu:>8.2f}"
            f"{stages:>8}{nbytes / 2**20:>8.1f}{fastest * 1e3:>9.1f}{fastest / base_min:>8.2f}"
        )
    print(
        "where the time over the bare forward goes (medians, ms): copy and wait (for a free staging buffer) in "
        "the forward; write in the forward, or on the writer thread; rest: hooks, naming, header, publish, and "
        "the forward slowed by the writer thread"
    )
    print(f"{'case':<24}{'over bare':>10}{'copy':>8}{'wait':>8}{'write':>8}{'where':>9}{'rest':>8}")
    for label in ("capture to disk", "capture, writer thread"):
        over = statistics.median(times[label][0]) - base_wall
        parts = {key: statistics.median(t[key] for t in split[label]) for key in ("copy_s", "wait_s", "write_s")}
        threaded = parts["copy_s"] > 0
        in_forward = parts["copy_s"] + parts["wait_s"] + (0.0 if threaded else parts["write_s"])
        print(
            f"{label:<24}{over * 1e3:>10.1f}{parts['copy_s'] * 1e3:>8.1f}{parts['wait_s'] * 1e3:>8.1f}"
            f"{parts['write_s'] * 1e3:>8.1f}{'thread' if threaded else 'forward':>9}{(over - in_forward) * 1e3:>8.1f}"
        )
    hook_us = hook_cost(args.repeat)
    print(f"hooks alone, per module call (a 200-module chain of nn.Identity): {hook_us:.1f} us CPU")
    os.remove(path)
    for name in floor_files + traces:
        if os.path.exists(name):
            os.remove(name)
    os.rmdir(workdir)


if __name__ == "__main__":
    main()
