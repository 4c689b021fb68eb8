"""Encoders of the papers' tables, in a plain registry (the ABC supplement section S8).

- "shapes3d": Table S3 (S8.1), input 64x64x3; any square size works (e.g. the 32x32
  quick preset), the flatten size follows from `image_size`.
- "mnist": Table S4 (S8.2), input 28x28x1.
- "table_s6": Table S6 (S8.4, faces and cars), input 64x64 with 1 or 3 channels.

All are 3x3 'valid' (unpadded) ReLU convolutions, flatten, dense 128 ReLU, dense
embedding (linear). Inputs are float images (B, C, H, W) in [0, 1] (channels first, as
torch convolutions want); outputs are embeddings (B, E). `model.spec` holds the
constructor arguments, so `build_encoder(**model.spec)` rebuilds it from a checkpoint.
Weights use Glorot-uniform kernels and zero biases (the Keras defaults of the papers'
implementation; PyTorch's default starts the embeddings about 25x closer together, far
below the loss's length scale sqrt(tau), where training barely moves). They are drawn from
the global generator: the same `torch.manual_seed` gives the same network.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

# Conv trunks as (output channels, stride); every kernel is 3x3 with 'valid' padding.
TABLE_S3 = ((32, 1), (32, 1), (64, 2), (64, 1), (128, 1), (128, 2))
TABLE_S4 = ((32, 1), (32, 1), (32, 2), (32, 1), (32, 1))
TABLE_S6 = ((64, 1), (64, 2), (128, 1), (128, 2), (256, 1), (256, 2))
KERNEL = 3
HIDDEN = 128  # the dense layer before the embedding in Tables S3, S4 and S6


def _valid_size(size: int, stride: int) -> int:
    """Output side of a 3x3 'valid' conv: floor((n - 3) / s) + 1 (as in TensorFlow)."""
    return (size - KERNEL) // stride + 1


class ConvEncoder(nn.Module):
    """Conv trunk -> flatten -> dense 128 ReLU -> dense embedding_dim (linear)."""

    def __init__(self, name: str, trunk: tuple, embedding_dim: int, in_channels: int, image_size: int):
        super().__init__()
        # The constructor's arguments: build_encoder(**spec) rebuilds the same architecture.
        self.spec = dict(
            name=name, embedding_dim=embedding_dim, in_channels=in_channels, image_size=image_size
        )
        layers, channels, size = [], in_channels, image_size
        for out_channels, stride in trunk:
            if _valid_size(size, stride) < 1:
                raise ValueError(
                    f"image_size {image_size} is too small for the {name!r} encoder "
                    f"(its convolutions shrink it below one pixel); use a larger image_size."
                )
            layers += [nn.Conv2d(channels, out_channels, KERNEL, stride=stride), nn.ReLU()]
            channels, size = out_channels, _valid_size(size, stride)
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        self.feature_dim = channels * size * size  # flatten size after the last conv
        self.head = nn.Sequential(
            nn.Linear(self.feature_dim, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, embedding_dim)
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float in [0, 1] -> conv trunk output, flattened (B, feature_dim)."""
        c, s = self.spec["in_channels"], self.spec["image_size"]
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, s, s) or not x.is_floating_point():
            raise ValueError(
                f"the {self.spec['name']!r} encoder expects float images (B, {c}, {s}, {s}) in [0, 1], "
                f"got {x.dtype} of shape {tuple(x.shape)}; convert uint8 (B, H, W, C) with "
                "x.permute(0, 3, 1, 2).float() / 255, or build it with in_channels/image_size to match."
            )
        return self.trunk(x)  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float in [0, 1] -> embeddings (B, E)."""
        return self.head(self.forward_features(x))  # (B, E)


def _shapes3d(embedding_dim: int, in_channels: int = 3, image_size: int = 64) -> ConvEncoder:
    return ConvEncoder("shapes3d", TABLE_S3, embedding_dim, in_channels, image_size)


def _mnist(embedding_dim: int, in_channels: int = 1, image_size: int = 28) -> ConvEncoder:
    return ConvEncoder("mnist", TABLE_S4, embedding_dim, in_channels, image_size)


def _table_s6(embedding_dim: int, in_channels: int = 3, image_size: int = 64) -> ConvEncoder:
    return ConvEncoder("table_s6", TABLE_S6, embedding_dim, in_channels, image_size)


ENCODERS: dict[str, Callable[..., ConvEncoder]] = {
    "shapes3d": _shapes3d,
    "mnist": _mnist,
    "table_s6": _table_s6,
}


def list_encoders() -> list[str]:
    return list(ENCODERS)


def build_encoder(
    name: str, embedding_dim: int, in_channels: int | None = None, image_size: int | None = None
) -> nn.Module:
    """Build a registered encoder; None keeps the table's input channels / size."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; valid names: {', '.join(ENCODERS)}")
    args = {"embedding_dim": embedding_dim, "in_channels": in_channels, "image_size": image_size}
    for label, value in args.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{label} must be a positive integer, got {value!r}.")
    kwargs = {k: v for k, v in (("in_channels", in_channels), ("image_size", image_size)) if v is not None}
    return ENCODERS[name](embedding_dim, **kwargs)


def count_flops(model: nn.Module, image_size: int | None = None) -> int:
    """Forward FLOPs per image (2 x multiply-adds) of the conv and dense layers.

    Counted by one forward pass of a single blank image with hooks, so it holds for any
    encoder; biases and activations are left out, as is usual for a multiply-add count.
    """
    spec = getattr(model, "spec", {})
    size = image_size if image_size is not None else spec.get("image_size")
    if size is None:
        raise ValueError("pass image_size: the model has no spec to take the input size from.")
    if spec.get("image_size") not in (None, size):
        raise ValueError(
            f"image_size {size} differs from the model's {spec['image_size']}; "
            "build the encoder at the size you want to count."
        )
    macs = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            per_output = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        else:
            per_output = module.in_features
        macs.append(output[0].numel() * per_output)  # output[0]: the first (only) image

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        param = next(model.parameters())
        x = torch.zeros(1, spec.get("in_channels", 3), size, size, device=param.device, dtype=param.dtype)
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return 2 * sum(macs)
