"""Shared set-up of the benchmark suite: device and threads, the matmul peak per dtype, load averages, and
a summary (throughput, FLOP/s, fraction of peak, speed-ups, data-path share) printed at the end and written
into the pytest-benchmark JSON under the key ``tmt``.

Run it with ``python -m pytest benchmarks --benchmark-only --benchmark-json reports/benchmarks.json``.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable

import pytest
import torch
from peak import matmul_peak
from workloads import PRECISIONS, load_average, synchronize

RATES = ("clips_per_s", "windows_per_s", "frames_per_s")
"""The throughput unit of each kind of result: training and evaluation clips, data-path windows, the
validation epoch's frames."""
MIN_SECONDS = 6.0  # timed work per benchmark, spread over at least MIN_ROUNDS rounds
MIN_ROUNDS, MAX_ROUNDS = 3, 30

_RESULTS: list[dict] = []
_PEAKS: dict[str, dict] = {}
_START: dict[str, object] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tmt benchmarks")
    group.addoption("--bench-device", default=None, help="cpu or cuda (default: cuda when available)")
    group.addoption(
        "--bench-threads", type=int, default=None, help="torch intra-op threads (default: torch's own)"
    )
    group.addoption(
        "--bench-no-compile",
        action="store_true",
        help="leave out the torch.compile benchmarks (minutes each)",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    _START["load_average"] = load_average()


def pytest_configure(config: pytest.Config) -> None:
    threads = config.getoption("--bench-threads", default=None)
    if threads:
        torch.set_num_threads(threads)
    config.addinivalue_line("markers", "compile: benchmarks of torch.compile'd training (slow to start)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--bench-no-compile"):
        skip = pytest.mark.skip(reason="--bench-no-compile")
        for item in items:
            if "compile" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> str:
    chosen = pytestconfig.getoption("--bench-device") or ("cuda" if torch.cuda.is_available() else "cpu")
    if chosen == "cuda" and not torch.cuda.is_available():
        pytest.skip("--bench-device cuda: no CUDA device")
    return chosen


def peak(precision: str, device: str) -> dict:
    """Matmul peak of the dtype a precision computes its products in, measured once per session."""
    key = f"{device}/{precision}"
    if key not in _PEAKS:
        _PEAKS[key] = matmul_peak(PRECISIONS[precision], device)
    return _PEAKS[key]


def measure(benchmark, fn: Callable[[], object], device: str) -> float:
    """Time ``fn`` with pytest-benchmark (warm-up first, enough rounds for MIN_SECONDS); median seconds."""

    def call() -> None:
        fn()
        synchronize(device)

    start = time.perf_counter()
    call()  # warm-up outside the statistics: allocator, kernel choice, first-touch page faults
    first = time.perf_counter() - start
    rounds = max(MIN_ROUNDS, min(MAX_ROUNDS, math.ceil(MIN_SECONDS / max(first, 1e-3))))
    benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=1)
    benchmark.extra_info["first_call_s"] = first
    return benchmark.stats.stats.median


def record(benchmark, kind: str, seconds: float, items: float, unit: str, **info) -> dict:
    """Store one result (throughput, FLOP/s, fraction of peak when ``flops`` and ``precision`` are given)."""
    row = {"kind": kind, "name": benchmark.name, unit: items / seconds, "seconds": seconds}
    row |= {"first_call_s": benchmark.extra_info.get("first_call_s"), **info}
    if info.get("flops"):
        row["flops_per_s"] = info["flops"] / seconds
        matmul = peak(info["precision"], info["device"])
        row["peak_flops_per_s"] = matmul["flops"]
        row["fraction_of_peak"] = row["flops_per_s"] / matmul["flops"]
    row["load_average"] = load_average()
    benchmark.extra_info.update(row)
    _RESULTS.append(row)
    return row


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    machine_info["tmt"] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": _cpu_flags(("avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx2")),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "load_average_at_start": _START.get("load_average"),
    }


def _cpu_flags(wanted: tuple[str, ...]) -> list[str]:
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return []
    return [flag for flag in wanted if flag in flags]


def summary() -> dict:
    """Speed-ups (fused over textbook attention, bf16 over fp32, compiled over eager) and data-path shares."""
    train = {_key(r): r for r in _RESULTS if r["kind"] == "train"}
    speedups = []
    for key, row in train.items():
        case, precision, attention, strategy, compiled = key
        if attention == "fused" and not compiled:
            for label, other in (
                ("fused_over_math", (case, precision, "math", strategy, False)),
                (
                    "bf16_over_fp32",
                    (case, "fp32", attention, strategy, False) if precision == "bf16" else None,
                ),
            ):
                if other in train:
                    speedups.append(
                        {"case": case, "precision": precision, "strategy": strategy, "kind": label}
                        | {"speedup": row["clips_per_s"] / train[other]["clips_per_s"]}
                    )
        if compiled and (case, precision, attention, strategy, False) in train:
            eager = train[(case, precision, attention, strategy, False)]
            speedups.append(
                {"case": case, "precision": precision, "strategy": strategy, "kind": "compiled_over_eager"}
                | {"speedup": row["clips_per_s"] / eager["clips_per_s"], "compile_s": row["first_call_s"]}
            )
    evaluated = {_key(r): r for r in _RESULTS if r["kind"] == "validate"}
    for (case, precision, attention, strategy, compiled), row in evaluated.items():
        eager = evaluated.get((case, precision, attention, strategy, False))
        if compiled and eager is not None:
            speedups.append(
                {"case": case, "precision": precision, "strategy": strategy, "kind": "compiled_validation"}
                | {"speedup": row["frames_per_s"] / eager["frames_per_s"], "compile_s": row["first_call_s"]}
            )
    shares = []
    for row in (r for r in _RESULTS if r["kind"] == "data"):
        step = train.get((row["case"], "bf16", "fused", row["strategy"], False))
        if step is not None:
            per_batch = row["seconds"]
            shares.append(
                {"case": row["case"], "strategy": row["strategy"], "data_s": per_batch}
                | {"step_s": step["seconds"], "share": per_batch / (per_batch + step["seconds"])}
            )
    return {"results": _RESULTS, "speedups": speedups, "data_share": shares, "peaks": _PEAKS}


def _key(row: dict) -> tuple:
    return (row["case"], row["precision"], row["attention"], row["strategy"], row["compile"])


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list, output_json: dict) -> None:
    output_json["tmt"] = summary() | {"load_average_at_end": load_average()}


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write(f"tmt benchmarks (threads {torch.get_num_threads()}, load average now {load_average()})")
    for row in _RESULTS:
        rate = next(f"{row[k]:10.1f} {k}" for k in RATES if k in row)
        flops = f"  {row['flops_per_s'] / 1e9:7.1f} GFLOP/s" if "flops_per_s" in row else ""
        frac = (
            f"  {row['fraction_of_peak']:5.1%} of {row['precision']} peak"
            if "fraction_of_peak" in row
            else ""
        )
        memory = f"  peak memory {row['peak_memory'] / 2**30:5.2f} GiB" if row.get("peak_memory") else ""
        write(f"{row['name']:70s} {rate}{flops}{frac}{memory}")
    result = summary()
    for s in result["speedups"]:
        extra = f" (compile {s['compile_s']:.0f} s)" if "compile_s" in s else ""
        write(
            f"speed-up {s['kind']:20s} {s['case']:18s} {s['precision']} {s['strategy']:8s} x{s['speedup']:.2f}{extra}"
        )
    for s in result["data_share"]:
        write(f"data path share of a bf16 step {s['case']:18s} {s['strategy']:8s} {s['share']:.2%}")
