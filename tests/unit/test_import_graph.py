"""The import graph of src/numtrace has no cycle, lazy (function-level) imports included.

A cycle means two modules that cannot be read, tested or moved apart; the house plan keeps
dependencies flowing one way: formats -> trace, compare -> backends registry, report -> compare,
cli -> everything.
"""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in (SRC / "numtrace").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the numtrace modules it imports (``from . import x`` counts as the module x)."""
    mods = modules()
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, (path, is_package) in mods.items():
        package = name.split(".") if is_package else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in mods and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 50 and "numtrace.compare.engine" in graph["numtrace.compare"]
    assert cycles(graph) == []


def test_the_checker_sees_a_cycle_through_a_lazy_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_compare_and_formats_never_import_report_cli_or_a_framework_backend():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith(("numtrace.compare", "numtrace.formats", "numtrace.trace")):
            assert not any(
                t.startswith(
                    (
                        "numtrace.report",
                        "numtrace.cli",
                        "numtrace.backends.torch",
                        "numtrace.backends.mlx",
                        "numtrace.backends.fastai",
                    )
                )
                for t in targets
            ), name


def test_report_only_renders_it_opens_no_file_and_compares_nothing():
    """report/ formats what it is given: the commands (numtrace.commands, the CLI) open the traces and
    ask compare/ for the numbers; report/ may read compare's constants and types, not its machinery."""
    graph = import_graph()
    computing = (
        "numtrace.formats",
        "numtrace.compare.engine",
        "numtrace.compare.detail",
        "numtrace.compare.views",
        "numtrace.compare.diagnosis.profile",
        "numtrace.compare.sketches.detail",
        "numtrace.compare.sketches.diff",
        "numtrace.compare.statistics.stats",
        "numtrace.commands",
    )
    for name, targets in graph.items():
        if name.startswith("numtrace.report"):
            assert not [t for t in targets if t == "numtrace.compare" or t.startswith(computing)], name
