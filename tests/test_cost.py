"""What a cell costs before it runs: the GPU-hours of ``--dry-run`` against the paper's one published timing."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from bench.cost import estimate_seconds, gpu_hours
from bench.study import expand_file
from tmt.training.cost import GPUS, workload

ROOT = Path(__file__).resolve().parents[1]


def table5_paper_cell(frames: int, strategy: str, batch_frames: int = 1024):
    cells = expand_file(ROOT / "studies" / "table5.yaml", "paper").cells
    (cell,) = [
        c
        for c in cells
        if c.config_dict["model"]["frames"] == frames
        and c.config_dict["train"]["strategy"] == strategy
        and c.config_dict["optim"]["batch_frames"] == batch_frames
    ]
    return cell


def test_gpu_hours_reproduce_the_papers_table5_timing() -> None:
    """The paper trained MixSTE at T 243 in 2205 min on two RTX 3090 Ti (Table 5): 73.5 card-hours."""
    rtx = next(g for g in GPUS if g.name == "RTX 3090 Ti")
    hours = gpu_hours(table5_paper_cell(243, "baseline"), rtx)
    assert hours == pytest.approx(2205 * 2 / 60, rel=0.05)


def test_tmt_costs_its_two_updates_per_batch() -> None:
    base, tmt = table5_paper_cell(243, "baseline"), table5_paper_cell(243, "tmt")
    assert workload(tmt.config).train_frames == pytest.approx(2 * workload(base.config).train_frames)
    h100 = GPUS[0]
    assert gpu_hours(base, h100) < gpu_hours(tmt, h100) < 2 * gpu_hours(base, h100)  # evaluation counts once


def test_half_precision_runs_on_the_tensor_cores() -> None:
    cell = table5_paper_cell(243, "baseline")
    bf16 = expand_file(ROOT / "studies" / "table5.yaml", "paper", settings={"train.precision": "bf16"}).cells
    (half,) = [c for c in bf16 if c.describe() == cell.describe()]
    for gpu in GPUS:
        assert gpu_hours(half, gpu) == pytest.approx(gpu_hours(cell, gpu) * gpu.fp32_tflops / gpu.half_tflops)


def test_complexity_cells_cost_no_gpu_time() -> None:
    (cell, *_) = expand_file(ROOT / "studies" / "table4.yaml", "paper").cells
    assert cell.kind == "complexity"
    assert gpu_hours(cell, GPUS[0]) == 0.0
    assert estimate_seconds(cell) == 1.0


def test_dry_run_prints_gpu_hours_per_cell_and_in_total(tmp_path: Path, capsys) -> None:
    from bench.cli import main

    study = str(ROOT / "studies" / "table5.yaml")
    assert main(["run", study, "--profile", "paper", "--dry-run", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "GPU-hours on H100 SXM / A100 / RTX 3090 Ti" in out
    cell = table5_paper_cell(243, "baseline")
    line = next(x for x in out.splitlines() if x.strip().startswith(cell.id))
    assert f"{gpu_hours(cell, GPUS[2]):.3g}" in line
    total = sum(gpu_hours(c, GPUS[0]) for c in expand_file(study, "paper").cells)
    assert f"H100 SXM {total:.3g}" in out
    assert not list(tmp_path.iterdir())  # a dry run writes nothing


def _script(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fit_cost():
    """benchmarks/fit_cost.py, the script that fits the CPU calibration."""
    return _script("fit_cost")


def test_the_cpu_calibration_fits_the_committed_cells() -> None:
    """Every committed cpu cell, estimated at the epochs it ran: the median within 1.5x of what it took, none
    off by more than 3x (they ran two at a time on a shared machine, so single cells scatter)."""
    from tmt.training.cost import EVAL_SECONDS_PER_FRAME, SECONDS_PER_MAC, TRAIN_SECONDS_PER_FRAME

    constants = [SECONDS_PER_MAC, TRAIN_SECONDS_PER_FRAME, EVAL_SECONDS_PER_FRAME]
    rows = [row for rows in _fit_cost().cells([]).values() for row in rows]
    ratios = sorted(sum(c * t for c, t in zip(constants, terms, strict=True)) / s for terms, s in rows)
    assert len(ratios) >= 30
    assert 1 / 1.5 < ratios[len(ratios) // 2] < 1.5
    assert ratios[0] > 1 / 3 and ratios[-1] < 3


MEASURED_SMOKE_S = (24.8, 28.4)
"""``python -m bench run studies/table7.yaml --profile smoke --store /tmp/smk --no-archive --wandb disabled`` (20
cells) on the shared 2-core machine the constants were fitted on, the synthetic set already generated, two
one-thread training jobs running beside it: 24.8 s of CPU, 28.4 s wall (docs/studies.md)."""


def test_validate_estimates_the_smoke_job_within_twice_what_it_takes(capsys) -> None:
    from bench.cli import main

    assert main(["validate", str(ROOT / "studies" / "table7.yaml"), "--profile", "smoke"]) == 0
    text = capsys.readouterr().out
    seconds = float(re.search(r"smoke: \d+ cells ~(\d+) s", text).group(1))
    low, high = MEASURED_SMOKE_S
    assert high / 2 <= seconds <= 2 * low, text


def test_the_cost_table_sums_each_archive_and_counts_a_shared_cell_once(tmp_path: Path) -> None:
    module = _script("study_costs")

    def line(cell: str, seconds: float, per_update: float | None) -> str:
        result = {"train_time_s": seconds, "evaluation_time_s": 0.0, "convergence": {"stopped_updates": 1000}}
        if per_update is not None:
            result["seconds_per_update"] = per_update
        return json.dumps({"cell_id": cell, "config": {}, "result": result})

    (tmp_path / "a.cpu.jsonl").write_text(line("x", 3600.0, 0.9) + "\n" + line("y", 1800.0, 0.9) + "\n")
    (tmp_path / "b.cpu.jsonl").write_text(line("x", 3600.0, 0.9) + "\n" + line("z", 7200.0, None) + "\n")
    (tmp_path / "b.smoke.jsonl").write_text(line("s", 36.0, None) + "\n")
    rows = module.table(tmp_path, "cpu").splitlines()
    assert rows[2] == "| a.cpu | 2 | 1.50 | 0.50 |"
    assert rows[3] == "| b.cpu | 2 | 3.00 |  |"  # one cell without a timed step: no idle-core total
    assert rows[4] == "| every distinct cell | 3 | 3.50 | |"
