"""An example plugin: a backbone (a per-frame MLP that lifts every frame of a clip, the seq2seq protocol)
and a training strategy (TMT with its two steps in the other order: ground-truth velocity first, then zeros).

Register both for a command with ``--import my_backbone`` (run from this folder, or put the folder on
PYTHONPATH), then name them like built-in ones::

    python -m tmt train --import my_backbone --backbone mlp_lifter --strategy tmt_gt_first ...
    python -m bench run --import my_backbone examples/extending/mlp_study.yaml --profile smoke

docs/extending.md explains what a backbone must provide.
"""

from __future__ import annotations

import torch
from torch import nn

from tmt.models import register_model
from tmt.training import Strategy, register_strategy

register_strategy(Strategy("tmt_gt_first", extra="v3", steps=("features", "zeros")))


@register_model("mlp_lifter")
class MLPLifter(nn.Module):
    """(B, T, J, C) 2D clips -> (B, T, J, 3) 3D poses, each frame on its own."""

    eval_protocol = "seq2seq"  # predicts every frame of the clip ("seq2frame": only the centre one)

    def __init__(
        self,
        in_chans: int = 2,  # 2 for the plain baseline, 5 for TMT's 2D + 3 extra channels
        num_joints: int = 17,
        frames: int = 27,  # the clip length T the training windows have
        dim: int = 256,  # model.dim in a config or study
        depth: int = 2,  # model.depth
        drop_path: float = 0.0,  # model.drop_path (a dropout rate here)
    ) -> None:
        super().__init__()
        self.in_chans, self.num_joints, self.frames = in_chans, num_joints, frames
        layers: list[nn.Module] = [nn.Linear(num_joints * in_chans, dim), nn.GELU()]
        for _ in range(depth - 1):
            layers += [nn.Dropout(drop_path), nn.Linear(dim, dim), nn.GELU()]
        layers.append(nn.Linear(dim, num_joints * 3))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, j, c = x.shape
        return self.net(x.reshape(b, t, j * c)).reshape(b, t, j, 3)
