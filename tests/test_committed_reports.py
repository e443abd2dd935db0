"""Every committed report is what ``bench report`` writes from the committed results archive: no training,
no store, the same tables, verdicts and numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]
ARCHIVES = sorted((ROOT / "results").glob("*.jsonl"))


def _regenerate(archive: Path, out: Path, store: Path) -> str:
    """``bench report`` of one archive into ``out``; returns the report stem ``<study>.<profile>``."""
    study, _, profile = archive.stem.partition(".")
    assert "+" not in profile, "variant archives need their --set / --only to be regenerated"
    args = ["report", f"studies/{study}.yaml", "--profile", profile, "--out", str(out)]
    assert main([*args, "--store", str(store), "--results", str(ROOT / "results")]) == 0
    return archive.stem


@pytest.mark.parametrize("archive", ARCHIVES, ids=[a.stem for a in ARCHIVES])
def test_the_committed_report_is_regenerated_from_the_archive(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "reports"
    stem = _regenerate(archive, out, tmp_path / "runs")
    for suffix in (".md", ".csv"):
        committed = (ROOT / "reports" / f"{stem}{suffix}").read_text(encoding="utf-8")
        assert (out / f"{stem}{suffix}").read_text(encoding="utf-8") == committed, f"{stem}{suffix}"


def test_a_report_is_the_same_whatever_library_versions_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report states the versions its cells recorded, and the figures carry no matplotlib version: a
    writer with other versions of every library (here: all reported as 99.0) rewrites every file of a
    committed report, figures included, byte for byte."""
    import importlib.metadata
    import platform

    import matplotlib
    import numpy
    import torch

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "99.0")
    monkeypatch.setattr(platform, "python_version", lambda: "3.99.0")
    for module in (matplotlib, numpy, torch):
        monkeypatch.setattr(module, "__version__", "99.0")
    monkeypatch.chdir(ROOT)
    out = tmp_path / "reports"
    stem = _regenerate(ROOT / "results" / "table7.cpu.jsonl", out, tmp_path / "runs")
    written = [p for p in out.rglob(f"{stem}.*") if p.is_file()]
    assert {p.suffix for p in written} >= {".md", ".csv", ".json", ".png", ".svg"}
    for path in written:
        committed = ROOT / "reports" / path.relative_to(out)
        assert path.read_bytes() == committed.read_bytes(), path.relative_to(out)
    libraries = "- **Libraries:** python 3.11.7, torch 2.13.0+cpu, numpy 2.4.6\n"
    assert libraries in (out / f"{stem}.md").read_text()


@pytest.mark.parametrize("archive", ARCHIVES, ids=[a.stem for a in ARCHIVES])
def test_each_committed_report_has_its_figures_and_intervals_that_agree_with_p(archive: Path) -> None:
    """A training study's report has the table as a figure and learning curves, each as PNG and SVG; in every
    claims CSV a comparison's 95 % interval clears 0 exactly when p < 0.05 (one procedure for both)."""
    import pandas as pd
    import yaml

    study, _, profile = archive.stem.partition(".")
    stem = f"{study}.{profile}"
    figures = ROOT / "reports" / "figures"
    if yaml.safe_load((ROOT / "studies" / f"{study}.yaml").read_text())["kind"] == "train":
        table = [f"{stem}.table", f"{stem}.per_action"]
        assert any((figures / f"{name}.png").exists() for name in table), stem
        for name in [f"{stem}.learning_curves", *(n for n in table if (figures / f"{n}.png").exists())]:
            assert (figures / f"{name}.png").exists() and (figures / f"{name}.svg").exists(), name
    claims = pd.read_csv(ROOT / "reports" / f"{stem}.claims.csv")
    tested = claims[claims["test"].isin(["ordered", "less", "monotonic"]) & claims["p"].notna()]
    for _, row in tested.iterrows():
        clears = row["ci_low"] > 0 or row["ci_high"] < 0
        assert clears == (row["p"] < 0.05), (stem, row["claim"], row["comparison"])


def test_report_all_writes_only_the_archived_studies_even_when_others_share_their_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """table10's full-loss cells are table7's TMT cells: once --all has imported table7's archive they are in
    the store, but table10 has no archive there, so --all writes no table10 report (a fresh clone stays clean)."""
    monkeypatch.chdir(ROOT)
    results = tmp_path / "results"
    results.mkdir()
    (results / "table7.cpu.jsonl").write_text((ROOT / "results" / "table7.cpu.jsonl").read_text())
    out = tmp_path / "reports"
    where = ["--out", str(out), "--store", str(tmp_path / "runs"), "--results", str(results)]
    assert main(["report", "--all", *where]) == 0
    assert {p.name for p in out.glob("*.md")} == {"table7.cpu.md", "README.md"}
    assert main(["report", "studies/table10.yaml", *where]) == 0
    assert (out / "table10.cpu.md").exists()  # named, it is reported from the shared cells
