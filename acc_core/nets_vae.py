"""The convolutional Gaussian encoder and deconvolutional Bernoulli decoder of
disentanglement_lib (google-research/disentanglement_lib, methods/shared/architectures.py:
`conv_encoder`, `deconv_decoder`; Locatello et al. 2019, "Challenging common assumptions
...", appendix Table 1), shared by the VAE methods (acc_core.methods.vae) and later by the
mixing-autoencoder and seed-004 methods.

Architecture (filters-kernel-stride, ReLU after every layer but the outputs):
  encoder  conv 32-4-2, conv 32-4-2, conv 64-2-2, conv 64-2-2, FC 256, FC 2 x latents
           (means and log-variances, two linear heads as in the reference);
  decoder  FC 256, FC 64 * (S/16)^2, deconv 64-4-2, deconv 32-4-2, deconv 32-4-2,
           deconv C-4-2 -> logits (no activation: the Bernoulli loss takes logits).
The last two encoder convolutions have 2x2 kernels in disentanglement_lib and in the
Locatello et al. table; the beta-VAE paper (Higgins et al. 2017, Table 1, chairs) that both
cite uses 4x4 for all four. We follow disentanglement_lib (2x2), whose numbers the weak
paper reports.

Image sizes: the four stride-2 layers divide the side by 16. TensorFlow's 'same' padding
(pad 1 for the 4x4 kernels, none for the 2x2 ones) is what torch gets with padding=1 / 0 on
even sides. Any square side S is handled by zero-padding the input symmetrically to
P = 16 * ceil(S / 16) (28 -> 32 for digits; 32 and 64 stay) and cropping the decoder's
P x P logits back to S x S, so the loss only ever sees the real pixels. The dense layer
after the trunk has 64 * (P/16)^2 inputs (1024 at 64 px, 256 at 32 px).

Weights: Glorot-uniform kernels and zero biases (TensorFlow's defaults, which the
reference trains with), drawn from torch's global generator: the same `torch.manual_seed`
gives the same network.

Losses (as disentanglement_lib, losses.bernoulli_loss and vae.compute_gaussian_kl):
`bernoulli_reconstruction` = BCE with logits summed over pixels (one value per image),
`kl_to_standard_normal` = KL(N(mu, exp(logvar)) || N(0, 1)) per latent dimension.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# (output channels, kernel, stride, padding) of the encoder trunk; padding reproduces
# TensorFlow's 'same' on even sides.
ENCODER_TRUNK = ((32, 4, 2, 1), (32, 4, 2, 1), (64, 2, 2, 0), (64, 2, 2, 0))
HIDDEN = 256  # the FC layer on both sides (disentanglement_lib e5 / d1)
DOWNSAMPLE = 16  # four stride-2 layers


def padded_side(image_size: int) -> int:
    """The side the networks run at: the image side rounded up to a multiple of 16."""
    return DOWNSAMPLE * math.ceil(image_size / DOWNSAMPLE)


def _glorot(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class VAEEncoder(nn.Module):
    """(B, C, S, S) float images in [0, 1] -> (mu, logvar), each (B, latent_dim)."""

    def __init__(self, latent_dim: int, in_channels: int, image_size: int):
        super().__init__()
        self.latent_dim, self.in_channels, self.image_size = latent_dim, in_channels, image_size
        self.side = padded_side(image_size)
        pad = self.side - image_size
        self.pad = (pad // 2, pad - pad // 2)  # (before, after) on each spatial axis
        layers, c = [], in_channels
        for out, k, s, p in ENCODER_TRUNK:
            layers += [nn.Conv2d(c, out, k, stride=s, padding=p), nn.ReLU()]
            c = out
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        flat = c * (self.side // DOWNSAMPLE) ** 2
        self.fc = nn.Sequential(nn.Linear(flat, HIDDEN), nn.ReLU())
        self.mean = nn.Linear(HIDDEN, latent_dim)  # the reference's "means" head
        self.log_var = nn.Linear(HIDDEN, latent_dim)  # and its "log_var" head
        _glorot(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c, s = self.in_channels, self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(f"the VAE encoder expects float images (B, {c}, {s}, {s}) in [0, 1], "
                             f"got shape {tuple(x.shape)}")
        if self.pad != (0, 0):
            a, b = self.pad
            x = F.pad(x, (a, b, a, b))  # zeros (black) around the image: (B, C, P, P)
        h = self.fc(self.trunk(x))  # (B, 256)
        return self.mean(h), self.log_var(h)  # (B, L), (B, L)


class VAEDecoder(nn.Module):
    """(B, latent_dim) codes -> (B, C, S, S) Bernoulli logits."""

    def __init__(self, latent_dim: int, out_channels: int, image_size: int):
        super().__init__()
        self.latent_dim, self.out_channels, self.image_size = latent_dim, out_channels, image_size
        self.side = padded_side(image_size)
        pad = self.side - image_size
        self.crop = pad // 2  # matches the encoder's padding before
        self.start = self.side // DOWNSAMPLE  # 4 at 64 px, 2 at 32 px
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, HIDDEN), nn.ReLU(),
            nn.Linear(HIDDEN, 64 * self.start * self.start), nn.ReLU(),
        )
        # ConvTranspose2d(k=4, s=2, p=1) doubles the side exactly, as TF's 'same' does.
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, out_channels, 4, stride=2, padding=1),
        )
        _glorot(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, 64, self.start, self.start)  # (B, 64, P/16, P/16)
        logits = self.deconv(h)  # (B, C, P, P)
        a, s = self.crop, self.image_size
        return logits[:, :, a:a + s, a:a + s]  # (B, C, S, S)


class GaussianVAE(nn.Module):
    """Encoder + decoder as one module (its state dict is a run's checkpoint `model`).

    `spec` holds the constructor's arguments: GaussianVAE(**spec) rebuilds it.
    """

    def __init__(self, latent_dim: int, in_channels: int, image_size: int):
        super().__init__()
        for label, v in (("latent_dim", latent_dim), ("in_channels", in_channels),
                         ("image_size", image_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{label} must be a positive integer, got {v!r}")
        self.spec = dict(latent_dim=latent_dim, in_channels=in_channels, image_size=image_size)
        self.encoder = VAEEncoder(latent_dim, in_channels, image_size)
        self.decoder = VAEDecoder(latent_dim, in_channels, image_size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, S, S) -> posterior (mu, logvar), each (B, L), float32."""
        mu, logvar = self.encoder(x.contiguous(memory_format=torch.channels_last))
        return mu.float(), logvar.float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, C, S, S) logits, float32."""
        return self.decoder(z).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior means (B, L): what the analyses see."""
        return self.encode(x)[0]


# ----- losses and sampling (pure tensor functions) --------------------------------------------
def bernoulli_reconstruction(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) logits and targets in [0, 1] -> (B,) BCE summed over pixels and channels
    (disentanglement_lib's bernoulli_loss with activation='logits', without subtracting the
    targets' own entropy: the loss is 0 only for binary targets)."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), x.float(), reduction="none")
    return bce.flatten(1).sum(1)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, e^logvar) || N(0, 1)) per dimension, same shape as mu:
    0.5 * (mu^2 + e^logvar - logvar - 1)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """z = mu + e^(logvar/2) * eps, eps ~ N(0, I) drawn on the CPU from `gen` (reproducible on
    any device) and moved to mu's device."""
    eps = torch.randn(mu.shape, generator=gen).to(device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * eps


__all__ = ["GaussianVAE", "VAEDecoder", "VAEEncoder", "bernoulli_reconstruction",
           "kl_to_standard_normal", "padded_side", "reparameterize"]
