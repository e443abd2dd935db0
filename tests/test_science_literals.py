"""Scientific constants pinned by literal values written down from the reference facts, never from the code.

Each expected number here was taken from the VideoPose3D / MixSTE / PoseFormer / MHFormer reference facts or
worked out by hand from their formulas (the arithmetic is spelled out beside it), so a test fails when the
code drifts from the science even if the code and an expectation derived from it would drift together.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tmt.cameras import Camera, image_coordinates, normalize_screen_coordinates, project_to_pixels
from tmt.data.windows import flip_pose
from tmt.losses import build_loss
from tmt.skeleton import H36M, MPI_INF_3DHP
from tmt.training.config import ExperimentConfig
from tmt.training.optimizer import learning_rate

# --- the Human3.6M 17-joint layout (VideoPose3D), copied from the reference facts --------------------------

H36M_NAMES: tuple[str, ...] = (
    "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax",
    "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
)  # fmt: skip
H36M_LEFT: list[int] = [4, 5, 6, 11, 12, 13]
H36M_RIGHT: list[int] = [1, 2, 3, 14, 15, 16]
H36M_MIRROR: list[int] = [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]
"""Joint i of a mirrored pose is joint H36M_MIRROR[i] of the original (each left joint with its right twin)."""

MPI_LEFT: list[int] = [5, 6, 7, 11, 12, 13]
MPI_RIGHT: list[int] = [2, 3, 4, 8, 9, 10]

MIXSTE_JOINT_WEIGHTS: dict[str, float] = {
    "Hip": 1.0, "RHip": 1.0, "RKnee": 2.5, "RFoot": 2.5, "LHip": 1.0, "LKnee": 2.5, "LFoot": 2.5,
    "Spine": 1.0, "Thorax": 1.0, "Neck/Nose": 1.0, "Head": 1.5, "LShoulder": 1.5, "LElbow": 4.0,
    "LWrist": 4.0, "RShoulder": 1.5, "RElbow": 4.0, "RWrist": 4.0,
}  # fmt: skip
"""MixSTE's WMPJPE weights by joint name: w = [1, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1, 1.5, 1.5, 4, 4, 1.5, 4, 4]."""


# --- bug 9: the left/right joint lists -------------------------------------------------------------------


def test_h36m_layout_and_left_right_lists_are_the_videopose3d_ones() -> None:
    """A mirrored training clip or test-time flip is only right if left and right are the real twins."""
    assert H36M.joint_names == H36M_NAMES
    assert list(H36M.left) == H36M_LEFT
    assert list(H36M.right) == H36M_RIGHT
    assert H36M.flip_permutation.tolist() == H36M_MIRROR
    assert list(MPI_INF_3DHP.left) == MPI_LEFT
    assert list(MPI_INF_3DHP.right) == MPI_RIGHT


def test_flip_pose_swaps_each_named_joint_with_its_twin_and_negates_x() -> None:
    """Mirroring moves LWrist's (negated-x) coordinates to RWrist and so on, the hips, spine and head stay."""
    pose = np.zeros((17, 3), dtype=np.float32)
    for j in range(17):
        pose[j] = (j + 1, 100 + j, 200 + j)  # every joint distinguishable
    mirrored = flip_pose(pose, H36M)
    twin = {
        "RHip": "LHip", "RKnee": "LKnee", "RFoot": "LFoot", "LShoulder": "RShoulder", "LElbow": "RElbow",
        "LWrist": "RWrist",
    }  # fmt: skip
    twin |= {v: k for k, v in twin.items()}
    for j, name in enumerate(H36M_NAMES):
        source = H36M_NAMES.index(twin.get(name, name))
        assert mirrored[j].tolist() == [-(source + 1), 100 + source, 200 + source], name
    # two literal rows: RWrist (16) takes LWrist's (13) coordinates, Head (10) keeps its own
    assert mirrored[16].tolist() == [-14.0, 113.0, 213.0]
    assert mirrored[10].tolist() == [-11.0, 110.0, 210.0]
    flipped_2d = flip_pose(torch.from_numpy(pose[:, :2].copy()), H36M)
    assert flipped_2d[1].tolist() == [-5.0, 104.0]  # RHip <- LHip (4)


def test_mpi_inf_3dhp_flip_swaps_its_own_twins() -> None:
    pose = np.arange(17 * 2, dtype=np.float32).reshape(17, 2)
    mirrored = flip_pose(pose, MPI_INF_3DHP)
    expected = pose.copy()
    expected[MPI_LEFT + MPI_RIGHT] = pose[MPI_RIGHT + MPI_LEFT]
    expected[:, 0] *= -1
    np.testing.assert_array_equal(mirrored, expected)


# --- bug 3: MixSTE's WMPJPE joint weights ----------------------------------------------------------------


@pytest.mark.parametrize("name", H36M_NAMES)
def test_wmpjpe_weighs_each_joint_by_mixstes_weight(name: str) -> None:
    """A 0.5 m error on one joint of one frame costs w_joint * 0.5 / 17 (the mean runs over all 17 joints)."""
    j = H36M_NAMES.index(name)
    pred = torch.zeros(1, 2, 17, 3, dtype=torch.float64)
    target = torch.zeros_like(pred)
    target[0, :, j] = torch.tensor([0.3, 0.4, 0.0], dtype=torch.float64)  # |error| = 0.5 on both frames
    _, values = build_loss({"wmpjpe": 1.0, "tc": 0.0})(pred, target)
    assert values["wmpjpe"] == pytest.approx(MIXSTE_JOINT_WEIGHTS[name] * 0.5 / 17, rel=1e-12)


@pytest.mark.parametrize("name", ["RHip", "Head", "LShoulder", "RWrist"])
def test_temporal_consistency_term_uses_the_same_joint_weights(name: str) -> None:
    """TC = mean over (b, t, j, c) of w_j * (P[t+1] - P[t])^2: one joint moving 0.1 in x over one step."""
    j = H36M_NAMES.index(name)
    pred = torch.zeros(1, 2, 17, 3, dtype=torch.float64)
    pred[0, 1, j, 0] = 0.1
    _, values = build_loss({"tc": 1.0})(pred, pred.clone())
    assert values["tc"] == pytest.approx(MIXSTE_JOINT_WEIGHTS[name] * 0.01 / (17 * 3), rel=1e-12)


# --- bug 4: screen normalisation (VideoPose3D: X / w * 2 - [1, h / w]) -----------------------------------

# A 1920 x 1080 frame: x in [0, 1920] -> [-1, 1]; y in [0, 1080] -> [-0.5625, 0.5625] (1080 / 1920 = 0.5625).
SCREEN_CASES: list[tuple[tuple[float, float], tuple[float, float]]] = [
    ((0.0, 0.0), (-1.0, -0.5625)),
    ((960.0, 540.0), (0.0, 0.0)),  # the image centre
    ((1920.0, 1080.0), (1.0, 0.5625)),
    ((480.0, 810.0), (-0.5, 0.28125)),  # 480/1920*2 - 1; 810/1920*2 - 0.5625 = 0.84375 - 0.5625
]


@pytest.mark.parametrize(("pixel", "normalized"), SCREEN_CASES)
def test_normalize_screen_coordinates_of_a_wide_frame(
    pixel: tuple[float, float], normalized: tuple[float, float]
) -> None:
    np.testing.assert_allclose(normalize_screen_coordinates(np.array(pixel), w=1920, h=1080), normalized)
    np.testing.assert_allclose(image_coordinates(np.array(normalized), w=1920, h=1080), pixel)


def test_normalize_screen_coordinates_of_a_tall_frame() -> None:
    """h > w: y spans [-h/w, h/w] = [-2, 2] for a 500 x 1000 frame, x still [-1, 1]."""
    pixels = np.array([[0.0, 0.0], [500.0, 1000.0], [125.0, 250.0]])
    expected = np.array([[-1.0, -2.0], [1.0, 2.0], [-0.5, -1.0]])
    np.testing.assert_allclose(normalize_screen_coordinates(pixels, w=500, h=1000), expected)


# --- bug 5: the distortion model of VideoPose3D's project_to_2d -----------------------------------------
#
# VideoPose3D (common/camera.py, the code that wrote data_2d_h36m_gt.npz), with p = (p1, p2) as stored:
#   xy = X[:2] / X[2]; r2 = |xy|^2; radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3; tan = p1 x + p2 y
#   xy_d = xy * (radial + tan) + p * r2; pixel = f * xy_d + c
# (the textbook Brown model has 2 p1 x y + p2 (r2 + 2 x^2) instead, a few pixels away here).

LITERAL_CAMERA = Camera(
    id="literal",
    res_w=1000,
    res_h=1000,
    focal=np.array([1000.0, 1100.0]),
    center=np.array([500.0, 400.0]),
    radial=np.array([-0.2, 0.1, 0.05]),
    tangential=np.array([0.01, -0.02]),
    orientation=np.array([1.0, 0.0, 0.0, 0.0]),
    translation=np.zeros(3),
)

PROJECTION_CASES: list[tuple[tuple[float, float, float], tuple[float, float]]] = [
    # xy = (0.15, -0.1), r2 = 0.0325, radial = 1 - 0.0065 + 0.000105625 + 0.00000171640625 = 0.99360734140625,
    # tan = 0.0015 + 0.002 = 0.0035; x_d = 0.15 * 0.99710734140625 + 0.01 * 0.0325 = 0.1498911012109375,
    # y_d = -0.1 * 0.99710734140625 - 0.02 * 0.0325 = -0.100360734140625 (textbook: 647.191, 291.941)
    ((0.3, -0.2, 2.0), (649.8911012109375, 289.6031924453125)),
    # xy = (-0.2, 0.1), r2 = 0.05, radial = 1 - 0.01 + 0.00025 + 0.00000625 = 0.99025625, tan = -0.004;
    # x_d = -0.2 * 0.98625625 + 0.0005 = -0.19675125, y_d = 0.098625625 - 0.001 = 0.097625625
    # (textbook: 298.949, 510.578)
    ((-0.5, 0.25, 2.5), (303.24875, 507.3881875)),
    ((0.0, 0.0, 3.0), (500.0, 400.0)),  # on the optical axis: the principal point
]


@pytest.mark.parametrize(("point", "pixel"), PROJECTION_CASES)
def test_projection_uses_videopose3d_distortion(
    point: tuple[float, float, float], pixel: tuple[float, float]
) -> None:
    np.testing.assert_allclose(project_to_pixels(np.array(point), LITERAL_CAMERA), pixel, rtol=0, atol=1e-9)


# --- bug 6: each backbone's learning-rate schedule (0-based epoch e) -------------------------------------
#
# MixSTE 4e-5 * 0.99^e, PoseFormer 1e-4 * 0.99^e (0.99^10 = 0.9043820750088043). MHFormer's script (main.py):
# after epoch k (1-based) lr *= 0.5 if k % 5 == 0 else 0.95, so before 0-based epoch e the lr is
# 1e-3 * 0.95^(e - e // 5) * 0.5^(e // 5) (0.95^4 = 0.81450625, 0.95^8 = 0.6634204312890625).

LR_CASES: list[tuple[str, int, float]] = [
    ("mixste", 0, 4e-5),
    ("mixste", 1, 3.96e-5),
    ("mixste", 10, 3.617528300035217e-05),
    ("poseformer", 0, 1e-4),
    ("poseformer", 1, 9.9e-5),
    ("poseformer", 10, 9.043820750088043e-05),
    ("mhformer", 0, 1e-3),
    ("mhformer", 1, 9.5e-4),
    ("mhformer", 4, 8.1450625e-4),
    ("mhformer", 5, 4.07253125e-4),  # 0.81450625 / 2: halved instead of decayed after the 5th epoch
    ("mhformer", 6, 3.8689046875e-4),  # 0.95^5 / 2
    ("mhformer", 10, 1.6585510782226562e-4),  # 0.95^8 / 4
]


@pytest.mark.parametrize(("backbone", "epoch", "lr"), LR_CASES)
def test_learning_rate_of_each_backbones_recipe(backbone: str, epoch: int, lr: float) -> None:
    frames = 27 if backbone != "mixste" else 243
    config = ExperimentConfig.model_validate({"model": {"backbone": backbone, "frames": frames}}).resolved()
    assert learning_rate(config, epoch) == pytest.approx(lr, rel=1e-12)


# -- per-joint error, PCK and AUC on a hand-worked pose (ground truth away from the origin) ---------------------

# Two frames of three joints. The prediction is the ground truth plus offsets whose lengths are worked out by
# hand: frame 0: 0.05 (3-4-5), 0, 0.1; frame 1: 0.2, 0.2 (0.12-0.16-0.2), 0. The ground truth is far from 0,
# so an error computed from pred + gt (or from pred alone) cannot pass for pred - gt.
HAND_GT = np.array(
    [
        [[1.0, 2.0, 3.0], [0.5, 0.5, 0.5], [-1.0, 0.0, 2.0]],
        [[1.5, 2.5, 3.5], [0.25, -0.5, 1.0], [-2.0, 1.0, 2.5]],
    ]
)
HAND_OFFSETS = np.array(
    [
        [[0.03, 0.04, 0.0], [0.0, 0.0, 0.0], [0.1, 0.0, 0.0]],
        [[0.0, 0.0, 0.2], [0.0, 0.12, 0.16], [0.0, 0.0, 0.0]],
    ]
)
HAND_PRED = HAND_GT + HAND_OFFSETS


def test_per_joint_error_pck_and_auc_of_a_hand_worked_pose() -> None:
    from tmt.metrics import auc, mpjpe, pck, per_frame_mpjpe, per_joint_mpjpe

    np.testing.assert_allclose(per_joint_mpjpe(HAND_PRED, HAND_GT), [0.125, 0.1, 0.05], atol=1e-12)
    np.testing.assert_allclose(per_frame_mpjpe(HAND_PRED, HAND_GT), [0.05, 0.4 / 3], atol=1e-12)
    assert mpjpe(HAND_PRED, HAND_GT) == pytest.approx(0.55 / 6, abs=1e-12)
    # distances 0.05, 0, 0.1, 0.2, 0.2, 0: four within 0.15; on joints 0 and 2, three of four within 0.12
    assert pck(HAND_PRED, HAND_GT, threshold=0.15, joints=None) == pytest.approx(4 / 6)
    assert pck(HAND_PRED, HAND_GT, threshold=0.12, joints=[0, 2]) == pytest.approx(3 / 4)
    # PCK at 0, 0.06, 0.15, 0.3 is 2/6, 3/6, 4/6, 6/6: AUC = 15/24
    assert auc(HAND_PRED, HAND_GT, thresholds=[0.0, 0.06, 0.15, 0.3], joints=None) == pytest.approx(0.625)


@pytest.mark.parametrize(
    ("function", "name"),
    [
        ("per_frame_mpjpe", "per_frame_mpjpe"),
        ("per_joint_mpjpe", "per_joint_mpjpe"),
        ("pck", "pck"),
        ("auc", "auc"),
        ("p_mpjpe", "procrustes_align"),
        ("n_mpjpe", "per_frame_n_mpjpe"),
        ("mpjve", "per_frame_mpjve"),
    ],
)
def test_a_metric_names_itself_when_shapes_differ(function: str, name: str) -> None:
    import tmt.metrics
    from tmt.errors import DataError

    with pytest.raises(DataError) as err:
        getattr(tmt.metrics, function)(HAND_PRED, HAND_GT[:, :2])
    assert str(err.value) == (
        f"{name}: prediction (2, 3, 3) and ground truth (2, 2, 3) must both be (N, J, C)"
    )


def test_mpjpe_loss_of_a_hand_worked_pose() -> None:
    from tmt.losses import mpjpe_loss

    pred, gt = torch.tensor(HAND_PRED), torch.tensor(HAND_GT)
    assert float(mpjpe_loss(pred, gt)) == pytest.approx(0.55 / 6, abs=1e-12)
    with pytest.raises(Exception) as err:
        mpjpe_loss(pred, gt[:1])
    assert str(err.value) == (
        "mpjpe_loss: prediction (2, 3, 3) and target (1, 3, 3) differ in shape "
        "(a centre-frame model's target must be sliced to the centre frame)"
    )


def test_a_skeleton_with_mismatched_lists_is_refused_with_its_name() -> None:
    from tmt.skeleton import Skeleton

    with pytest.raises(ValueError) as err:
        Skeleton("toy", ("a", "b"), (-1,), (), ())
    assert str(err.value) == "skeleton toy: 1 parents for 2 joints"
    with pytest.raises(ValueError) as err:
        Skeleton("toy", ("a", "b"), (-1, 0), (0,), ())
    assert str(err.value) == "skeleton toy: left and right joint lists differ in length"
    assert Skeleton("toy", ("a", "b"), (-1, 0), (), ()).num_joints == 2


def test_quality_mixing_keeps_the_inputs_precision_and_names_a_shape_mismatch() -> None:
    from tmt.data.quality import mix_towards_gt
    from tmt.errors import DataError

    detected = np.array([[0.0, 1.0]], dtype=np.float64)
    gt = np.array([[1.0, 3.0]], dtype=np.float32)
    mixed = mix_towards_gt(detected, gt, 0.25)  # K + m (GT - K) = (0.25, 1.5)
    assert mixed.dtype == np.float64
    np.testing.assert_array_equal(mixed, [[0.25, 1.5]])
    with pytest.raises(DataError) as err:
        mix_towards_gt(detected, gt[:, :1], 0.5)
    assert str(err.value) == (
        "mix_towards_gt: detected keypoints (1, 2) and ground-truth keypoints (1, 1) must have the same shape "
        "(truncate the 2D sequence to the mocap length first)"
    )


def test_mpi_inf_3dhp_loss_weights_follow_the_joints_not_their_indices() -> None:
    """MixSTE's weights written down per MPI-INF-3DHP joint (its order: HeadTop, Neck, RShoulder, RElbow, RWrist,
    LShoulder, LElbow, LWrist, RHip, RKnee, RAnkle, LHip, LKnee, LAnkle, Pelvis, Spine, Head): left and right
    alike, knees and ankles 2.5, elbows and wrists 4, shoulders and head top 1.5, the trunk 1."""
    from tmt.skeleton import joint_weights

    assert joint_weights(MPI_INF_3DHP) == (1.5, 1, 1.5, 4, 4, 1.5, 4, 4, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1)
    assert joint_weights(H36M) == (1, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1, 1.5, 1.5, 4, 4, 1.5, 4, 4)


# -- cameras, skeleton look-up, features along another axis, aggregation precision -----------------------------


def test_camera_to_world_inverts_a_hand_worked_rotation_and_translation() -> None:
    """A 90 degree turn about z (q = (cos 45, 0, 0, sin 45)) takes x to y; then the translation is added."""
    from dataclasses import replace

    from tmt.cameras import camera_to_world, world_to_camera

    half = np.sqrt(0.5)
    camera = replace(
        LITERAL_CAMERA, orientation=np.array([half, 0.0, 0.0, half]), translation=np.array([1.0, 2.0, 3.0])
    )
    np.testing.assert_allclose(
        camera_to_world(np.array([1.0, 0.0, 0.0]), camera), [1.0, 3.0, 3.0], atol=1e-12
    )
    np.testing.assert_allclose(
        camera_to_world(np.array([0.0, 0.0, 2.0]), camera), [1.0, 2.0, 5.0], atol=1e-12
    )
    np.testing.assert_allclose(
        world_to_camera(np.array([1.0, 3.0, 3.0]), camera), [1.0, 0.0, 0.0], atol=1e-12
    )


def test_human36m_camera_orientations_are_renormalised_videopose3d_quaternions() -> None:
    """S1's first camera (54138969) as VideoPose3D stores it, float32-rounded; the loaded one has norm 1."""
    from tmt.cameras import h36m_cameras

    stored = np.array([0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088])
    loaded = h36m_cameras.__wrapped__()  # built afresh, not the process's cached copy
    camera = loaded["S1"][0]
    assert camera.id == "54138969"
    np.testing.assert_allclose(camera.orientation, stored / np.sqrt((stored**2).sum()), atol=1e-15)
    for cameras in loaded.values():
        for cam in cameras:
            assert abs(float(np.sqrt((cam.orientation**2).sum())) - 1.0) < 1e-15


def test_joint_index_by_name() -> None:
    assert (H36M.index("Hip"), H36M.index("LKnee"), H36M.index("RWrist")) == (0, 5, 16)
    assert MPI_INF_3DHP.index("Pelvis") == 14


def test_acceleration_along_another_axis() -> None:
    """x = t^2 along dim 0 of a (4, 2) tensor: velocity 0, 1, 3, 5; acceleration 0, 1, 2, 2."""
    from tmt.features import acceleration

    x = torch.tensor([[0.0, 0.0], [1.0, 10.0], [4.0, 40.0], [9.0, 90.0]])
    expected = torch.tensor([[0.0, 0.0], [1.0, 10.0], [2.0, 20.0], [2.0, 20.0]])
    torch.testing.assert_close(acceleration(x, 0), expected)


def test_action_average_sums_float32_errors_in_float64() -> None:
    """1e8 + 1 - 1e8 is 0 in float32 arithmetic but 1 in float64: the mean of the three frames is 1/3."""
    from tmt.metrics import action_average

    per_action, average = action_average({"Walking 1": [np.array([1e8, 1.0, -1e8], dtype=np.float32)]})
    assert per_action == {"Walking": pytest.approx(1 / 3)} and average == pytest.approx(1 / 3)


def test_quality_mixing_of_float32_detections_with_float64_ground_truth_is_float64() -> None:
    from tmt.data.quality import mix_towards_gt

    mixed = mix_towards_gt(np.zeros((1, 2), dtype=np.float32), np.ones((1, 2), dtype=np.float64), 0.5)
    assert mixed.dtype == np.float64


def test_the_earlier_halving_rule_stays_available() -> None:
    """``optim.lr_halving: also``: x 0.95 every epoch and x 0.5 every 5th as well, 1e-3 * 0.95^10 / 4 at e=10."""
    config = ExperimentConfig.model_validate(
        {"model": {"backbone": "mhformer", "frames": 27}, "optim": {"lr_halving": "also"}}
    ).resolved()
    assert learning_rate(config, 10) == pytest.approx(1e-3 * 0.5987369392383789 / 4, rel=1e-12)


# -- second round of mutation survivors: the velocity loss, loss and metric error names, Procrustes off-centre -


def test_mpjve_loss_of_two_and_three_hand_worked_frames() -> None:
    """Target moving 2 per frame along x far from 0; the prediction deviates from it by (0.3, 0.4, 0) then
    (0.3, 0.4, 1): velocity errors 0.5 and 1.
    Two frames are enough for a velocity (one difference); one frame gives 0."""
    from tmt.losses import mpjve_loss

    target = torch.full((1, 3, 1, 3), 5.0, dtype=torch.float64)
    target[0, :, 0, 0] += torch.tensor([0.0, 2.0, 4.0], dtype=torch.float64)  # the target moves 2 along x
    pred = target.clone()
    pred[0, 1, 0] += torch.tensor([0.3, 0.4, 0.0], dtype=torch.float64)
    pred[0, 2, 0] += torch.tensor([0.3, 0.4, 1.0], dtype=torch.float64)
    assert float(mpjve_loss(pred, target)) == pytest.approx(0.75, abs=1e-12)
    assert float(mpjve_loss(pred[:, :2], target[:, :2])) == pytest.approx(0.5, abs=1e-12)
    assert float(mpjve_loss(pred[:, :1], target[:, :1])) == 0.0


@pytest.mark.parametrize("name", ["weighted_mpjpe_loss", "mpjve_loss"])
def test_a_loss_names_itself_when_shapes_differ(name: str) -> None:
    import tmt.losses

    pred, target = torch.zeros(1, 3, 17, 3), torch.zeros(1, 2, 17, 3)
    args = (pred, target, [1.0] * 17) if name == "weighted_mpjpe_loss" else (pred, target)
    with pytest.raises(Exception) as err:
        getattr(tmt.losses, name)(*args)
    assert str(err.value) == (
        f"{name}: prediction (1, 3, 17, 3) and target (1, 2, 17, 3) differ in shape "
        "(a centre-frame model's target must be sliced to the centre frame)"
    )


@pytest.mark.parametrize("name", ["weighted_mpjpe_loss", "tc_loss"])
def test_a_weighted_loss_names_itself_when_the_weights_do_not_fit(name: str) -> None:
    import tmt.losses

    pred = torch.zeros(1, 3, 17, 3)
    args = (pred, pred, [1.0] * 16) if name == "weighted_mpjpe_loss" else (pred, [1.0] * 16)
    with pytest.raises(Exception) as err:
        getattr(tmt.losses, name)(*args)
    assert str(err.value) == f"{name}: (16,) joint weights for 17 joints"


def test_action_average_refuses_nothing_and_an_action_without_frames() -> None:
    from tmt.errors import DataError
    from tmt.metrics import action_average

    with pytest.raises(DataError) as err:
        action_average({})
    assert str(err.value) == "action_average: no actions given"
    with pytest.raises(DataError) as err:
        action_average({"Walking 1": [], "Eating": [np.ones(3)]})
    assert str(err.value) == "action_average: action 'Walking' has no frames"


def test_metrics_of_float32_inputs_are_computed_in_float64() -> None:
    """The same values as float32 or float64 give the same numbers to the last bit (float64 arithmetic)."""
    from tmt.metrics import mpjve, p_mpjpe, per_frame_mpjpe

    rng = np.random.default_rng(3)
    pred32 = rng.normal(size=(6, 17, 3)).astype(np.float32)
    gt32 = rng.normal(size=(6, 17, 3)).astype(np.float32)
    pred64, gt64 = pred32.astype(np.float64), gt32.astype(np.float64)
    np.testing.assert_array_equal(per_frame_mpjpe(pred32, gt32), per_frame_mpjpe(pred64, gt64))
    assert mpjve(pred32, gt32) == mpjve(pred64, gt64) and p_mpjpe(pred32, gt32) == p_mpjpe(pred64, gt64)
    assert per_frame_mpjpe(pred32, gt32).dtype == np.float64


def test_procrustes_aligns_a_similar_copy_of_a_pose_far_from_the_origin() -> None:
    """pred = 2 R gt + t for a 90 degree turn about z: after alignment P-MPJPE is 0, even with gt off-centre."""
    from tmt.metrics import p_mpjpe

    gt = np.random.default_rng(4).normal(size=(2, 17, 3)) + np.array([5.0, -3.0, 8.0])
    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    pred = 2.0 * gt @ rotation.T + np.array([0.5, 1.0, -2.0])
    assert p_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)


def test_tmt_features_take_the_keypoints_precision() -> None:
    from tmt.features import extra_features

    kp = torch.zeros(1, 3, 17, 2, dtype=torch.float32)
    pose = torch.arange(3 * 17 * 3, dtype=torch.float64).reshape(1, 3, 17, 3)
    v3 = extra_features("v3", kp, pose)
    assert v3.dtype == torch.float32
    torch.testing.assert_close(v3[0, 1], torch.full((17, 3), 51.0))  # one frame later every coordinate is +51


def test_rotation_matrix_of_hand_worked_quaternions() -> None:
    """90 degrees about z: x -> y, y -> -x; 180 degrees about x: y -> -y, z -> -z."""
    from tmt.cameras import quaternion_to_matrix

    half = np.sqrt(0.5)
    np.testing.assert_allclose(
        quaternion_to_matrix([half, 0, 0, half]), [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15
    )
    np.testing.assert_allclose(quaternion_to_matrix([0, 1, 0, 0]), np.diag([1.0, -1.0, -1.0]), atol=1e-15)


def test_a_zero_coefficient_term_is_reported_and_the_later_terms_still_count() -> None:
    """{mpjve: 0, mpjpe: 1}: the total is the MPJPE alone (0.55 / 6), the MPJVE is reported beside it."""
    loss = build_loss({"mpjve": 0.0, "mpjpe": 1.0})
    total, values = loss(torch.tensor(HAND_PRED), torch.tensor(HAND_GT))
    assert float(total) == pytest.approx(0.55 / 6, abs=1e-12)
    assert set(values) == {"mpjve", "mpjpe"} and values["mpjpe"] == pytest.approx(0.55 / 6, abs=1e-12)


def test_quality_mixing_of_integer_keypoints_is_floating() -> None:
    from tmt.data.quality import mix_towards_gt

    mixed = mix_towards_gt(np.array([[0, 2]]), np.array([[1, 3]]), 0.5)
    assert mixed.dtype == np.float64 and mixed.tolist() == [[0.5, 2.5]]  # int64 with float32: float64


def test_a_valid_strategy_is_registered_as_given_and_may_replace_with_overwrite() -> None:
    from tmt.training import STRATEGIES, Strategy, register_strategy

    mine = Strategy("literal_features_first", "v3", ("features", "zeros"))
    try:
        assert register_strategy(mine) is mine and STRATEGIES["literal_features_first"] is mine
        again = Strategy("literal_features_first", "v2", ("zeros",))
        assert (
            register_strategy(again, overwrite=True) is again
            and STRATEGIES["literal_features_first"] is again
        )
    finally:
        STRATEGIES.pop("literal_features_first", None)


def test_zero_extra_channels_leave_the_keypoints_as_they_are() -> None:
    from tmt.features import compose_input

    kp = torch.arange(12.0).reshape(1, 2, 3, 2)
    assert compose_input(kp, None) is kp
    assert compose_input(kp, torch.empty(5, 0)) is kp  # no channels to add: their leading shape is moot
    one = compose_input(kp, torch.full((1, 2, 3, 1), 7.0))
    assert one.shape == (1, 2, 3, 3) and torch.equal(one[..., :2], kp) and bool((one[..., 2] == 7.0).all())


def test_an_unknown_feature_kind_lists_the_known_ones() -> None:
    from tmt.errors import ConfigError
    from tmt.features import zeros_for

    with pytest.raises(ConfigError) as err:
        zeros_for("v4", torch.zeros(1, 1, 17, 2))
    assert str(err.value) == "unknown extra-feature kind 'v4'; choose one of none, zeros, v3, v2, a3, va3"


def test_a_skeleton_without_a_known_joint_has_no_loss_weight_and_says_which() -> None:
    from tmt.skeleton import Skeleton, joint_weights

    tail = Skeleton("lizard", ("Hip", "Tail"), parents=(-1, 0), left=(), right=())
    with pytest.raises(ValueError) as err:
        joint_weights(tail)
    assert str(err.value) == "skeleton lizard: no loss weight for joint 'Tail'"


def test_weighted_loss_of_one_clip_without_a_batch_axis() -> None:
    """(T, J, 3) poses: the weights go with axis -2 (the joints), not axis 2 (the coordinates). Joint 1 is
    off by 2 in one of 2 frames; weight 3 there: mean over 2 x 17 of 3 x 2 = 6 / 34."""
    from tmt.losses import weighted_mpjpe_loss

    target = torch.zeros(2, 17, 3)
    pred = target.clone()
    pred[0, 1, 0] = 2.0
    weights = [1.0] * 17
    weights[1] = 3.0
    assert float(weighted_mpjpe_loss(pred, target, weights)) == pytest.approx(6 / 34)


def test_tmt_step_two_feeds_the_raw_velocity_unless_told_to_scale_it() -> None:
    """Frames 0, 1, 3 of a joint moving along z: V3 = 0, 1, 2 (zero at the first frame), unscaled."""
    from tmt.training.strategies import get_strategy

    kp = torch.zeros(1, 3, 17, 2)
    pose = torch.zeros(1, 3, 17, 3)
    pose[0, :, 5, 2] = torch.tensor([0.0, 1.0, 3.0])
    tmt = get_strategy("tmt")
    inp = tmt.step_input("features", kp, pose)
    assert inp.shape == (1, 3, 17, 5)
    assert inp[0, :, 5, 4].tolist() == [0.0, 1.0, 2.0]
    assert float(inp[..., 2:].abs().sum()) == 3.0
    assert tmt.step_input("features", kp, pose, 0.5)[0, :, 5, 4].tolist() == [0.0, 0.5, 1.0]


def test_a_cells_short_text_and_record_name_its_real_data() -> None:
    from bench.cells import Cell

    config = ExperimentConfig.model_validate({"model": {"backbone": "mixste", "frames": 9}}).resolved()
    labels = {"train.loss.tc": 0.5, "model.depth": 4}
    synthetic = Cell("s", "cpu", "train", labels, config, seed=2)
    assert synthetic.describe() == "tc=0.5 depth=4 seed=2"  # the last part of each axis name
    assert "data_fingerprint" not in synthetic.record()
    real = Cell("s", "paper", "train", labels, config, seed=2, data="ab12")
    assert real.record()["data_fingerprint"] == "ab12"
    assert real.record()["studies"] == {"s": {"labels": labels, "source": ""}}


def _optim(**optim) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"model": {"backbone": "mixste", "frames": 9}, "optim": {"epochs": 10, **optim}}
    ).resolved()


def test_stopping_rule_ends_at_each_cap_exactly_and_prefers_the_plateau() -> None:
    """Validation 50, 40, 39.9, 39.8, 39.9 mm with patience 3 and min_delta 0.3: after epoch 2 (40 mm) three
    epochs bring at most 0.2 mm, so the plateau is epoch 2, declared after epoch 5 and not before."""
    from tmt.training.state import TrainState
    from tmt.training.stopping import stopping_rule

    val = [50.0, 40.0, 39.9, 39.8, 39.9]
    history = [{"val_mpjpe": v} for v in val]
    plateau = _optim(stop_at_plateau=True)
    plateau = plateau.model_copy(
        update={"eval": plateau.eval.model_copy(update={"plateau_patience": 3, "plateau_min_delta": 0.3})}
    )
    assert stopping_rule(plateau, TrainState(epoch=4, history=history[:4])) == (None, None)
    assert stopping_rule(plateau, TrainState(epoch=5, history=history)) == ("plateau", 2)
    at_cap = TrainState(epoch=10, history=history, updates=500, wall_time_s=99.0)
    assert stopping_rule(plateau, at_cap) == ("plateau", 2)  # the plateau comes first, even at a cap
    assert stopping_rule(_optim(), TrainState(epoch=9)) == (None, None)
    assert stopping_rule(_optim(), TrainState(epoch=10)) == ("epochs", None)
    assert stopping_rule(_optim(max_updates=100), TrainState(epoch=3, updates=99)) == (None, None)
    assert stopping_rule(_optim(max_updates=100), TrainState(epoch=3, updates=100)) == ("updates", None)
    assert stopping_rule(_optim(max_wall_s=60.0), TrainState(epoch=3, wall_time_s=59.9)) == (None, None)
    assert stopping_rule(_optim(max_wall_s=60.0), TrainState(epoch=3, wall_time_s=60.0)) == (
        "wall_time",
        None,
    )
    both = _optim(max_updates=100, max_wall_s=60.0)
    assert stopping_rule(both, TrainState(epoch=10, updates=100, wall_time_s=60.0)) == ("epochs", None)
    assert stopping_rule(both, TrainState(epoch=3, updates=100, wall_time_s=60.0)) == ("updates", None)


@pytest.mark.parametrize(
    ("backbone", "frames", "adam", "lr", "weight_decay", "amsgrad"),
    [
        ("mixste", 27, torch.optim.AdamW, 4e-5, 0.1, False),  # MixSTE's run script
        ("poseformer", 27, torch.optim.AdamW, 1e-4, 0.1, False),  # PoseFormer's
        ("mhformer", 27, torch.optim.Adam, 1e-3, 0.0, True),  # MHFormer's: Adam with amsgrad
    ],
)
def test_each_backbone_trains_with_its_reference_optimizer(backbone, frames, adam, lr, weight_decay, amsgrad):
    from tmt.training.experiment import build_experiment_model
    from tmt.training.optimizer import make_optimizer

    config = ExperimentConfig.model_validate(
        {"model": {"backbone": backbone, "frames": frames, "depth": 1, "dim": 16, "heads": 2}}
    ).resolved()
    model = build_experiment_model(config)
    model.requires_grad_(False)
    head = list(model.parameters())[-1]
    head.requires_grad_(True)  # frozen parameters are not optimised
    optimizer = make_optimizer(model, config)
    assert type(optimizer) is adam
    (group,) = optimizer.param_groups
    assert group["params"] == [head]
    assert (group["lr"], group["weight_decay"], group["amsgrad"]) == (lr, weight_decay, amsgrad)
    assert group["fused"] is True  # one fused kernel on the CPU
