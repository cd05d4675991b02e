"""The import graph of crypto_ml/: its modules, its edges and its circles (strongly connected
components of more than one module), module-level imports only (what runs at import) and all
imports (function-level ones too).

    python benchmarks/import_graph.py [ROOT]      # ROOT: a checkout (default: this one)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(tree: ast.Module, module: str, top_only: bool, files=()) -> set[str]:
    """The names one module imports: ``from a import b`` is ``a.b`` when that is a module, else ``a``."""
    found = set()
    for node in _nodes(tree, top_only):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                pkg = (
                    module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
                )
                base = ".".join([*pkg, node.module])
            subs = {f"{base}.{a.name}" for a in node.names} & set(files)
            found |= subs if len(subs) == len(node.names) else subs | {base}
    return found


def _nodes(tree: ast.Module, top_only: bool):
    """The statements that run: the module's own (``top_only``) or every one, never those under
    ``if TYPE_CHECKING:`` (annotations only)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        yield node
        if not top_only:
            todo.extend(ast.iter_child_nodes(node))


def graph(root: Path, top_only: bool) -> dict[str, set[str]]:
    files = {
        module_name(root, p): p for p in (root / "crypto_ml").rglob("*.py") if "migrations" not in p.parts
    }
    edges = {}
    for mod, path in files.items():
        targets = set()
        for name in imports(ast.parse(path.read_text()), mod, top_only, files):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != mod:
                targets.add(name)
        # (importing a.b.c runs a/__init__ first, but a package's own submodule never runs
        # before it: only the names a module imports make a circle)
        edges[mod] = targets
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main(argv: list[str]) -> None:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    for top_only, label in ((True, "module-level imports"), (False, "all imports")):
        edges = graph(root, top_only)
        found = circles(edges)
        print(f"{label}: {len(edges)} modules, {sum(map(len, edges.values()))} edges, {len(found)} circles")
        for comp in found:
            print(f"  {len(comp)} modules: {', '.join(comp[:8])}{' ...' if len(comp) > 8 else ''}")


if __name__ == "__main__":
    main(sys.argv[1:])
