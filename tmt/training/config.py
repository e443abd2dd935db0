"""The configuration of one experiment (data + model + optimisation + evaluation), as validated pydantic models.

``None`` in a field means "the backbone's reference default"; :meth:`ExperimentConfig.resolved` fills every such
field and returns a :class:`ResolvedConfig`, which states exactly what runs (and is hashed to identify a run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from tmt.errors import ConfigError
from tmt.losses import LOSS_TERMS
from tmt.training.defaults import RECIPES
from tmt.training.strategies import STRATEGIES
from tmt.validation import StrictModel, config_problem

BUILT_IN_STRATEGIES = tuple(STRATEGIES)
MAX_SIZE = 10**6
"""Upper bound of sizes (frames, widths, heads, batch sizes, strides): generous, but a typo such as 10**12
fails when the config is validated instead of when memory is allocated."""
MODEL_SIZE_FIELDS = ("depth", "dim", "heads", "drop_path")
"""The model fields that are backbone constructor arguments of the same name, ``None`` meaning the backbone's
own default."""
MAX_DEPTH = 1000
"""Upper bound of layers: every layer is built (on the meta device) when a study is validated."""
MAX_WINDOWS = 10**9
"""Upper bound of training windows (Human3.6M at stride 1 has about 1.6 million)."""
MAX_EPOCHS = 100_000
"""Upper bound of epochs and of epoch counts (patience, lr halving period)."""


class DataConfig(StrictModel):
    dataset: Literal["h36m", "mpi_inf_3dhp"] = "h36m"
    root: Path = Path("data/synthetic")
    keypoints: str = Field(
        "gt", description="2D keypoint set: data_2d_h36m_<keypoints>.npz ('gt', 'cpn_ft_h36m_dbb')"
    )
    mix_towards_gt: float | None = Field(
        None, ge=0.0, le=1.0, description="paper Eq. 2: P2 = K + m (GT - K) with K the keypoint set above"
    )
    synthetic: Literal["smoke", "small", "full"] | None = Field(
        None,
        description="generate the synthetic Human3.6M-like set of this size into root when it is missing",
    )
    synthetic_seed: int = Field(0, ge=0)
    train_subjects: tuple[str, ...] | None = None
    test_subjects: tuple[str, ...] | None = None
    actions: tuple[str, ...] | None = Field(
        None, description="restrict to these action groups (default: all)"
    )
    train_stride: int | None = Field(
        None,
        ge=1,
        le=MAX_SIZE,
        description="stride between training windows (default: T for seq2seq, 1 for seq2frame)",
    )
    max_train_windows: int | None = Field(
        None,
        ge=1,
        le=MAX_WINDOWS,
        description="use an evenly spaced subset of this many training windows (scaled profiles)",
    )
    validation_fraction: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="fraction of training recordings (all cameras) held out for model selection; 0: none",
    )


class ModelConfig(StrictModel):
    backbone: str = "mixste"
    frames: int = Field(27, ge=1, le=MAX_SIZE, description="T: frames per clip")
    depth: int | None = Field(
        None, ge=1, le=MAX_DEPTH, description="d_l (None: the backbone's reference value)"
    )
    dim: int | None = Field(None, ge=1, le=MAX_SIZE, description="d_m (None: the backbone's reference value)")
    heads: int | None = Field(None, ge=1, le=MAX_SIZE)
    drop_path: float | None = Field(None, ge=0.0, lt=1.0)
    attention: Literal["fused", "math"] = "fused"
    extra: dict[str, Any] = Field(default_factory=dict, description="further backbone keyword arguments")


class OptimConfig(StrictModel):
    optimizer: Literal["adamw", "adam"] | None = None
    lr: float | None = Field(None, gt=0.0)
    lr_decay: float | None = Field(
        None, gt=0.0, le=1.0, description="lr multiplied by this after every epoch"
    )
    lr_halve_every: int | None = Field(
        None, ge=1, le=MAX_EPOCHS, description="lr halved after every n-th epoch (MHFormer)"
    )
    lr_halving: Literal["instead", "also"] | None = Field(
        None,
        description="on a halving epoch the lr is multiplied by 0.5 instead of lr_decay (MHFormer's script) "
        "or by both ('also', this project's earlier rule); None: the backbone's recipe, else 'also'",
    )
    weight_decay: float | None = Field(None, ge=0.0)
    amsgrad: bool | None = None
    batch_frames: int | None = Field(
        None, ge=1, le=MAX_SIZE, description="batch size in frames (clips = frames // T)"
    )
    batch_clips: int | None = Field(
        None, ge=1, le=MAX_SIZE, description="batch size in clips (overrides batch_frames)"
    )
    epochs: int = Field(120, ge=1, le=MAX_EPOCHS)
    grad_clip: float | None = Field(None, gt=0.0)
    scale_grad_by_loss: bool = Field(
        False, description="reference MixSTE quirk loss.backward(loss.detach()): gradients scaled by the loss"
    )
    stop_at_plateau: bool = Field(
        False,
        description="end training once the validation MPJPE plateaus (eval.plateau_patience / "
        "eval.plateau_min_delta); optim.epochs, max_updates and max_wall_s stay caps. Off: a fixed number of "
        "epochs, as the paper trains",
    )
    max_updates: int | None = Field(
        None, ge=1, le=10**9, description="cap on optimisation updates, checked at the end of each epoch"
    )
    max_wall_s: float | None = Field(
        None,
        gt=0.0,
        le=1e8,
        description="cap on training wall time in seconds, checked at the end of each epoch",
    )


class TrainConfig(StrictModel):
    strategy: str = "tmt"
    velocity: Literal["root_relative", "absolute"] = Field(
        "root_relative",
        description="V3 from root-relative targets (what the loss sees) or absolute camera-space positions",
    )
    loss: dict[str, float] | None = Field(
        None, description="loss terms and coefficients (None: backbone default)"
    )
    extra_scale: Annotated[float, Field(gt=0.0, le=1e6)] | Literal["standardize"] = Field(
        1.0,
        description="scale of the extra channels in step 2: a fixed factor (1: the paper's raw metres per "
        "frame) or 'standardize' (each channel divided by its standard deviation over the training windows)",
    )
    flip_augment: bool = True
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: bool = False
    seed: int = 0
    device: str = Field("cpu", description="torch device string: cpu, cuda, cuda:1, mps")
    threads: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="torch intra-op threads (None: as the process has them; tmt's commands then set the idle "
        "cores of its CPU affinity, tmt.threads)",
    )
    time_updates: int = Field(
        0,
        ge=0,
        le=1000,
        description="before training, time this many batches of updates (on a copy of the state, restored "
        "afterwards) and record the fewest CPU seconds per update: a cost that does not depend on what "
        "else the machine ran; 0: no timing",
    )
    prefetch: int | None = Field(
        None,
        ge=0,
        le=64,
        description="batches assembled ahead in a background thread, pinned on CUDA (None: 2 on CUDA, 0 on "
        "CPU); the same batches either way",
    )

    @field_validator("device")
    @classmethod
    def _device_spelling(cls, value: str) -> str:
        """Only the spelling: whether this machine has the device is for whoever runs the config to say."""
        try:
            torch.device(value)
        except (RuntimeError, ValueError):
            raise ValueError(f"{value!r} is not a torch device; e.g. cpu, cuda, cuda:1, mps") from None
        return value


class EvalConfig(StrictModel):
    flip_test: bool = True
    selection: Literal["best_val", "last", "best_test"] = Field(
        "best_val",
        description="which epoch's weights are evaluated: best validation MPJPE (default), the last epoch, "
        "or the best test MPJPE (the MixSTE reference behaviour; looks at the test set)",
    )
    batch_clips: int = Field(64, ge=1, le=MAX_SIZE)
    target_mpjpe: float | None = Field(
        None, gt=0.0, description="mm; convergence = first epoch at or below it"
    )
    plateau_patience: int = Field(
        5, ge=1, le=MAX_EPOCHS, description="plateau = no val improvement > min_delta for n epochs"
    )
    plateau_min_delta: float = Field(0.1, ge=0.0, description="mm")
    tail_fraction: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="budget rule: a run that trains its fixed epochs converged when the best val MPJPE of "
        "this last fraction of them improves on the best before by at most tail_delta mm "
        "(tmt.training.convergence); None: only a plateau stop is convergence",
    )
    tail_delta: float = Field(
        1.0, ge=0.0, description="mm; the budget rule's largest improvement of the tail"
    )
    zero_root: bool | None = Field(
        None,
        description="set the predicted root joint to 0 before scoring, as MHFormer's test code does "
        "(None: the backbone's recipe: MHFormer yes, the others no)",
    )


class ExperimentConfig(StrictModel):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _known_names(self) -> ExperimentConfig:
        if self.train.strategy not in STRATEGIES:  # the built-in ones and any registered with --import
            raise ValueError(
                f"train.strategy: unknown strategy {self.train.strategy!r}; allowed: {', '.join(STRATEGIES)}"
            )
        unknown = sorted(set(self.train.loss or ()) - set(LOSS_TERMS))
        if unknown:
            raise ValueError(
                f"train.loss: unknown term(s) {', '.join(unknown)}; allowed: {', '.join(LOSS_TERMS)}"
            )
        if self.train.precision == "fp16" and torch.device(self.train.device).type != "cuda":
            raise ValueError(
                f"train.precision: fp16 needs a CUDA device (train.device is {self.train.device!r}); "
                "use bf16 or fp32 there"
            )
        return self

    def resolved(self) -> ResolvedConfig:
        """Fill every backbone-default field (``None``) from the backbone's model defaults and its reference
        recipe (:data:`tmt.training.defaults.RECIPES`), so the config states exactly what runs."""
        from tmt.models import model_defaults

        backbone = self.model.backbone
        sizes = model_defaults(backbone)
        recipe = RECIPES.get(backbone, RECIPES["mixste"])
        model_updates = {
            key: sizes[key] for key in MODEL_SIZE_FIELDS if getattr(self.model, key) is None and key in sizes
        }
        optim = self.optim
        optim_updates = {k: v for k, v in recipe["optim"].items() if getattr(optim, k) is None}
        if optim.batch_clips is not None or optim.batch_frames is not None:
            optim_updates.pop("batch_clips", None)
            optim_updates.pop("batch_frames", None)
        if (
            optim.batch_clips is not None
        ):  # it overrides batch_frames: the resolved config states only what runs
            optim_updates["batch_frames"] = None
        if optim.lr_halve_every is None and "lr_halve_every" not in recipe["optim"]:
            optim_updates.pop("lr_halve_every", None)
        train_updates = {"loss": dict(recipe["loss"])} if self.train.loss is None else {}
        eval_updates = {}
        if self.eval.zero_root is None:
            eval_updates["zero_root"] = bool(recipe.get("eval", {}).get("zero_root", False))
        return ResolvedConfig(
            data=self.data,
            model=self.model.model_copy(update=model_updates),
            optim=optim.model_copy(update=optim_updates),
            train=self.train.model_copy(update=train_updates),
            eval=self.eval.model_copy(update=eval_updates),
        )


class ResolvedConfig(ExperimentConfig):
    """An :class:`ExperimentConfig` whose backbone defaults are filled in: what runs, and what a cell's id
    hashes. Made by :meth:`ExperimentConfig.resolved` (or validated from a resolved config's dump), so code
    that receives one never resolves it again."""

    def resolved(self) -> ResolvedConfig:
        return self


def load_config(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a plain dict (e.g. from YAML) into an :class:`ExperimentConfig`, one readable error on failure."""
    from pydantic import ValidationError

    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        where, why = config_problem(err, ExperimentConfig)
        raise ConfigError(f"{source}: {where}: {why}") from None
