"""The package reads top-down: data -> index -> teachers/cache/queries -> training -> evaluation -> cli, with no import
running back up, and only the files of a kind know which kind they are."""

import ast
import os

import irdistill

ROOT = os.path.dirname(irdistill.__file__)
LAYERS = {"errors": 0, "progress": 0, "lazy": 0, "precision": 0, "data": 1, "models": 1, "index": 2, "cache": 3, "teachers": 3, "queries": 3, "training": 4,
          "evaluation": 5, "experiment": 6, "adapt": 6, "cli": 6, "__main__": 6}
STUDENTS = {"bi-encoder", "cross-encoder", "colbert", "splade"}
INDEX_KINDS = {"bm25", "dense", "colbert", "splade"}


def modules():
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, ROOT)
                if rel != "__init__.py":
                    yield rel, ast.parse(open(path).read())


def layer(rel: str) -> int:
    return LAYERS[rel.split(os.sep)[0].removesuffix(".py")]


def imported(rel: str, tree) -> set[str]:
    """The top-level irdistill modules ``rel`` imports (relative imports resolved)."""
    package = os.path.dirname(rel).split(os.sep) if os.path.dirname(rel) else []
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [n.name for n in node.names][:1])
            out.add(target[0])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            out |= {n.split(".")[1] for n in names if n and n.startswith("irdistill.")}
    return {t.removesuffix(".py") for t in out}


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    back = [(rel, t) for rel, tree in modules() for t in imported(rel, tree) if LAYERS[t] > layer(rel)]
    assert back == []


def compared_strings(tree) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                for c in ast.walk(side):
                    if isinstance(c, ast.Constant) and isinstance(c.value, str):
                        out.add(c.value)
    return out


def test_only_a_kinds_own_files_branch_on_it():
    for rel, tree in modules():
        strings = compared_strings(tree)
        if not rel.startswith(os.path.join("training", "students")):
            assert not strings & STUDENTS, (rel, strings & STUDENTS)
        if not rel.startswith("index"):
            assert not strings & INDEX_KINDS, (rel, strings & INDEX_KINDS)


def test_the_cli_has_no_dispatch_of_its_own():
    tree = ast.parse(open(os.path.join(ROOT, "cli.py")).read())
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "isinstance" not in calls
    assert not compared_strings(tree) & (STUDENTS | INDEX_KINDS | {"ensemble"})
