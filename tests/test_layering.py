"""The modules of src/nncompress import each other without a cycle (an import inside a function counts: it only
hides one), so each can be read, tested and moved with what it builds on and nothing above it; and each imports."""
import ast
import importlib
from pathlib import Path

from conftest import ROOT

SRC = ROOT / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted((SRC / "nncompress").rglob("*.py"))}


def imports(name: str) -> set[str]:
    """The package's modules that module `name` imports, anywhere in its file."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one package up per dot after the first
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names}
    return (found & MODULES.keys()) - {name}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The groups of modules that import each other, directly or not (strongly connected components, 2 or more)."""
    reach = {name: reachable(graph, name) for name in graph}
    return {frozenset({name} | {other for other in reach[name] if name in reach[other]})
            for name in graph if name in reach[name]}  # fmt: skip


def test_no_module_of_the_package_is_part_of_an_import_cycle():
    assert [sorted(cycle) for cycle in cycles({name: imports(name) for name in MODULES})] == []


def test_imports_are_read_inside_functions_and_relative_to_their_package():
    assert imports("nncompress") == {"nncompress.replicas"}  # inside `load_results`
    assert {"nncompress.replicas", "nncompress.report.page"} <= imports("nncompress.report.cli")  # `..`, `.`
    assert "nncompress.report.claims" in imports("nncompress.report.summary")  # `from . import claims`


def test_cycles_are_found_through_several_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert cycles(graph) == {frozenset("abc"), frozenset("de")}


def test_every_module_imports():
    for name in MODULES:
        if not name.endswith("__main__"):  # runs its command line when imported
            importlib.import_module(name)


FLOW = ["data", "models", "compression", "training", "results", "report"]  # the package's flow, bottom to top


def upward(graph: dict[str, set[str]]) -> list[str]:
    """The imports of `graph` from a stage of FLOW to a later one (modules outside FLOW are free)."""
    stage = {name: FLOW.index(name.split(".")[1]) for name in graph if name.count(".") and name.split(".")[1] in FLOW}
    return sorted(f"{name} -> {other}" for name in stage for other in graph[name]
                  if other in stage and stage[other] > stage[name])  # fmt: skip


def test_each_stage_of_the_flow_imports_only_the_stages_below_it():
    assert upward({name: imports(name) for name in MODULES}) == []
    assert "nncompress.training.protocol" not in imports("nncompress.compression.schedules")  # the bound it shares: typed


def test_an_upward_import_is_found():
    graph = {"p.compression.a": {"p.training.b", "p.models.c", "p.config"}, "p.training.b": set(), "p.models.c": set(),
             "p.config": {"p.report.x"}, "p.report.x": set()}  # fmt: skip
    assert upward(graph) == ["p.compression.a -> p.training.b"]
