"""Parameter counts and FLOPs of a backbone, in two labelled conventions.

- ``paper``: what the paper's Table 4 (and most lifting papers) report: 2 x the multiply-accumulates that the
  ``thop`` profiler counts on one clip of the model in eval mode. thop counts nn.Module leaf layers only:
  Linear = in_features x output elements (bias not counted), ConvNd = output elements x in_channels / groups
  x kernel size (bias not counted), BatchNorm / LayerNorm / InstanceNorm = 2 x input elements, x 2 again
  when affine; activations, dropout and anything else count zero, and so do the attention matmuls
  (QK^T and AV are not layers). A layer called several times (MixSTE's shared norms) counts every call.
- ``full``: the paper count plus every matrix product outside those layers (attention QK^T and AV, whether
  fused or not), taken from the aten ops a forward pass runs. torch's own FlopCounterMode counts the fused
  CPU attention kernel as zero, so the fused kernel is counted here explicitly.

Counting runs a real forward pass, so it works on the meta device: ``measure_backbone`` builds the model
there and counts the full-size MixSTE in milliseconds without allocating its weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry, sdpa_flop_count

from tmt.errors import ConfigError
from tmt.models import build_model

PAPER = "paper: 2 x thop MACs of the layers, attention matmuls excluded"
FULL = "full: paper + attention matmuls"


def _linear_macs(m: nn.Linear, x: Tensor, y: Tensor) -> int:
    return m.in_features * y.numel()


def _conv_macs(m: _ConvNd, x: Tensor, y: Tensor) -> int:
    kernel = 1
    for k in m.kernel_size:
        kernel *= k
    return y.numel() * (x.shape[1] // m.groups) * kernel


def _norm_macs(m: nn.Module, x: Tensor, y: Tensor) -> int:
    affine = getattr(m, "affine", False) or getattr(m, "elementwise_affine", False)
    return 2 * x.numel() * (2 if affine else 1)


def _layer_rule(m: nn.Module) -> Callable[[Any, Tensor, Tensor], int] | None:
    if isinstance(m, nn.Linear):
        return _linear_macs
    if isinstance(m, _ConvNd) and not m.transposed:
        return _conv_macs
    if isinstance(m, (_BatchNorm, nn.LayerNorm, _InstanceNorm)):
        return _norm_macs
    return None


def _cpu_flash_flops(query: Tensor, key: Tensor, value: Tensor, *args: Any, **kwargs: Any) -> int:
    return sdpa_flop_count(query.shape, key.shape, value.shape)


# aten op -> FLOPs of one call: torch's matmul/convolution/attention formulas, plus the fused CPU attention
# kernel that torch.utils.flop_counter does not list (it would count as zero).
_OP_FLOPS: dict[Any, Callable[..., int]] = {
    **flop_registry,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_flops,
}


class _Count(TorchDispatchMode):
    """One forward pass: thop-rule MACs of the leaf layers, and aten matmul FLOPs outside those layers."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.layer_macs = 0
        self.outside_flops = 0
        self._inside = 0
        self._handles = []
        for m in model.modules():
            rule = _layer_rule(m)
            if rule is None or next(m.children(), None) is not None:
                continue
            self._handles.append(m.register_forward_pre_hook(self._enter))
            self._handles.append(m.register_forward_hook(self._leave(rule)))

    def _enter(self, module: nn.Module, inputs: tuple[Any, ...]) -> None:
        self._inside += 1

    def _leave(self, rule: Callable[[Any, Tensor, Tensor], int]) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...], output: Tensor) -> None:
            self._inside -= 1
            self.layer_macs += int(rule(module, inputs[0], output))

        return hook

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = _OP_FLOPS.get(func._overloadpacket)
        if formula is not None and not self._inside:
            self.outside_flops += int(formula(*args, out_val=out, **kwargs))
        return out

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()
        super().__exit__(*exc)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (every element of every parameter, as torch counts them)."""
    return sum(p.numel() for p in model.parameters())


def example_clip(model: nn.Module, batch: int = 1) -> Tensor:
    """A zero clip (batch, frames, num_joints, in_chans) on the model's device."""
    try:
        shape = (batch, model.frames, model.num_joints, model.in_chans)
    except AttributeError as err:
        raise ConfigError(f"{type(model).__name__} lacks {err.name}: pass a clip explicitly") from None
    device = next(model.parameters(), torch.empty(0)).device
    return torch.zeros(shape, device=device)


def _count(model: nn.Module, clip: Tensor | None) -> tuple[int, int]:
    """(paper FLOPs, full FLOPs) of one forward pass of ``model`` in eval mode on ``clip``."""
    clip = example_clip(model) if clip is None else clip
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), _Count(model) as count:
            model(clip)
    finally:
        model.train(training)
    paper = 2 * count.layer_macs
    return paper, paper + count.outside_flops


def paper_flops(model: nn.Module, clip: Tensor | None = None) -> int:
    """FLOPs of one clip in the paper's convention (2 x thop MACs; see the module docstring)."""
    return _count(model, clip)[0]


def full_flops(model: nn.Module, clip: Tensor | None = None) -> int:
    """FLOPs of one clip including the attention matmuls (see the module docstring)."""
    return _count(model, clip)[1]


@dataclass(frozen=True)
class Complexity:
    """Size and cost of one backbone. Per-frame numbers divide by the frames one clip predicts at
    evaluation: all T for seq2seq models, 1 (the centre frame) for seq2frame models."""

    model: str
    frames: int
    in_chans: int
    output_frames: int
    parameters: int
    paper_flops: int
    full_flops: int

    @property
    def paper_flops_per_frame(self) -> float:
        return self.paper_flops / self.output_frames

    @property
    def full_flops_per_frame(self) -> float:
        return self.full_flops / self.output_frames

    def table(self) -> str:
        """A small plain-text table (what ``python -m tmt complexity`` prints)."""
        width = max(len(PAPER), len(FULL))
        lines = [
            f"{self.model}: frames {self.frames}, in_chans {self.in_chans}",
            f"{'parameters':<{width}}  {self.parameters:>14,}  ({self.parameters / 1e6:.2f} M)",
            f"{'FLOPs':<{width}}  {'per clip':>14}  per output frame ({self.output_frames} per clip)",
        ]
        for label, flops in ((PAPER, self.paper_flops), (FULL, self.full_flops)):
            lines.append(
                f"{label:<{width}}  {flops / 1e9:>12.2f} G  {flops / self.output_frames / 1e9:.4f} G"
            )
        return "\n".join(lines)


def measure(model: nn.Module, clip: Tensor | None = None) -> Complexity:
    """Parameters and both FLOP counts of ``model`` on one clip (by default a zero clip of batch 1)."""
    clip = example_clip(model) if clip is None else clip
    paper, full = _count(model, clip)
    spec = getattr(model, "model_spec", None)
    frames = clip.shape[1]
    return Complexity(
        model=spec.name if spec is not None else type(model).__name__,
        frames=frames,
        in_chans=clip.shape[-1],
        output_frames=frames if getattr(model, "eval_protocol", "seq2seq") == "seq2seq" else 1,
        parameters=count_parameters(model),
        paper_flops=paper,
        full_flops=full,
    )


def measure_backbone(name: str, device: str | torch.device = "meta", **kwargs: Any) -> Complexity:
    """Build a registered backbone (on the meta device: no memory, no arithmetic) and measure it."""
    with torch.device(device):
        model = build_model(name, **kwargs)
    return measure(model)


def complexity_record(config: Any) -> dict[str, Any]:
    """What a count of a configuration's evaluation model on one clip records: its parameters and both FLOP
    counts, in the record format of a trained experiment (``tmt.training.experiment.record``: metrics,
    history, config, environment), so that a study's store and report read both alike. No data, no training,
    and on the meta device no memory or arithmetic either."""
    from tmt.training.experiment import build_experiment_model, environment
    from tmt.training.strategies import get_strategy

    with torch.device("meta"):
        model = build_experiment_model(config).eval()
        clip = torch.zeros(1, config.model.frames, 17, get_strategy(config.train.strategy).in_chans)
    t0 = time.perf_counter()
    metrics = {
        "num_parameters": count_parameters(model),
        "paper_flops": paper_flops(model, clip),
        "full_flops": full_flops(model, clip),
    }
    return {
        "metrics": metrics,
        "num_parameters": metrics["num_parameters"],
        "train_time_s": 0.0,
        "evaluation_time_s": time.perf_counter() - t0,
        "epochs_run": 0,
        "history": [],
        "config": config.model_dump(mode="json"),
        "environment": environment(),
    }


_COUNTED: dict[str, tuple[float, bool]] = {}


def frame_macs(config: Any) -> tuple[float, bool]:
    """(multiply-accumulates of one forward pass per input frame, whether the backbone is seq2seq) of a
    config's model, for estimating what it costs to train: a formula for each built-in backbone (its matmuls
    only; rough), a count of a user's backbone on one clip of the model, once per model."""
    m = config.model
    d, depth, T = m.dim or 512, m.depth or 8, m.frames
    if m.backbone == "poseformer":
        return depth * (17 * 8 * d * d + 8 * (17 * d) ** 2), False
    if m.backbone == "mhformer":  # hypothesis blocks per frame + the generator's 34 tokens of width T
        return depth * 36 * d * d + 3264 * T, False
    if m.backbone == "mixste":  # a spatial and a temporal block per layer
        return 17 * depth * (16 * d * d + 2 * d * (17 + T)), True
    key = m.model_dump_json() + config.train.strategy
    if key not in _COUNTED:
        from tmt.training.experiment import build_experiment_model

        model = build_experiment_model(config)
        seq2seq = getattr(model, "eval_protocol", "seq2seq") == "seq2seq"
        _COUNTED[key] = paper_flops(model) / 2 / model.frames, seq2seq
    return _COUNTED[key]
