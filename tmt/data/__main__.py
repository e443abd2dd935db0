"""``python -m tmt.data``: dataset tools. ``synth`` writes the embedded synthetic Human3.6M-like set."""

from __future__ import annotations

import argparse
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
    synth.add_argument("--out", required=True, help="folder to write into (created if missing)")
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
    from tmt.data.synth import write_synth

    start = time.perf_counter()
    info = write_synth(args.out, size=args.size, seed=args.seed, detector_name=args.detector_name)
    elapsed = time.perf_counter() - start
    for path in info["files"].values():
        print(f"wrote {path}")
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
