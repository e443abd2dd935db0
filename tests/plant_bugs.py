"""The planted bugs of docs/testing.md, each planted in a scratch copy of the tree, and the default-suite
test that must catch it: ``python tests/plant_bugs.py`` prints, per bug, the test's exit status on the clean
copy (0) and with the bug planted (1). Exits 1 if a test passes with its bug or fails without it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]
BUGS = [  # (file, the code as it is, the bug, the test that catches it)
    (
        "tmt/training/evaluate.py",
        "pred = (pred + flip_pose(self._run(flip_pose(x, self.skeleton)), self.skeleton)) / 2",
        "pred = (pred + self._run(flip_pose(x, self.skeleton))) / 2",
        "tests/test_science_behaviour.py::test_flip_averaging_of_an_equivariant_model_is_its_plain_prediction",
    ),
    (
        "tmt/training/batches.py",
        "flips = np.concatenate([flips, ~flips])",
        "flips = np.concatenate([flips, flips])",
        "tests/test_science_behaviour.py::test_flip_augmentation_feeds_every_window_once_plain_and_once_mirrored",
    ),
    (
        "tmt/skeleton.py",
        "(1, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1, 1.5, 1.5, 4, 4, 1.5, 4, 4)",
        "(1, 1, 4, 4, 1, 4, 4, 1, 1, 1, 1.5, 1.5, 2.5, 2.5, 1.5, 2.5, 2.5)",
        "tests/test_science_literals.py::test_wmpjpe_weighs_each_joint_by_mixstes_weight",
    ),
    (
        "tmt/cameras.py",
        "return np.asarray(x) / w * 2.0 - np.array([1.0, h / w])",
        "return np.asarray(x) / h * 2.0 - np.array([w / h, 1.0])",
        "tests/test_science_literals.py::test_normalize_screen_coordinates_of_a_wide_frame",
    ),
    (
        "tmt/cameras.py",
        "distorted = xy * (radial + tan) + p * r2",
        "distorted = xy * radial + 2 * p * xy.prod(axis=-1, keepdims=True) + p[..., ::-1] * (r2 + 2 * xy**2)",
        "tests/test_science_literals.py::test_projection_uses_videopose3d_distortion",
    ),
    (
        "tmt/training/optimizer.py",
        "    opt = config.optim\n    halvings",
        "    opt = config.optim\n    epoch += 1\n    halvings",
        "tests/test_science_literals.py::test_learning_rate_of_each_backbones_recipe",
    ),
    (
        "bench/report/stats.py",
        "ALPHA = 0.05",
        "ALPHA = 0.10",
        "tests/test_science_behaviour.py::test_a_verdict_needs_p_below_005_even_when_the_ci_clears_zero",
    ),
    (
        "tmt/training/evaluate.py",
        "for k in range(len(starts) - 1, -1, -1):",
        "for k in range(len(starts)):",
        "tests/test_science_behaviour.py::test_overlapping_frames_of_the_last_chunk_are_scored_by_the_earlier_chunk",
    ),
    (
        "tmt/skeleton.py",
        "    left=(4, 5, 6, 11, 12, 13),\n    right=(1, 2, 3, 14, 15, 16),",
        "    left=(4, 5, 6, 11, 12, 16),\n    right=(1, 2, 3, 14, 15, 13),",
        "tests/test_science_literals.py::test_h36m_layout_and_left_right_lists_are_the_videopose3d_ones",
    ),
]


SKIPPED = (".git", "data", "runs", "mutants", "reports", "results", ".venv")
"""Top-level folders of the checkout that the tests do not need (``tmt/data`` is code and is copied)."""


def _outputs(directory: str, names: list[str]) -> list[str]:
    """What copytree leaves out: caches anywhere, and the SKIPPED folders at the top only."""
    top = Path(directory).resolve() == SRC
    return [n for n in names if n == "__pycache__" or (top and n in SKIPPED)]


def main() -> int:
    bad = 0
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "tree"
        for i, (path, old, new, test) in enumerate(BUGS, 1):
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(SRC, root, ignore=_outputs)
            text = (root / path).read_text()
            if text.count(old) != 1:
                print(f"bug {i}: {path} no longer holds the code it plants the bug in; update this script")
                bad += 1
                continue
            run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test]
            clean = subprocess.run(run, cwd=root, capture_output=True).returncode
            (root / path).write_text(text.replace(old, new))
            planted = subprocess.run(run, cwd=root, capture_output=True).returncode
            bad += clean != 0 or planted == 0
            print(f"bug {i}: clean {clean}, planted {planted}  {path}  {test}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
