"""What each study's committed cells cost, from the archives in results/: the cost table of docs/studies.md.

Per archive (``results/<study>.<profile>.jsonl``): its cells, the core-hours they took (training and test
evaluation, one torch thread each, as measured while they ran: two cells at a time on a shared 2-core
machine), and, for cells that timed their step on restored state (``train.time_updates``), the core-hours an
idle core would have taken (CPU seconds per update times the updates made). The last row counts every
distinct cell once, since studies share cells::

    python benchmarks/study_costs.py            # markdown table on stdout
    python benchmarks/study_costs.py --profile cpu
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cell_costs(path: Path) -> dict[str, tuple[float, float | None]]:
    """cell id -> (measured core-seconds, idle-core seconds or None) for every finished cell of an archive."""
    costs: dict[str, tuple[float, float | None]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        result = record.get("result") or {}
        if "train_time_s" not in result:
            continue
        measured = result["train_time_s"] + result.get("evaluation_time_s", 0.0)
        per_update = result.get("seconds_per_update")
        updates = (result.get("convergence") or {}).get("stopped_updates")
        idle = per_update * updates if per_update is not None and updates is not None else None
        costs[record["cell_id"]] = (measured, idle)
    return costs


def _hours(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 3600:.2f}"


def table(results: Path, profile: str | None) -> str:
    rows = [
        "| archive | cells | core-hours measured | core-hours from the timed step (CPU s per update x updates) |",
        "|---|---|---|---|",
    ]
    every: dict[str, tuple[float, float | None]] = {}
    for path in sorted(results.glob("*.jsonl")):
        if profile is not None and not path.name.endswith(f".{profile}.jsonl"):
            continue
        costs = cell_costs(path)
        every.update(costs)
        idle = [i for _m, i in costs.values()]
        idle_total = sum(idle) if idle and None not in idle else None  # type: ignore[arg-type]
        rows.append(
            f"| {path.stem} | {len(costs)} | {_hours(sum(m for m, _i in costs.values()))} | {_hours(idle_total)} |"
        )
    measured = sum(m for m, _i in every.values())
    rows.append(f"| every distinct cell | {len(every)} | {_hours(measured)} | |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--profile", default=None, help="only the archives of this profile")
    args = parser.parse_args()
    print(table(args.results, args.profile))


if __name__ == "__main__":
    main()
