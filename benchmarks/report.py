"""Markdown tables from a benchmark JSON (``python benchmarks/report.py reports/benchmarks.json``).

Prints the machine line, the matmul peaks, one table per kind of benchmark, the speed-ups and the data-path
shares, ready to paste into docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _gib(value: float | None) -> str:
    return f"{value / 2**30:.2f}" if value else "-"


def _rate(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def _load(row: dict) -> str:
    load = row.get("load_average")
    return f"{load[0]:.1f}" if load else "-"


def tables(data: dict) -> str:
    machine = data["machine_info"]
    tmt = data["tmt"]
    info = machine.get("tmt", {})
    lines = [
        f"Machine: {machine.get('cpu', {}).get('brand_raw', machine.get('processor', '?'))}, "
        f"{info.get('cpu_count')} CPUs, torch {info.get('torch')}, {info.get('threads')} threads, "
        f"CPU flags {', '.join(info.get('cpu_flags', [])) or '-'}, GPU {info.get('cuda') or 'none'}; "
        f"load average at start {info.get('load_average_at_start')}, at end {tmt.get('load_average_at_end')}; "
        f"run {data.get('datetime', '?')}.",
        "",
        "| matmul peak | GFLOP/s | at n |",
        "|---|---:|---:|",
    ]
    for key, peak in tmt["peaks"].items():
        lines.append(f"| {key} | {peak['flops'] / 1e9:.0f} | {peak['size']} |")
    heads = {
        "train": "| case | precision | attention | strategy | compile | clips/s | ms/update | GFLOP/s | of peak | peak GiB | step GiB | load |",
        "evaluate": "| case | precision | attention | clips/s | GFLOP/s | of peak | load |",
        "validate": "| case (one epoch's validation) | precision | compile | sequences | frames/s | seconds | load |",
        "data": "| case | strategy | windows/s | ms per batch | load |",
        "data_full": "| full-size set | step | windows | seconds | windows/s | peak GiB | wait ms per step | load |",
    }
    for kind, head in heads.items():
        rows = [r for r in tmt["results"] if r["kind"] == kind]
        if not rows:
            continue
        lines += ["", head, _rule(head)]
        for r in rows:
            if kind == "train":
                compiled = f"yes ({r['first_call_s']:.0f} s)" if r["compile"] else "no"
                cells = [r["case"], r["precision"], r["attention"], r["strategy"], compiled]
                per_update = r.get("seconds_per_update")
                cells += [
                    _rate(r["clips_per_s"]),
                    f"{per_update * 1e3:.1f}" if per_update else "-",
                    f"{r['flops_per_s'] / 1e9:.0f}",
                    f"{r['fraction_of_peak']:.0%}",
                ]
                cells += [_gib(r.get("peak_memory")), _gib(r.get("step_memory")), _load(r)]
            elif kind == "evaluate":
                cells = [r["case"], r["precision"], r["attention"], _rate(r["clips_per_s"])]
                cells += [f"{r['flops_per_s'] / 1e9:.0f}", f"{r['fraction_of_peak']:.0%}", _load(r)]
            elif kind == "validate":
                compiled = f"yes ({r['first_call_s']:.0f} s)" if r["compile"] else "no"
                cells = [r["case"], r["precision"], compiled, str(r["sequences"]), _rate(r["frames_per_s"])]
                cells += [f"{r['seconds']:.2f}", _load(r)]
            elif kind == "data":
                cells = [r["case"], r["strategy"], f"{r['windows_per_s']:.0f}", f"{r['seconds'] * 1e3:.2f}"]
                cells.append(_load(r))
            else:
                cells = _full_size_cells(r)
            lines.append("| " + " | ".join(cells) + " |")
    if tmt["speedups"]:
        lines += ["", "| speed-up | case | precision | strategy | factor |", "|---|---|---|---|---:|"]
        for s in tmt["speedups"]:
            extra = f" (compile {s['compile_s']:.0f} s)" if "compile_s" in s else ""
            lines.append(
                f"| {s['kind']} | {s['case']} | {s['precision']} | {s['strategy']} | {s['speedup']:.2f}{extra} |"
            )
    if tmt["data_share"]:
        lines += ["", "| data path share of a bf16 step | strategy | share |", "|---|---|---:|"]
        for s in tmt["data_share"]:
            lines.append(f"| {s['case']} | {s['strategy']} | {s['share']:.2%} |")
    return "\n".join(lines)


def _full_size_cells(r: dict) -> list[str]:
    """One step of the full-size data path: loading and windowing (seconds each, peak memory), a paper
    batch (its windows), or prefetching (the wait per step on demand -> with two batches ahead)."""
    if r["step"] == "load + windows":
        seconds = f"{r['load_s']:.1f} + {r['windows_s']:.1f}"
        return [r["case"], r["step"], f"{r['windows']:,}", seconds, "", _gib(r["peak_memory"]), "", _load(r)]
    if r["step"] == "batch":
        rate = f"{r['windows_per_s']:.0f}"
        return [r["case"], "batch", str(r["batch"]), f"{r['seconds']:.4f}", rate, "", "", _load(r)]
    wait = f"{r['wait_s_on_demand'] * 1e3:.1f} -> {r['wait_s_prefetched'] * 1e3:.1f}"
    return [r["case"], "prefetch (2 ahead)", "", f"{r['step_s']:.4f}", "", "", wait, _load(r)]


def _rule(head: str) -> str:
    cells = head.strip("|").split("|")
    return (
        "|"
        + "|".join(
            "---:" if any(u in c for u in ("/s", "GiB", "peak", "ms", "load")) else "---" for c in cells
        )
        + "|"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, help="file written by --benchmark-json")
    args = parser.parse_args()
    print(tables(json.loads(args.json.read_text())))


if __name__ == "__main__":
    main()
