"""Set curation (acc_core.sets): inactive factors fixed per set, active ones varying without
duplicates, held-out values never drawn, labelled grouping, clear errors, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from acc_core.config import preset
from acc_core.data.base import FactorDataset
from acc_core.data.digits import DigitDataset
from acc_core.sets import (
    SetSampler,
    available_images,
    filtering_baseline_sample,
    pair_samplers,
    validate_sets,
)

NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
HUES = ("floor_hue", "wall_hue", "object_hue")


class Grid(FactorDataset):
    """Shapes3D's factor grid without images: sampling never touches pixels."""

    name = "grid"
    factor_names = NAMES
    factor_sizes = (10, 10, 10, 8, 4, 15)
    factor_values = tuple(np.arange(n, dtype=np.float64) for n in factor_sizes)
    value_labels = tuple(tuple(str(v) for v in range(n)) for n in factor_sizes)
    image_shape = (1, 1, 1)

    def _images(self, idx):
        return np.zeros((len(idx), 1, 1, 1), dtype=np.uint8)


def labelled(counts) -> DigitDataset:
    """A digit dataset with counts[d] images of digit d (blank images)."""
    digits = np.repeat(np.arange(len(counts)), counts)
    digits = np.random.default_rng(5).permutation(digits)  # groups interleaved, as in MNIST
    return DigitDataset("toy-digits", np.zeros((len(digits), 4, 4), np.uint8), digits)


GRID = Grid()


def set_factors(ds, sets):  # (n, s) indices -> (n, s, K) factor values
    return ds.factors(sets.reshape(-1)).reshape(*sets.shape, ds.num_factors)


def assert_no_duplicates(sets):
    srt = np.sort(sets, axis=1)
    assert (srt[:, 1:] != srt[:, :-1]).all()


# ----- grid datasets ----------------------------------------------------------------------
@pytest.mark.parametrize("inactive", [("wall_hue",), HUES, (), HUES + ("scale",)])
def test_inactive_fixed_active_varying_no_duplicates(inactive):
    sampler = SetSampler(GRID, inactive, 32)
    sets = sampler.sample(np.random.default_rng(0), 300)
    assert sets.dtype == np.int64 and sets.shape == (300, 32)
    assert sets.min() >= 0 and sets.max() < len(GRID)
    f = set_factors(GRID, sets)  # (300, 32, 6)
    for k, name in enumerate(NAMES):
        distinct = np.array([len(np.unique(row)) for row in f[:, :, k]])
        if name in inactive:
            assert (distinct == 1).all(), name
        else:  # 32 uniform draws from >= 4 values: all equal has probability <= 4**-31
            assert (distinct >= 2).all(), name
    assert_no_duplicates(sets)


def test_pool_exactly_set_size_gives_every_image():
    # with hues, scale and shape inactive only the 15 orientations vary
    sampler = SetSampler(GRID, HUES + ("scale", "shape"), 15)
    sets = sampler.sample(np.random.default_rng(1), 50)
    f = set_factors(GRID, sets)
    assert (np.sort(f[:, :, 5], axis=1) == np.arange(15)).all()


def test_values_drawn_uniformly():
    sampler = SetSampler(GRID, ("wall_hue",), 32)
    sets = sampler.sample(np.random.default_rng(2), 4000)
    f = set_factors(GRID, sets)
    wall = np.bincount(f[:, 0, 1], minlength=10) / 4000  # the inactive value of each set
    assert np.abs(wall - 0.1).max() < 0.025
    orientation = np.bincount(f[:, :, 5].reshape(-1), minlength=15) / f[:, :, 5].size
    assert np.abs(orientation - 1 / 15).max() < 0.005


def test_held_out_values_never_drawn():
    held = {"wall_hue": (0, 3), "orientation": (14,), "shape": 2}
    for inactive in [("wall_hue",), ()]:
        sampler = SetSampler(GRID, inactive, 32, held_out=held)
        f = set_factors(GRID, sampler.sample(np.random.default_rng(3), 2000))
        assert not np.isin(f[:, :, 1], [0, 3]).any()
        assert not (f[:, :, 5] == 14).any() and not (f[:, :, 4] == 2).any()
        assert len(np.unique(f[:, :, 1])) == 8  # every other wall hue still appears


def test_a_and_b_independent():
    a = SetSampler(GRID, ("wall_hue",), 32)
    b = SetSampler(GRID, ("wall_hue",), 32)
    rng = np.random.default_rng(4)
    walls = np.array([
        [GRID.factors(a.sample(rng)[0])[0, 1], GRID.factors(b.sample(rng)[0])[0, 1]] for _ in range(2000)
    ])
    agree = (walls[:, 0] == walls[:, 1]).mean()
    assert 0.07 < agree < 0.13  # independent draws agree 1 time in 10
    unconstrained = SetSampler(GRID, (), 32).sample(rng, 100)
    assert all(len(np.unique(set_factors(GRID, s[None])[0, :, 1])) > 1 for s in unconstrained)


def test_deterministic_for_a_seeded_rng():
    sampler = SetSampler(GRID, ("object_hue",), 32, held_out={"scale": (0,)})
    first = sampler.sample(np.random.default_rng(7), 20)
    np.testing.assert_array_equal(first, sampler.sample(np.random.default_rng(7), 20))
    assert not np.array_equal(first, sampler.sample(np.random.default_rng(8), 20))


def test_available_images():
    assert available_images(GRID, ("wall_hue",)) == 48000
    assert available_images(GRID, HUES, held_out={"scale": (0, 1)}) == 6 * 4 * 15
    assert available_images(GRID, ()) == 480000


def test_filtering_baseline_draws_valid_sets():
    rng = np.random.default_rng(9)
    labels = GRID.factors(np.arange(len(GRID)))
    for _ in range(5):
        s = filtering_baseline_sample(GRID, ("wall_hue", "shape"), 32, rng, labels=labels)
        f = GRID.factors(s)
        assert len(np.unique(f[:, 1])) == 1 and len(np.unique(f[:, 4])) == 1 and len(set(s)) == 32


# ----- labelled datasets ------------------------------------------------------------------
def test_labelled_grouping_and_held_out_digit():
    ds = labelled([100] * 10)
    sampler = SetSampler(ds, ("digit",), 64, held_out={"digit": (9,)})
    sets = sampler.sample(np.random.default_rng(0), 500)
    digits = set_factors(ds, sets)[:, :, 0]  # (500, 64)
    assert (digits == digits[:, :1]).all()  # one digit per set
    assert set(np.unique(digits[:, 0])) == set(range(9))  # every digit but 9
    assert_no_duplicates(sets)
    mixed = SetSampler(ds, (), 64, held_out={"digit": (9,)}).sample(np.random.default_rng(1), 100)
    mixed_digits = set_factors(ds, mixed)[:, :, 0]
    assert not (mixed_digits == 9).any()
    assert all(len(np.unique(row)) > 1 for row in mixed_digits)
    assert_no_duplicates(mixed)


def test_labelled_small_and_large_groups():
    # groups of 40 (argsort path) and 5000 (rejection path) in the same batch of sets
    ds = labelled([40, 5000])
    sampler = SetSampler(ds, ("digit",), 32)
    sets = sampler.sample(np.random.default_rng(2), 400)
    digits = set_factors(ds, sets)[:, :, 0]
    assert (digits == digits[:, :1]).all() and set(digits[:, 0]) == {0, 1}
    assert_no_duplicates(sets)
    small = sets[digits[:, 0] == 0]
    assert len(np.unique(small)) == 40  # draws cover the whole small group


def test_labelled_set_larger_than_smallest_group():
    ds = labelled([100, 100, 30])
    with pytest.raises(ValueError, match=r"set size 64 > 30 images \(in the smallest group\) with digit held fixed"):
        SetSampler(ds, ("digit",), 64)
    SetSampler(ds, ("digit",), 64, held_out={"digit": (2,)})  # without the small group it fits


def test_pair_samplers_from_the_paper_preset():
    config = preset("paper", "digits")  # digit inactive in A and B, set size 64, 9 held out
    a, b = pair_samplers(labelled([180] * 10), config)
    assert a.set_size == b.set_size == 64 and a.inactive == ("digit",)
    assert a.held_out == {"digit": (9,)} and a.num_groups == 9


# ----- impossible requests ----------------------------------------------------------------
@pytest.mark.parametrize(
    "inactive, set_size, held_out, message",
    [
        (NAMES, 32, None, "nothing would vary within a set"),
        (("colour",), 32, None, "unknown inactive factor 'colour'.*valid factors: floor_hue, wall_hue"),
        (HUES + ("scale", "shape"), 32, None, r"set size 32 > 15 images with .*scale, shape held fixed"),
        (HUES + ("scale",), 32, {"orientation": tuple(range(8))}, r"set size 32 > 28 images .*orientation 0, 1"),
        ((), 32, {"shape": (4,)}, r"held-out value 4 does not exist for factor 'shape' \(valid value indices are 0..3\)"),
        ((), 32, {"size": (0,)}, "unknown held-out factor 'size'"),
        ((), 32, {"shape": (0, 1, 2, 3)}, "every value of 'shape' is held out"),
        ((), 1, None, "set size must be an integer >= 2"),
        ("wall_hue", 32, None, "tuple of factor names"),
        (("wall_hue", "wall_hue"), 32, None, "listed twice"),
    ],
)
def test_impossible_requests_raise(inactive, set_size, held_out, message):
    with pytest.raises(ValueError, match=message):
        validate_sets(GRID, inactive, set_size, held_out)
    with pytest.raises(ValueError, match=message):
        SetSampler(GRID, inactive, set_size, held_out=held_out)


def test_sample_argument_errors():
    sampler = SetSampler(GRID, ("wall_hue",), 8)
    with pytest.raises(ValueError, match="numpy Generator"):
        sampler.sample(0, 1)
    with pytest.raises(ValueError, match="n_sets must be >= 0"):
        sampler.sample(np.random.default_rng(0), -1)
    assert sampler.sample(np.random.default_rng(0), 0).shape == (0, 8)
