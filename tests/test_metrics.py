import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tmt import metrics
from tmt.errors import DataError


def random_poses(n=6, j=17, seed=0):
    return np.random.default_rng(seed).normal(size=(n, j, 3))


def test_mpjpe_hand_case():
    gt = np.zeros((2, 3, 3))
    pred = gt.copy()
    pred[0, 1] = [3.0, 4.0, 0.0]  # one joint 5 away in frame 0
    assert metrics.per_frame_mpjpe(pred, gt).tolist() == pytest.approx([5 / 3, 0.0])
    assert metrics.mpjpe(pred, gt) == pytest.approx(5 / 6)
    assert metrics.per_joint_mpjpe(pred, gt).tolist() == pytest.approx([0.0, 2.5, 0.0])


def test_shape_mismatch_raises():
    with pytest.raises(DataError, match=r"shape|N, J"):
        metrics.mpjpe(np.zeros((2, 17, 3)), np.zeros((2, 16, 3)))


def test_p_mpjpe_removes_similarity_transform():
    gt = random_poses()
    rot = Rotation.random(len(gt), random_state=1).as_matrix()
    scale = np.array([0.5, 1.0, 2.0, 3.0, 0.8, 1.3])[:, None, None]
    shift = np.random.default_rng(2).normal(size=(len(gt), 1, 3))
    pred = scale * np.einsum("njc,nkc->njk", gt, rot) + shift
    assert metrics.mpjpe(pred, gt) > 0.1
    np.testing.assert_allclose(metrics.per_frame_p_mpjpe(pred, gt), 0.0, atol=1e-9)
    # aligning the aligned copy is a no-op
    aligned = metrics.procrustes_align(pred, gt)
    np.testing.assert_allclose(aligned, gt, atol=1e-9)


def test_p_mpjpe_does_not_undo_a_reflection():
    gt = random_poses()
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    assert metrics.p_mpjpe(mirrored, gt) > 0.1
    # but a noisy copy is improved by alignment, never worsened
    noisy = gt + 0.1 * random_poses(seed=3)
    assert metrics.p_mpjpe(noisy, gt) <= metrics.mpjpe(noisy, gt)


def test_p_mpjpe_matches_an_independent_solver():
    """Per frame, compare with scipy's rotation fit of the centred, optimally scaled prediction."""
    pred, gt = random_poses(seed=4), random_poses(seed=5)
    got = metrics.per_frame_p_mpjpe(pred, gt)
    for f in range(len(gt)):
        p0, g0 = pred[f] - pred[f].mean(0), gt[f] - gt[f].mean(0)
        rot, _ = Rotation.align_vectors(g0, p0)
        rotated = rot.apply(p0)
        scale = (rotated * g0).sum() / (rotated**2).sum()
        expected = np.linalg.norm(scale * rotated - g0, axis=-1).mean()
        assert got[f] == pytest.approx(expected, rel=1e-6)


def test_n_mpjpe_removes_scale_only():
    gt = random_poses()
    np.testing.assert_allclose(metrics.per_frame_n_mpjpe(2.5 * gt, gt), 0.0, atol=1e-12)
    assert metrics.n_mpjpe(gt + 1.0, gt) > 0.1  # a translation is not a scale
    # hand case: pred = (1, 0, 0), gt = (2, 1, 0): s = 2, error |(2, 0, 0) - (2, 1, 0)| = 1
    assert metrics.n_mpjpe(np.array([[[1.0, 0, 0]]]), np.array([[[2.0, 1, 0]]])) == pytest.approx(1.0)


def test_mpjve_hand_cases():
    gt = random_poses()
    assert metrics.mpjve(gt + np.array([0.3, -1.0, 2.0]), gt) == pytest.approx(0.0, abs=1e-12)
    pred = gt.copy()
    pred[2, 0] += [0.0, 3.0, 4.0]  # one joint displaced in one frame: two velocities off by 5
    per_frame = metrics.per_frame_mpjve(pred, gt)
    assert per_frame.shape == (len(gt) - 1,)
    np.testing.assert_allclose(per_frame, [0, 5 / 17, 5 / 17, 0, 0], atol=1e-12)
    with pytest.raises(DataError, match="2"):
        metrics.mpjve(gt[:1], gt[:1])


def test_action_average_frame_weighted_within_unweighted_across():
    errors = {
        "Walking 1": [np.array([1.0, 1.0, 1.0])],
        "Walking": [np.array([5.0])],  # same group: 4 frames, mean (3 + 5) / 4 = 2
        "Eating": [np.array([10.0]), np.array([20.0, 30.0, 40.0])],  # 25, not the mean of sequence means
    }
    per_group, average = metrics.action_average(errors)
    assert per_group == pytest.approx({"Walking": 2.0, "Eating": 25.0})
    assert average == pytest.approx(13.5)  # not the frame-weighted 110 / 8


def test_action_average_rejects_empty():
    with pytest.raises(DataError):
        metrics.action_average({})
    with pytest.raises(DataError, match="Photo"):
        metrics.action_average({"Photo": [np.empty(0)]})


def test_pck_and_auc_hand_cases():
    gt = np.zeros((1, 4, 3))
    pred = np.zeros((1, 4, 3))
    pred[0, :, 0] = [0.0, 0.05, 0.15, 0.2]  # distances 0, 50, 150, 200 mm
    assert metrics.pck(pred, gt, joints=None) == pytest.approx(0.75)  # 150 mm counts as correct
    assert metrics.pck(pred, gt, threshold=0.1, joints=None) == pytest.approx(0.5)
    assert metrics.pck(pred, gt, joints=[3]) == 0.0
    # 31 thresholds 0..150 mm: joint 0 always in (31), joint 1 from 50 mm (21), joint 2 only at 150 mm (1)
    assert metrics.auc(pred, gt, joints=None) == pytest.approx((31 + 21 + 1 + 0) / (4 * 31))
    assert len(metrics.AUC_THRESHOLDS) == 31 and metrics.AUC_THRESHOLDS[-1] == 0.15


def test_pck_default_joints_exclude_pelvis_spine_head():
    gt = np.zeros((2, 17, 3))
    pred = gt.copy()
    pred[:, 14:, 0] = 1.0  # pelvis, spine, head far off: not counted by default
    assert metrics.pck(pred, gt) == 1.0
    assert metrics.pck(pred, gt, joints=None) == pytest.approx(14 / 17)
    assert metrics.auc(pred, gt) == 1.0
