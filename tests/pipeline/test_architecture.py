"""The house rules of ../shared/ARCHITECTURE.md, checked on the source: four wings in one order (io < core < plots <
pipeline < claims < api/cli), no import cycle, no wing importing a wing above it, matplotlib only in plots/, no two
public functions sharing a name, no module named after a standard-library module or a Snakemake directive, and
workflow scripts of a few lines. Each check is a function of a parsed graph, and each is shown to fail on an
injected violation."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "src" / "losslab"
# bottom to top; a module may import its own wing and the wings below it
RANK = {"io": 0, "_version": 0, "core": 1, "plots": 2, "pipeline": 3, "claims": 4, "api": 5, "cli": 5, "__init__": 5}
# api is the library's front door: it composes the engine and the figures, never the workflow or the claims
API_MAY_IMPORT = {"io", "core", "plots", "api", "__init__"}
SNAKEMAKE_DIRECTIVES = {"input", "output", "params", "log", "threads", "resources", "benchmark", "conda", "container",
                        "shell", "script", "run", "notebook", "wrapper", "message", "priority", "version", "group",
                        "cache", "handover", "default_target", "retries", "localrules", "ruleorder", "include",
                        "workdir", "configfile", "pepfile", "report", "onstart", "onsuccess", "onerror", "checkpoint",
                        "module", "use", "wildcard_constraints", "envvars", "scattergather", "localrule", "shadow"}
# the one exception, kept on purpose: losslab.io is the package's ground floor (named so by the issue), and is only
# ever imported as ``from losslab import io as lio``, never as a top-level ``io``
NAME_EXCEPTIONS = {"io"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def parse_package(pkg: Path = PKG) -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(pkg.rglob("*.py"))}


def import_graph(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Module -> the losslab modules it imports (anywhere in the file; ``from losslab.x import y`` counts y when y
    is a module of the package)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "losslab":
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    graph[mod].add(sub if sub in trees else node.module)
            elif isinstance(node, ast.Import):
                graph[mod].update(a.name for a in node.names if a.name.split(".")[0] == "losslab")
    return {m: {t for t in ts if t in trees and t != m} for m, ts in graph.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None. A package's ``__init__`` importing nothing
    but its children is what the graph holds for it."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (c := visit(t)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, targets in graph.items():
        for t in targets:
            if RANK[wing(t)] > RANK[wing(mod)] or (wing(mod) == "api" and wing(t) not in API_MAY_IMPORT):
                bad.append(f"{mod} ({wing(mod)}) imports {t} ({wing(t)})")
    return sorted(bad)


def shared_public_names(trees: dict[str, ast.Module]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = defaultdict(list)
    for mod, tree in trees.items():
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                where[node.name].append(mod)
    return {name: mods for name, mods in sorted(where.items()) if len(mods) > 1}


def matplotlib_outside_plots(trees: dict[str, ast.Module]) -> list[str]:
    bad = []
    for mod, tree in trees.items():
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if wing(mod) != "plots" and any(n.split(".")[0] in ("matplotlib", "mpl_toolkits") for n in names):
                bad.append(mod)
    return sorted(set(bad))


def decisions_outside_verdicts(trees: dict[str, ast.Module]) -> list[str]:
    """Claim modules that decide inline: name a verdict word or build a decision or result themselves
    (``Decision(...)``, ``ClaimDecision(...)``, ``ClaimResult(...)``) instead of calling a rule of
    losslab.claims.verdicts (``decide_claim``, ``ClaimResult.from_decision``)."""
    words = {"REPRODUCED", "NOT_REPRODUCED", "INCONCLUSIVE"}  # (VERDICTS, the list of words, may be counted)
    bad = []
    for mod, tree in trees.items():
        if wing(mod) != "claims" or mod == "losslab.claims.verdicts":
            continue
        for node in ast.walk(tree):
            named = (isinstance(node, ast.Name) and node.id in words) or (isinstance(node, ast.alias)
                                                                         and node.name in words)
            built = (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                     and node.func.id in ("Decision", "ClaimDecision", "ClaimResult"))
            spelt = isinstance(node, ast.Constant) and node.value in ("reproduced", "not reproduced", "inconclusive")
            if named or built or spelt:
                bad.append(f"{mod}:{node.lineno}" if hasattr(node, "lineno") else mod)
    return sorted(set(bad))


def clashing_module_names(modules: list[str]) -> list[str]:
    stdlib = set(sys.stdlib_module_names)
    leaves = {m.rsplit(".", 1)[-1] for m in modules}
    return sorted(n for n in leaves if (n in stdlib or n in SNAKEMAKE_DIRECTIVES) and n not in NAME_EXCEPTIONS)


# ---------------------------------------------------------------- the package as it is ---------------------------

@pytest.fixture(scope="module")
def trees():
    return parse_package()


def test_every_module_sits_in_a_known_wing(trees):
    assert {wing(m) for m in trees} <= set(RANK)
    assert {"core", "plots", "pipeline", "claims"} <= {wing(m) for m in trees}


def test_the_import_graph_has_no_cycle(trees):
    assert find_cycle(import_graph(trees)) is None


def test_no_wing_imports_a_wing_above_it(trees):
    assert upward_imports(import_graph(trees)) == []


def test_matplotlib_is_imported_only_in_plots(trees):
    assert matplotlib_outside_plots(trees) == []


def test_no_two_public_functions_share_a_name(trees):
    assert shared_public_names(trees) == {}


def test_decisions_are_made_only_in_claims_verdicts(trees):
    assert decisions_outside_verdicts(trees) == []


def test_no_module_takes_a_standard_library_or_snakemake_name(trees):
    assert clashing_module_names(list(trees)) == []


def long_scripts(scripts_dir: Path, limit: int = 21) -> list[str]:
    """Workflow scripts longer than ``limit`` lines (set-up, one library call, one log line: about 20 lines)."""
    return sorted(f"{p.name}: {n} lines" for p in scripts_dir.glob("*.py")
                  if (n := len(p.read_text().splitlines())) > limit)


def test_every_workflow_script_is_a_few_lines():
    assert long_scripts(ROOT / "workflow" / "scripts") == []


# ---------------------------------------------------------------- each check fails on an injected violation -------

def _trees(**sources: str) -> dict[str, ast.Module]:
    return {name: ast.parse(src) for name, src in sources.items()}


def test_the_checks_catch_injected_violations(tmp_path):
    (tmp_path / "thin.py").write_text("x = 1\n" * 20)
    (tmp_path / "thick.py").write_text("x = 1\n" * 30)
    assert long_scripts(tmp_path) == ["thick.py: 30 lines"]
    cyclic = _trees(**{"losslab.core.a": "from losslab.core import b\n", "losslab.core.b": "import losslab.core.a\n"})
    assert find_cycle(import_graph(cyclic)) == ["losslab.core.a", "losslab.core.b", "losslab.core.a"]
    upward = _trees(**{"losslab.core.a": "def f():\n    from losslab.claims.x import y\n", "losslab.claims.x": "",
                       "losslab.api": "from losslab.pipeline import config\n", "losslab.pipeline.config": ""})
    assert upward_imports(import_graph(upward)) == [
        "losslab.api (api) imports losslab.pipeline.config (pipeline)",
        "losslab.core.a (core) imports losslab.claims.x (claims)"]
    assert matplotlib_outside_plots(_trees(**{"losslab.claims.x": "import matplotlib.pyplot as plt\n",
                                              "losslab.plots.y": "import matplotlib\n"})) == ["losslab.claims.x"]
    twice = _trees(**{"losslab.core.a": "def load(): pass\ndef _h(): pass\n",
                      "losslab.claims.b": "def load(): pass\ndef _h(): pass\n"})
    assert shared_public_names(twice) == {"load": ["losslab.core.a", "losslab.claims.b"]}
    inline = _trees(**{"losslab.claims.x": "v = REPRODUCED if ok else 'not reproduced'\n",
                       "losslab.claims.y": "c = ClaimResult(id='a', verdict=v)\n",
                       "losslab.claims.verdicts": "REPRODUCED = 'reproduced'\n"})
    assert decisions_outside_verdicts(inline) == ["losslab.claims.x:1", "losslab.claims.y:1"]
    assert clashing_module_names(["losslab.core.json", "losslab.claims.params", "losslab.io", "losslab.core.ok"]) == [
        "json", "params"]
