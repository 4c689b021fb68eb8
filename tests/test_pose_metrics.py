"""Pose metrics against hand-computed angles (acc_core.analysis.pose)."""

from __future__ import annotations

import numpy as np
import pytest

from acc_core.analysis import pose

D = np.deg2rad


def test_pure_azimuth_and_elevation_errors():
    true = np.array([[0, 0], [0, 0], [D(350), 0], [D(10), D(20)], [0, 0]])
    pred = np.array([[D(40), 0], [0, D(25)], [D(20), 0], [D(10), D(50)], [D(180), 0]])
    np.testing.assert_allclose(pose.angular_error(pred, true), [40, 25, 30, 30, 180], atol=1e-9)


def test_mixed_error_by_hand():
    # Rx(90°) @ Ry(90°) = [[0,0,1],[1,0,0],[0,1,0]]: trace 0, so arccos(-1/2) = 120°
    assert pose.angular_error([[D(90), D(90)]], [[0, 0]])[0] == pytest.approx(120.0)
    # rotations are orthonormal
    r = pose.rotations([[0.3, 0.7], [2.0, -0.4]])
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), (2, 3, 3)), atol=1e-12)
    # symmetric in its arguments
    a, b = np.array([[0.3, 0.2], [1.5, 0.9]]), np.array([[2.0, 0.1], [-0.5, 0.4]])
    np.testing.assert_allclose(pose.angular_error(a, b), pose.angular_error(b, a), atol=1e-9)


def test_flip_invariant():
    true = np.array([[0, 0], [D(30), D(10)], [0, 0]])
    pred = np.array([[D(180), 0], [D(210), D(10)], [D(160), 0]])
    np.testing.assert_allclose(pose.angular_error(pred, true), [180, 180, 160], atol=1e-9)
    np.testing.assert_allclose(pose.flip_invariant_error(pred, true), [0, 0, 20], atol=1e-6)
    # for a pure azimuth error it is the paper's min(θ, 180° − θ)
    theta = np.arange(0, 181, 15)
    err = pose.flip_invariant_error(np.stack([D(theta), 0 * theta], 1), np.zeros((len(theta), 2)))
    np.testing.assert_allclose(err, np.minimum(theta, 180 - theta), atol=1e-6)


def test_median_accuracy_and_scores():
    err = np.array([5.0, 10.0, 29.9, 30.0, 170.0])
    assert pose.median_error(err) == 29.9
    assert pose.accuracy_at(err, 30) == pytest.approx(0.6)
    true = np.zeros((4, 2))
    pred = np.array([[D(10), 0], [D(20), 0], [D(170), 0], [D(90), 0]])
    s = pose.pose_scores(pred, true)
    assert s["median_error"] == pytest.approx(55.0) and s["acc30"] == 0.5
    assert s["flip_median_error"] == pytest.approx(15.0) and s["flip_acc30"] == 0.75 and s["n"] == 4
    counts, edges = pose.error_histogram(err, bins=6)
    assert counts.tolist() == [3, 1, 0, 0, 0, 1] and edges[-1] == 180


def test_nearest_neighbour_lookup():
    dict_poses = np.array([[0.0, 0.0], [1.0, 0.2], [2.0, 0.4]])
    dict_codes = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    queries = np.array([[0.1, 2.0], [-3.0, 0.2], [5.0, -0.1]])
    pred, idx = pose.nearest_neighbour_poses(queries, dict_codes, dict_poses, k=2)
    assert idx[:, 0].tolist() == [1, 2, 0]
    np.testing.assert_array_equal(pred, dict_poses[[1, 2, 0]])
