"""The shape of the code: one resolution of each cell's configuration per ``bench run``, no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from bench.cli import main
from bench.study import expand_file
from tmt.training.config import ExperimentConfig, ResolvedConfig

ROOT = Path(__file__).resolve().parents[1]
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))


def test_bench_run_resolves_each_grid_points_config_once(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two grid points x two seeds: two resolutions for the whole run (expansion, four trained cells and
    the report), one per grid point, since the seed is no input of the backbone's recipe."""
    data = yaml.safe_load((ROOT / "studies" / "table6.yaml").read_text())
    data["grid"] = [{"axes": {"model.depth": [4, 6], "model.dim": [64], "model.frames": [27]}}]
    data["claims"] = []
    study = workdir / "table6.yaml"
    study.write_text(yaml.safe_dump(data, sort_keys=False))
    resolve = ExperimentConfig.resolved
    calls: list[str] = []

    def counting(self: ExperimentConfig) -> ResolvedConfig:
        calls.append(self.model.model_dump_json())
        return resolve(self)

    monkeypatch.setattr(ExperimentConfig, "resolved", counting)
    argv = ["run", str(study), "--profile", "smoke", "--seeds", "2", "--wandb", "disabled"]
    assert main([*argv, "--out", str(workdir / "reports")]) == 0
    assert len(calls) == 2 and len(set(calls)) == 2
    assert len(list((workdir / "runs").glob("*/result.json"))) == 4


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_cells_config_is_already_resolved(path: Path) -> None:
    """Scaling a resolved configuration never leaves a field for the recipe to fill, so resolving a cell's
    configuration again would change nothing: the one resolution at expansion is the last."""
    from bench.loader import load_study_file

    for profile in load_study_file(path).profiles:
        for cell in expand_file(path, profile, check_models=False).cells:
            assert isinstance(cell.config, ResolvedConfig)
            again = ExperimentConfig.model_validate(cell.config_dict).resolved()
            assert again.model_dump(mode="json") == cell.config_dict, (path.stem, profile, cell.describe())


def _module_imports(package_root: Path) -> dict[str, set[str]]:
    """Every module of ``tmt`` and ``bench`` -> the project modules it imports anywhere in its body
    (function-level imports included: a lazy import is still a dependency)."""
    files = {
        ".".join(p.relative_to(package_root).with_suffix("").parts).removesuffix(".__init__"): p
        for package in ("tmt", "bench")
        for p in (package_root / package).rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in files]
                names = submodules if len(submodules) == len(node.names) else [base, *submodules]
            else:
                continue
            for target in names:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (depth-first search), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle_among_the_projects_modules() -> None:
    graph = _module_imports(ROOT)
    assert "bench.runner" in graph and "tmt.training.config" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    assert not [
        m
        for m, targets in graph.items()
        if m.startswith("tmt") and any(t.startswith("bench") for t in targets)
    ]


def test_the_cycle_finder_finds_a_planted_circle() -> None:
    graph = _module_imports(ROOT)
    graph["tmt.training.defaults"] = {*graph["tmt.training.defaults"], "tmt.training.config"}
    assert _cycle(graph) == ["tmt.training.config", "tmt.training.defaults", "tmt.training.config"]


def test_the_order_of_a_cells_layers_is_one_list_that_the_docs_quote() -> None:
    """``bench.study.LAYERS`` is the order; the module's docstring and the docs quote it as it is."""
    from bench import study

    order = " -> ".join(study.LAYERS)
    docs = [(ROOT / "docs" / name).read_text(encoding="utf-8") for name in ("architecture.md", "studies.md")]
    for text in (study.__doc__ or "", *docs):
        assert order in " ".join(text.split())
