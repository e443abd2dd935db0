"""``python -m tmt evaluate``: score a trained model (``model.pt`` from ``tmt train``) with the test protocol."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tmt.cli.help_format import DefaultsHelpFormatter
from tmt.cli.threads import add_threads_argument, apply_threads
from tmt.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        formatter_class=DefaultsHelpFormatter,
        help="evaluate a trained model on a dataset's test split",
        description="Run the evaluation protocol (MixSTE chunking or centred windows, flip averaging) on the "
        "test split and print MPJPE, P-MPJPE, N-MPJPE and MPJVE per action (and PCK / AUC on MPI-INF-3DHP). "
        "Data options default to the ones the model was trained with.",
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="model.pt written by `tmt train`")
    parser.add_argument("--data", type=Path, help="dataset folder (default: the training run's)")
    parser.add_argument("--keypoints", help="2D keypoint set (default: the training run's)")
    parser.add_argument("--mix", type=float, help="paper Eq. 2 m (default: the training run's)")
    parser.add_argument("--no-flip-test", action="store_true", help="no test-time flip averaging")
    parser.add_argument("--device", default="cpu", help="torch device")
    add_threads_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress over the test sequences")
    parser.add_argument("--json", type=Path, help="also write the metrics to this JSON file (default: none)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tmt.training.evaluate import Predictor
    from tmt.training.experiment import evaluate_test_split, load_dataset, load_trained_model

    if not args.checkpoint.exists():
        raise ConfigError(f"--checkpoint: {args.checkpoint} does not exist")
    apply_threads(args.threads)
    model, config, strategy = load_trained_model(args.checkpoint, device=args.device)
    data_updates = {
        key: value
        for key, value in (("root", args.data), ("keypoints", args.keypoints), ("mix_towards_gt", args.mix))
        if value is not None
    }
    config = config.model_copy(update={"data": config.data.model_copy(update=data_updates)})
    dataset = load_dataset(config)
    predictor = Predictor(
        model,
        strategy,
        dataset.skeleton,
        config.model.frames,
        flip_test=not args.no_flip_test,
        batch_clips=config.eval.batch_clips,
        device=args.device,
    )
    metrics = evaluate_test_split(predictor, dataset, progress=not args.quiet)
    print(f"{'action':<14} {'MPJPE':>8} {'P-MPJPE':>8} {'MPJVE':>8}")
    for group, value in metrics["per_action"]["mpjpe"].items():
        p2 = metrics["per_action"]["p_mpjpe"][group]
        ve = metrics["per_action"]["mpjve"].get(group, float("nan"))
        print(f"{group:<14} {value:8.2f} {p2:8.2f} {ve:8.2f}")
    print(f"{'Average':<14} {metrics['mpjpe']:8.2f} {metrics['p_mpjpe']:8.2f} {metrics['mpjve']:8.2f}")
    if "pck" in metrics:
        print(f"PCK@150mm {metrics['pck']:.1f} %   AUC {metrics['auc']:.1f} %")
    if args.json is not None:
        args.json.write_text(json.dumps(metrics, indent=1))
    return 0
