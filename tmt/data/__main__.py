"""``python -m tmt.data``: dataset tools. ``synth`` writes the embedded synthetic Human3.6M-like set; ``check``
verifies a data folder (real or synthetic) in seconds, before a training run depends on it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tmt.cli.help_format import DefaultsHelpFormatter
from tmt.errors import TmtError


def build_parser() -> argparse.ArgumentParser:
    from tmt.data.synth import DEFAULT_DETECTOR, SIZES

    parser = argparse.ArgumentParser(prog="python -m tmt.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sizes = ", ".join(f"{name} {lo}-{hi}" for name, (lo, hi) in SIZES.items())
    synth = commands.add_parser(
        "synth",
        formatter_class=DefaultsHelpFormatter,
        help="write the synthetic Human3.6M-like set in the VideoPose3D npz format",
        description=(
            "Write data_3d_h36m.npz (world joints, 32-joint layout, metres), data_2d_h36m_gt.npz (GT 2D, px, "
            "4 cameras), data_2d_h36m_<detector>.npz (detector-like 2D) and synth_info.json into --out: "
            "7 subjects x 15 actions x 2 takes, 50 fps, readable by the Human3.6M loader."
        ),
    )
    synth.add_argument(
        "--out",
        required=True,
        help="a new or empty folder to write into (a folder of other files is refused)",
    )
    synth.add_argument(
        "--size",
        default="small",
        choices=list(SIZES),
        help=f"frames per sequence, drawn per sequence ({sizes})",
    )
    synth.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives identical arrays"
    )
    synth.add_argument(
        "--detector-name",
        default=DEFAULT_DETECTOR,
        help="name of the detector-like keypoints, file data_2d_h36m_<NAME>.npz",
    )
    synth.set_defaults(func=run_synth)
    check = commands.add_parser(
        "check",
        formatter_class=DefaultsHelpFormatter,
        help="verify a data folder and print what it holds",
        description=(
            "Load DIR with the loaders training uses: Human3.6M in the VideoPose3D layout (data_3d_h36m.npz "
            "and every data_2d_h36m_<keypoints>.npz: subjects, actions, 4 cameras per recording, 2D frames "
            "covering the mocap, joint counts) and MPI-INF-3DHP in the P-STMO layout (data_train_3dhp.npz, "
            "data_test_3dhp.npz) when its files are there. Prints subjects, actions, cameras, frames and "
            "keypoint sets; a broken folder is one line on stderr and exit status 2. See docs/data.md."
        ),
    )
    check.add_argument("root", metavar="DIR", type=Path, help="the data folder, e.g. data/h36m")
    check.set_defaults(func=run_check)
    return parser


def run_synth(args: argparse.Namespace) -> int:
    """Generate into --out (a new or empty folder, or one holding this very set: then nothing is done)."""
    from tmt.data.synth_folder import ensure_synthetic, generated_files

    start = time.perf_counter()
    root = ensure_synthetic(args.out, args.size, args.seed, args.detector_name, log=print)
    elapsed = time.perf_counter() - start
    for name in generated_files(args.detector_name):
        print(f"{root / name}")
    info = json.loads((root / "synth_info.json").read_text(encoding="utf-8"))
    frames = info["frames_per_sequence"]
    print(
        f"{info['num_sequences']} sequences, {frames['min']}-{frames['max']} frames each, "
        f"{info['mocap_frames']['total']} mocap frames in all ({elapsed:.1f} s)"
    )
    error = info["detector_2d_error_px"]
    print(f"mean 2D error of '{info['detector_name']}' vs GT 2D: {error['mean']:.2f} px")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Print what DIR holds; any problem propagates as the loaders' one-line DataError."""
    from tmt.data.check import check_folder

    start = time.perf_counter()
    for line in check_folder(args.root):
        print(line)
    print(f"ok: {args.root} loads ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except TmtError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
