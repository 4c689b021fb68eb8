"""The networks of the mixing autoencoder (seed 003, Hu et al. 2018, "Disentangling factors of
variation by mixing them", section 3.2 and Table 1), at any square image side.

Table 1 (MNIST column; "c" conv, "d" deconv, "f" fully connected, k kernel, s stride; after
each conv and deconv a normalisation and a LeakyReLU of slope 0.2):
  Enc  c64k3s2-c128k3s2-c256k3s2-f            -> the feature: 8 chunks of d dimensions
  Dec  d512k4-d256k4s2-d128k4s2-d3k2
  Dsc  c64k3s2-c128k3s2-c256k3s2-c512-f       -> one logit (real x1 against mixed x3)
  Cls  c96k8s2-p-c256k5-p-c384k3-c384k3-c256k3-p-f4096-f4096-f   (AlexNet with batch norm,
       no dropout; input [x1, x2, x3] concatenated on channels; one logit per chunk)

Sizes. The networks run at P = the smallest 4 * 2^n >= the image side (28 -> 32, 32 -> 32,
64 -> 64): the input is zero-padded to P, the decoder's P x P output is cropped back. The
encoder has n = log2(P / 4) stride-2 convolutions (3 at 32 px as Table 1's MNIST column, 4 at
64 px as its Sprites/CelebA columns), widths w, 2w, 4w, 8w; the decoder mirrors it from a 4x4
start (d(8w)k4 on the 1x1 feature, then n deconvolutions k4 s2 halving the width, then a 3x3
convolution to the image channels) and ends in a sigmoid (images in [0, 1]; the reference code
uses tanh on [-1, 1]). w = 64 is Table 1's width; the quick presets narrow it.

Normalisation: batch norm in every network, as DCGAN (whose architecture section 3.2 says the
encoder, decoder and discriminator follow) and as the reference code's discriminator and
classifier ("AlexNet with batch normalization"); the reference's encoder and decoder use
instance norm, which runs several times slower than batch norm on a CPU here (PyTorch 2.x). Pooling "p" is 3x3 stride 2, padded by 1 here so that
32-px inputs keep a 2x2 map before the fully connected layers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LEAK = 0.2  # Table 1: "a leaky ReLU layer with a leak coefficient of 0.2"
START = 4  # the decoder's first maps (d512k4 on the 1x1 feature)


def padded_side(image_size: int) -> int:
    """The side the networks run at: the smallest 4 * 2^n (n >= 1) >= image_size."""
    if image_size < 1:
        raise ValueError(f"image size must be >= 1, got {image_size}")
    return START * 2 ** max(1, math.ceil(math.log2(max(image_size, START) / START)))


def _pad(x: torch.Tensor, side: int) -> torch.Tensor:
    """(B, C, S, S) -> (B, C, P, P), zeros around the image, centred."""
    p = side - x.shape[-1]
    if p == 0:
        return x
    a = p // 2
    return F.pad(x, (a, p - a, a, p - a))


class Encoder(nn.Module):
    """(B, C, S, S) in [0, 1] -> (B, feature_dim): conv3x3 stride 2 blocks, then one FC."""

    def __init__(self, in_channels: int, image_size: int, feature_dim: int, width: int):
        super().__init__()
        self.side = padded_side(image_size)
        n = int(math.log2(self.side // START))
        layers, c = [], in_channels
        for i in range(n):
            out = width * min(2**i, 8)
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1),
                       nn.BatchNorm2d(out), nn.LeakyReLU(LEAK)]
            c = out
        self.trunk = nn.Sequential(*layers)
        self.fc = nn.Linear(c * START * START, feature_dim)  # "f": the feature, no activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(_pad(x, self.side).contiguous(memory_format=torch.channels_last))
        return self.fc(h.flatten(1))  # (B, n * d)


class Decoder(nn.Module):
    """(B, feature_dim) -> (B, C, S, S) images in [0, 1]."""

    def __init__(self, out_channels: int, image_size: int, feature_dim: int, width: int):
        super().__init__()
        self.side, self.size = padded_side(image_size), image_size
        n = int(math.log2(self.side // START))
        c = width * min(2**n, 8)
        layers = [nn.ConvTranspose2d(feature_dim, c, START), nn.BatchNorm2d(c),
                  nn.LeakyReLU(LEAK)]  # d(8w)k4: 1x1 -> 4x4
        for i in reversed(range(n)):
            out = width * min(2**i, 8)
            layers += [nn.ConvTranspose2d(c, out, 4, stride=2, padding=1),  # doubles the side
                       nn.BatchNorm2d(out), nn.LeakyReLU(LEAK)]
            c = out
        layers += [nn.Conv2d(c, out_channels, 3, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        x = self.net(f[:, :, None, None])  # (B, C, P, P)
        a = (self.side - self.size) // 2
        return x[:, :, a:a + self.size, a:a + self.size]  # (B, C, S, S)


class Discriminator(nn.Module):
    """(B, C, S, S) -> (B,) logits of "a real image": c(w)k3s2-c(2w)k3s2-c(4w)k3s2-c(8w)-f."""

    def __init__(self, in_channels: int, image_size: int, width: int):
        super().__init__()
        self.side = padded_side(image_size)
        layers, c, s = [], in_channels, self.side
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.LeakyReLU(LEAK)]
            c, s = out, (s + 1) // 2
        layers += [nn.Conv2d(c, 8 * width, 1), nn.BatchNorm2d(8 * width), nn.LeakyReLU(LEAK)]
        self.net = nn.Sequential(*layers)
        self.fc = nn.Linear(8 * width * s * s, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(_pad(x, self.side).contiguous(memory_format=torch.channels_last))
        return self.fc(h.flatten(1))[:, 0]


class ChunkClassifier(nn.Module):
    """[x1, x2, x3] (B, 3C, S, S) -> (B, n_chunks) logits: did chunk i of x3 come from x1?
    AlexNet layout (c1 k8 s2, pool, c2 k5, pool, c3 k3, c4 k3, c5 k3, pool, fc, fc, fc) with
    batch norm after each convolution and no dropout (seed 003 section 3.2)."""

    def __init__(self, in_channels: int, image_size: int, n_chunks: int, channels: tuple, fc: int):
        super().__init__()
        self.side = padded_side(image_size)
        c1, c2, c3, c4, c5 = channels

        def block(a, b, k, s=1):
            return [nn.Conv2d(a, b, k, stride=s, padding=(k - s) // 2 if s > 1 else k // 2),
                    nn.BatchNorm2d(b), nn.ReLU()]

        pool = lambda: nn.MaxPool2d(3, stride=2, padding=1)  # noqa: E731
        self.net = nn.Sequential(*block(in_channels, c1, 8, 2), pool(), *block(c1, c2, 5), pool(),
                                 *block(c2, c3, 3), *block(c3, c4, 3), *block(c4, c5, 3), pool())
        with torch.no_grad():
            flat = self.net(torch.zeros(1, in_channels, self.side, self.side)).numel()
        self.head = nn.Sequential(nn.Linear(flat, fc), nn.ReLU(), nn.Linear(fc, fc), nn.ReLU(),
                                  nn.Linear(fc, n_chunks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.net(_pad(x, self.side).contiguous(memory_format=torch.channels_last))
        return self.head(h.flatten(1))  # (B, n_chunks)


class MixingModel(nn.Module):
    """Every network of the method as one module (its state dict is the checkpoint's model)."""

    def __init__(self, in_channels: int, image_size: int, n_chunks: int, chunk_size: int,
                 width: int, classifier_channels: tuple, classifier_fc: int):
        super().__init__()
        self.n_chunks, self.chunk_size = n_chunks, chunk_size
        feature = n_chunks * chunk_size
        self.encoder = Encoder(in_channels, image_size, feature, width)
        self.decoder = Decoder(in_channels, image_size, feature, width)
        self.discriminator = Discriminator(in_channels, image_size, width)
        self.classifier = ChunkClassifier(3 * in_channels, image_size, n_chunks,
                                          tuple(classifier_channels), classifier_fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, n * d): the analyses' "code"


__all__ = ["ChunkClassifier", "Decoder", "Discriminator", "Encoder", "MixingModel", "padded_side"]
