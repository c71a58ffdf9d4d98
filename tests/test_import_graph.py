"""The layering of the three installed packages, read from the source with ``ast`` (nothing is imported):

- ``fpdm_bench`` (the harness; ``fpdm_bench.modeling`` = what several models share),
- ``fpdm_bench_baselines`` (folder ``baselines/``: PIDM, CFLD, PoCoLD, the floors, released images),
- ``fpdm_bench_reference`` (folder ``reference_impl/``: the reference FPDM).

The two model packages are siblings on top of fpdm_bench: neither imports the other, fpdm_bench
imports neither, ``fpdm_bench.modeling`` imports no higher layer of fpdm_bench, module-level imports
form no cycle, and nothing imports the folders' plain names (``baselines`` is also another project's
import name, and running from the repository root would load a second copy of every module).

Every import counts: module level, inside functions, relative ones (resolved), and ``"module:attr"``
strings (lazy commands, entry points). ``from X import Y`` is an edge to ``X.Y`` when that is a module,
else to ``X``.
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"fpdm_bench": "fpdm_bench", "fpdm_bench_baselines": "baselines", "fpdm_bench_reference": "reference_impl"}
MODEL_PACKAGES = ("fpdm_bench_baselines", "fpdm_bench_reference")
PLAIN_NAMES = ("baselines", "reference_impl")
# fpdm_bench's layers above the models: fpdm_bench.modeling imports none of them
HIGHER = ("runner", "scoring", "cli", "commands", "reporting", "report", "profile", "sweep", "stats", "folders", "api")
# other files that must not import the plain names either
OTHER_SOURCES = ("tests", "tools", "benchmarks")
MODULE_STRING = re.compile(r"^([A-Za-z_]\w*(?:\.\w+)*)(?::\w+(?:\.\w+)*)?$")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (resolved, most specific known module)
    raw: str  # the name as written (absolute), for the plain-name check
    line: int
    module_level: bool  # runs when the importing module is imported
    how: str  # "import" | "string"

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}"


def module_name(path: Path, package: str, folder: Path) -> str:
    parts = [package, *path.relative_to(folder).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_files(packages: dict[str, str] = PACKAGES, root: Path = ROOT) -> dict[str, Path]:
    """Installed module name -> file, for every .py file of the packages."""
    files = {}
    for package, folder in packages.items():
        for path in sorted((root / folder).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files[module_name(path, package, root / folder)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, module_level: bool = True):
    """(node, runs at import time) for every node under ``node``: function bodies do not run at
    import time, nor ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        level = module_level
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            level = False
        yield child, level
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.body:
                yield sub, False
                yield from _walk(sub, False)
            for sub in child.orelse:
                yield sub, level
                yield from _walk(sub, level)
            continue
        yield from _walk(child, level)


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """Every import in the file of module ``name`` (a package's name for its __init__.py)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))

    def resolve(module: str | None, level: int) -> str:
        if not level:
            return module or ""
        base = package.split(".")
        if level - 1:
            base = base[:-(level - 1)]
        return ".".join([*base, *([module] if module else [])])

    def specific(mod: str) -> str:
        """The most specific known module that ``mod`` names (itself, else its nearest known parent)."""
        parts = mod.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in known:
                return ".".join(parts[:i])
        return mod

    found = []
    for node, module_level in _walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(name, specific(alias.name), alias.name, line, module_level, "import"))
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node.module, node.level)
            raw = base if node.level == 0 else ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in known else specific(base)
                found.append(Import(name, target, raw, line, module_level, "import"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = MODULE_STRING.match(node.value)
            if m and "." in m.group(1) and ":" in node.value:  # "package.module:attr", an import by name
                found.append(Import(name, specific(m.group(1)), m.group(1), line, False, "string"))
    return found


def import_graph(packages: dict[str, str] = PACKAGES, root: Path = ROOT) -> tuple[dict[str, Path], list[Import]]:
    files = package_files(packages, root)
    known = set(files)
    return files, [imp for name, path in files.items() for imp in imports_of(name, path, known)]


def under(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def cycles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative), of module-level
    imports between modules of the packages."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.module_level and e.how == "import" and e.source != e.target and under(e.target, *PACKAGES):
            graph.setdefault(e.source, set()).add(e.target)
            graph.setdefault(e.target, set())
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
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
                        out.append(sorted(component))
    return sorted(out)


def violations(files: dict[str, Path], edges: list[Import]) -> dict[str, list[str]]:
    """Rule -> the imports that break it (empty lists when the layering holds)."""
    out = {"model packages import each other": [], "fpdm_bench imports a model package": [],
           "fpdm_bench.modeling imports a higher layer": [], "plain names imported": []}
    higher = tuple(f"fpdm_bench.{h}" for h in HIGHER)
    for e in edges:
        src_pkg = next(p for p in PACKAGES if under(e.source, p))
        if src_pkg in MODEL_PACKAGES and under(e.target, *MODEL_PACKAGES) and not under(e.target, src_pkg):
            out["model packages import each other"].append(str(e))
        if src_pkg == "fpdm_bench" and under(e.target, *MODEL_PACKAGES):
            out["fpdm_bench imports a model package"].append(str(e))
        if under(e.source, "fpdm_bench.modeling") and under(e.target, *higher):
            out["fpdm_bench.modeling imports a higher layer"].append(str(e))
        if under(e.raw, *PLAIN_NAMES):
            out["plain names imported"].append(f"{e.source}:{e.line} -> {e.raw}")
    return out


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_the_packages_are_where_pyproject_installs_them(graph):
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {k: v for k, v in setuptools["package-dir"].items() if k in PACKAGES} == {
        k: v for k, v in PACKAGES.items() if k != "fpdm_bench"}
    files, _ = graph
    packages = {m for m, p in files.items() if p.name == "__init__.py"}
    # every package folder is installed (a missing one would be absent from the wheel)
    assert packages == set(setuptools["packages"]), sorted(packages ^ set(setuptools["packages"]))
    # the models and commands it declares resolve to the installed names
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    for group in ("fpdm_bench.models", "fpdm_bench.commands", "fpdm_bench.releases"):
        for name, value in entry_points[group].items():
            assert value.partition(":")[0] in files, f"{group} {name} = {value}: no such module"


def test_layering(graph):
    files, edges = graph
    assert len(files) > 100 and len(edges) > 500  # the parse found the packages
    found = violations(files, edges)
    assert found == {rule: [] for rule in found}, "\n".join(
        f"{rule}:\n  " + "\n  ".join(items) for rule, items in found.items() if items)


# fpdm_bench's layers, lowest first (first component of the module name): a module imports only
# its own layer or lower ones, at module level or inside a function; the model packages stand on top.
LAYERS = [
    ("base", {"errors", "io", "env", "seeding", "images", "safe_load", "lock", "registry", "_tv_shim", "distributed"}),
    ("parts", {"weights", "weights_fetch", "data", "protocols", "perturb", "metrics", "models", "modeling", "refstats", "run_config",
               "releases", "release_fetch"}),
    ("engine", {"scoring", "evaluate", "loader", "writer", "rundir", "results", "stats", "sequences"}),
    ("products", {"runner", "sweep", "profile", "report", "reporting", "folders"}),
    ("interface", {"commands", "cli", "__main__", "api"}),
]


def layer(module: str) -> int:
    """The layer of an fpdm_bench module (the package itself: 0), or len(LAYERS) for the model packages."""
    if module == "fpdm_bench":
        return 0
    if not under(module, "fpdm_bench"):
        return len(LAYERS)
    first = module.split(".")[1]
    return next(i for i, (_, names) in enumerate(LAYERS) if first in names)


def test_every_import_goes_down_the_layers(graph):
    files, edges = graph
    unlayered = sorted({f.split(".")[1] for f in files if under(f, "fpdm_bench") and f != "fpdm_bench"}
                       - set().union(*(names for _, names in LAYERS)))
    assert not unlayered, f"modules of fpdm_bench in no layer (add them to LAYERS): {unlayered}"
    up = [f"{e} ({LAYERS[layer(e.source)][0]} -> {LAYERS[layer(e.target)][0]})" for e in edges
          if e.target in files and layer(e.target) > layer(e.source)]
    assert not up, "imports from a lower layer to a higher one:\n  " + "\n  ".join(up)


def test_no_import_cycles(graph):
    _, edges = graph
    found = cycles(edges)
    assert not found, "module-level import cycles (strongly connected components):\n" + "\n".join(
        "  " + " <-> ".join(c) for c in found)


def test_no_plain_names_in_tests_and_tools():
    """tests/, tools/ and benchmarks/ import the installed names too."""
    bad = []
    for folder in OTHER_SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" in path.parts or path.resolve() == Path(__file__).resolve():
                continue
            name = module_name(path, folder, ROOT / folder)
            bad += [f"{path.relative_to(ROOT)}:{e.line} -> {e.raw}" for e in imports_of(name, path, set())
                    if under(e.raw, *PLAIN_NAMES)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("where, line, rule", [
    ("baselines/pidm/extra.py", "from fpdm_bench_reference.pipeline import FPDMPipeline", "model packages import each other"),
    ("reference_impl/extra.py", "def f():\n    from fpdm_bench_baselines import floors", "model packages import each other"),
    ("fpdm_bench/models/extra.py", "from ..modeling import x\nimport fpdm_bench_reference.adapter", "fpdm_bench imports a model package"),
    ("fpdm_bench/extra.py", "LAZY = {'x': 'fpdm_bench_baselines.pidm.cli:pidm'}", "fpdm_bench imports a model package"),
    ("fpdm_bench/modeling/extra.py", "from fpdm_bench import runner", "fpdm_bench.modeling imports a higher layer"),
    ("fpdm_bench/modeling/extra.py", "from ..commands.options import x", "fpdm_bench.modeling imports a higher layer"),
    ("baselines/extra.py", "import baselines.pidm", "plain names imported"),
    ("reference_impl/extra.py", "from reference_impl import pose", "plain names imported"),
])
def test_a_violation_is_found(tmp_path, where, line, rule):
    """Each rule fails on a deliberate violation in a copy of the tree's layout."""
    for folder in PACKAGES.values():
        for path in (ROOT / folder).rglob("__init__.py"):
            dst = tmp_path / path.relative_to(ROOT)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text("")
    for module in ("fpdm_bench/runner.py", "fpdm_bench/commands/options.py", "baselines/floors.py",
                   "reference_impl/pipeline.py"):
        (tmp_path / module).write_text("")
    (tmp_path / where).write_text(line + "\n")
    files, edges = import_graph(root=tmp_path)
    found = violations(files, edges)
    assert found[rule], found
    assert all(not items for r, items in found.items() if r != rule), found


def test_a_cycle_is_found(tmp_path):
    for rel, text in {"fpdm_bench/__init__.py": "", "fpdm_bench/a.py": "from fpdm_bench import b\n",
                      "fpdm_bench/b.py": "import fpdm_bench.c\n", "fpdm_bench/c.py": "from . import a\n",
                      "fpdm_bench/d.py": "def f():\n    from fpdm_bench import a\n",
                      "fpdm_bench/e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fpdm_bench import d\n",
                      "baselines/__init__.py": "", "reference_impl/__init__.py": ""}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    _, edges = import_graph(root=tmp_path)
    assert cycles(edges) == [["fpdm_bench.a", "fpdm_bench.b", "fpdm_bench.c"]]


if __name__ == "__main__":  # print the graph's summary: python tests/test_import_graph.py
    files, edges = import_graph()
    print(f"{len(files)} modules, {len(edges)} imports")
    for rule, items in violations(files, edges).items():
        print(f"{rule}: {len(items)}", *items, sep="\n  ")
    print("cycles:", *(" <-> ".join(c) for c in cycles(edges)), sep="\n  ")
    sys.exit(0)
