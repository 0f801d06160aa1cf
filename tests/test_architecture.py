"""The import graph of `src/eapo`: no cycles, layers one way, no private names across modules.

Why a test: a newcomer finds their way in a tree whose folders are its architecture, and
that holds only while every import runs down. An AST walk (no import of the code, so it
is fast and sees imports torch would otherwise hide) reads every `import` and `from ...
import` of every module: at module level, inside functions, under `TYPE_CHECKING`. A
function-level import is an edge like any other: it only postpones the cost, not the
dependency.

What it asserts:
  (a) no cycle between modules (no strongly connected component of two or more);
  (b) the layer order of `LAYERS`: a module imports only from its own layer or below
      (within a layer, (a) keeps it one way);
  (c) no `from x import _name` of a private name of another module (a private *module* of
      the same package, such as `eapo.cli._common`, is fine: it is private to the package).
    Attribute access (`x._y`) is out of scope.

Old import paths kept for one release (`eapo.training.run.build_task`, ...) forward their
names with `eapo.moved.forward`: a module `__getattr__` that imports the new home by name
on first use. That is not an import edge (nothing runs until an old name is used), so a
lower layer may forward to a higher one; `test_moved_names_exist_where_they_point` checks
that every `MOVED` entry names a module that defines the name.

Where `assets` sits: `eapo.assets` is data (the shipped warm start) and an entry point
(`python -m eapo.assets.rebuild`, which trains with the project's own recipe, so it needs
the assembly layer's `build_task`). It is on the top layer, one package with its entry
point; the lookup training needs (`eapo.training.warmstart.shipped_warm_start`, re-exported
as `eapo.assets.shipped_warm_start`) reads the data by path from the installed root package
(`importlib.resources.files("eapo")`), which is not an import of `eapo.assets`. (The other
way, a low `eapo.assets` and the rebuild moved to assembly, would still leave its `-m`
entry importing up from a low package.)

Where `schema` sits: layer 2, below everything that reads a config (issue 18): it holds
every config dataclass and imports only `protocol` (for `Tags`). The old paths
(`eapo.training.config`, ...) re-export it from the training layer, so code below training
imports `eapo.schema`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "eapo"

# bottom -> top; a package imports only from its own layer and those below.
LAYERS: list[tuple[str, ...]] = [
    # "eapo": the root package (a version); "moved": the forwards of old import paths;
    # "typed_yaml": the YAML converter ("config": its old path, a re-export)
    ("eapo", "types", "registry", "console", "progress", "config", "typed_yaml", "moved"),
    ("protocol",),
    ("schema",),
    ("schedules", "rewards", "experts", "models", "tasks", "reporting"),  # reporting: see the docstring
    ("rollout", "serving"),
    ("evaluation", "distributed"),
    ("training",),
    ("assembly",),  # a run assembled from its config: task, pool, the arms of `eapo train`
    ("comparison", "integrations"),
    ("cli", "assets"),  # entry points; assets: see the docstring
]

LAYER_OF = {pkg: i for i, names in enumerate(LAYERS) for pkg in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}
PACKAGES = {m for m, p in MODULES.items() if p.name == "__init__.py"}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (an eapo module)
    names: tuple[str, ...]  # names taken by `from target import ...` (empty for `import target`)
    line: int
    text: str

    def where(self) -> str:
        return f"{MODULES[self.source].relative_to(SRC.parent)}:{self.line}: {self.text}"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if module in PACKAGES else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> Iterator[Import]:
    path = MODULES[module]
    source = path.read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        text = lines[node.lineno - 1].strip()
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT or alias.name.startswith(ROOT + "."):
                    yield Import(module, alias.name, (), node.lineno, text)
            continue
        target = _resolve(module, node)
        if not (target == ROOT or target.startswith(ROOT + ".")):
            continue
        plain = []
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            if sub in MODULES:  # `from package import module`: an edge to the module
                yield Import(module, sub, (), node.lineno, text)
            else:
                plain.append(alias.name)
        if plain:
            yield Import(module, target, tuple(plain), node.lineno, text)


EDGES = [imp for m in MODULES for imp in imports_of(m)]


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(module: str) -> int:
    return LAYER_OF[package_of(module)]


def strongly_connected(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph has a few hundred nodes)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    out.append(sorted(comp))
            elif nxt not in index:
                index[nxt] = low[nxt] = counter
                counter += 1
                stack.append(nxt)
                on_stack.add(nxt)
                work.append((nxt, iter(sorted(edges.get(nxt, ())))))
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
    return out


def test_every_package_has_a_layer():
    unknown = sorted({package_of(m) for m in MODULES} - set(LAYER_OF))
    assert not unknown, f"packages without a layer in LAYERS (add each where it belongs): {unknown}"


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    for e in EDGES:
        if e.target in MODULES and e.target != e.source:
            graph.setdefault(e.source, set()).add(e.target)
    cycles = [c for c in strongly_connected(sorted(MODULES), graph) if len(c) > 1]
    report = []
    for comp in cycles:
        inside = set(comp)
        report.append(f"cycle {{{', '.join(comp)}}}:")
        report += [f"    {e.where()}" for e in EDGES if e.source in inside and e.target in inside]
    assert not cycles, "\n".join(report)


def test_imports_run_down_the_layers():
    up = [e for e in EDGES if e.target in MODULES and layer_of(e.target) > layer_of(e.source)]
    report = [f"{e.where()}  ({package_of(e.source)}, layer {layer_of(e.source)} imports "
              f"{package_of(e.target)}, layer {layer_of(e.target)})" for e in up]
    assert not up, "imports from a higher layer:\n" + "\n".join(report)


def test_no_private_names_across_modules():
    bad = [e for e in EDGES if e.target != e.source
           and any(n.startswith("_") and not n.startswith("__") for n in e.names)]
    assert not bad, "private names imported from another module:\n" + "\n".join(e.where() for e in bad)


def _top_level_names(module: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(MODULES[module].read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def moved_of(module: str) -> dict[str, str]:
    """The module's `MOVED = {...}` (names forwarded to their new module), or {}."""
    for node in ast.parse(MODULES[module].read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "MOVED" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def test_moved_names_exist_where_they_point():
    forwards = {m: moved_of(m) for m in MODULES if moved_of(m)}
    assert forwards, "no MOVED forwards found: has the walk stopped reading them?"
    bad = [f"{m}.{name} -> {target}" for m, moved in forwards.items() for name, target in moved.items()
           if target not in MODULES or name not in _top_level_names(target)]
    assert not bad, "MOVED entries pointing where the name is not defined:\n" + "\n".join(bad)


@pytest.mark.parametrize("snippet, expected", [
    ("from eapo.a import b", [("eapo.a", ("b",))]),
    ("import eapo.a", [("eapo.a", ())]),
    ("from . import c", [("eapo.x.c", ())]),
])
def test_the_walk_reads_imports(tmp_path, monkeypatch, snippet, expected):
    # The walk itself: a `from package import module` is an edge to the module.
    monkeypatch.setitem(MODULES, "eapo.x.y", tmp_path / "y.py")
    monkeypatch.setitem(MODULES, "eapo.x.c", tmp_path / "c.py")
    (tmp_path / "y.py").write_text(snippet + "\n")
    got = [(i.target, i.names) for i in imports_of("eapo.x.y")]
    assert got == expected
