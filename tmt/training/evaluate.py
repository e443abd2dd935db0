"""The evaluation protocol: whole test sequences in, per-frame predictions out, then the paper's metrics.

seq2seq models (MixSTE) see each sequence as non-overlapping T-frame chunks, the last chunk aligned to the end of
the sequence (sequences shorter than T are edge-padded); every frame is scored once, from the first chunk that
covers it. (The MixSTE reference scores the frames of the overlapping last chunk twice; the difference is a
fraction of a millimetre on real sequences.) seq2frame models (PoseFormer, MHFormer) see one edge-padded window
centred on every frame and the centre prediction is kept. Test-time flip averaging (on by default) runs the
flipped input too, un-flips the prediction and averages the two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tmt import metrics
from tmt.data.dataset import Sequence
from tmt.data.windows import centred_window_indices, flip_pose, seq2seq_chunk_starts
from tmt.skeleton import Skeleton
from tmt.training.strategies import Strategy

MM = 1000.0


@dataclass
class Predictor:
    """Runs a trained model over whole sequences according to its evaluation protocol."""

    model: nn.Module
    strategy: Strategy
    skeleton: Skeleton
    frames: int
    flip_test: bool = True
    batch_clips: int = 64
    device: torch.device | str = "cpu"
    autocast_dtype: torch.dtype | None = None
    zero_root: bool = False
    """Set the predicted root joint to 0 (MHFormer's test code); targets are root-relative, so the root then
    scores 0 error instead of whatever the network predicted for it."""
    compile: bool = False
    """Run the model through torch.compile. Every batch then has the one shape the graph was compiled for:
    the last batch of a sequence is padded with copies of its last clip, whose predictions are dropped."""

    def __post_init__(self) -> None:
        self._model = torch.compile(self.model, dynamic=False) if self.compile else self.model

    @torch.no_grad()
    def _forward(self, clips_2d: np.ndarray) -> np.ndarray:
        """(K, T, J, 2) clips -> (K, T', J, 3) predictions, flip-averaged when enabled.

        With flip averaging each batch holds its clips and their mirror images, so the model runs once per
        batch on twice the clips rather than twice."""
        outputs = []
        size = self.batch_clips
        for start in range(0, len(clips_2d), size):
            x = torch.from_numpy(clips_2d[start : start + size]).to(self.device)
            count = len(x)
            if self.compile and count < size:
                x = torch.cat([x, x[-1:].expand(size - count, *x.shape[1:])])
            if self.flip_test:
                both = self._run(torch.cat([x, flip_pose(x, self.skeleton)]))
                pred = (both[: len(x)] + flip_pose(both[len(x) :], self.skeleton)) / 2
            else:
                pred = self._run(x)
            outputs.append(pred[:count].float().cpu().numpy())
        return np.concatenate(outputs)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        inp = self.strategy.inference_input(x)
        if self.autocast_dtype is None:
            return self._model(inp)
        with torch.autocast(device_type=torch.device(self.device).type, dtype=self.autocast_dtype):
            return self._model(inp)

    def predict(self, keypoints_2d: np.ndarray) -> np.ndarray:
        """(N, J, 2) normalized keypoints of one sequence -> (N, J, 3) root-relative predictions."""
        pred = self._predict(keypoints_2d)
        if self.zero_root:
            pred[:, self.skeleton.root] = 0.0
        return pred

    def _predict(self, keypoints_2d: np.ndarray) -> np.ndarray:
        n, T = len(keypoints_2d), self.frames
        if getattr(self.model, "eval_protocol", "seq2seq") == "seq2seq":
            starts = seq2seq_chunk_starts(n, T)
            index = np.minimum(starts[:, None] + np.arange(T), n - 1)
            pred = self._forward(keypoints_2d[index])
            out = np.empty((n, *pred.shape[2:]), dtype=np.float32)
            # Later chunks first so that earlier chunks win on the overlap: every frame from its first chunk.
            for k in range(len(starts) - 1, -1, -1):
                stop = min(T, n - starts[k])
                out[starts[k] : starts[k] + stop] = pred[k, :stop]
            return out
        index = centred_window_indices(n, T)
        pred = self._forward(keypoints_2d[index])
        centre = 0 if pred.shape[1] == 1 else T // 2
        return pred[:, centre].copy()


def predict_sequences(predictor: Predictor, sequences: Iterable[Sequence]) -> list[np.ndarray]:
    was_training = predictor.model.training
    predictor.model.eval()
    try:
        return [predictor.predict(seq.keypoints_2d) for seq in sequences]
    finally:
        predictor.model.train(was_training)


def evaluate_mpjpe(predictor: Predictor, sequences: list[Sequence]) -> float:
    """Frame-weighted MPJPE in mm over ``sequences`` (what validation tracks each epoch)."""
    preds = predict_sequences(predictor, sequences)
    errors = np.concatenate(
        [_frame_errors(p, s, metrics.per_frame_mpjpe) for p, s in zip(preds, sequences, strict=True)]
    )
    return float(errors.mean() * MM)


def _frame_errors(pred: np.ndarray, seq: Sequence, fn) -> np.ndarray:
    mask = seq.valid if seq.valid is not None else slice(None)
    return fn(pred[mask], seq.pose_3d[mask])


def evaluate_protocol(predictor: Predictor, sequences: list[Sequence], dataset: str = "h36m") -> dict:
    """Every reported metric for the test set, in mm (PCK / AUC in %).

    Human3.6M aggregation: within an action group the error is frame-weighted over subjects, cameras and
    sub-sequences; the reported average is the unweighted mean over the action groups. MPI-INF-3DHP scores
    only the frames its ``valid`` mask marks and averages over all of them.
    """
    preds = predict_sequences(predictor, sequences)
    per_action: dict[str, dict[str, list[np.ndarray]]] = {
        name: defaultdict(list) for name in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve")
    }
    joint_sq, joint_err, joint_speed, frames = 0.0, 0.0, 0.0, 0
    for pred, seq in zip(preds, sequences, strict=True):
        mask = seq.valid if seq.valid is not None else np.ones(len(seq.pose_3d), dtype=bool)
        p, g = pred[mask], seq.pose_3d[mask]
        group = seq.action_group
        per_action["mpjpe"][group].append(metrics.per_frame_mpjpe(p, g))
        per_action["p_mpjpe"][group].append(metrics.per_frame_p_mpjpe(p, g))
        per_action["n_mpjpe"][group].append(metrics.per_frame_n_mpjpe(p, g))
        if len(p) > 1:
            per_action["mpjve"][group].append(metrics.per_frame_mpjve(p, g))
        joint_err = joint_err + np.linalg.norm(p - g, axis=-1).sum(axis=0)
        speed = np.linalg.norm(np.diff(seq.pose_3d, axis=0), axis=-1)
        joint_speed = joint_speed + speed.sum(axis=0)
        joint_sq += len(speed)
        frames += len(p)

    result: dict = {"per_action": {}}
    for name, groups in per_action.items():
        if dataset == "h36m":
            by_group, average = metrics.action_average(groups)
        else:
            by_group = {g: float(np.concatenate(v).mean()) for g, v in groups.items()}
            average = float(np.concatenate([np.concatenate(v) for v in groups.values()]).mean())
        result[name] = average * MM
        result["per_action"][name] = {g: v * MM for g, v in by_group.items()}
    result["per_joint_mpjpe"] = (np.asarray(joint_err) / max(frames, 1) * MM).tolist()
    result["per_joint_speed"] = (np.asarray(joint_speed) / max(joint_sq, 1) * MM).tolist()
    if dataset == "mpi_inf_3dhp":
        p = np.concatenate(
            [pr[s.valid] if s.valid is not None else pr for pr, s in zip(preds, sequences, strict=True)]
        )
        g = np.concatenate([s.pose_3d[s.valid] if s.valid is not None else s.pose_3d for s in sequences])
        result["pck"] = float(metrics.pck(p, g) * 100)
        result["auc"] = float(metrics.auc(p, g) * 100)
    return result
