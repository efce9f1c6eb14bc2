"""dvc.yaml is complete by construction: every file a stage's command can import is a dependency.

For each stage, the import closure of its command inside ``src/`` is computed from the code
(static imports, imports inside functions, ``from PKG import submodule``, the package
``__init__`` files Python runs on the way, and for the CLI the one subcommand module the
stage's script names in its ``main([...])`` call). A file of that closure that no entry of the
stage's ``deps`` covers would let DVC serve a stale result after that file changes. The params
half of the graph (which keys each stage reads) is checked by the smoke repro, which records
them while the stages run (tests/test_smoke_repro.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PKG = "stagetrack"


def dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The file of dotted module ``name`` under src/, or None (third-party)."""
    if name != PKG and not name.startswith(PKG + "."):
        return None
    base = SRC.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Dotted names of the modules ``path`` imports anywhere in its body (lazy imports included)."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path) if path.is_relative_to(SRC) else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(p for p in base_parts if p)
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return found


def closure(roots: list[Path]) -> set[Path]:
    """Every src/ file reachable from ``roots`` through imports, with the parents' __init__.py.

    The CLI imports subcommands through its table at run time; that edge is the caller's (the
    stage's command names exactly one subcommand), so cli.py's table is not followed here.
    """
    seen: set[Path] = set()
    todo = list(roots)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imports_of(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # parent packages run their __init__ first
                found = module_file(".".join(parts[:i]))
                if found is not None and found not in seen:
                    todo.append(found)
    return {p for p in seen if p.is_relative_to(SRC)}


def command_module(script: Path) -> str:
    """The subcommand module a stage script runs: ``main(["NAME", ...])`` -> cli.COMMANDS[NAME]."""
    from stagetrack.cli import COMMANDS

    match = re.search(r'main\(\["([\w-]+)"', script.read_text())
    assert match, f"{script} does not call stagetrack.cli.main([...])"
    return COMMANDS[match.group(1)][0]


def stage_closure(cmd: str) -> set[Path]:
    script = REPO / cmd.split()[1]
    return closure([script, module_file(command_module(script))])


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


def test_closure_follows_lazy_and_relative_imports():
    """The helper itself: pipeline.py imports detect/yolo.py only inside a function."""
    files = closure([module_file("stagetrack.pipeline")])
    rels = {p.relative_to(SRC).as_posix() for p in files}
    assert {"stagetrack/detect/yolo.py", "stagetrack/detect/__init__.py", "stagetrack/__init__.py",
            "stagetrack/config.py", "stagetrack/assoc/train.py"} <= rels


@pytest.mark.parametrize("stage", sorted(dvc_stages()))
def test_every_imported_file_is_a_dependency(stage):
    spec = dvc_stages()[stage]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in spec["deps"]]
    # an empty file (a bare package __init__) runs nothing; once it holds code it must be listed
    missing = sorted(p.relative_to(REPO).as_posix() for p in stage_closure(spec["cmd"])
                     if p.stat().st_size and not covered(p, deps))
    assert not missing, f"stage {stage} imports files that are not in its deps: {missing}"


@pytest.mark.parametrize("stage", sorted(dvc_stages()))
def test_every_code_dependency_is_imported(stage):
    """The other direction: a listed src/ path that the command never imports re-runs it for nothing."""
    spec = dvc_stages()[stage]
    files = stage_closure(spec["cmd"])
    for dep in spec["deps"]:
        if isinstance(dep, str) and dep.startswith("src/"):
            assert any(covered(p, [dep]) for p in files), f"stage {stage} lists {dep} but never imports it"
