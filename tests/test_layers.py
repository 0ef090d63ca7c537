"""The core's import graph: no module imports another that (directly or not) imports it back, and every import
across packages points down the layers below (a package may use only those listed before it). Imports under
`if TYPE_CHECKING:` are annotations, not dependencies; imports inside functions count (they run)."""

import ast
from pathlib import Path

import mcp_trader

CORE = Path(mcp_trader.__file__).parent
# Lowest first. Home is the composition root: it opens every store, so it sits above what it opens; the code it
# is handed to names it only in annotations.
LAYERS = ("errors", "timefmt", "policy", "config", "store", "jobs", "data", "features", "models", "backtest", "export",
          "optimize", "trading", "home", "service", "dashboard")
# The MCP surface and the entry points: beside the core in the repository, inside the package once installed. The
# core may not import them; the graph is the core's.
SURFACE = ("tools", "resources", "server", "demo", "local_training")


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in
                   ast.unparse(node.test) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mcp_trader"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mcp_trader")}
    return found


def graph() -> dict[str, set[str]]:
    modules = {name: p for p in CORE.rglob("*.py") if layer(name := module_name(p)) not in SURFACE}
    # a module's import of its own package's __init__ (mcp_trader itself: the version) is no dependency
    return {name: {m for m in imports(path) if (m in modules or layer(m) in SURFACE) and m not in ("mcp_trader", name)}
            for name, path in modules.items()}


def layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def test_no_module_imports_itself_back() -> None:
    edges = graph()
    done: set[str] = set()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append([*path[path.index(module):], module])
            return
        if module in done:
            return
        for target in edges.get(module, ()):
            visit(target, [*path, module])
        done.add(module)

    for module in edges:
        visit(module, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_imports_across_packages_point_down_the_layers() -> None:
    rank = {name: i for i, name in enumerate(LAYERS + SURFACE)}
    edges = graph()
    assert {layer(m) for m in edges} - {"mcp_trader"} <= set(rank), "a new package or module: give it a layer"
    upward = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                    if layer(a) != layer(b) and layer(a) in rank and rank[layer(b)] > rank[layer(a)])
    assert not upward, "\n".join(upward)


def test_the_check_sees_a_back_arrow(tmp_path: Path) -> None:
    """The graph reads real imports: store importing the trading desk at run time would be caught, an annotation
    would not."""
    probe = tmp_path / "probe.py"
    probe.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mcp_trader.home import Home\n"
                     "def f():\n    from mcp_trader.trading.desk import Desk\n")
    assert imports(probe) == {"mcp_trader.trading.desk", "mcp_trader.trading.desk.Desk"}
