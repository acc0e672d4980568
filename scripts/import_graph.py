"""Draw and check the import graph of src/faqbot (every import, also those inside functions).

    python scripts/import_graph.py          # check: exit 1 and one line per problem
    python scripts/import_graph.py --dot    # the graph in Graphviz dot (| dot -Tsvg > imports.svg)

Checked: imports flow one way, from the front ends down to the sources (LAYERS, lowest first; a module may
import its own layer or any lower one; a subpackage counts as one module); no cycle except the known ones
(KNOWN_CYCLES); the front ends web, rest and cli import the service and not one another; only the Gradio front
end (web, and server, which serves it) imports gradio. A new module must be given a layer here.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "faqbot"

LAYERS: list[tuple[str, ...]] = [
    ("__init__", "config", "text", "schema", "chunk", "paste", "calibration", "privacy", "feedback_learning",
     "feedback_reports", "feedback", "corpus_config", "facets",
     "guard"),  # basics
    ("corpus",),  # the MindSpore docs pages' parser, one loader of the source layer
    ("sources", "alternates", "devset"),  # reading FAQs
    ("embed", "lexical"),
    ("index",),
    ("store",),  # owns the index folder: manifest, checksums, lock, swap
    ("search",),  # the ranking decision
    ("reload",),  # a running app picks up a changed index folder
    ("conversation", "evaluate"),
    ("answer",),  # rendering
    ("service",),  # the one front door
    ("web", "rest", "cli"),  # thin adapters
    ("connections",),  # the HTTP server's connection timeouts
    ("server",),  # serves web and rest on one port
]
KNOWN_CYCLES: set[frozenset] = set()  # none left
FRONT_ENDS = ("web", "rest", "cli")
GRADIO_ALLOWED = {"web", "server"}


def imports(path: Path, modules: set[str], node: str, depth: int = 0) -> tuple[set[str], set[str]]:
    """(faqbot modules, top-level third-party packages) that `path` imports anywhere in it. `node` is the
    module `path` belongs to (a subpackage counts as one module), `depth` how far below the package it lies."""
    own, other = set(), set()
    for stmt in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(stmt, ast.ImportFrom):
            if stmt.level:
                if stmt.level <= depth:  # inside its own subpackage
                    continue
                names = [stmt.module.split(".")[0]] if stmt.module else [a.name for a in stmt.names]
            elif stmt.module and stmt.module.split(".")[0] == "faqbot":
                parts = stmt.module.split(".")
                names = [parts[1]] if len(parts) > 1 else [a.name for a in stmt.names]
            else:
                other.add((stmt.module or "").split(".")[0])
                continue
            own.update(n if n in modules else "__init__" for n in names)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                parts = alias.name.split(".")
                if parts[0] == "faqbot":
                    own.add(parts[1] if len(parts) > 1 else "__init__")
                else:
                    other.add(parts[0])
    own.discard(node)
    return own, other


def graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Module -> the modules it imports, and -> the third-party packages it imports. A subpackage is one node."""
    files = {f.stem: [(f, 0)] for f in sorted(package.glob("*.py"))}
    for sub in sorted(p for p in package.iterdir() if (p / "__init__.py").is_file()):
        files[sub.name] = [(f, len(f.relative_to(package).parts) - 1) for f in sorted(sub.rglob("*.py"))]
    edges, third = {}, {}
    for node, paths in files.items():
        edges[node], third[node] = set(), set()
        for path, depth in paths:
            own, other = imports(path, set(files), node, depth)
            edges[node] |= own
            third[node] |= other
    return edges, third


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def problems(edges: dict[str, set[str]], third: dict[str, set[str]]) -> list[str]:
    layer = {m: n for n, mods in enumerate(LAYERS) for m in mods}
    out = [f"{m}.py has no layer: add it to LAYERS in scripts/import_graph.py" for m in sorted(edges) if m not in layer]
    for m, deps in sorted(edges.items()):
        for d in sorted(deps):
            if m in layer and d in layer and layer[d] > layer[m] and frozenset({m, d}) not in KNOWN_CYCLES:
                out.append(f"upward import: {m} (layer {layer[m]}) imports {d} (layer {layer[d]})")
            if m in FRONT_ENDS and d in FRONT_ENDS:
                out.append(f"front end {m} imports front end {d}: both should only call the service")
        if "gradio" in third[m] and m not in GRADIO_ALLOWED:
            out.append(f"{m} imports gradio; only {', '.join(sorted(GRADIO_ALLOWED))} may")
    for m in FRONT_ENDS:
        if m in edges and "service" not in edges[m]:
            out.append(f"front end {m} does not import the service")
    for component in cycles(edges):
        if frozenset(component) not in KNOWN_CYCLES:
            out.append(f"import cycle: {' <-> '.join(component)}")
    return out


def dot(edges: dict[str, set[str]]) -> str:
    layer = {m: n for n, mods in enumerate(LAYERS) for m in mods}
    lines = ["digraph faqbot {", "  rankdir=BT; node [shape=box, fontname=monospace];"]
    for n, mods in enumerate(LAYERS):
        names = "; ".join(f'"{m}"' for m in mods if m in edges)
        lines.append(f"  {{ rank=same; {names} }}  // layer {n}")
    for m, deps in sorted(edges.items()):
        for d in sorted(deps):
            style = " [color=red]" if layer.get(d, -1) > layer.get(m, -1) else ""
            lines.append(f'  "{m}" -> "{d}"{style};')
    lines.append("}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dot", action="store_true", help="print the graph in Graphviz dot")
    parser.add_argument("--package", type=Path, default=PACKAGE, help="package folder (default: src/faqbot)")
    args = parser.parse_args(argv)
    edges, third = graph(args.package)
    if args.dot:
        print(dot(edges))
        return 0
    found = problems(edges, third)
    for line in found:
        print(line)
    if not found:
        known = ", ".join(" <-> ".join(sorted(c)) for c in sorted(KNOWN_CYCLES, key=sorted))
        print(f"import graph of {len(edges)} modules: one way, no cycle but the known ones ({known}), front ends apart")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
