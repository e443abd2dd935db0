"""``python -m tmt lift``: lift your own 2D keypoints (npz, COCO JSON, CSV) to 3D with a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

from tmt.cli.help_format import DefaultsHelpFormatter
from tmt.cli.threads import add_threads_argument, apply_threads
from tmt.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lift",
        formatter_class=DefaultsHelpFormatter,
        help="lift one person's 2D keypoints to 3D",
        description="Lift one person's 2D keypoints (npz / npy array or VideoPose3D npz, COCO keypoint JSON, "
        "CSV) to root-relative 3D in metres with a model.pt of `tmt train`, published MixSTE weights or the "
        "shipped model, using the evaluation protocol (chunks or centred windows, flip averaging). Writes "
        "pose3d.npz, pose3d.csv and lift.json into --out; nothing is written when the input or the checkpoint "
        "is rejected. See docs/lift.md.",
    )
    parser.add_argument("input", type=Path, help="keypoint file: .npz, .npy, .json (COCO) or .csv")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="model.pt or a reference MixSTE .bin (default: the shipped model, a small MixSTE trained with TMT "
        "on the synthetic set)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        help="video frame size in pixels; needed for pixel coordinates unless the file records it (default: none, "
        "the coordinates are already normalised)",
    )
    parser.add_argument(
        "--layout", help="joint order of the input: h36m or coco (default: the file's, else h36m)"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: runs/lift/<input name>)")
    parser.add_argument("--fps", type=float, default=50.0, help="frame rate of the input, for the animation")
    parser.add_argument(
        "--render", action="store_true", help="also draw a contact sheet PNG and a GIF (and MP4)"
    )
    parser.add_argument("--no-flip", action="store_true", help="no test-time flip averaging")
    parser.add_argument(
        "--min-score",
        type=float,
        default=0.3,
        help="joints scored below this are treated as missing and interpolated",
    )
    parser.add_argument(
        "--sequence", help="VideoPose3D npz: VIDEO or SUBJECT/ACTION (default: the only one the file holds)"
    )
    parser.add_argument("--camera", type=int, default=0, help="VideoPose3D npz: camera index")
    parser.add_argument("--heads", type=int, default=8, help="reference MixSTE weights: attention heads")
    parser.add_argument("--device", default="cpu", help="torch device")
    add_threads_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tmt.lifting import check_output_folder, lift, shipped_model

    if args.fps <= 0:
        raise ConfigError(f"--fps must be positive, got {args.fps}")
    apply_threads(args.threads)
    out: Path = args.out if args.out is not None else Path("runs/lift") / args.input.stem
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} exists and is not a folder")
    check_output_folder(out, args.render)
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = shipped_model()
        print(
            f"no --checkpoint: lifting with the shipped model {checkpoint.name}, a small MixSTE trained with TMT "
            "on the synthetic set (its MPJPE and how it was trained: docs/lift.md)"
        )
    result = lift(
        args.input,
        checkpoint,
        image_size=args.image_size,
        layout=args.layout,
        min_score=args.min_score,
        flip=not args.no_flip,
        sequence=args.sequence,
        camera=args.camera,
        heads=args.heads,
        device=args.device,
    )
    result.settings.update(fps=args.fps, render=args.render)
    written = result.save(out)
    if args.render:
        from tmt.viz import render

        written += render(result.keypoints_2d, result.positions_3d, out, fps=args.fps)
    s = result.settings
    flip = "with" if s["flip"] else "without"
    print(
        f"lifted {s['num_frames']} frames of {s['input']}, {s['layout']} layout, with {s['backbone']} / "
        f"{s['strategy']}, {s['frames']}-frame clips, {flip} flip averaging"
    )
    filled = ", ".join(f"{joint} {n}" for joint, n in result.filled.items())
    print(f"filled by interpolation (frames per joint): {filled or 'none'}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
