"""The spherical-regression head of Liao et al. (2019), as the ACC paper uses it (section 4.3,
Table 2, Figure 6; appendix A.3 / the ABC supplement S8.3).

"The embeddings are then fed, separately for each Euler angle, as input to a 128 unit dense
layer with tanh activation, which is then split off into two dense layers with 2 and 4 units
and linear activation for the angle magnitude and quadrant. The angle magnitudes are passed
through a spherical exponential activation function, which is the square root of a softmax.
The magnitudes are then compared with ground truth (|sin φ|, |cos φ|) through a cosine
similarity loss. The quadrant outputs are trained as a classification task with categorical
cross entropy against the ground truth angle quadrants, (sign(sin φ), sign(cos φ))." The
embeddings are L2-normalised first, as for the cosine ACC loss.

Our viewpoints have two Euler angles (azimuth, elevation; no in-plane rotation), so the head
has two branches. Quadrant classes: q = 2·[sin φ < 0] + [cos φ < 0].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HIDDEN = 128  # the 128-unit tanh layer of each angle's branch


def spherical_exp(logits: torch.Tensor) -> torch.Tensor:
    """(..., 2) -> unit vectors (..., 2) with positive entries: sqrt(softmax(logits))."""
    return F.softmax(logits, dim=-1).sqrt()


def quadrant(angles: torch.Tensor) -> torch.Tensor:
    """(...) radians -> (...) int64 classes 0..3: 2·[sin < 0] + [cos < 0]."""
    return 2 * (angles.sin() < 0).long() + (angles.cos() < 0).long()


class SphericalRegressionHead(nn.Module):
    """(B, E) embeddings -> magnitude logits (B, A, 2) and quadrant logits (B, A, 4)."""

    def __init__(self, embedding_dim: int, n_angles: int = 2):
        super().__init__()
        self.n_angles = n_angles
        self.branches = nn.ModuleList(
            nn.ModuleDict({"hidden": nn.Linear(embedding_dim, HIDDEN), "magnitude": nn.Linear(HIDDEN, 2),
                           "quadrant": nn.Linear(HIDDEN, 4)}) for _ in range(n_angles))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = F.normalize(z.float(), dim=-1)  # onto the unit sphere, as the cosine ACC loss sees it
        mags, quads = [], []
        for b in self.branches:
            h = torch.tanh(b["hidden"](z))  # (B, 128)
            mags.append(b["magnitude"](h))
            quads.append(b["quadrant"](h))
        return torch.stack(mags, 1), torch.stack(quads, 1)  # (B, A, 2), (B, A, 4)


def spherical_regression_loss(magnitude_logits: torch.Tensor, quadrant_logits: torch.Tensor,
                              angles: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """magnitude logits (B, A, 2), quadrant logits (B, A, 4), true angles (B, A) radians ->
    (scalar loss, {"magnitude": float, "quadrant": float}).

    magnitude: 1 − cos(sexp(logits), (|sin φ|, |cos φ|)), mean over images and angles;
    quadrant: cross-entropy against quadrant(φ), mean; the loss is their sum.
    """
    target = torch.stack([angles.sin().abs(), angles.cos().abs()], -1)  # (B, A, 2), unit rows
    mag = 1 - (spherical_exp(magnitude_logits) * target).sum(-1)  # both unit: the cosine
    quad = F.cross_entropy(quadrant_logits.reshape(-1, 4), quadrant(angles).reshape(-1))
    mag = mag.mean()
    return mag + quad, {"magnitude": float(mag.detach()), "quadrant": float(quad.detach())}


def decode(magnitude_logits: torch.Tensor, quadrant_logits: torch.Tensor) -> torch.Tensor:
    """(B, A, 2), (B, A, 4) -> predicted angles (B, A) radians in (-π, π]."""
    m = spherical_exp(magnitude_logits)  # (|sin|, |cos|)
    q = quadrant_logits.argmax(-1)
    sin = torch.where(q >= 2, -m[..., 0], m[..., 0])
    cos = torch.where(q % 2 == 1, -m[..., 1], m[..., 1])
    return torch.atan2(sin, cos)
