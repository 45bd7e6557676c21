"""The import graph of gelato's packages: layers, upward arrows and circles (docs/design.md §1).

Reads every module of ``gelato_env`` and ``agents`` (and the scripts) with :mod:`ast`, keeps the
imports of project modules -- module-level and the lazy ones inside functions alike, since a
lazy import is a dependency too -- and checks the layering of docs/design.md §1::

    base (storage, _version) -> system/ -> sd/ -> traces/
        -> env (gelato_env top level, vector/, conf/) -> agents/ -> scripts/

A module may import its own layer and the layers before it. The script prints the arrows
between layers and exits 1 when an arrow points back up or modules import each other in a
circle (a strongly connected component of more than one module).

    python scripts/import_graph.py          # summary; exit code 0 when clean
    python scripts/import_graph.py --dot    # the module graph in Graphviz dot
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gelato_env", "agents")
#: layer names in dependency order: each may import itself and those before it
LAYERS = ("base", "system", "sd", "traces", "env", "agents", "scripts")
#: the base layer: modules every layer may use (no gelato imports of their own)
BASE = ("storage", "_version")


def layer_of(module: str) -> str:
    """The layer of a dotted module name (``scripts.x`` for the scripts)."""
    parts = module.split(".")
    if parts[0] in ("agents", "scripts"):
        return parts[0]
    if len(parts) > 1 and parts[1] in BASE:
        return "base"
    if len(parts) > 1 and parts[1] in ("system", "sd", "traces"):
        return parts[1]
    return "env"


def modules() -> dict[str, Path]:
    """Every project module: dotted name -> file."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            found[".".join(parts)] = path
    for path in sorted((ROOT / "scripts").glob("*.py")):
        found[f"scripts.{path.stem}"] = path
    return found


def _imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """Project modules ``module`` imports (``from pkg import name`` counts pkg.name if a module)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # a name inside a module: the module
                name = name.rpartition(".")[0]
            if name and name != module:
                yield name


def graph() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    found = modules()
    known = set(found)
    return {m: set(_imported(m, path, known)) for m, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Imports that point to a later layer."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    return sorted(
        (src, dst)
        for src, targets in edges.items()
        for dst in targets
        if rank[layer_of(dst)] > rank[layer_of(src)]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dot", action="store_true", help="print the module graph as dot")
    args = parser.parse_args(argv)
    edges = graph()
    if args.dot:
        print("digraph gelato {")
        for src in sorted(edges):
            for dst in sorted(edges[src]):
                print(f'  "{src}" -> "{dst}";')
        print("}")
        return 0
    between: dict[tuple[str, str], int] = defaultdict(int)
    for src, targets in edges.items():
        for dst in targets:
            between[layer_of(src), layer_of(dst)] += 1
    n_edges = sum(len(t) for t in edges.values())
    print(f"{len(edges)} modules, {n_edges} imports between them; layers: {' -> '.join(LAYERS)}")
    for (src, dst), count in sorted(between.items(), key=lambda kv: LAYERS.index(kv[0][0])):
        print(f"  {src:>8} -> {dst:<8} {count:>4}")
    bad_arrows, loops = upward(edges), circles(edges)
    for src, dst in bad_arrows:
        print(f"upward arrow: {src} ({layer_of(src)}) imports {dst} ({layer_of(dst)})")
    for loop in loops:
        print(f"circle: {' <-> '.join(loop)}")
    print(f"{len(bad_arrows)} upward arrows, {len(loops)} circles")
    return 1 if bad_arrows or loops else 0


if __name__ == "__main__":
    sys.exit(main())
