import pytest
import torch

from tmt.errors import ConfigError
from tmt.features import (
    EXTRA_CHANNELS,
    acceleration,
    compose_input,
    extra_features,
    velocity,
    zeros_for,
)


def positions(values):
    """(1, T, 1, 1) tensor holding one coordinate of one joint over time."""
    return torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1, 1)


def test_velocity_hand_case():
    v = velocity(positions([1.0, 3.0, 6.0, 10.0]))
    assert v.flatten().tolist() == [0.0, 2.0, 3.0, 4.0]


def test_acceleration_hand_case():
    # Eq. 4 with V(1) = 0: A(2) = V(2) - V(1) = V(2)
    a = acceleration(positions([1.0, 3.0, 6.0, 10.0]))
    assert a.flatten().tolist() == [0.0, 2.0, 1.0, 1.0]


def test_first_frame_zero_and_shape_kept():
    x = torch.randn(4, 9, 17, 3)
    for f in (velocity, acceleration):
        out = f(x)
        assert out.shape == x.shape
        assert torch.all(out[:, 0] == 0)
    torch.testing.assert_close(velocity(x)[:, 1:], x[:, 1:] - x[:, :-1])


def test_velocity_other_dim_and_single_frame():
    x = torch.randn(3, 5)
    torch.testing.assert_close(velocity(x, dim=0)[1:], x[1:] - x[:-1])
    assert torch.all(velocity(torch.randn(2, 1, 17, 3)) == 0)


def test_velocity_is_computed_per_window():
    # the second window's first frame must not see the first window's last frame
    x = torch.stack([torch.zeros(4, 17, 3), torch.ones(4, 17, 3)])
    assert torch.all(velocity(x) == 0)


@pytest.mark.parametrize("kind", list(EXTRA_CHANNELS))
def test_extra_feature_widths(kind):
    kp, pose = torch.randn(2, 7, 17, 2), torch.randn(2, 7, 17, 3)
    extra = extra_features(kind, kp, pose)
    assert extra.shape == (2, 7, 17, EXTRA_CHANNELS[kind])
    assert zeros_for(kind, kp).shape == extra.shape
    assert torch.all(zeros_for(kind, kp) == 0)


def test_extra_feature_contents():
    kp, pose = torch.randn(2, 7, 17, 2), torch.randn(2, 7, 17, 3)
    assert torch.all(extra_features("zeros", kp, pose) == 0)
    torch.testing.assert_close(extra_features("v3", kp, pose), velocity(pose))
    torch.testing.assert_close(extra_features("v2", kp, pose), velocity(kp))
    torch.testing.assert_close(extra_features("a3", kp, pose), acceleration(pose))
    torch.testing.assert_close(
        extra_features("va3", kp, pose), torch.cat([velocity(pose), acceleration(pose)], -1)
    )


@pytest.mark.parametrize(
    ("kind", "width"), [("none", 2), ("zeros", 5), ("v3", 5), ("v2", 4), ("a3", 5), ("va3", 8)]
)
def test_composed_input_widths(kind, width):
    kp, pose = torch.randn(3, 4, 17, 2), torch.randn(3, 4, 17, 3)
    x = compose_input(kp, extra_features(kind, kp, pose))
    assert x.shape == (3, 4, 17, width)
    torch.testing.assert_close(x[..., :2], kp)
    assert compose_input(kp, zeros_for(kind, kp)).shape == x.shape


def test_compose_input_without_extra_is_the_2d():
    kp = torch.randn(1, 3, 17, 2)
    assert compose_input(kp, None) is kp


def test_bad_kind_and_shapes():
    kp, pose = torch.randn(1, 3, 17, 2), torch.randn(1, 3, 17, 3)
    with pytest.raises(ConfigError, match="v4"):
        extra_features("v4", kp, pose)
    with pytest.raises(ConfigError, match="kind"):
        zeros_for("velocity", kp)
    with pytest.raises(ConfigError, match="pose_3d"):
        extra_features("v3", kp, torch.randn(1, 4, 17, 3))
    with pytest.raises(ConfigError, match="extra"):
        compose_input(kp, torch.randn(1, 3, 16, 3))
