"""Augmentations: shape, dtype, range, determinism, and what each one changes."""

import pytest
import torch

from acc_core import augment
from acc_core.augment import AUGMENTATIONS, apply, hsv_to_rgb, rgb_to_hsv


def _images(b=4, c=3, h=16, w=16, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_config_validates_against_the_one_registry():
    from acc_core.config import AUGMENTATIONS as CONFIG_NAMES

    assert CONFIG_NAMES is AUGMENTATIONS  # one source, not a copy


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_dtype_range_and_determinism(name, channels):
    x = _images(c=channels)
    y1 = apply(x, (name,), _gen(7))
    y2 = apply(x, (name,), _gen(7))
    assert y1.shape == x.shape and y1.dtype == x.dtype
    assert y1.min() >= 0 and y1.max() <= 1 and torch.isfinite(y1).all()
    assert torch.equal(y1, y2)  # same generator state, same result
    if not (name == "hue" and channels == 1):
        assert not torch.equal(y1, x)  # it does something
        assert not torch.equal(y1, apply(x, (name,), _gen(8)))  # another seed, another draw


def test_hue_is_a_no_op_on_one_channel_images():
    x = _images(c=1)
    assert torch.equal(apply(x, ("hue",), _gen()), x)


def test_hsv_round_trip():
    x = _images(b=2, h=8, w=8)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5)
    # Primary colours land at the expected hues (turns).
    prim = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]).T.reshape(1, 3, 1, 3)
    assert torch.allclose(rgb_to_hsv(prim)[0, 0, 0], torch.tensor([0.0, 1 / 3, 2 / 3]), atol=1e-6)


def test_hue_shift_changes_hue_not_value_or_saturation():
    # Saturated colours: the hue is well defined everywhere.
    hsv = torch.stack([torch.rand(4, 8, 8, generator=_gen(1)), torch.full((4, 8, 8), 0.8),
                       0.3 + 0.6 * torch.rand(4, 8, 8, generator=_gen(2))], dim=1)
    x = hsv_to_rgb(hsv)
    y = augment.hue_shift(x, _gen(3))
    before, after = rgb_to_hsv(x), rgb_to_hsv(y)
    assert torch.allclose(after[:, 2], before[:, 2], atol=1e-5)  # value
    assert torch.allclose(after[:, 1], before[:, 1], atol=1e-4)  # saturation
    dh = (after[:, 0] - before[:, 0]) % 1.0  # (B, H, W): one rotation per image
    dh = torch.minimum(dh, 1 - dh)
    assert dh.mean() > 0.02
    per_image = dh.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-4)


def test_crop_zooms_in_and_stays_inside():
    x = torch.zeros(8, 1, 32, 32)
    x[:, :, 12:20, 12:20] = 1.0  # a central square
    y = augment.crop(x, _gen(), min_scale=0.5)
    # Zooming in can only make the square bigger (up to 2x per side at scale 0.5).
    assert (y.flatten(1).mean(1) >= x.flatten(1).mean(1) - 1e-6).all()
    assert (y.flatten(1).mean(1) > x.flatten(1).mean(1) + 0.01).any()
    # min_scale = 1 keeps the whole image: an exact identity.
    assert torch.allclose(augment.crop(x, _gen(), min_scale=1.0), x, atol=1e-6)


def test_brightness_contrast_is_affine_per_image():
    x = _images(b=3, c=1, h=8, w=8) * 0.4 + 0.3  # room to move without clipping
    y = augment.brightness_contrast(x, _gen(), brightness=0.05, contrast=0.2)
    for i in range(3):
        xs, ys = x[i].flatten(), y[i].flatten()
        slope = ((xs - xs.mean()) * (ys - ys.mean())).sum() / ((xs - xs.mean()) ** 2).sum()
        assert 0.8 <= slope <= 1.2
        assert torch.allclose(ys, (xs - xs.mean()) * slope + ys.mean(), atol=1e-5)


def test_noise_levels():
    x = torch.full((4, 3, 32, 32), 0.5)
    y = augment.gaussian_noise(x, _gen(), std=0.1)
    assert 0.0 < (y - x).std() < 0.1
    sp = augment.salt_pepper(x, _gen(), amount=0.1)
    changed = (sp != x).any(dim=1).float().mean()  # fraction of pixels hit
    assert 0.05 < changed < 0.15
    assert set(sp.unique().tolist()) == {0.0, 0.5, 1.0}


def test_sobel_adds_edges_only_where_there_are_edges():
    x = torch.zeros(2, 1, 16, 16)
    x[:, :, :, 8:] = 0.5  # a vertical step edge
    mag = augment.sobel_magnitude(x)
    assert torch.allclose(mag[:, :, :, 7:9], torch.full((2, 1, 16, 2), 0.5))  # 0 -> 0.5 step gives 0.5
    assert mag[:, :, :, :6].abs().max() == 0 and mag[:, :, :, 10:].abs().max() == 0
    y = augment.sobel_edges(x, _gen(), max_scale=0.5)
    assert torch.equal(y[:, :, :, :6], x[:, :, :, :6]) and (y[:, :, :, 7:9] > x[:, :, :, 7:9]).all()


def test_apply_chains_in_order_and_double_augmentation_differs():
    x = _images()
    g = _gen(5)
    names = ("crop", "hue", "brightness_contrast")
    v1, v2 = apply(x, names, g), apply(x, names, g)  # two views from one advancing generator
    assert not torch.equal(v1, v2)
    manual, g = x, _gen(5)
    for n in names:
        manual = AUGMENTATIONS[n](manual, g)
    assert torch.equal(manual, v1)
    assert torch.equal(apply(x, (), _gen()), x)


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="hue, brightness_contrast"):
        apply(_images(), ("blur",), _gen())
    with pytest.raises(ValueError, match="float images"):
        apply((_images() * 255).to(torch.uint8), ("hue",), _gen())
    with pytest.raises(ValueError, match="float images"):
        apply(torch.rand(3, 16, 16), ("hue",), _gen())
