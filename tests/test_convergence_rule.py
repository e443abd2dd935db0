"""The budget rule of convergence: a fixed number of epochs for every run, judged by its last fraction."""

from __future__ import annotations

import pytest

from tmt.training.convergence import convergence_summary, tail_improvement


def _history(val: list[float], updates_per_epoch: int = 100) -> list[dict]:
    return [
        {
            "epoch": e + 1,
            "val_mpjpe": v,
            "wall_time_s": 10.0 * (e + 1),
            "updates": updates_per_epoch * (e + 1),
        }
        for e, v in enumerate(val)
    ]


def test_tail_improvement_is_the_best_of_the_tail_against_the_best_before_it():
    # 10 epochs, tail 20 % = the last 2: best before 41.0 (epoch 6), best in the tail 40.6 -> 0.4 mm
    val = [60, 50, 45, 43, 42, 41.0, 41.3, 41.2, 40.6, 40.9]
    assert tail_improvement(val, 0.2) == pytest.approx(0.4)
    assert tail_improvement([50, 45, 44, 44.5], 0.25) == 0.0  # the tail is worse: no improvement
    assert tail_improvement([50, 40, 45, 46], 0.01) == 0.0  # at least one epoch in the tail
    assert tail_improvement([50], 0.2) is None  # nothing before the tail to compare with


@pytest.mark.parametrize(("last", "converged"), [(40.9, True), (40.0, False)])
def test_a_budget_run_converged_when_its_tail_improves_by_at_most_tail_delta(last, converged):
    val = [60, 50, 45, 43, 42, 41.0, 41.3, 41.2, 41.1, last]
    out = convergence_summary(_history(val), None, 5, 0.1, "epochs", None, tail_fraction=0.2, tail_delta=0.5)
    assert out["converged"] is converged
    assert out["tail_improvement_mm"] == pytest.approx(max(0.0, 41.0 - last))
    assert out["converged_epoch"] == (10 if converged else None)
    assert out["converged_updates"] == (1000 if converged else None)
    assert "budget" in out["rule"] and "20%" in out["rule"]


def test_without_the_budget_rule_a_run_at_its_epoch_cap_did_not_converge():
    out = convergence_summary(_history([60, 50, 49.9]), None, 1, 0.5, "epochs", None)
    assert out["converged"] is False and "tail_improvement_mm" not in out


def test_updates_to_the_target_are_those_made_by_the_first_epoch_at_or_below_it():
    out = convergence_summary(_history([60, 50, 45, 44], 750), 45.0, 5, 0.3, "epochs", None, 0.2, 1.0)
    assert (out["epochs_to_target"], out["updates_to_target"], out["time_to_target_s"]) == (3, 2250, 30.0)
    missed = convergence_summary(_history([60, 50]), 45.0, 5, 0.3, "epochs", None)
    assert missed["updates_to_target"] is None and missed["epochs_to_target"] is None


def test_a_report_says_how_a_budget_cell_ended_and_by_how_much_its_tail_improved():
    from bench.report.convergence import ending

    def cell(converged: bool, tail: float) -> dict:
        section = {"converged": converged, "stop_reason": "epochs", "stopped_epoch": 40}
        section |= {"stopped_updates": 30000, "tail_fraction": 0.2, "tail_improvement_mm": tail}
        return {f"convergence.{k}": v for k, v in section.items()}

    assert ending(cell(True, 0.12)) == (
        "converged: trained its budget of 40 epochs (30,000 updates); the last 20% of them improved the best "
        "validation MPJPE by 0.12 mm"
    )
    assert ending(cell(False, 0.8)).startswith("not converged: trained its budget of 40 epochs")


def test_a_budget_cell_that_converged_at_its_epoch_cap_is_counted_once():
    import pandas as pd

    from bench.report.convergence import counts, summary_line

    endings = pd.DataFrame(
        {
            "converged": [True, False, True, None],
            "stop_reason": ["epochs", "epochs", "plateau", None],
        }
    )
    assert counts(endings) == {"cells": 4, "converged": 2, "capped": 1, "unknown": 1}
    assert summary_line(endings).startswith(
        "2 of 4 finished cells converged; 1 stopped at a cap (epochs 1); 1"
    )
