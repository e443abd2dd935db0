"""``python -m tmt.data``: dataset tools. ``synth`` writes the embedded synthetic Human3.6M-like set."""

from __future__ import annotations

import argparse
import json
import sys
import time

from tmt.errors import TmtError


def build_parser() -> argparse.ArgumentParser:
    from tmt.data.synth import DEFAULT_DETECTOR, SIZES

    parser = argparse.ArgumentParser(prog="python -m tmt.data", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sizes = ", ".join(f"{name} {lo}-{hi}" for name, (lo, hi) in SIZES.items())
    synth = commands.add_parser(
        "synth",
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
        help=f"frames per sequence, drawn per sequence ({sizes}); default: small",
    )
    synth.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed gives identical arrays (default 0)"
    )
    synth.add_argument(
        "--detector-name",
        default=DEFAULT_DETECTOR,
        help=f"name of the detector-like keypoints, file data_2d_h36m_<NAME>.npz (default {DEFAULT_DETECTOR})",
    )
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_synth(args)
    except TmtError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
