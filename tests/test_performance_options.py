"""The fast paths compute what the plain ones do: packed attention, bf16 autocast, the fused optimizer,
torch.compile; and full-size MixSTE trains at T 243 within 8 GiB."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from tmt.models import build_model
from tmt.models import layers as layers_module
from tmt.models.layers import (
    Block,
    VectorizedAttention,
    attention_path,
    packed_attention,
    vectorized_applies,
)
from tmt.training import ExperimentConfig
from tmt.training.optimizer import make_optimizer

ROOT = Path(__file__).resolve().parents[1]


def textbook(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """softmax(QK^T / sqrt(d)) V from a packed (N, L, 3 * dim) projection, in float64."""
    n, length, width = qkv.shape
    d = width // 3 // heads
    q, k, v = qkv.double().view(n, length, 3, heads, d).permute(2, 0, 3, 1, 4)
    out = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, -1) @ v
    return out.transpose(1, 2).reshape(n, length, heads * d)


@pytest.mark.parametrize("chunk_bytes", [64, 2**22], ids=["one-sequence-chunks", "default-chunks"])
def test_packed_attention_matches_the_formula_and_its_gradient(monkeypatch, chunk_bytes):
    monkeypatch.setattr(layers_module, "CHUNK_SCORE_BYTES", chunk_bytes)
    torch.manual_seed(0)
    qkv = (3 * torch.randn(7, 11, 3 * 12, dtype=torch.float64)).requires_grad_()
    grad = torch.randn(7, 11, 12, dtype=torch.float64)
    want = textbook(qkv, 3)
    (want_grad,) = torch.autograd.grad(want, qkv, grad)
    got = packed_attention(qkv, 3)
    (got_grad,) = torch.autograd.grad(got, qkv, grad)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_grad, want_grad, rtol=1e-10, atol=1e-10)
    with torch.no_grad():  # evaluation runs without the autograd node and keeps nothing
        torch.testing.assert_close(packed_attention(qkv, 3), want, rtol=1e-12, atol=1e-12)


def test_packed_attention_in_bf16_stays_close_to_float64():
    torch.manual_seed(0)
    qkv = torch.randn(64, 27, 3 * 64)
    want = textbook(qkv, 4)
    got = packed_attention(qkv.bfloat16(), 4)
    assert got.dtype == torch.bfloat16
    assert (got.double() - want).abs().max() < 0.02 * want.abs().max()


def test_fused_attention_picks_the_packed_kernel_for_short_or_low_precision_cpu_sequences():
    short, long = torch.zeros(2, 27, 24), torch.zeros(2, layers_module.PACKED_MAX_LENGTH + 1, 24)
    assert attention_path(short, "fused", 0.0) == "packed"
    assert attention_path(long, "fused", 0.0) == "sdpa"
    assert attention_path(long.bfloat16(), "fused", 0.0) == "packed"
    assert attention_path(short, "fused", 0.1) == "sdpa"  # attention dropout: SDPA applies it
    assert attention_path(short, "math", 0.0) == "math"
    with torch.device("meta"):
        assert attention_path(torch.zeros(2, 27, 24), "fused", 0.0) == "sdpa"


def test_mixste_trains_the_same_with_packed_and_textbook_attention():
    torch.manual_seed(0)
    kwargs = {"frames": 9, "dim": 32, "depth": 2, "heads": 4, "in_chans": 5, "drop_path": 0.0}
    fused = build_model("mixste", attention="fused", **kwargs).double()
    math = build_model("mixste", attention="math", **kwargs).double()
    math.load_state_dict(fused.state_dict())
    x = torch.randn(3, 9, 17, 5, dtype=torch.float64)
    target = torch.randn(3, 9, 17, 3, dtype=torch.float64)
    for model in (fused, math):
        (model(x) - target).square().mean().backward()
    for (name, a), b in zip(fused.named_parameters(), math.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12, msg=name)


def _config(**train) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "model": {"backbone": "mixste", "frames": 9, "depth": 2, "dim": 32, "heads": 4},
            "optim": {"batch_clips": 8, "lr": 1e-3},
            "train": {"strategy": "baseline", **train},
        }
    ).resolved()


def _train_losses(precision: str, steps: int = 6, compile: bool = False) -> list[float]:
    from tmt.data.windows import Batch
    from tmt.training.experiment import build_experiment_model
    from tmt.training.strategies import get_strategy
    from tmt.training.trainer import Trainer

    config = _config(precision=precision, compile=compile)
    torch.manual_seed(0)
    model = build_experiment_model(config)
    trainer = Trainer(model, get_strategy("baseline"), None, config, validate=lambda _m: 0.0, progress=False)
    generator = torch.Generator().manual_seed(1)
    kp = torch.randn(8, 9, 17, 2, generator=generator)
    pose = torch.randn(8, 9, 17, 3, generator=generator) * 0.1
    batch = Batch(kp, pose, torch.zeros(8, 9, 3))
    return [trainer.train_batch(batch)["zeros"] for _ in range(steps)]


def test_bf16_autocast_training_follows_fp32():
    fp32, bf16 = _train_losses("fp32"), _train_losses("bf16")
    assert bf16[-1] < bf16[0]  # it learns
    for a, b in zip(fp32, bf16, strict=True):
        assert b == pytest.approx(a, rel=0.02)


def test_the_fused_optimizer_takes_the_same_steps_as_the_reference_loop():
    torch.manual_seed(0)
    config = _config()
    size = {"frames": 9, "dim": 32, "depth": 2, "heads": 4, "drop_path": 0.0}  # no randomness in the steps
    model, reference = build_model("mixste", **size), build_model("mixste", **size)
    reference.load_state_dict(model.state_dict())
    fused = make_optimizer(model, config)
    assert fused.defaults["fused"] is True
    loop = torch.optim.AdamW(
        reference.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay, foreach=False
    )
    x = torch.randn(2, 9, 17, 2)
    for _ in range(3):
        for net, optimizer in ((model, fused), (reference, loop)):
            optimizer.zero_grad()
            net(x).square().mean().backward()
            optimizer.step()
    # Adam moves every weight by about lr per step whatever its gradient's size, so rounding differences in
    # near-zero gradients show up at a small fraction of lr
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=0.02 * config.optim.lr)


@pytest.mark.slow
def test_compiled_training_follows_eager():
    eager, compiled = _train_losses("fp32", steps=3), _train_losses("fp32", steps=3, compile=True)
    assert compiled == pytest.approx(eager, rel=1e-3)


def test_vectorized_attention_is_the_formula_and_its_gradient_the_formulas():
    """Feature-major (3 * dim, L, N) in, (dim, L, N) out: the textbook attention of every sequence; the
    written-out backward agrees with finite differences (gradcheck, float64)."""
    torch.manual_seed(0)
    heads, dim, length, n = 2, 8, 5, 3
    qkv = torch.randn(3 * dim, length, n, dtype=torch.float64, requires_grad=True)
    out = VectorizedAttention.apply(qkv, heads)
    expected = textbook(qkv.permute(2, 1, 0), heads).permute(2, 1, 0)  # (N, L, 3 dim) -> (dim, L, N)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: VectorizedAttention.apply(x, heads), (qkv,))


def test_vectorized_attention_takes_only_compiled_short_cpu_sequences(monkeypatch):
    short, long = torch.zeros(17, 4, 32), torch.zeros(300, 4, 32)
    assert not vectorized_applies(short, 0.0)  # eager: the formulas would materialise every product
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert vectorized_applies(short, 0.0)
    assert not vectorized_applies(long, 0.0)
    assert not vectorized_applies(short, 0.1)  # attention dropout: the other paths apply it
    with torch.device("meta"):
        assert not vectorized_applies(torch.zeros(17, 4, 32), 0.0)


@pytest.mark.parametrize("vectorized", [False, True], ids=["eager-paths", "vectorized-path"])
@pytest.mark.parametrize("attention", ["fused", "math"])
def test_a_length_first_block_computes_what_a_batch_first_one_does(attention, vectorized, monkeypatch):
    """Same weights, same seed: (L, N, dim) tokens give the (N, L, dim) result, drop-path draws included,
    whether attention takes the eager paths or the compiled path's (run eagerly here)."""
    monkeypatch.setattr(layers_module, "vectorized_applies", lambda x, p: vectorized)
    torch.manual_seed(0)
    first = Block(16, 2, 32, drop_path_rate=0.5, attention=attention).double()
    length_first = Block(16, 2, 32, drop_path_rate=0.5, attention=attention, batch_first=False).double()
    length_first.load_state_dict(first.state_dict())
    x = torch.randn(6, 9, 16, dtype=torch.float64)  # N=6 sequences of L=9 tokens
    torch.manual_seed(1)
    expected = first(x)
    torch.manual_seed(1)
    torch.testing.assert_close(length_first(x.transpose(0, 1)).transpose(0, 1), expected)


def _step_and_gradients(trainer, inp, target):
    trainer.model.zero_grad(set_to_none=True)
    torch.manual_seed(2)
    loss = trainer.step_fn(inp, target)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in trainer.model.parameters()]


def test_the_compiled_step_computes_the_eager_fp32_loss_and_gradients():
    """The whole TMT step (forward with vectorized attention, the loss; the derived backward) compiled,
    against the eager step in fp32 on the same weights, batch and drop-path draws: losses within 1e-5
    relative, every gradient within 1e-4 relative to its largest entry (float32 sums in another order)."""
    from tmt.training.experiment import build_experiment_model
    from tmt.training.strategies import get_strategy
    from tmt.training.trainer import Trainer

    config = _config(strategy="tmt", compile=True)
    torch.manual_seed(0)
    model = build_experiment_model(config)
    trainer = Trainer(model, get_strategy("tmt"), None, config, validate=lambda _m: 0.0, progress=False)
    generator = torch.Generator().manual_seed(1)
    kp, pose = torch.randn(8, 9, 17, 2, generator=generator), torch.randn(8, 9, 17, 3, generator=generator)
    inp = get_strategy("tmt").step_input("features", kp, pose * 0.1)
    compiled_loss, compiled_grads = _step_and_gradients(trainer, inp, pose)
    trainer.step_fn = trainer._step
    eager_loss, eager_grads = _step_and_gradients(trainer, inp, pose)
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=0)
    for (name, _), a, b in zip(model.named_parameters(), compiled_grads, eager_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * float(b.abs().max()), msg=name)


MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys
    import torch
    sys.path.insert(0, sys.argv[1])
    from tmt.data.windows import Batch
    from tmt.training import ExperimentConfig
    from tmt.training.experiment import build_experiment_model
    from tmt.training.strategies import get_strategy
    from tmt.training.trainer import Trainer

    config = ExperimentConfig.model_validate({
        "model": {"backbone": "mixste", "frames": 243, "depth": 8, "dim": 512},
        "optim": {"batch_clips": 1},
        "train": {"strategy": "baseline", "precision": sys.argv[2]},
    }).resolved()
    model = build_experiment_model(config)
    trainer = Trainer(model, get_strategy("baseline"), None, config, validate=lambda _m: 0.0, progress=False)
    batch = Batch(torch.randn(1, 243, 17, 2), torch.randn(1, 243, 17, 3) * 0.1, torch.zeros(1, 243, 3))
    losses = [trainer.train_batch(batch)["zeros"] for _ in range(2)]
    peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print(json.dumps({"peak_bytes": peak, "losses": losses}))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak resident set from /proc")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_full_size_mixste_trains_on_one_t243_clip_within_8_gib(precision):
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(ROOT), precision],
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(map(torch.isfinite, torch.tensor(result["losses"])))
    assert result["peak_bytes"] < 8 * 2**30, result


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_the_gpu_check_refuses_a_machine_without_cuda_and_writes_nothing(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 2
    assert "no CUDA device" in done.stderr
    assert not (tmp_path / "out").exists()


def test_the_gpu_study_script_runs_a_study_with_several_cells_at_once_and_counts_them(tmp_path: Path) -> None:
    """DEVICE=cpu: the prepared GPU script's own test, with fig2's smoke profile (2 cells, 2 jobs); it writes
    only under OUT and summarises cells per hour."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out"
    env = {**__import__("os").environ, "DEVICE": "cpu", "PROFILE": "smoke", "PYTHONPATH": str(root)}
    run = subprocess.run(
        ["bash", str(root / "benchmarks" / "gpu_study.sh"), "studies/fig2.yaml", "2", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((out / "gpu_study.json").read_text())
    assert summary["cells"] == 2 and summary["jobs"] == 2 and summary["cells_per_hour"] > 0
    assert summary["gpu_utilisation_mean_pct"] is None  # nothing sampled without a GPU
    assert (out / "reports" / "fig2.smoke+train.device=cpu.md").exists()


def test_the_gpu_study_script_refuses_a_machine_without_cuda(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_study.sh"
    run = subprocess.run(
        ["bash", str(script), "studies/fig2.yaml", "2", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert run.returncode == 2 and "no CUDA device" in run.stderr
    assert not (tmp_path / "out").exists()
