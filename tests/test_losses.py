"""ACC loss, InfoNCE and cycle accuracy against brute-force references (the ACC paper section 3)."""

import math

import pytest
import torch

from acc_core.losses import (
    SIMILARITIES,
    acc_loss,
    acc_loss_symmetric,
    cycle_accuracy,
    info_nce,
    similarity_matrix,
    soft_nearest_neighbour,
)


# ----- brute-force references: explicit loops over i, j, k in float64 -------------------------
def _sim(x, y, similarity):
    x, y = [float(v) for v in x], [float(v) for v in y]
    d2 = sum((p - q) ** 2 for p, q in zip(x, y))
    if similarity == "l2sq":
        return -d2
    if similarity == "l2":
        return -math.sqrt(d2)
    nx, ny = math.sqrt(sum(p * p for p in x)), math.sqrt(sum(q * q for q in y))
    return sum(p * q for p, q in zip(x, y)) / (max(nx, 1e-8) * max(ny, 1e-8))


def _log_softmax_at(values, index):
    m = max(values)
    return values[index] - m - math.log(sum(math.exp(v - m) for v in values))


def _acc_reference(a, b, similarity, tau, target=None):
    target = a if target is None else target
    n, m, e = len(a), len(b), len(a[0])
    total = 0.0
    for i in range(n):
        s = [_sim(a[i], b[j], similarity) / tau for j in range(m)]
        mx = max(s)
        w = [math.exp(v - mx) for v in s]
        z = sum(w)
        a_tilde = [sum(w[j] / z * float(b[j][d]) for j in range(m)) for d in range(e)]
        logits = [_sim(a_tilde, target[k], similarity) / tau for k in range(n)]
        total -= _log_softmax_at(logits, i)
    return total / n


def _info_nce_reference(z1, z2, similarity, tau):
    n = len(z1)
    rows = [[_sim(z1[i], z2[k], similarity) / tau for k in range(n)] for i in range(n)]
    forward = -sum(_log_softmax_at(rows[i], i) for i in range(n)) / n
    backward = -sum(_log_softmax_at([rows[k][i] for k in range(n)], i) for i in range(n)) / n
    return 0.5 * (forward + backward)


def _rand(*shape, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


# ----- exactness ------------------------------------------------------------------------------
@pytest.mark.parametrize("similarity", SIMILARITIES)
@pytest.mark.parametrize("tau", [0.05, 0.5, 1.0, 3.0])
def test_acc_loss_matches_brute_force(similarity, tau):
    a, b = _rand(5, 3, seed=1), _rand(7, 3, seed=2)  # N != M
    got = acc_loss(a, b, similarity=similarity, temperature=tau)
    assert got.shape == ()
    want = _acc_reference(a.tolist(), b.tolist(), similarity, tau)
    assert got.item() == pytest.approx(want, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_a_target_path_matches_brute_force(similarity):
    a, b, a2 = _rand(4, 3, seed=3), _rand(6, 3, seed=4), _rand(4, 3, seed=5)
    got = acc_loss(a, b, similarity=similarity, temperature=0.7, a_target=a2)
    want = _acc_reference(a.tolist(), b.tolist(), similarity, 0.7, target=a2.tolist())
    assert got.item() == pytest.approx(want, rel=1e-9)
    # The target matters: it is not the same loss as cycling back to a itself.
    plain = acc_loss(a, b, similarity=similarity, temperature=0.7)
    assert got.item() != pytest.approx(plain.item(), rel=1e-6)


def test_symmetric_is_mean_of_both_directions():
    a, b, a2, b2 = _rand(4, 3, seed=6), _rand(6, 3, seed=7), _rand(4, 3, seed=8), _rand(6, 3, seed=9)
    got = acc_loss_symmetric(a, b, similarity="l2", temperature=0.5, a_target=a2, b_target=b2)
    want = 0.5 * (
        _acc_reference(a.tolist(), b.tolist(), "l2", 0.5, a2.tolist())
        + _acc_reference(b.tolist(), a.tolist(), "l2", 0.5, b2.tolist())
    )
    assert got.item() == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_info_nce_matches_brute_force(similarity):
    z1, z2 = _rand(6, 4, seed=10), _rand(6, 4, seed=11)
    got = info_nce(z1, z2, similarity=similarity, temperature=0.2)
    want = _info_nce_reference(z1.tolist(), z2.tolist(), similarity, 0.2)
    assert got.item() == pytest.approx(want, rel=1e-9)


def test_similarity_matrix_values_and_soft_nearest_neighbour():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    y = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    assert torch.allclose(similarity_matrix(x, y, "l2sq"), torch.tensor([[0.0, -1.0], [-25.0, -20.0]]))
    assert torch.allclose(similarity_matrix(x, y, "l2"), torch.tensor([[0.0, -1.0], [-5.0, -math.sqrt(20)]]))
    assert torch.allclose(similarity_matrix(x, y, "cosine"), torch.tensor([[0.0, 0.0], [0.0, 0.6]]))
    # A tiny temperature makes the soft nearest neighbour the hard one.
    nn_ = soft_nearest_neighbour(x, y, similarity="l2sq", temperature=1e-3)
    assert torch.allclose(nn_, torch.tensor([[0.0, 0.0], [1.0, 0.0]]), atol=1e-6)


# ----- gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_gradcheck(similarity):
    a = _rand(3, 2, seed=12).requires_grad_()
    b = _rand(4, 2, seed=13).requires_grad_()
    t = _rand(3, 2, seed=14).requires_grad_()

    def fn(a, b, t):
        return acc_loss_symmetric(a, b, similarity=similarity, temperature=0.8, a_target=t)

    assert torch.autograd.gradcheck(fn, (a, b, t))
    assert torch.autograd.gradcheck(lambda x, y: info_nce(x, y, similarity=similarity), (a, t))


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_no_nan_gradient_when_embeddings_coincide(similarity):
    a = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]], requires_grad=True)  # a_0 == a_1, a zero vector
    b = torch.tensor([[1.0, 2.0], [0.0, 0.0], [0.5, -1.0]], requires_grad=True)  # coincides with a_0 and a_2
    loss = acc_loss_symmetric(a, b, similarity=similarity)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


# ----- degenerate inputs ----------------------------------------------------------------------
@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_identical_embeddings_give_log_n(similarity):
    a = torch.ones(8, 4, requires_grad=True)
    b = torch.ones(5, 4)
    loss = acc_loss(a, b, similarity=similarity)
    loss.backward()
    assert loss.item() == pytest.approx(math.log(8), rel=1e-6)
    assert torch.isfinite(a.grad).all()


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_huge_distances_and_tiny_temperature_stay_finite(similarity):
    g = torch.Generator().manual_seed(0)
    a = (torch.randn(16, 8, generator=g) * 1e4).requires_grad_()
    b = torch.randn(20, 8, generator=g) * 1e4
    loss = acc_loss_symmetric(a, b, similarity=similarity, temperature=1e-4)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(a.grad).all()
    assert torch.isfinite(info_nce(a, a.detach() + 1.0, similarity=similarity, temperature=1e-4))


def test_perfect_separation_gives_loss_near_zero():
    a = torch.eye(6) * 10.0  # well separated points; B is A itself, so every cycle is exact
    for similarity, tau in (("l2sq", 1.0), ("l2", 0.5), ("cosine", 0.05)):
        assert acc_loss(a, a.clone(), similarity=similarity, temperature=tau).item() < 1e-3
        assert cycle_accuracy(a, a.clone(), similarity=similarity, temperature=tau).item() == 1.0
    assert info_nce(a, a.clone(), temperature=0.05).item() < 1e-3


def test_cycle_accuracy_counts_returns():
    a = torch.tensor([[0.0], [10.0], [20.0]])
    b = torch.tensor([[0.1], [0.2]])  # every a_i's nearest b is near a_0: only i = 0 returns
    assert cycle_accuracy(a, b, temperature=0.01).item() == pytest.approx(1 / 3)
    assert cycle_accuracy(a, b, soft=False).item() == pytest.approx(1 / 3)
    assert cycle_accuracy(a, torch.tensor([[0.1], [9.9], [20.5]]), soft=False).item() == 1.0


# ----- bad input --------------------------------------------------------------------------
def test_bad_arguments_raise_clear_errors():
    a, b = torch.zeros(3, 2), torch.zeros(4, 2)
    with pytest.raises(ValueError, match="l2sq, l2, cosine"):
        acc_loss(a, b, similarity="dot")
    for tau in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            acc_loss(a, b, temperature=tau)
    with pytest.raises(ValueError, match="embedding dimension"):
        acc_loss(a, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="a_target"):
        acc_loss(a, b, a_target=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="same shape"):
        info_nce(a, b)
