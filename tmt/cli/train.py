"""``python -m tmt train``: train and evaluate one backbone with one strategy, from flags or a YAML config."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tmt.cli.help_format import DefaultsHelpFormatter
from tmt.cli.threads import THREADS_HELP, apply_threads
from tmt.errors import ConfigError
from tmt.strict_yaml import non_finite_error, read_yaml
from tmt.training.config import BUILT_IN_STRATEGIES, ExperimentConfig, load_config
from tmt.training.settings import set_path

# flag -> (config path, help, type). Flags left unset keep the config file's value or the default that
# --help states (see _default_text).
FLAGS: dict[str, tuple[str, str, type]] = {
    "backbone": ("model.backbone", "backbone: mixste, poseformer, mhformer or a registered one", str),
    "frames": ("model.frames", "T, frames per clip (MHFormer: a multiple of 9)", int),
    "depth": ("model.depth", "d_l, number of blocks", int),
    "dim": ("model.dim", "d_m, model width", int),
    "heads": ("model.heads", "attention heads", int),
    "drop_path": ("model.drop_path", "maximum drop-path rate", float),
    "attention": ("model.attention", "fused (torch SDPA) or math (textbook attention)", str),
    "strategy": (
        "train.strategy",
        f"training strategy: {', '.join(BUILT_IN_STRATEGIES)} or a registered one",
        str,
    ),
    "data": (
        "data.root",
        "folder with data_3d_h36m.npz and data_2d_h36m_<keypoints>.npz (or the 3DHP npz)",
        Path,
    ),
    "dataset": ("data.dataset", "h36m or mpi_inf_3dhp", str),
    "keypoints": (
        "data.keypoints",
        "2D keypoint set, e.g. gt or cpn_ft_h36m_dbb (synthetic: synth_cpn)",
        str,
    ),
    "mix": (
        "data.mix_towards_gt",
        "paper Eq. 2: move the keypoints towards GT 2D by m in [0, 1] (default: unmixed)",
        float,
    ),
    "synthetic": (
        "data.synthetic",
        "generate the synthetic set of this size (smoke/small/full) if missing (default: never generate)",
        str,
    ),
    "max_train_windows": (
        "data.max_train_windows",
        "train on an evenly spaced subset of this many windows (default: all windows)",
        int,
    ),
    "epochs": ("optim.epochs", "training epochs", int),
    "lr": ("optim.lr", "initial learning rate", float),
    "lr_decay": ("optim.lr_decay", "lr multiplied by this after every epoch", float),
    "weight_decay": ("optim.weight_decay", "optimizer weight decay", float),
    "batch_frames": ("optim.batch_frames", "batch size in frames (clips = frames // T)", int),
    "batch_clips": ("optim.batch_clips", "batch size in clips (overrides --batch-frames)", int),
    "grad_clip": ("optim.grad_clip", "clip the gradient norm to this value (default: no clipping)", float),
    "precision": ("train.precision", "fp32, bf16 (CPU and GPU autocast) or fp16 (GPU)", str),
    "velocity": ("train.velocity", "V3 from root_relative targets (default) or absolute positions", str),
    "seed": ("train.seed", "seed for data order, initialisation and augmentation", int),
    "device": ("train.device", "torch device, e.g. cpu or cuda", str),
    "threads": ("train.threads", THREADS_HELP, int),
    "prefetch": (
        "train.prefetch",
        "batches gathered ahead in a background thread (default: 2 on CUDA, 0 on CPU)",
        int,
    ),
    "selection": (
        "eval.selection",
        "evaluated weights: best_val (default), last, best_test (reference)",
        str,
    ),
}


BACKBONES = ("mixste", "poseformer", "mhformer")


def _default_text(path: str, help_text: str) -> str:
    """``help_text`` with the value an unset flag takes, read from the config model, the backbones' own
    defaults and their training recipes, so that ``--help`` cannot drift from what runs."""
    from tmt.models import model_defaults
    from tmt.training.defaults import RECIPES

    if "default" in help_text:
        return help_text
    section, key = path.split(".")
    value = getattr(getattr(ExperimentConfig(), section), key)
    if value is not None:
        return f"{help_text} (default: {value})"
    if section == "model":
        per_backbone = {name: model_defaults(name).get(key) for name in BACKBONES}
    else:
        per_backbone = {name: RECIPES[name][section].get(key) for name in BACKBONES}
    listed = ", ".join(f"{name} {value}" for name, value in per_backbone.items() if value is not None)
    return f"{help_text} (default per backbone: {listed})"


def register(subparsers: argparse._SubParsersAction) -> None:
    from tmt.training.defaults import RECIPES

    parser = subparsers.add_parser(
        "train",
        formatter_class=DefaultsHelpFormatter,
        help="train and evaluate one configuration",
        description="Train a backbone with a strategy and evaluate it with the Human3.6M / MPI-INF-3DHP "
        "protocol. Every flag overrides the --config file; unset fields take the backbone's reference recipe. "
        "The run folder receives the resumable checkpoint, the selected model (model.pt) and result.json; "
        "rerunning with the same --out resumes.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="YAML file with data / model / optim / train / eval sections (default: none, flags only)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/train"), help="run folder")
    parser.add_argument("--no-flip", action="store_true", help="no flip augmentation in training")
    parser.add_argument("--no-flip-test", action="store_true", help="no test-time flip averaging")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training step")
    losses = ", ".join(f"{name} {json.dumps(RECIPES[name]['loss'])}" for name in BACKBONES)
    parser.add_argument("--loss", help=f"loss terms as JSON (default per backbone: {losses})")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress (neither the live bar nor the line per epoch)"
    )
    for flag, (path, help_text, kind) in FLAGS.items():
        parser.add_argument(
            f"--{flag.replace('_', '-')}", dest=flag, type=kind, help=_default_text(path, help_text)
        )
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    if args.config is not None:
        tree = read_yaml(args.config) or {}
        if not isinstance(tree, dict):
            raise ConfigError(f"{args.config}: expected a mapping of sections at the top level")
        why = non_finite_error(tree, "")
        if why:
            raise ConfigError(f"{args.config}: {why}")
    for flag, (path, _, _) in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            set_path(tree, path, str(value) if isinstance(value, Path) else value)
    if args.no_flip:
        set_path(tree, "train.flip_augment", False)
    if args.no_flip_test:
        set_path(tree, "eval.flip_test", False)
    if args.compile:
        set_path(tree, "train.compile", True)
    if args.loss is not None:
        try:
            set_path(tree, "train.loss", json.loads(args.loss))
        except json.JSONDecodeError as err:
            raise ConfigError(f"--loss: not valid JSON ({err})") from None
    return tree


def run(args: argparse.Namespace) -> int:
    from tmt.training.experiment import run_experiment
    from tmt.training.trainer import TrainingFailed

    config = load_config(config_from_args(args), source=str(args.config or "command line"))
    if config.train.threads is None:  # else the experiment sets them
        apply_threads(None)
    out: Path = args.out
    try:
        result = run_experiment(config, out, progress=not args.quiet, save_model=True)
    except TrainingFailed as err:
        print(f"training failed: {err.reason}")
        return 1
    if result is None:  # a data-parallel rank other than 0: rank 0 writes and prints the result
        return 0
    (out / "result.json").write_text(json.dumps(result, indent=1))
    m = result["metrics"]
    print(
        f"epochs {result['epochs_run']}, selected epoch {result['selection']['epoch']} ({result['selection']['rule']})"
    )
    print(f"MPJPE {m['mpjpe']:.2f} mm | P-MPJPE {m['p_mpjpe']:.2f} mm | MPJVE {m['mpjve']:.2f} mm")
    print(f"wrote {out / 'result.json'} and {out / 'model.pt'}")
    return 0
