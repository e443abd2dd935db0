"""One experiment end to end: data -> windows -> model -> training -> model selection -> test protocol.

This is the single entry point that ``python -m tmt train`` and the benchmark suite both call.
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tmt.data.dataset import PoseDataset
from tmt.data.synth_folder import ensure_synthetic
from tmt.data.windows import WindowBank
from tmt.errors import ConfigError, DataError
from tmt.models import build_model
from tmt.models.checkpoint import model_from_checkpoint, read_checkpoint, save_model
from tmt.progress import Progress
from tmt.skeleton import Skeleton
from tmt.training.batches import batch_clips, epoch_order
from tmt.training.config import MODEL_SIZE_FIELDS, ExperimentConfig, ResolvedConfig
from tmt.training.convergence import convergence_summary
from tmt.training.distributed import Processes
from tmt.training.evaluate import Predictor, evaluate_mpjpe, evaluate_protocol
from tmt.training.state import TrainState
from tmt.training.strategies import Strategy, get_strategy
from tmt.training.trainer import Callback, Trainer

CHECKPOINT = "checkpoint.pt"
MODEL_FILE = "model.pt"


def load_dataset(config: ExperimentConfig) -> PoseDataset:
    """Read the configured dataset, generating the synthetic set first when it is selected and missing."""
    data = config.data
    if data.dataset == "mpi_inf_3dhp":
        from tmt.data.mpi3dhp import load_mpi_inf_3dhp

        return load_mpi_inf_3dhp(data.root)
    from tmt.data.h36m import load_h36m

    if data.synthetic is not None:
        ensure_synthetic(data.root, data.synthetic, data.synthetic_seed)
    elif not Path(data.root).is_dir():  # a first run without data: say how to get some
        raise DataError(
            f"{data.root}: no such data folder; to generate the synthetic Human3.6M-like set there, pass "
            "--synthetic small (data.synthetic in a config; sizes smoke, small, full); real Human3.6M: docs/data.md"
        )
    kwargs: dict[str, Any] = {"mix_towards_gt": data.mix_towards_gt, "actions": data.actions}
    if data.train_subjects is not None:
        kwargs["train_subjects"] = data.train_subjects
    if data.test_subjects is not None:
        kwargs["test_subjects"] = data.test_subjects
    return load_h36m(data.root, data.keypoints, **kwargs)


def build_experiment_model(config: ExperimentConfig) -> torch.nn.Module:
    """The backbone with the input width the strategy needs (2 + extra channels)."""
    m = config.model
    kwargs = {k: getattr(m, k) for k in MODEL_SIZE_FIELDS if getattr(m, k) is not None}
    if m.attention != "fused":  # every built-in backbone's default; a user's backbone need not take it
        kwargs["attention"] = m.attention
    return build_model(
        m.backbone,
        in_chans=get_strategy(config.train.strategy).in_chans,
        frames=m.frames,
        **kwargs,
        **m.extra,
    )


def training_windows(
    config: ExperimentConfig, train: list, skeleton: Skeleton, eval_protocol: str
) -> WindowBank:
    """seq2seq backbones train on stride-T chunks, seq2frame ones on centred windows (stride 1 by default).

    ``data.max_train_windows`` keeps an evenly spaced subset of the windows (the scaled-down profiles).
    """
    mode = "seq2seq" if eval_protocol == "seq2seq" else "seq2frame"
    bank = WindowBank.from_sequences(
        train, config.model.frames, mode, stride=config.data.train_stride, skeleton=skeleton
    )
    limit = config.data.max_train_windows
    if limit is not None and limit < len(bank):
        keep = np.unique(np.linspace(0, len(bank) - 1, limit).round().astype(np.int64))
        bank.window_seq, bank.window_start = bank.window_seq[keep], bank.window_start[keep]
    return bank


def save_trained_model(model: torch.nn.Module, config: ExperimentConfig, path: Path) -> None:
    """The model checkpoint (backbone, constructor arguments, weights) plus the experiment that produced it."""
    save_model(model, path, experiment=config.model_dump(mode="json"))


def load_trained_model(path: Path, device: str = "cpu") -> tuple[torch.nn.Module, ExperimentConfig, Strategy]:
    """Rebuild a model saved by :func:`save_trained_model`, in eval mode, with its config and strategy."""
    return trained_model_from_payload(read_checkpoint(Path(path)), str(path), device)


def trained_model_from_payload(
    payload: Any, source: str, device: str = "cpu"
) -> tuple[torch.nn.Module, ExperimentConfig, Strategy]:
    """:func:`load_trained_model` on an already loaded file (``source`` names it in errors)."""
    if not isinstance(payload, dict) or "experiment" not in payload:
        raise DataError(f"{source}: not a model file written by `tmt train` (no 'experiment' entry)")
    config = ExperimentConfig.model_validate(payload["experiment"])
    model = model_from_checkpoint(payload, source).to(device)
    return model.eval(), config, get_strategy(config.train.strategy)


@dataclass
class _ReportingPredictor(Predictor):
    """A :class:`Predictor` that calls ``on_sequence`` after each sequence it predicts."""

    on_sequence: Callable[[], None] | None = None

    def predict(self, keypoints_2d: np.ndarray) -> np.ndarray:
        out = super().predict(keypoints_2d)
        if self.on_sequence is not None:
            self.on_sequence()
        return out


def evaluate_test_split(predictor: Predictor, dataset: PoseDataset, *, progress: bool = False) -> dict:
    """:func:`evaluate_protocol` on the test split; with ``progress``, shown over its sequences.

    The protocol predicts the sequences one by one through ``Predictor.predict``, so counting there shows
    how far a long evaluation (minutes on real data) has got without the protocol knowing about it.
    """
    if not progress:
        return evaluate_protocol(predictor, dataset.test, dataset.name)
    bar = Progress("evaluate", len(dataset.test), unit="test sequences")
    counting = _ReportingPredictor(
        **{f.name: getattr(predictor, f.name) for f in fields(Predictor)}, on_sequence=bar.advance
    )
    try:
        return evaluate_protocol(counting, dataset.test, dataset.name)
    finally:
        bar.close()


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def environment() -> dict[str, Any]:
    """The machine, the libraries and the code revision a result was produced with."""
    from tmt.revision import process_revision

    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "code_revision": process_revision(),
    }


@dataclass
class Experiment:
    """One configuration made ready to train (the prepare step): its data, split, model and windows.

    Everything here is built before the first update, so a bad configuration or data set fails before any
    training; the fit, evaluate and record steps read it.
    """

    config: ResolvedConfig
    processes: Processes
    strategy: Strategy
    dataset: PoseDataset
    train: list
    validation: list
    model: torch.nn.Module
    bank: WindowBank
    fingerprints: dict[str, str]
    """What two runs must share to be compared pair by pair (:func:`fingerprints`)."""

    def predictor(self) -> Predictor:
        """The test protocol's predictor of the current weights (validation and test alike)."""
        config = self.config
        return Predictor(
            self.model,
            self.strategy,
            self.dataset.skeleton,
            config.model.frames,
            flip_test=config.eval.flip_test,
            batch_clips=config.eval.batch_clips,
            device=config.train.device,
            autocast_dtype={"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.train.precision),
            zero_root=bool(config.eval.zero_root),
            compile=config.train.compile,
        )


def prepare(config: ExperimentConfig) -> Experiment:
    """Resolve ``config`` (a :class:`ResolvedConfig` is taken as it is), start the processes of a
    data-parallel run, read the data, hold out the validation recordings, build the model and the windows."""
    config = config.resolved()
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    processes = Processes.from_env()
    processes.start(config.train.device)
    dataset = load_dataset(config)
    fraction = config.data.validation_fraction
    train, validation = (
        dataset.split_validation(fraction, seed=config.train.seed) if fraction > 0 else (dataset.train, [])
    )
    if not train:
        raise ConfigError(f"data: no training sequences in {dataset.source}")
    if not dataset.test:
        raise ConfigError(f"data: no test sequences in {dataset.source}")
    seed_everything(config.train.seed)
    model = build_experiment_model(config).to(config.train.device)
    bank = training_windows(config, train, dataset.skeleton, model.eval_protocol)
    strategy = get_strategy(config.train.strategy)
    prints = fingerprints(model, bank, config)
    return Experiment(config, processes, strategy, dataset, train, validation, model, bank, prints)


def fingerprints(model: torch.nn.Module, bank: WindowBank, config: ExperimentConfig) -> dict[str, str]:
    """16 hex digits each of the initial weights and of the batch order (the windows, their count, the
    first epoch's shuffle and flips, the batch size; later epochs follow from the same seed).

    Two runs whose fingerprints agree start from the same weights and see the same batches in the same
    order, so a difference between them is a paired difference (the report's statistics,
    docs/statistics.md); runs that differ in either are compared as independent samples.
    """
    weights = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        weights.update(name.encode())
        weights.update(str(tuple(tensor.shape)).encode())
        weights.update(tensor.detach().to("cpu", torch.float64).numpy().tobytes())
    index, flips = epoch_order(len(bank), config.train.flip_augment, config.train.seed, 0)
    order = hashlib.sha256(f"{len(bank)}/{batch_clips(config)}".encode())
    order.update(index.astype(np.int64).tobytes())
    order.update(flips.tobytes())
    first = bank.batch(index[:1], flips[:1]) if len(bank) else None
    if first is not None:
        order.update(first.keypoints_2d.numpy().tobytes())
    return {"initial_weights": weights.hexdigest()[:16], "batch_order": order.hexdigest()[:16]}


def fit(
    experiment: Experiment, workdir: Path | None, callbacks: Sequence[Callback], progress: bool
) -> TrainState:
    """Train until a stopping rule fires, validating every epoch (and testing, for ``best_test``
    selection); resumes from ``workdir/checkpoint.pt`` when present."""
    config = experiment.config
    validate_on = experiment.validation or experiment.train
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(
        experiment.model,
        experiment.strategy,
        experiment.bank,
        config,
        validate=lambda _m: evaluate_mpjpe(experiment.predictor(), validate_on),
        test=(lambda _m: evaluate_mpjpe(experiment.predictor(), experiment.dataset.test))
        if config.eval.selection == "best_test"
        else None,
        checkpoint_path=workdir / CHECKPOINT if workdir is not None else None,
        callbacks=callbacks,
        progress=progress,
        processes=experiment.processes,
    )
    return trainer.fit()


def select_weights(experiment: Experiment, state: TrainState) -> int:
    """Load the weights the selection rule keeps into the model; returns their epoch."""
    rule = experiment.config.eval.selection
    if rule == "best_val" and state.best_val_state is not None:
        experiment.model.load_state_dict(state.best_val_state)
        return state.best_val_epoch
    if rule == "best_test" and state.best_test_state is not None:
        experiment.model.load_state_dict(state.best_test_state)
        return state.best_test_epoch
    return state.epoch


def evaluate(experiment: Experiment, progress: bool) -> tuple[dict[str, Any], float]:
    """The test protocol on the test split with the model's current weights: (metrics, seconds)."""
    t0 = time.perf_counter()
    metrics = evaluate_test_split(experiment.predictor(), experiment.dataset, progress=progress)
    return metrics, time.perf_counter() - t0


def record(
    experiment: Experiment,
    state: TrainState,
    selected_epoch: int,
    metrics: dict[str, Any],
    evaluation_time_s: float,
    ran_on: dict[str, Any],
) -> dict[str, Any]:
    """The JSON-able result record of a finished experiment."""
    config, dataset = experiment.config, experiment.dataset
    convergence = convergence_summary(
        state.history,
        config.eval.target_mpjpe,
        config.eval.plateau_patience,
        config.eval.plateau_min_delta,
        state.stop_reason,
        state.converged_epoch,
        config.eval.tail_fraction,
        config.eval.tail_delta,
    )
    if convergence.get("updates_to_target") is not None and state.seconds_per_update is not None:
        # the time to the target on an idle core: updates there x the measured CPU seconds per update
        convergence["core_time_to_target_s"] = convergence["updates_to_target"] * state.seconds_per_update
    return {
        "metrics": metrics,
        "history": state.history,
        "convergence": convergence,
        "fingerprints": experiment.fingerprints,
        "selection": {
            "rule": config.eval.selection,
            "epoch": selected_epoch,
            "validation": f"{len(experiment.validation)} held-out training sequences"
            if experiment.validation
            else "training set (no split)",
        },
        "num_parameters": sum(p.numel() for p in experiment.model.parameters()),
        "train_windows": len(experiment.bank),
        "train_time_s": state.wall_time_s,
        "seconds_per_update": state.seconds_per_update,
        "evaluation_time_s": evaluation_time_s,
        "epochs_run": state.epoch,
        "dataset": {"name": dataset.name, "keypoints": dataset.keypoints, "source": str(dataset.source)},
        "config": config.model_dump(mode="json"),
        "environment": environment(),
        "distributed": ran_on,
    }


def run_experiment(
    config: ExperimentConfig,
    workdir: Path | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    save_model: bool = False,
) -> dict[str, Any] | None:
    """Train and evaluate one configuration: prepare, fit, select the weights, evaluate, record.

    Resumes from ``workdir/checkpoint.pt`` when present. Under ``torchrun`` (``WORLD_SIZE`` > 1) the
    processes train one model data-parallel (:mod:`tmt.training.distributed`); rank 0 evaluates, writes and
    returns the result, the others None.

    With ``save_model`` the evaluated weights go to ``workdir/model.pt`` with the resolved configuration
    (read back by :func:`load_trained_model` and ``python -m tmt evaluate``).

    Returns a JSON-able result record (metrics in mm, per-epoch history, convergence, the selected epoch).
    Bad configurations and data raise :class:`tmt.errors.TmtError` before any training starts; a non-finite
    loss raises :class:`tmt.training.TrainingFailed`.
    """
    workdir = Path(workdir) if workdir is not None else None
    experiment = prepare(config)
    state = fit(experiment, workdir, callbacks, progress)
    ran_on = experiment.processes.describe(experiment.config.train.device)
    if not experiment.processes.main:
        return None
    selected_epoch = select_weights(experiment, state)
    if save_model and workdir is not None:
        save_trained_model(experiment.model, experiment.config, workdir / MODEL_FILE)
    metrics, evaluation_time_s = evaluate(experiment, progress)
    return record(experiment, state, selected_epoch, metrics, evaluation_time_s, ran_on)
