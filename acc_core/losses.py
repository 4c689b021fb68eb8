"""Affinity cycle consistency and its contrastive baseline: pure functions of tensors.

The ACC paper section 3 (Definitions 1 and 2, the cycle-back classification, double
augmentation) and the hue double-augmentation contrastive baseline of Figure 3c (bottom).

Embeddings of set A are `a` (N, E) and of set B are `b` (M, E); N and M may differ.
For each a_i the soft nearest neighbour in B is  ã_i = Σ_j α_ij b_j  with
α_ij = softmax_j(sim(a_i, b_j) / τ). The cycle back is a classification over A:
logits o_ik = sim(ã_i, a_k) / τ, loss = cross-entropy of softmax(o_i) against k = i.
Everything goes through log-softmax, so huge distances and tiny temperatures stay finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import math

SIMILARITIES = ("l2sq", "l2", "cosine")


def loss_length_scale(similarity: str, temperature: float) -> float:
    """The distance below which the loss stops telling points apart (the ABC supplement S1).

    l2sq: logits −‖x−y‖²/τ, a Gaussian of scale √τ (up to √2). l2: −‖x−y‖/τ, scale τ.
    cosine on unit vectors: cos(x, y)/τ = −‖x−y‖²/(2τ) + 1/τ, i.e. l2sq at 2τ: √(2τ).
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; valid names: {', '.join(SIMILARITIES)}")
    return {"l2sq": math.sqrt(temperature), "l2": float(temperature),
            "cosine": math.sqrt(2.0 * temperature)}[similarity]


def _check_pair(x: torch.Tensor, y: torch.Tensor, what: str) -> None:
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(
            f"{what} must be 2-D embeddings (N, E) and (M, E), got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}; flatten or stack them first."
        )
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{what} must share the embedding dimension, got {x.shape[1]} and {y.shape[1]}; "
            "embed both sets with the same encoder."
        )
    if x.shape[0] < 1 or y.shape[0] < 1:
        raise ValueError(f"{what} must hold at least one embedding each; pass non-empty sets.")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; use e.g. 1.0 or 0.1.")


def similarity_matrix(x: torch.Tensor, y: torch.Tensor, similarity: str = "l2sq") -> torch.Tensor:
    """Pairwise similarities sim(x_i, y_j): (N, E), (M, E) -> (N, M).

    "l2sq": -‖x−y‖², "l2": -‖x−y‖, "cosine": cosine similarity (0 against a zero vector).
    Distances come from explicit differences, not ‖x‖²+‖y‖²−2x·y, so nearby points far from
    the origin keep their precision; the (N, M, E) intermediate is small at set sizes.
    """
    if similarity not in SIMILARITIES:
        raise ValueError(f"unknown similarity {similarity!r}; valid names: {', '.join(SIMILARITIES)}")
    _check_pair(x, y, "x and y")
    if similarity == "cosine":
        # F.normalize divides by max(‖x‖, eps): a zero vector maps to zero, grads stay finite.
        return F.normalize(x, dim=-1, eps=1e-8) @ F.normalize(y, dim=-1, eps=1e-8).T  # (N, M)
    diff = x[:, None, :] - y[None, :, :]  # (N, M, E)
    if similarity == "l2sq":
        return -(diff * diff).sum(-1)  # (N, M)
    # vector_norm's backward masks zero norms to a zero gradient (a valid subgradient of
    # ‖·‖ at 0), so two coinciding embeddings give finite gradients, not 0/0 = NaN.
    return -torch.linalg.vector_norm(diff, dim=-1)  # (N, M)


def soft_nearest_neighbour(
    a: torch.Tensor, b: torch.Tensor, *, similarity: str = "l2sq", temperature: float = 1.0
) -> torch.Tensor:
    """The ACC paper Definition 2: ã_i = Σ_j softmax_j(sim(a_i, b_j)/τ) b_j; (N, E), (M, E) -> (N, E)."""
    _check_temperature(temperature)
    alpha = torch.softmax(similarity_matrix(a, b, similarity) / temperature, dim=1)  # (N, M)
    return alpha @ b  # (N, E)


def cycle_logits(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    similarity: str = "l2sq",
    temperature: float = 1.0,
    a_target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits o_ik = sim(ã_i, t_k)/τ of the cycle A -> B -> A, (N, N); t = a_target or a."""
    target = a if a_target is None else a_target
    if a_target is not None and a_target.shape != a.shape:
        raise ValueError(
            f"a_target must have the shape of a {tuple(a.shape)}, got {tuple(a_target.shape)}; "
            "pass the second augmentation of the same images in the same order."
        )
    a_tilde = soft_nearest_neighbour(a, b, similarity=similarity, temperature=temperature)  # (N, E)
    return similarity_matrix(a_tilde, target, similarity) / temperature  # (N, N)


def _full(x: torch.Tensor) -> torch.Tensor:
    """x in float32 at least (bf16/fp16 from autocast are widened, float64 is kept)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def acc_loss(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    similarity: str = "l2sq",
    temperature: float = 1.0,
    a_target: torch.Tensor | None = None,
) -> torch.Tensor:
    """One direction of the ACC loss, A -> B -> A, mean over A; scalar tensor.

    With double augmentation (the ACC paper section 3) `a` embeds one augmentation of each image
    and `a_target` (N, E) another augmentation of the same images: the cycle starts from
    the first and must come back to the second.
    """
    # float32 even under bf16 autocast (TrainConfig.precision): the soft nearest neighbour's
    # weighted sum is a matmul that autocast would round to 3 significant digits.
    with torch.autocast(a.device.type, enabled=False):
        logits = cycle_logits(_full(a), _full(b), similarity=similarity, temperature=temperature,
                              a_target=None if a_target is None else _full(a_target))
    labels = torch.arange(logits.shape[0], device=logits.device)  # (N,) the cycle returns to i
    return F.cross_entropy(logits, labels)  # log-softmax inside: stable for any logit scale


def acc_loss_symmetric(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    similarity: str = "l2sq",
    temperature: float = 1.0,
    a_target: torch.Tensor | None = None,
    b_target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of A -> B -> A and B -> A -> B, the training loss; scalar tensor."""
    kw = dict(similarity=similarity, temperature=temperature)
    return 0.5 * (acc_loss(a, b, a_target=a_target, **kw) + acc_loss(b, a, a_target=b_target, **kw))


@torch.no_grad()
def cycle_accuracy(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    similarity: str = "l2sq",
    temperature: float = 1.0,
    a_target: torch.Tensor | None = None,
    soft: bool = True,
) -> torch.Tensor:
    """Fraction of i whose cycle A -> B -> A returns to i; 0-dim float tensor in [0, 1].

    `soft=True` follows the trained cycle (soft nearest neighbour, then argmax of the
    logits); `soft=False` is the ACC paper Definition 1 (hard nearest neighbours both ways).
    """
    if soft:
        logits = cycle_logits(a, b, similarity=similarity, temperature=temperature, a_target=a_target)
    else:
        target = a if a_target is None else a_target
        nearest = similarity_matrix(a, b, similarity).argmax(dim=1)  # (N,) index into B
        logits = similarity_matrix(b[nearest], target, similarity)  # (N, N)
    hits = logits.argmax(dim=1) == torch.arange(logits.shape[0], device=logits.device)  # (N,)
    return hits.float().mean()


def info_nce(
    z1: torch.Tensor, z2: torch.Tensor, *, similarity: str = "cosine", temperature: float = 0.1,
    symmetric: bool = True,
) -> torch.Tensor:
    """InfoNCE between two views of the same N images; scalar tensor.

    Row i of `z1` (N, E) and row i of `z2` (N, E) are a positive pair (two hue
    augmentations in the ACC paper Figure 3c, bottom); every other row of the other view is a
    negative. Symmetric: mean of the z1 -> z2 and z2 -> z1 cross-entropies; otherwise the
    z1 -> z2 one alone (the ACC paper's reference code for its hue baseline).
    """
    _check_temperature(temperature)
    if z1.shape != z2.shape:
        raise ValueError(
            f"the two views must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}; "
            "embed two augmentations of the same images."
        )
    logits = similarity_matrix(z1, z2, similarity) / temperature  # (N, N), positives on diagonal
    labels = torch.arange(logits.shape[0], device=logits.device)  # (N,)
    if not symmetric:
        return F.cross_entropy(logits, labels)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
