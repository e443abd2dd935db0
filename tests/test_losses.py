import pytest
import torch

from tmt.errors import ConfigError
from tmt.losses import (
    DEFAULT_LOSS,
    LOSS_TERMS,
    build_loss,
    mpjpe_loss,
    mpjve_loss,
    tc_loss,
    weighted_mpjpe_loss,
)
from tmt.skeleton import H36M_JOINT_WEIGHTS


def test_mpjpe_loss_hand_case():
    target = torch.zeros(1, 2, 2, 3)
    pred = target.clone()
    pred[0, 0, 1] = torch.tensor([3.0, 4.0, 0.0])
    assert mpjpe_loss(pred, target).item() == pytest.approx(5 / 4)


def test_weighted_mpjpe_applies_joint_weights():
    target = torch.zeros(1, 1, 2, 3)
    pred = target.clone()
    pred[0, 0, 1] = torch.tensor([3.0, 4.0, 0.0])
    assert weighted_mpjpe_loss(pred, target, [1.0, 2.0]).item() == pytest.approx(2 * 5 / 2)
    assert weighted_mpjpe_loss(pred, target, [2.0, 1.0]).item() == pytest.approx(5 / 2)
    assert weighted_mpjpe_loss(pred, target, [1.0, 1.0]).item() == pytest.approx(
        mpjpe_loss(pred, target).item()
    )


def test_tc_loss_hand_case():
    pred = torch.zeros(1, 3, 2, 3)
    pred[0, 1, 0, 0] = 2.0  # joint 0 moves 2 then back: squared steps 4 and 4
    # mean over b, t (2 steps), j (2), c (3) of w_j * d^2
    assert tc_loss(pred, [1.0, 1.0]).item() == pytest.approx(8 / 12)
    assert tc_loss(pred, [3.0, 1.0]).item() == pytest.approx(24 / 12)
    assert tc_loss(pred, [1.0, 3.0]).item() == pytest.approx(8 / 12)
    # constant motion of the target does not matter, only the prediction's
    assert tc_loss(torch.ones(2, 5, 2, 3), [1.0, 1.0]).item() == 0.0


def test_mpjve_loss_hand_case():
    target = torch.zeros(1, 3, 1, 3)
    pred = target.clone()
    pred[0, 1, 0] = torch.tensor([3.0, 4.0, 0.0])  # two velocity errors of length 5, over 2 steps
    assert mpjve_loss(pred, target).item() == pytest.approx(5.0)
    assert mpjve_loss(target + 7.0, target).item() == 0.0  # a constant offset has no velocity error


def test_single_frame_temporal_terms_are_zero_but_differentiable():
    pred = torch.randn(4, 1, 17, 3, requires_grad=True)
    target = torch.randn(4, 1, 17, 3)
    for value in (tc_loss(pred, H36M_JOINT_WEIGHTS), mpjve_loss(pred, target)):
        assert value.item() == 0.0
    total, terms = build_loss({"tc": 1.0, "mpjve": 1.0})(pred, target)
    total.backward()
    assert torch.all(pred.grad == 0)
    assert terms == {"tc": 0.0, "mpjve": 0.0}


def test_shape_mismatch_raises():
    with pytest.raises(ConfigError, match="centre"):
        mpjpe_loss(torch.zeros(2, 1, 17, 3), torch.zeros(2, 9, 17, 3))
    with pytest.raises(ConfigError, match="joint weights"):
        weighted_mpjpe_loss(torch.zeros(1, 1, 17, 3), torch.zeros(1, 1, 17, 3), [1.0] * 16)


def test_default_loss_is_the_weighted_sum_of_its_parts():
    assert DEFAULT_LOSS == {"wmpjpe": 1.0, "tc": 0.5, "mpjve": 2.0}
    pred, target = torch.randn(2, 9, 17, 3), torch.randn(2, 9, 17, 3)
    total, terms = build_loss(DEFAULT_LOSS)(pred, target)
    w = H36M_JOINT_WEIGHTS
    parts = {
        "wmpjpe": weighted_mpjpe_loss(pred, target, w),
        "tc": tc_loss(pred, w),
        "mpjve": mpjve_loss(pred, target),
    }
    expected = parts["wmpjpe"] + 0.5 * parts["tc"] + 2.0 * parts["mpjve"]
    torch.testing.assert_close(total, expected)
    assert terms == pytest.approx({k: v.item() for k, v in parts.items()})


def test_gradients_flow_through_every_term():
    target = torch.randn(2, 5, 17, 3)
    for name in LOSS_TERMS:
        pred = torch.randn(2, 5, 17, 3, requires_grad=True)
        total, _ = build_loss({name: 1.0})(pred, target)
        total.backward()
        assert pred.grad is not None and pred.grad.abs().sum() > 0, name


def test_zero_coefficient_terms_are_logged_not_trained():
    pred = torch.randn(2, 5, 17, 3, requires_grad=True)
    target = torch.randn(2, 5, 17, 3)
    total, terms = build_loss({"mpjpe": 1.0, "mpjve": 0.0})(pred, target)
    torch.testing.assert_close(total, mpjpe_loss(pred, target))
    assert terms["mpjve"] == pytest.approx(mpjve_loss(pred, target).item())


def test_custom_joint_weights():
    pred, target = torch.randn(1, 3, 2, 3), torch.randn(1, 3, 2, 3)
    total, _ = build_loss({"wmpjpe": 1.0}, joint_weights=[0.0, 1.0])(pred, target)
    expected = torch.linalg.vector_norm(pred - target, dim=-1)[..., 1].mean() / 2
    torch.testing.assert_close(total, expected)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"wmpjpe": 1.0, "l1": 0.5}, "'l1'.*mpjpe, wmpjpe, tc, mpjve"),
        ({"tc": -0.5}, "'tc'.*non-negative"),
        ({"tc": float("inf")}, "'tc'"),
        ({"tc": "0.5"}, "'tc'"),
        ({}, "mpjpe"),
        ({"mpjpe": 0.0}, "0"),
    ],
)
def test_bad_specs_raise(spec, match):
    with pytest.raises(ConfigError, match=match):
        build_loss(spec)
