"""Write the ``python -m tmt lift`` example inputs: 100 frames of a synthetic test-subject walk (S9, camera 0).

* ``walking_coco.json``: COCO keypoint results (one entry per frame: image_id, keypoints x, y, score), as 2D
  detectors write them; the left wrist is scored 0.1 in frames 40-44, as if occluded, so lift fills it.
* ``walking_h36m.npz``: the same 2D as a plain (100, 17, 2) array in Human3.6M joint order (key ``keypoints``).

Both are in pixels of a 1000 x 1002 image (the camera's). The 2D is the synthetic set's detector-like 2D
(tmt.data.synth); COCO's eyes and ears, which Human3.6M lacks, sit at the head (tmt.keypoints.h36m_to_coco).
The files are the same on every run: ``python examples/lift/make_example.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tmt.data.synth import generate
from tmt.keypoints import COCO_JOINTS, h36m_to_coco

FRAMES = 100
OCCLUDED = range(40, 45)
HERE = Path(__file__).parent


def main() -> None:
    pixels = generate("smoke", seed=0, subjects=["S9"]).positions_2d_detected["S9"]["Walking"][0][:FRAMES]
    pixels = pixels.astype(np.float64).round(1)
    np.savez_compressed(HERE / "walking_h36m.npz", keypoints=pixels.astype(np.float32))

    scores = np.random.default_rng(0).uniform(0.6, 1.0, (FRAMES, len(COCO_JOINTS))).round(2)
    scores[list(OCCLUDED), COCO_JOINTS.index("left_wrist")] = 0.1
    entries = [
        {
            "image_id": i,
            "category_id": 1,
            "keypoints": [float(v) for v in np.column_stack([xy, s]).reshape(-1)],
            "score": round(float(s.mean()), 3),
        }
        for i, (xy, s) in enumerate(zip(h36m_to_coco(pixels), scores, strict=True))
    ]
    (HERE / "walking_coco.json").write_text(json.dumps(entries) + "\n")


if __name__ == "__main__":
    main()
