"""Batched image augmentations for double augmentation (the ACC paper section 3).

The ACC paper Figure 3c (bottom) augments the overall hue of every image twice; the ABC supplement S5
lists the pose-estimation augmentations (translated crops, brightness, per-pixel Gaussian
and salt-and-pepper noise, an added scaled Sobel-filtered image, hue) and S8.4 random
shifts of contrast followed by a random crop.

Every function takes float images (B, C, H, W) in [0, 1] and a `torch.Generator` (or None
for torch's global generator) and returns new images of the same shape, dtype and range.
Random parameters are drawn on the generator's device and moved to the images' device, so
a CPU generator drives GPU images and the same seed gives the same augmentations anywhere.
Each image gets its own random parameters.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

Generator = Optional[torch.Generator]  # None: torch's global generator


def _device(generator: Generator, images: torch.Tensor) -> torch.device:
    return images.device if generator is None else generator.device


def _uniform(shape, low: float, high: float, generator, images: torch.Tensor) -> torch.Tensor:
    """Uniform draws in [low, high) of `shape`, on the images' device and dtype."""
    u = torch.rand(shape, generator=generator, device=_device(generator, images))
    return (low + (high - low) * u).to(device=images.device, dtype=images.dtype)


def _normal(shape, generator, images: torch.Tensor) -> torch.Tensor:
    z = torch.randn(shape, generator=generator, device=_device(generator, images))
    return z.to(device=images.device, dtype=images.dtype)


# ----- colour ---------------------------------------------------------------------------------
def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> HSV with hue in [0, 1) turns; grey pixels get hue 0."""
    r, g, b = rgb.unbind(1)  # each (B, H, W)
    maxc, argmax = rgb.max(dim=1)  # (B, H, W)
    minc = rgb.min(dim=1).values
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))  # no 0/0 on grey pixels
    h = torch.where(
        argmax == 0,
        ((g - b) / safe) % 6,
        torch.where(argmax == 1, (b - r) / safe + 2, (r - g) / safe + 4),
    )
    h = torch.where(delta > 0, h / 6, torch.zeros_like(h))
    safe_max = torch.where(maxc > 0, maxc, torch.ones_like(maxc))  # black pixels: saturation 0
    s = torch.where(maxc > 0, delta / safe_max, torch.zeros_like(maxc))
    return torch.stack([h, s, maxc], dim=1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) HSV (hue in turns) -> RGB in [0, 1]; the closed form f(n) = v - vs·k-clip."""
    h, s, v = hsv[:, 0:1], hsv[:, 1:2], hsv[:, 2:3]  # each (B, 1, H, W)
    n = torch.tensor([5.0, 3.0, 1.0], device=hsv.device, dtype=hsv.dtype).view(1, 3, 1, 1)
    k = (n + h * 6) % 6  # (B, 3, H, W)
    return v - v * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def hue_shift(images: torch.Tensor, generator: Generator, max_shift: float = 0.5) -> torch.Tensor:
    """Rotate every image's hue by one random amount in [-max_shift, max_shift) turns.

    The default 0.5 is any rotation of the colour wheel, which removes all hue information
    (the contrastive baseline of the ACC paper Fig. 3c). Saturation and value are kept exactly.
    One-channel images have no hue and come back unchanged.
    """
    if images.shape[1] != 3:
        return images
    shift = _uniform((images.shape[0],), -max_shift, max_shift, generator, images)  # (B,)
    return rotate_hue(images, shift)


def hue_shift_batch(images: torch.Tensor, generator: Generator, max_shift: float = 0.5) -> torch.Tensor:
    """Rotate the hue of ALL images by ONE random amount in [-max_shift, max_shift) turns, as
    TensorFlow's `tf.image.random_hue` does on a batch (one delta per call): the hue
    double-augmentation baseline of the ACC paper's reference code. Hue differences between
    the images of the batch survive it; only the batch's common hue moves."""
    if images.shape[1] != 3:
        return images
    shift = _uniform((1,), -max_shift, max_shift, generator, images)  # (1,)
    return rotate_hue(images, shift.expand(images.shape[0]))


def rotate_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB, (B,) shifts in turns -> the images with their hue rotated."""
    hsv = rgb_to_hsv(images)
    hsv = torch.stack([(hsv[:, 0] + shift.view(-1, 1, 1)) % 1.0, hsv[:, 1], hsv[:, 2]], dim=1)
    return hsv_to_rgb(hsv).clamp(0, 1)


def brightness_contrast(
    images: torch.Tensor, generator: Generator, brightness: float = 0.2, contrast: float = 0.3
) -> torch.Tensor:
    """Scale each image about its mean by c ∈ [1-contrast, 1+contrast), then add b ∈ ±brightness."""
    bsz = images.shape[0]
    c = _uniform((bsz, 1, 1, 1), 1 - contrast, 1 + contrast, generator, images)  # (B, 1, 1, 1)
    b = _uniform((bsz, 1, 1, 1), -brightness, brightness, generator, images)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return ((images - mean) * c + mean + b).clamp(0, 1)


# ----- geometry -------------------------------------------------------------------------------
def crop(images: torch.Tensor, generator: Generator, min_scale: float = 0.8) -> torch.Tensor:
    """Random square crop of side s ∈ [min_scale, 1] of the image at a random place, resized back.

    Done for the whole batch at once with an affine sampling grid (bilinear); the crop box
    always lies inside the image, so no border is invented. The ABC supplement S5 / Fig. S4 translate
    the box by up to 0.1 of its size: min_scale = 0.8 allows that shift at every scale.
    """
    bsz = images.shape[0]
    s = _uniform((bsz,), min_scale, 1.0, generator, images)  # (B,) box side, fraction of image
    # Box centre in normalised [-1, 1] coordinates, kept inside: |t| <= 1 - s.
    tx = _uniform((bsz,), -1.0, 1.0, generator, images) * (1 - s)
    ty = _uniform((bsz,), -1.0, 1.0, generator, images) * (1 - s)
    zero = torch.zeros_like(s)
    theta = torch.stack([torch.stack([s, zero, tx], 1), torch.stack([zero, s, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)  # (B, H, W, 2)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp(0, 1)


# ----- noise ----------------------------------------------------------------------------------
def gaussian_noise(images: torch.Tensor, generator: Generator, std: float = 0.05) -> torch.Tensor:
    """Add N(0, σ²) to every pixel with σ ∈ [0, std) drawn per image, then clip to [0, 1]."""
    sigma = _uniform((images.shape[0], 1, 1, 1), 0.0, std, generator, images)  # (B, 1, 1, 1)
    return (images + sigma * _normal(images.shape, generator, images)).clamp(0, 1)


def salt_pepper(images: torch.Tensor, generator: Generator, amount: float = 0.02) -> torch.Tensor:
    """Set a fraction `amount` of pixels (all channels together) to black or white, half each."""
    bsz, _, h, w = images.shape
    u = _uniform((bsz, 1, h, w), 0.0, 1.0, generator, images)  # (B, 1, H, W)
    out = torch.where(u < amount / 2, torch.zeros_like(images), images)  # pepper
    return torch.where(u > 1 - amount / 2, torch.ones_like(images), out)  # salt


def sobel_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Per-channel Sobel gradient magnitude (B, C, H, W), scaled so a 0 -> 1 step edge gives 1."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kx = kx.to(device=images.device, dtype=images.dtype)
    kernels = torch.stack([kx, kx.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    c = images.shape[1]
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")  # edges of the frame are not edges
    grads = F.conv2d(padded, kernels.repeat(c, 1, 1, 1), groups=c)  # (B, 2C, H, W)
    gx, gy = grads[:, 0::2], grads[:, 1::2]  # (B, C, H, W) each
    return torch.sqrt(gx * gx + gy * gy) / 4.0


def sobel_edges(images: torch.Tensor, generator: Generator, max_scale: float = 0.5) -> torch.Tensor:
    """The ABC supplement S5: add a scaled Sobel-filtered version of the image, scale ∈ [0, max_scale)."""
    scale = _uniform((images.shape[0], 1, 1, 1), 0.0, max_scale, generator, images)  # (B, 1, 1, 1)
    return (images + scale * sobel_magnitude(images)).clamp(0, 1)


# ----- registry -------------------------------------------------------------------------------
AUGMENTATIONS: dict[str, Callable[[torch.Tensor, Generator], torch.Tensor]] = {
    "hue": hue_shift,
    "brightness_contrast": brightness_contrast,
    "crop": crop,
    "gaussian_noise": gaussian_noise,
    "salt_pepper": salt_pepper,
    "sobel": sobel_edges,
}


def apply(images: torch.Tensor, names: tuple[str, ...], generator: Generator) -> torch.Tensor:
    """Apply the named augmentations in order; (B, C, H, W) float in [0, 1] -> same.

    For double augmentation call it twice on the same images: the generator advances, so
    the two views get independent random parameters.
    """
    bad = [n for n in names if n not in AUGMENTATIONS]
    if bad:
        raise ValueError(f"unknown augmentation {bad[0]!r}; valid names: {', '.join(AUGMENTATIONS)}")
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"augmentations need float images (B, C, H, W) in [0, 1], got {images.dtype} of shape "
            f"{tuple(images.shape)}; convert uint8 (B, H, W, C) with x.permute(0, 3, 1, 2).float() / 255."
        )
    for name in names:
        images = AUGMENTATIONS[name](images, generator)
    return images
