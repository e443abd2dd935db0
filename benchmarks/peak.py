"""The host's measured matrix-multiply peak per dtype: the yardstick for "fraction of peak".

The peak is the best rate torch.matmul reaches on large square products (where BLAS / oneDNN / cuBLAS are at
their best) with the threads the benchmarks use, so a fraction of 1.0 means "as fast as this machine
multiplies matrices in that dtype", not the vendor's paper number.
"""

from __future__ import annotations

import time

import torch

SIZES = {"cpu": (1024, 2048, 4096), "cuda": (4096, 8192)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(
    n: int, dtype: torch.dtype, device: str | torch.device = "cpu", seconds: float = 0.5
) -> float:
    """Best FLOP/s of an (n x n) @ (n x n) product over repeated calls for about ``seconds``."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up: library initialisation, kernel selection, page faults
    _sync(device)
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() > deadline:
            break
    return 2 * n**3 / best


def matmul_peak(dtype: torch.dtype, device: str | torch.device = "cpu", seconds: float = 0.5) -> dict:
    """Peak FLOP/s of ``dtype`` products on ``device``: the best rate over the sizes tried."""
    device = torch.device(device)
    rates = {n: matmul_rate(n, dtype, device, seconds) for n in SIZES.get(device.type, SIZES["cuda"])}
    size = max(rates, key=rates.get)
    return {"dtype": str(dtype).removeprefix("torch."), "flops": rates[size], "size": size, "rates": rates}
