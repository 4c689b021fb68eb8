"""The spherical-regression head's loss on known inputs (acc_core.spherical_regression)."""

from __future__ import annotations

import math

import torch

from acc_core import spherical_regression as sr


def test_spherical_exp_is_a_positive_unit_vector():
    x = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [5.0, -5.0]])
    y = sr.spherical_exp(x)
    torch.testing.assert_close(y.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(y[0], torch.full((2,), 2 ** -0.5))
    torch.testing.assert_close(y[1], torch.tensor([3 ** 0.5 / 2, 0.5]))  # sqrt(3/4), sqrt(1/4)


def test_quadrants():
    a = torch.tensor([0.3, 2.0, -2.0, -0.3])  # (+,+), (+,-), (-,-), (-,+)
    assert sr.quadrant(a).tolist() == [0, 1, 3, 2]


def test_loss_on_known_inputs():
    angles = torch.tensor([[math.pi / 6, -2.5]])  # (1, 2)
    target = torch.stack([angles.sin().abs(), angles.cos().abs()], -1)  # (1, 2, 2)
    perfect = torch.log(target**2)  # softmax -> target², sqrt -> target
    quad = torch.zeros(1, 2, 4)  # uniform over 4 classes: cross-entropy log 4
    loss, terms = sr.spherical_regression_loss(perfect, quad, angles)
    assert abs(terms["magnitude"]) < 1e-6
    assert abs(terms["quadrant"] - math.log(4)) < 1e-6
    assert abs(float(loss) - math.log(4)) < 1e-5
    # uniform magnitudes (1, 1)/√2 against (sin 30°, cos 30°) = (1/2, √3/2): 1 − (1 + √3)/(2√2)
    _, terms = sr.spherical_regression_loss(torch.zeros(1, 2, 2), quad, angles[:, :1].expand(1, 2))
    assert abs(terms["magnitude"] - (1 - (1 + 3 ** 0.5) / (2 * 2 ** 0.5))) < 1e-6
    # decode returns the angles when the quadrant is right
    right = torch.full((1, 2, 4), -10.0)
    right[0, 0, sr.quadrant(angles)[0, 0]] = right[0, 1, sr.quadrant(angles)[0, 1]] = 10.0
    torch.testing.assert_close(sr.decode(perfect, right), angles)


def test_head_shapes_and_gradients():
    torch.manual_seed(0)
    head = sr.SphericalRegressionHead(16)
    z = torch.randn(5, 16, requires_grad=True)
    mag, quad = head(z)
    assert mag.shape == (5, 2, 2) and quad.shape == (5, 2, 4)
    # the head sees unit vectors: scaling an embedding changes nothing
    mag2, _ = head(3 * z)
    torch.testing.assert_close(mag, mag2)
    loss, _ = sr.spherical_regression_loss(mag, quad, torch.rand(5, 2) * 6 - 3)
    loss.backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
