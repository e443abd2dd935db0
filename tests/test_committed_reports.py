"""Every committed report is what ``bench report`` writes from the committed results archive: no training,
no store, the same tables, verdicts and numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]
ARCHIVES = sorted((ROOT / "results").glob("*.jsonl"))
VOLATILE = ("- **Libraries:**",)
"""The header line that names the library versions writing the report (another machine may have others)."""


def _stable(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(VOLATILE)]


@pytest.mark.parametrize("archive", ARCHIVES, ids=[a.stem for a in ARCHIVES])
def test_the_committed_report_is_regenerated_from_the_archive(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study, _, profile = archive.stem.partition(".")
    assert "+" not in profile, "variant archives need their --set / --only to be regenerated"
    monkeypatch.chdir(ROOT)
    out = tmp_path / "reports"
    args = ["report", f"studies/{study}.yaml", "--profile", profile, "--out", str(out)]
    assert main([*args, "--store", str(tmp_path / "runs"), "--results", str(ROOT / "results")]) == 0
    for suffix in (".md", ".csv"):
        committed = (ROOT / "reports" / f"{study}.{profile}{suffix}").read_text(encoding="utf-8")
        regenerated = (out / f"{study}.{profile}{suffix}").read_text(encoding="utf-8")
        assert _stable(regenerated) == _stable(committed), f"{study}.{profile}{suffix}"


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
