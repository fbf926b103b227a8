"""The shape of the code (DESIGN.md): no import cycles between rnnkit's modules, and models/,
nn/ and data/ never import training/ (a model does not know the loop that fits it)."""

import ast
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "rnnkit"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """rnnkit modules imported anywhere in the file (function-level imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rnnkit")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnkit"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in SRC.rglob("*.py")}
    edges = {}
    for name, path in files.items():
        # "from rnnkit.nn import LSTM" depends on rnnkit.nn (a package): keep real modules only.
        edges[name] = {m for m in imports_of(path) if m in files and m != name}
    return edges


def test_models_nn_and_data_never_import_training():
    for name, deps in graph().items():
        if name.split(".")[1:2] in (["models"], ["nn"], ["data"], ["contracts"], ["metrics"]):
            above = ("rnnkit.training", "rnnkit.tasks", "rnnkit.cli")
            bad = [d for d in deps if d.startswith(above)]
            assert not bad, f"{name} imports {bad}"


def test_no_import_cycles():
    edges = graph()
    # Package __init__ files re-export their modules; a module importing its own package's
    # __init__ is not a cycle of concepts.
    for name in edges:
        edges[name] = {d for d in edges[name] if not name.startswith(d + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                raise AssertionError("import cycle: " + " → ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
