"""Scientific behaviour pinned with stub models and hand-made data whose right answer is known in advance.

Test-time flip averaging, flip augmentation during training, which MixSTE chunk scores the overlapping frames
at a sequence end, and the significance level of the claims' verdicts. Every expected value is written out
here (or follows from the stub's definition and the literal Human3.6M left/right lists), never computed by
the function under test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from stub_models import RootPredictor
from torch import nn

from bench.report import evaluate_claims
from bench.report.claims import FAILS, HOLDS, INCONCLUSIVE, judge
from bench.schema import Layout
from tmt.data.windows import Batch, WindowBank
from tmt.skeleton import H36M
from tmt.training.config import ExperimentConfig
from tmt.training.evaluate import Predictor
from tmt.training.strategies import get_strategy
from tmt.training.trainer import Trainer

H36M_LEFT: list[int] = [4, 5, 6, 11, 12, 13]
H36M_RIGHT: list[int] = [1, 2, 3, 14, 15, 16]
H36M_MIRROR: list[int] = [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]
"""Joint i of a mirrored pose is joint H36M_MIRROR[i] of the original (Human3.6M left/right twins)."""


def mirror(x: np.ndarray) -> np.ndarray:
    """The test's own mirroring of (..., 17, C) poses: left/right twins swapped, channel 0 (x) negated."""
    out = np.array(x, copy=True)
    out[..., H36M_LEFT + H36M_RIGHT, :] = x[..., H36M_RIGHT + H36M_LEFT, :]
    out[..., 0] *= -1
    return out


# --- bug 1: test-time flip averaging un-flips the mirrored prediction ------------------------------------


class Equivariant(nn.Module):
    """Per-joint lift (x, y) -> (2x, 3y, 0.5): mirroring its input mirrors its output exactly."""

    def __init__(self, eval_protocol: str = "seq2seq") -> None:
        super().__init__()
        self.eval_protocol = eval_protocol

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.stack([2 * x[..., 0], 3 * x[..., 1], torch.full_like(x[..., 0], 0.5)], dim=-1)
        return out if self.eval_protocol == "seq2seq" else out[:, x.shape[1] // 2 : x.shape[1] // 2 + 1]


class FixedPose(nn.Module):
    """Ignores its input and predicts the pose P[j] = (10 + j, 20 + j, 30 + j) on every frame."""

    eval_protocol = "seq2seq"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        j = torch.arange(17, dtype=x.dtype)
        pose = torch.stack([10 + j, 20 + j, 30 + j], dim=-1)
        return pose.expand(*x.shape[:2], 17, 3).clone()


def keypoints(frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(frames, 17, 2)).astype(np.float32)


@pytest.mark.parametrize("protocol", ["seq2seq", "seq2frame"])
def test_flip_averaging_of_an_equivariant_model_is_its_plain_prediction(protocol: str) -> None:
    """Averaging the plain and the un-flipped mirrored prediction of a mirror-equivariant model changes nothing."""
    kp = keypoints(11)
    predictor = Predictor(Equivariant(protocol), get_strategy("baseline"), H36M, frames=5, flip_test=True)
    pred = predictor.predict(kp)
    expected = np.stack([2 * kp[..., 0], 3 * kp[..., 1], np.full(kp.shape[:2], 0.5)], axis=-1)
    np.testing.assert_allclose(pred, expected, rtol=0, atol=1e-6)


def test_flip_averaging_swaps_left_and_right_back() -> None:
    """For a constant prediction P the flip average is (P + mirror(P)) / 2, twin by twin.

    RHip (1) and LHip (4): x = (11 - 14) / 2 = -1.5 and (14 - 11) / 2 = 1.5; y = (21 + 24) / 2 = 22.5 for
    both; a joint without a twin (Head, 10) keeps y = 30 and z = 40 and gets x = (20 - 20) / 2 = 0.
    """
    predictor = Predictor(FixedPose(), get_strategy("baseline"), H36M, frames=4, flip_test=True)
    pred = predictor.predict(keypoints(6))
    j = np.arange(17)
    twin = np.array(H36M_MIRROR)
    expected = np.stack([(j - twin) / 2, 20 + (j + twin) / 2, 30 + (j + twin) / 2], axis=-1)
    for frame in pred:
        np.testing.assert_allclose(frame, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(pred[0, 1], [-1.5, 22.5, 32.5])
    np.testing.assert_allclose(pred[0, 4], [1.5, 22.5, 32.5])
    np.testing.assert_allclose(pred[0, 16], [1.5, 34.5, 44.5])  # RWrist with LWrist (13)
    np.testing.assert_allclose(pred[0, 10], [0.0, 30.0, 40.0])
    plain = Predictor(FixedPose(), get_strategy("baseline"), H36M, frames=4, flip_test=False)
    np.testing.assert_allclose(plain.predict(keypoints(6))[0, 1], [11.0, 21.0, 31.0])


# --- bug 2: flip augmentation shows every window once plain and once mirrored ----------------------------


@dataclass
class Seq:
    keypoints_2d: np.ndarray
    pose_3d: np.ndarray
    root_3d: np.ndarray


T_TRAIN = 3
LENGTHS = (6, 9)
WINDOWS = [(0, 0), (0, 3), (1, 0), (1, 3), (1, 6)]
"""(sequence, start) of every stride-T seq2seq window of sequences of 6 and 9 frames at T = 3."""


def _sequences() -> list[Seq]:
    rng = np.random.default_rng(7)
    return [
        Seq(
            rng.normal(size=(n, 17, 2)).astype(np.float32),
            rng.normal(size=(n, 17, 3)).astype(np.float32),
            rng.normal(size=(n, 3)).astype(np.float32),
        )
        for n in LENGTHS
    ]


def _clip_key(kp: np.ndarray, pose: np.ndarray, root: np.ndarray) -> bytes:
    return np.concatenate([kp.ravel(), pose.ravel(), root.ravel()]).astype(np.float32).tobytes()


def test_flip_augmentation_feeds_every_window_once_plain_and_once_mirrored() -> None:
    """A spy on the trainer's batches: each epoch holds 2 x 5 clips, half of them mirrored (x negated,
    left/right twins swapped in 2D and 3D, root x negated), each window once each way."""
    seqs = _sequences()
    config = ExperimentConfig.model_validate(
        {
            "model": {"backbone": "mixste", "frames": T_TRAIN, "depth": 1, "dim": 8, "heads": 1},
            "optim": {"epochs": 3, "batch_clips": 4},
            "train": {"strategy": "baseline"},
        }
    ).resolved()
    assert config.train.flip_augment is True  # the default the references use
    bank = WindowBank.from_sequences(seqs, T_TRAIN, "seq2seq", skeleton=H36M)
    trainer = Trainer(
        nn.Linear(2, 3), get_strategy("baseline"), bank, config, validate=lambda _m: 0.0, progress=False
    )
    seen: list[Batch] = []

    def spy(batch: Batch, epoch: int = 0, number: int = 0, share: float = 1.0) -> dict[str, float]:
        seen.append(batch)
        return {"zeros": 0.0}

    trainer.train_batch = spy  # type: ignore[method-assign]

    plain, mirrored = {}, {}
    for k, (s, start) in enumerate(WINDOWS):
        kp = seqs[s].keypoints_2d[start : start + T_TRAIN]
        pose = seqs[s].pose_3d[start : start + T_TRAIN]
        root = seqs[s].root_3d[start : start + T_TRAIN]
        plain[_clip_key(kp, pose, root)] = k
        root_m = root.copy()
        root_m[:, 0] *= -1
        mirrored[_clip_key(mirror(kp), mirror(pose), root_m)] = k

    for epoch in range(3):
        seen.clear()
        trainer.train_epoch(epoch)
        clips = [
            _clip_key(b.keypoints_2d[i].numpy(), b.pose_3d[i].numpy(), b.root_3d[i].numpy())
            for b in seen
            for i in range(len(b.keypoints_2d))
        ]
        assert len(clips) == 2 * len(WINDOWS)
        unknown = [c for c in clips if c not in plain and c not in mirrored]
        assert not unknown, f"epoch {epoch}: {len(unknown)} clips are neither a window nor its mirror"
        assert sorted(plain[c] for c in clips if c in plain) == list(range(len(WINDOWS))), epoch
        assert sorted(mirrored[c] for c in clips if c in mirrored) == list(range(len(WINDOWS))), epoch


# --- bug 8: which MixSTE chunk scores the overlapping frames at a sequence end ---------------------------


class ChunkStamp(nn.Module):
    """Reads the frame index from keypoint x and predicts (first frame of its chunk, frame index, 0)."""

    eval_protocol = "seq2seq"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frame = x[..., 0]
        first = frame[:, :1].expand_as(frame)
        return torch.stack([first, frame, torch.zeros_like(frame)], dim=-1)


def _frame_indexed(frames: int) -> np.ndarray:
    kp = np.zeros((frames, 17, 2), dtype=np.float32)
    kp[..., 0] = np.arange(frames, dtype=np.float32)[:, None]
    return kp


def test_overlapping_frames_of_the_last_chunk_are_scored_by_the_earlier_chunk() -> None:
    """10 frames at T = 4: chunks start at 0, 4 and 6 (the last aligned to the end). Frames 6 and 7 lie in
    both the second and the last chunk and are scored once, from the second (the first that covers them)."""
    predictor = Predictor(ChunkStamp(), get_strategy("baseline"), H36M, frames=4, flip_test=False)
    pred = predictor.predict(_frame_indexed(10))
    assert pred[:, 0, 0].tolist() == [0, 0, 0, 0, 4, 4, 4, 4, 6, 6]
    assert pred[:, 0, 1].tolist() == list(range(10))  # every frame its own prediction, in place
    with_flip = Predictor(ChunkStamp(), get_strategy("baseline"), H36M, frames=4, flip_test=True)
    assert with_flip.predict(_frame_indexed(10))[:, 5, 0].tolist() == [0, 0, 0, 0, 4, 4, 4, 4, 6, 6]


@pytest.mark.parametrize(
    ("frames", "chunk_of_frame"),
    [
        (8, [0, 0, 0, 0, 4, 4, 4, 4]),  # an exact multiple of T: no overlap
        (9, [0, 0, 0, 0, 4, 4, 4, 4, 5]),  # only frame 8 comes from the last chunk (start 5)
        (3, [0, 0, 0]),  # shorter than T: one edge-padded chunk
    ],
)
def test_each_frame_comes_from_the_first_chunk_covering_it(frames: int, chunk_of_frame: list[int]) -> None:
    predictor = Predictor(ChunkStamp(), get_strategy("baseline"), H36M, frames=4, flip_test=False)
    pred = predictor.predict(_frame_indexed(frames))
    assert pred[:, 0, 0].tolist() == chunk_of_frame
    assert pred[:, 0, 1].tolist() == list(range(frames))


def converged_cell(cell_id: str, seed: int, values: dict) -> dict:
    """One finished cell of Store.results that converged at its plateau, with ``values`` (labels, metrics)."""
    return {
        "cell_id": cell_id,
        "study": "test",
        "profile": "cpu",
        "seed": seed,
        "status": "done",
        "failure": None,
        **values,
        "convergence.stop_reason": "plateau",
        "convergence.converged": True,
        "convergence.converged_epoch": 10,
        "convergence.converged_updates": 100,
        "convergence.converged_time_s": 1.0,
        "convergence.stopped_epoch": 15,
    }


# --- bug 7: the claims' significance level is 0.05 -------------------------------------------------------

# Paired differences (tmt1 - tmt, mm) over three seeds, all positive: mean 2, sd 1 -> t = 2 * sqrt(3) = 3.46,
# df 2, two-sided p = 0.0742; mean 3, sd 1 -> t = 5.20, p = 0.0351.
NOT_SIGNIFICANT = [1.0, 2.0, 3.0]
SIGNIFICANT = [2.0, 3.0, 4.0]


def test_the_chosen_differences_have_the_p_values_the_verdicts_hinge_on() -> None:
    assert stats.ttest_1samp(NOT_SIGNIFICANT, 0.0).pvalue == pytest.approx(0.0742, abs=1e-4)
    assert stats.ttest_1samp(SIGNIFICANT, 0.0).pvalue == pytest.approx(0.0351, abs=1e-4)


@pytest.mark.parametrize(
    ("p", "holds"),
    [(0.0351, True), (0.04, True), (0.0499, True), (0.0501, False), (0.07, False), (0.0742, False)],
)
def test_a_verdict_needs_p_below_005_even_when_the_ci_clears_zero(p: float, holds: bool) -> None:
    """The CI lies wholly on one side of 0 (as a bootstrap over few seeds may); only p decides, at 0.05."""
    in_favour = judge(2.0, (1.0, 3.0), p, 3, +1, seeds=3)[0]
    against = judge(-2.0, (-3.0, -1.0), p, 3, +1, seeds=3)[0]
    assert in_favour == (HOLDS if holds else INCONCLUSIVE)
    assert against == (FAILS if holds else INCONCLUSIVE)


@pytest.mark.parametrize(("diffs", "verdict"), [(NOT_SIGNIFICANT, INCONCLUSIVE), (SIGNIFICANT, HOLDS)])
def test_an_ordered_claim_holds_at_p_0035_and_not_at_p_0074(diffs: list[float], verdict: str) -> None:
    """The claim 'tmt < tmt1' on three converged seeds whose paired differences are ``diffs``."""
    rows = []
    for seed, d in enumerate(diffs):
        for strategy, mpjpe in (("tmt", 40.0), ("tmt1", 40.0 + d)):
            rows.append(
                converged_cell(f"{strategy}-s{seed}", seed, {"train.strategy": strategy, "mpjpe": mpjpe})
            )
    claim = {
        "id": "tmt_beats_tmt1",
        "text": "TMT < TMT1",
        "test": "ordered",
        "metric": "mpjpe",
        "over": "train.strategy",
        "order": ["tmt", "tmt1"],
    }
    layout = Layout.model_validate({"rows": ["train.strategy"], "metric": "mpjpe"})
    (result,) = evaluate_claims(pd.DataFrame(rows), [claim], [(layout, None)], ["train.strategy"])
    assert result.effect == pytest.approx(np.mean(diffs))
    assert result.p_value == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)
    assert result.verdict == verdict


def test_the_trainers_loss_weighs_the_joints_of_its_data_set() -> None:
    """On MPI-INF-3DHP windows the weighted loss gives RKnee (index 9 there) the knee's 2.5 and HeadTop
    (index 0) the head top's 1.5, not the Human3.6M weights of those indices (1 and 1)."""
    from tmt.skeleton import MPI_INF_3DHP

    config = ExperimentConfig.model_validate(
        {
            "model": {"backbone": "mixste", "frames": T_TRAIN, "depth": 1, "dim": 8, "heads": 1},
            "train": {"strategy": "baseline", "loss": {"wmpjpe": 1.0, "tc": 0.5}},
        }
    ).resolved()
    weights = {}
    for skeleton in (H36M, MPI_INF_3DHP):
        bank = WindowBank.from_sequences(_sequences(), T_TRAIN, "seq2seq", skeleton=skeleton)
        trainer = Trainer(nn.Linear(2, 3), get_strategy("baseline"), bank, config, validate=lambda _m: 0.0)
        weights[skeleton.name] = trainer.loss_fn.joint_weights
    assert weights["mpi_inf_3dhp"][9] == 2.5 and weights["mpi_inf_3dhp"][0] == 1.5
    assert weights["h36m"][2] == 2.5 and weights["h36m"][10] == 1.5  # RKnee and Head in Human3.6M order


@pytest.mark.parametrize("protocol", ["seq2seq", "seq2frame"])
def test_zero_root_sets_only_the_root_of_every_predicted_frame_to_zero(protocol: str) -> None:
    """MHFormer's test code zeroes the predicted root: the fixed pose keeps every joint but the root."""
    model = FixedPose()
    model.eval_protocol = protocol
    plain = Predictor(model, get_strategy("baseline"), H36M, frames=5, flip_test=False).predict(keypoints(7))
    zeroed = Predictor(model, get_strategy("baseline"), H36M, frames=5, flip_test=False, zero_root=True)
    pred = zeroed.predict(keypoints(7))
    assert pred.shape == (7, 17, 3) and np.all(pred[:, 0] == 0.0)
    np.testing.assert_array_equal(pred[:, 1:], plain[:, 1:])
    np.testing.assert_array_equal(plain[:, 0], np.tile([10.0, 20.0, 30.0], (7, 1)))


def test_only_mhformer_recipes_zero_the_root_and_halve_instead_of_decaying() -> None:
    def resolved(backbone: str) -> ExperimentConfig:
        return ExperimentConfig.model_validate({"model": {"backbone": backbone, "frames": 27}}).resolved()

    assert (resolved("mhformer").eval.zero_root, resolved("mhformer").optim.lr_halving) == (True, "instead")
    for backbone in ("mixste", "poseformer"):
        assert (resolved(backbone).eval.zero_root, resolved(backbone).optim.lr_halving) == (False, None)


# --- the correlation claim (Fig. 2): Pearson r with a Fisher-z interval and p, worked by hand -------------

SPEED = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
ERROR = [0.0, 0.2, 0.1, 0.4, 0.3, 0.6, 0.5, 0.7]
"""Joint 0 is the root (zero error: left out). Over the other 7 joints, deviations from the means (0.4, 0.4)
are x: -3 -2 -1 0 1 2 3 and y: -2 -3 0 -1 2 1 3 tenths, so r = 25 / sqrt(28 * 28) = 25 / 28; Fisher z =
atanh(25 / 28) = ln(53 / 3) / 2 = 1.43584 with standard error 1 / sqrt(7 - 3) = 1 / 2. (Both ranges are
below 1, as speeds in metres per frame are.)"""
SPREAD = [0.0, 0.1, -0.1, 0.1, -0.1, 0.1, -0.1, 0.1]
"""Added to one seed's errors and taken from the other's: their mean is ERROR again."""


def correlation_claim(speed: list[float], error: list[float], **claim: float) -> object:
    rows = [
        converged_cell(
            f"s{seed}",
            seed,
            {
                "train.strategy": "tmt",
                "mpjpe": 30.0,
                "per_joint_speed": speed,
                "per_joint_mpjpe": [e + sign * s for e, s in zip(error, SPREAD[: len(error)], strict=True)],
            },
        )
        for seed, sign in enumerate((1.0, -1.0))
    ]
    spec = {"id": "error_follows_speed", "text": "r > min", "test": "correlation"}
    spec |= {"x": "per_joint_speed", "y": "per_joint_mpjpe", **claim}
    layout = Layout.model_validate({"rows": ["train.strategy"], "metric": "mpjpe"})
    (result,) = evaluate_claims(pd.DataFrame(rows), [spec], [(layout, None)], ["train.strategy"])
    return result


def test_correlation_of_the_seed_mean_errors_with_a_fisher_interval_worked_by_hand() -> None:
    result = correlation_claim(SPEED, ERROR)
    assert result.n == 7  # the zero-error root is left out
    assert result.effect == pytest.approx(25 / 28, abs=1e-12)
    assert result.ci == pytest.approx((0.426702, 0.984179), abs=1e-6)  # tanh(1.43584 -+ 1.95996 / 2)
    assert result.p_value == pytest.approx(0.0040830, abs=1e-7)  # 2 (1 - Phi(2 x 1.43584))
    assert result.verdict == HOLDS
    assert result.components[0].label == "r(per_joint_mpjpe, per_joint_speed) > 0"
    assert result.detail.startswith(
        "r(per_joint_mpjpe, per_joint_speed) > 0: claimed direction; 95% CI [0.427"
    )
    assert result.unit == "Pearson r"
    assert "over 7 joints" in result.detail and "averaged over 2 cells" in result.detail
    assert re.search(r"r per cell: 0\.\d\d, 0\.\d\d$", result.detail)


def test_correlation_against_the_claims_minimum() -> None:
    """Against min 0.5 the statistic is (1.43584 - atanh 0.5) / (1 / 2) = 1.77307: p = 0.0762, the interval
    holds 0.5, so the claim is undecided; against min 0.99 the whole interval lies below: it fails."""
    result = correlation_claim(SPEED, ERROR, min=0.5)
    assert result.p_value == pytest.approx(0.076218, abs=1e-6)
    assert result.verdict == INCONCLUSIVE
    assert correlation_claim(SPEED, ERROR, min=0.99).verdict == FAILS


def test_correlation_needs_four_joints() -> None:
    """Four joints (x 1 2 3 4, y 1 3 2 4: r = 4 / 5) are enough for an interval (se 1); three are not, but
    each cell's own r is still listed (two joints: r = 1 in both cells)."""
    four = correlation_claim([0.5, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 3.0, 2.0, 4.0])
    assert (four.n, four.effect) == (4, pytest.approx(0.8, abs=1e-12))
    assert four.ci == pytest.approx((-0.696953, 0.995600), abs=1e-6)  # tanh(ln(9) / 2 -+ 1.95996)
    three = correlation_claim([0.5, 1.0, 2.0, 3.0], [0.0, 1.0, 3.0, 2.0])
    assert three.n == 3 and three.effect is None and three.verdict == INCONCLUSIVE
    assert three.detail.startswith("r(per_joint_mpjpe, per_joint_speed) > 0: n=3: at least 4 needed.")
    two = correlation_claim([0.5, 1.0, 2.0], [0.0, 1.0, 5.0])
    assert two.n == 2 and two.detail.endswith("r per cell: 1.00, 1.00")
    # y = x but 4.1 at x = 4: S_xy = 5.15, S_xx = 5, S_yy = 5.3075, r = 5.15 / sqrt(26.5375) = 0.999717,
    # z = 4.43 > 1.96 (se 1): four joints can hold
    close = correlation_claim([0.5, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 3.0, 4.1])
    assert close.verdict == HOLDS and close.effect == pytest.approx(0.999717, abs=1e-6)


def test_a_perfectly_reversed_relation_fails_with_a_finite_interval() -> None:
    """r = -1 exactly: Fisher's z is taken at r = -0.999999 (atanh(-1) is infinite)."""
    result = correlation_claim(SPEED, [0.0, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    assert result.effect == pytest.approx(-1.0)
    assert result.verdict == FAILS and all(np.isfinite(result.ci)) and result.ci[1] < 0


def test_correlation_with_a_constant_or_missing_variable_judges_nothing() -> None:
    constant = correlation_claim([0.5] * 8, ERROR)  # every joint equally fast: r undefined
    assert constant.effect is None and constant.verdict == INCONCLUSIVE
    assert constant.detail.endswith("r per cell: none")
    even = correlation_claim(SPEED, [0.0] + [0.3] * 7, min=0.5)  # every joint equally wrong: r undefined
    assert even.effect is None and even.verdict == INCONCLUSIVE


# --- the test protocol's aggregation: per action, per joint, per data set ------------------------------


def _recording(action: str, joint: int, x_mm: list[float]) -> object:
    from tmt.data.dataset import Sequence

    pose = np.zeros((len(x_mm), 17, 3), dtype=np.float32)
    pose[:, joint, 0] = np.asarray(x_mm) / 1000
    n = len(x_mm)
    kp, root = np.zeros((n, 17, 2), np.float32), np.zeros((n, 3), np.float32)
    return Sequence("S9", action, action.split(" ")[0], 0, kp, pose, root, (1000, 1000))


def test_protocol_aggregates_per_action_per_joint_and_per_data_set_as_worked_by_hand() -> None:
    """Walking: joint 1 at x = 0, 10, 30 mm (errors 0, 10, 30; speeds 10, 20); Eating: joint 2 at 20, 20 mm.
    MPJPE (17 joints): Walking 40 / (17 x 3), Eating 40 / (17 x 2); Human3.6M averages the two actions,
    MPI-INF-3DHP every frame: 80 / (17 x 5). Per joint over 5 frames: joint 1 40 / 5 = 8 mm, joint 2 8 mm;
    speed over the 3 frame steps: joint 1 30 / 3 = 10 mm per frame. MPJVE: Walking (10 + 20) / 2 / 17, Eating 0."""
    from tmt.training.evaluate import evaluate_protocol

    seqs = [_recording("Walking 1", 1, [0.0, 10.0, 30.0]), _recording("Eating", 2, [20.0, 20.0])]
    predictor = Predictor(RootPredictor(), get_strategy("baseline"), H36M, frames=4, flip_test=False)
    h36m = evaluate_protocol(predictor, seqs)
    walking, eating = 40 / 51, 40 / 34
    assert h36m["per_action"]["mpjpe"] == pytest.approx({"Walking": walking, "Eating": eating}, rel=1e-5)
    assert h36m["mpjpe"] == pytest.approx((walking + eating) / 2, rel=1e-5)
    assert h36m["per_action"]["mpjve"] == pytest.approx({"Walking": 15 / 17, "Eating": 0.0}, abs=1e-5)
    assert h36m["mpjve"] == pytest.approx(15 / 34, rel=1e-5)
    joints = [0.0] * 17
    joints[1] = joints[2] = 8.0
    assert h36m["per_joint_mpjpe"] == pytest.approx(joints, abs=1e-4)
    speeds = [0.0] * 17
    speeds[1] = 10.0
    assert h36m["per_joint_speed"] == pytest.approx(speeds, abs=1e-4)
    other = evaluate_protocol(predictor, seqs, "mpi_inf_3dhp")
    assert other["mpjpe"] == pytest.approx(80 / 85, rel=1e-5)
    assert other["per_action"]["mpjpe"] == pytest.approx({"Walking": walking, "Eating": eating}, rel=1e-5)
    # MPI-INF-3DHP's 14 PCK joints (0-13) over 5 frames: 66 of 70 errors are 0, then 10, 20, 20, 30 mm.
    # PCK at 150 mm: 100 %; AUC over 0, 5, ..., 150 mm: (2 x 66 + 2 x 67 + 2 x 69 + 25 x 70) / (31 x 70)
    assert other["pck"] == pytest.approx(100.0)
    assert other["auc"] == pytest.approx(2154 / 2170 * 100, rel=1e-9)
    single = evaluate_protocol(predictor, [*seqs, _recording("Posing", 3, [17.0])])  # one frame: no velocity
    assert set(single["per_action"]["mpjve"]) == {"Walking", "Eating"}
    assert single["mpjve"] == pytest.approx(15 / 34, rel=1e-5)
    pair = evaluate_protocol(predictor, [_recording("Posing", 3, [17.0, 20.0])])  # 2 frames, 1 step
    assert pair["per_joint_mpjpe"][3] == pytest.approx(18.5, rel=1e-5)
    assert pair["per_joint_speed"][3] == pytest.approx(3.0, rel=1e-5)


class Offset(nn.Module):
    """Predicts joint 1 at x = 5 mm and every other joint at the root."""

    eval_protocol = "seq2seq"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(*x.shape[:3], 3)
        out[..., 1, 0] = 0.005
        return out


def test_per_joint_error_is_the_distance_between_prediction_and_truth() -> None:
    """Joint 1 at x = 0, 10, 30 mm (Walking) and 0, 0 (Eating), predicted at 5 mm: errors 5, 5, 25, 5, 5."""
    from tmt.training.evaluate import evaluate_protocol

    seqs = [_recording("Walking 1", 1, [0.0, 10.0, 30.0]), _recording("Eating", 2, [20.0, 20.0])]
    predictor = Predictor(Offset(), get_strategy("baseline"), H36M, frames=4, flip_test=False)
    assert evaluate_protocol(predictor, seqs)["per_joint_mpjpe"][1] == pytest.approx(45 / 5, rel=1e-5)


class AutocastProbe(nn.Module):
    """Predicts 1 where it runs under autocast to bfloat16, else 0."""

    eval_protocol = "seq2seq"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kind = x.device.type
        on = torch.is_autocast_enabled(kind) and torch.get_autocast_dtype(kind) == torch.bfloat16
        return torch.full((*x.shape[:3], 3), float(on))


def test_evaluation_runs_under_autocast_only_when_asked() -> None:
    keypoints = np.zeros((4, 17, 2), dtype=np.float32)
    for dtype, expected in ((None, 0.0), (torch.bfloat16, 1.0)):
        probe = Predictor(
            AutocastProbe(), get_strategy("baseline"), H36M, frames=4, flip_test=False, autocast_dtype=dtype
        )
        assert bool((probe.predict(keypoints) == expected).all())


def test_validation_mpjpe_is_frame_weighted_in_mm_over_the_valid_frames() -> None:
    """The per-epoch validation number: (0 + 10 + 30 + 20 + 20) / 17 / 5 frames = 80 / 85 mm; with the
    last Walking frame marked invalid, (0 + 10 + 20 + 20) / 17 / 4 = 50 / 68 mm."""
    from tmt.training.evaluate import evaluate_mpjpe

    seqs = [_recording("Walking 1", 1, [0.0, 10.0, 30.0]), _recording("Eating", 2, [20.0, 20.0])]
    predictor = Predictor(RootPredictor(), get_strategy("baseline"), H36M, frames=4, flip_test=False)
    assert evaluate_mpjpe(predictor, seqs) == pytest.approx(80 / 85, rel=1e-5)
    seqs[0].valid = np.array([True, True, False])
    assert evaluate_mpjpe(predictor, seqs) == pytest.approx(50 / 68, rel=1e-5)


class Position(nn.Module):
    """Predicts, for every frame of a clip, its position in the clip (x channel); no eval_protocol."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(*x.shape[:3], 3)
        out[..., 0] = torch.arange(x.shape[1], dtype=torch.float32)[None, :, None]
        return out


class CentrePosition(Position):
    eval_protocol = "seq2frame"


def test_a_model_without_a_protocol_is_scored_seq2seq_and_a_seq2frame_one_at_its_centre() -> None:
    """Six frames in clips of 4: chunks start at 0 and 2 (end-aligned), each frame from its first chunk:
    positions 0 1 2 3 | 2 3. A seq2frame model at T 9 is read at the clip centre, position 4."""
    keypoints = np.zeros((6, 17, 2), dtype=np.float32)
    chunked = Predictor(Position(), get_strategy("baseline"), H36M, frames=4, flip_test=False).predict(
        keypoints
    )
    assert chunked.dtype == np.float32
    assert chunked[:, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 2.0, 3.0]
    centred = Predictor(CentrePosition(), get_strategy("baseline"), H36M, frames=9, flip_test=False)
    assert centred.predict(keypoints)[:, 0, 0].tolist() == [4.0] * 6
