"""numtrace's capture against torchlens on the same ResNet-50 CPU forward (if torchlens is installed).

torchlens is not a numtrace dependency: run this with a Python that has it, e.g. a throwaway venv
that sees the project's packages (never install it into the project's .venv):

    python -m venv /tmp/tlvenv
    echo "$PWD/.venv/lib/python3.11/site-packages" >  /tmp/tlvenv/lib/python3.11/site-packages/main.pth
    echo "$PWD/src" >> /tmp/tlvenv/lib/python3.11/site-packages/main.pth
    /tmp/tlvenv/bin/pip install --no-deps torchlens graphviz tqdm
    /tmp/tlvenv/bin/python benchmarks/torchlens_compare.py

Cases (medians of ``--repeat`` runs after a warm-up, round-robin): the bare forward; numtrace
capturing every module output in memory and to a safetensors trace (``trace run --backend torch``'s
hooks); torchlens ``trace(model, x)`` saving every operation's output (its default, in memory), and
with ``save=lambda ctx: False`` (metadata only). torchlens logs every tensor operation, not only module outputs,
so it holds more tensors than numtrace: the stage counts are printed beside the times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet50 import resnet50  # noqa: E402

import numtrace  # noqa: E402
from numtrace.backends.torch_hooks import capture  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    try:
        import torchlens as tl
    except ImportError:
        print("torchlens is not installed here; see this script's docstring for a throwaway venv")
        return
    torch.manual_seed(0)
    model = resnet50().eval()
    x = torch.randn(1, 3, 224, 224)
    path = os.path.join(tempfile.mkdtemp(prefix="numtrace-tl-"), "t.safetensors")
    counts: dict[str, int] = {}

    def bare():
        with torch.no_grad():
            model(x)

    def numtrace_case(target):
        def run():
            with torch.no_grad(), numtrace.record(target, backend="torch") as rec:
                undo = capture()
                try:
                    model(x)
                finally:
                    undo()
            counts["numtrace"] = len(rec.trace)
            rec.trace.close()

        return run

    def torchlens_case(save):
        def run():
            with torch.no_grad():
                log = tl.trace(model, x) if save == "all" else tl.trace(model, x, save=lambda ctx: False)
            counts[f"torchlens {save}"] = len(getattr(log, "layer_labels", []) or list(log))
            del log

        return run

    cases = [
        ("bare forward", bare),
        ("numtrace, memory", numtrace_case(None)),
        ("numtrace, disk", numtrace_case(path)),
        ("torchlens, save all", torchlens_case("all")),
        ("torchlens, save none", torchlens_case("none")),
    ]
    times: dict[str, list[float]] = {label: [] for label, _ in cases}
    for _, run in cases:
        run()
    for _ in range(args.repeat):
        for label, run in cases:
            start = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - start)
    base = statistics.median(times["bare forward"])
    print(
        f"ResNet-50, 1x3x224x224, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"torchlens {getattr(tl, '__version__', '?')}, medians of {args.repeat}"
    )
    print(f"{'case':<24}{'wall ms':>9}{'x bare':>8}{'tensors':>9}")
    for label, _ in cases:
        wall = statistics.median(times[label])
        n = counts.get(
            label.replace("numtrace, memory", "numtrace")
            .replace("numtrace, disk", "numtrace")
            .replace("torchlens, save ", "torchlens "),
            "",
        )
        print(f"{label:<24}{wall * 1e3:>9.1f}{wall / base:>8.2f}{n!s:>9}")
    os.remove(path)
    os.rmdir(os.path.dirname(path))


if __name__ == "__main__":
    main()
