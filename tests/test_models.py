"""Encoders of the ABC supplement Tables S3, S4, S6: parametrized over the registry."""

import pytest
import torch

from acc_core.models import ENCODERS, build_encoder, count_flops, list_encoders

DEFAULT_INPUT = {"shapes3d": (3, 64), "mnist": (1, 28), "table_s6": (3, 64)}


def test_registry_listing():
    assert list_encoders() == list(ENCODERS) == ["shapes3d", "mnist", "table_s6"]
    assert set(DEFAULT_INPUT) == set(ENCODERS)


@pytest.mark.parametrize("name", list(ENCODERS))
@pytest.mark.parametrize("embedding_dim", [2, 8, 64])
def test_forward_shape_no_nan(name, embedding_dim):
    torch.manual_seed(0)
    model = build_encoder(name, embedding_dim)
    c, s = DEFAULT_INPUT[name]
    assert model.spec == dict(name=name, embedding_dim=embedding_dim, in_channels=c, image_size=s)
    x = torch.rand(3, c, s, s)
    z = model(x)
    assert z.shape == (3, embedding_dim) and z.dtype == torch.float32
    assert torch.isfinite(z).all()
    feats = model.forward_features(x)
    assert feats.shape == (3, model.feature_dim)
    assert torch.allclose(model.head(feats), z)


@pytest.mark.parametrize("size, feature_dim", [(64, 128 * 12 * 12), (32, 128 * 4 * 4)])
def test_shapes3d_at_other_sizes(size, feature_dim):
    model = build_encoder("shapes3d", 8, image_size=size)
    assert model.feature_dim == feature_dim
    assert model(torch.rand(2, 3, size, size)).shape == (2, 8)


@pytest.mark.parametrize("channels", [1, 3])
def test_table_s6_channels(channels):
    model = build_encoder("table_s6", 16, in_channels=channels)
    assert model.feature_dim == 256 * 5 * 5
    assert model(torch.rand(2, channels, 64, 64)).shape == (2, 16)


def test_rebuild_from_spec_and_deterministic_init():
    torch.manual_seed(3)
    a = build_encoder("mnist", 8)
    torch.manual_seed(3)
    b = build_encoder(**a.spec)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    torch.manual_seed(4)
    c = build_encoder("mnist", 8)
    assert not torch.equal(c.state_dict()["head.2.weight"], sa["head.2.weight"])


def test_gradients_reach_the_first_layer():
    model = build_encoder("mnist", 4)
    model(torch.rand(2, 1, 28, 28)).pow(2).sum().backward()
    first = model.trunk[0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


def _conv_macs(size, in_c, trunk):
    total = 0
    for out_c, stride in trunk:
        size = (size - 3) // stride + 1
        total += size * size * out_c * in_c * 9
        in_c = out_c
    return total, in_c * size * size


@pytest.mark.parametrize(
    "name, size, in_c, trunk",
    [
        ("shapes3d", 64, 3, [(32, 1), (32, 1), (64, 2), (64, 1), (128, 1), (128, 2)]),
        ("shapes3d", 32, 3, [(32, 1), (32, 1), (64, 2), (64, 1), (128, 1), (128, 2)]),
        ("mnist", 28, 1, [(32, 1), (32, 1), (32, 2), (32, 1), (32, 1)]),
        ("table_s6", 64, 1, [(64, 1), (64, 2), (128, 1), (128, 2), (256, 1), (256, 2)]),
    ],
)
def test_count_flops_by_hand(name, size, in_c, trunk):
    conv, flat = _conv_macs(size, in_c, trunk)
    model = build_encoder(name, 64, in_channels=in_c, image_size=size)
    assert count_flops(model) == 2 * (conv + flat * 128 + 128 * 64)
    assert count_flops(model, size) == count_flops(model)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="shapes3d, mnist, table_s6"):
        build_encoder("resnet", 8)
    with pytest.raises(ValueError, match="embedding_dim"):
        build_encoder("mnist", 0)
    with pytest.raises(ValueError, match="too small"):
        build_encoder("shapes3d", 8, image_size=8)
    model = build_encoder("mnist", 8)
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="float images"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="differs"):
        count_flops(model, 32)
