"""Pose metrics and nearest-neighbour pose lookup (the ACC paper section 4.3, Tables 1-2).

Viewpoints are (azimuth, elevation) pairs in radians; an object's camera rotation is
R(az, el) = Rx(el) @ Ry(az) (turn about the vertical axis, then tilt). The error between two
viewpoints is the geodesic distance between their rotations,
    Δ(R1, R2) = ‖log(R1ᵀ R2)‖_F / √2 = arccos((tr(R1ᵀ R2) − 1) / 2),
the Pascal3D+ protocol that Liao et al. (2019) and the ACC paper report, in degrees.
Table 1 reports the median error and the accuracy at 30°, plus flip-invariant versions
(the azimuth flipped by 180°, a front-back confusion, counted as correct: the smaller of the
two errors; the paper writes min(θ, 180° − θ), the same for a pure azimuth error).

Table 1's lookup: embed the real-domain test images and a dictionary of 1,800 synthetic
images with ground-truth pose, and give each query its nearest dictionary entry's pose.
Pure functions of arrays; nothing here sees a model.
"""

from __future__ import annotations

import numpy as np

from acc_core.analysis.retrieval import knn


def rotations(poses) -> np.ndarray:
    """(n, 2) (azimuth, elevation) radians -> (n, 3, 3) rotations Rx(el) @ Ry(az)."""
    p = np.asarray(poses, dtype=np.float64).reshape(-1, 2)
    ca, sa, ce, se = np.cos(p[:, 0]), np.sin(p[:, 0]), np.cos(p[:, 1]), np.sin(p[:, 1])
    zero, one = np.zeros_like(ca), np.ones_like(ca)
    ry = np.stack([np.stack([ca, zero, sa], -1), np.stack([zero, one, zero], -1),
                   np.stack([-sa, zero, ca], -1)], -2)  # (n, 3, 3)
    rx = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, ce, -se], -1),
                   np.stack([zero, se, ce], -1)], -2)
    return rx @ ry


def angular_error(pred, true) -> np.ndarray:
    """(n, 2) predicted and true (azimuth, elevation) radians -> (n,) geodesic error, degrees."""
    r = np.swapaxes(rotations(pred), 1, 2) @ rotations(true)  # (n, 3, 3) R1ᵀ R2
    cos = (np.trace(r, axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def flip_invariant_error(pred, true) -> np.ndarray:
    """(n,) degrees: the error with the predicted azimuth as is or flipped by 180°, the smaller."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 2)
    flipped = pred + np.array([np.pi, 0.0])
    return np.minimum(angular_error(pred, true), angular_error(flipped, true))


def median_error(errors) -> float:
    """Median of (n,) errors in degrees."""
    return float(np.median(np.asarray(errors, dtype=np.float64)))


def accuracy_at(errors, threshold: float = 30.0) -> float:
    """Fraction of (n,) errors (degrees) below `threshold` (Pascal3D+'s Acc@π/6 uses <)."""
    return float((np.asarray(errors, dtype=np.float64) < threshold).mean())


def pose_scores(pred, true, threshold: float = 30.0) -> dict:
    """Table 1's four numbers: median error, accuracy at 30°, and their flip-invariant versions."""
    err, flip = angular_error(pred, true), flip_invariant_error(pred, true)
    return {"median_error": median_error(err), "acc30": accuracy_at(err, threshold),
            "flip_median_error": median_error(flip), "flip_acc30": accuracy_at(flip, threshold),
            "n": int(len(err))}


def nearest_neighbour_poses(query_codes, dictionary_codes, dictionary_poses, *,
                            similarity: str = "cosine", k: int = 1):
    """Table 1's lookup: each query takes the pose of its nearest dictionary code.

    query_codes (Q, E), dictionary_codes (N, E), dictionary_poses (N, 2) radians ->
    (predicted poses (Q, 2), neighbour indices (Q, k) into the dictionary, best first).
    """
    idx, _ = knn(query_codes, dictionary_codes, k, similarity=similarity)
    return np.asarray(dictionary_poses, dtype=np.float64)[idx[:, 0]], idx


def error_histogram(errors, bins: int = 18) -> tuple[np.ndarray, np.ndarray]:
    """Counts of (n,) errors over `bins` equal bins of 0..180 degrees -> (counts, edges)."""
    return np.histogram(np.asarray(errors, dtype=np.float64), bins=bins, range=(0.0, 180.0))
