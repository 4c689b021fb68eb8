"""Ray casting parametric cars and chairs in torch: `render(factors, size) -> uint8 images`.

The ACC paper section 4.3 transfers 3D pose from synthetic renderings (ShapeNet cars and
chairs, viewpoints over the upper hemisphere, elevation capped at 0.5 rad for cars and
1.3 rad for chairs, appendix A.3 / the ABC supplement S8.3) to unlabelled real photographs.
Neither is available offline, so this module stands in for both:

- objects are assembled from parametric parts (axis-aligned boxes): a car is a body, a
  cabin set off-centre, four wheels, a bumper and a spoiler; a chair is a seat, a back,
  four legs, a top rail and, for some instances, arm rests. Each instance draws its own
  proportions and colours from a fixed seed (`instance_parts`);
- the camera orbits the object at (azimuth, elevation) and looks at its centre;
- domain `synthetic`: clean Lambert shading under one fixed light, plain background, as
  a renderer would produce; domain `real`: the same objects under another, per-image
  light and tint, with textured surfaces, a cluttered procedural background, blur,
  sensor noise and 8x8 block-DCT quantisation (JPEG-like), standing in for photos.

Every random choice of an image comes from a hash of its factors (`_hash_uniform`), never
from a generator's state, so an image is the same rendered alone or in any batch. Work is
batched over images and chunked (`CHUNK`) so memory stays bounded.
"""

from __future__ import annotations

import contextlib
import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

CATEGORIES = ("car", "chair")
N_INSTANCES = 12  # per category; instances 0..9 are the dictionary's, 10..11 held out
N_AZIMUTHS = 36  # 10 degree steps over the full circle
N_ELEVATIONS = 5  # 0 .. the category's cap, evenly
DOMAINS = ("synthetic", "real")
FACTOR_NAMES = ("category", "instance", "azimuth", "elevation", "domain")
FACTOR_SIZES = (len(CATEGORIES), N_INSTANCES, N_AZIMUTHS, N_ELEVATIONS, len(DOMAINS))
AZIMUTHS_DEG = np.arange(N_AZIMUTHS) * (360.0 / N_AZIMUTHS)
ELEVATION_FRACTIONS = np.linspace(0.0, 1.0, N_ELEVATIONS)  # of the category's cap
# Appendix A.3: "0.5 radians and 1.3 radians for the max elevation for cars and chairs".
ELEVATION_CAP_RAD = {"car": 0.5, "chair": 1.3}
N_PARTS = 8  # boxes per object (unused slots are empty)

CAMERA_DISTANCE = 3.3  # the unit bounding sphere nearly fills the frame ("tight cropped")
FOV_Y = math.radians(36.0)
LIGHT_SYNTHETIC = (0.45, 0.85, 0.55)  # towards the light, world frame (y up)
BACKGROUND_SYNTHETIC = 0.88  # plain light grey
SUPERSAMPLE = 1  # rays per pixel side (2 = 2x2 antialiasing at 4x the cost)
CHUNK = 32  # images per ray-casting step (a few MB per working tensor at 64x64)
SEED = 4_300  # instance shapes and colours, background and noise banks
BANK = 64  # procedural backgrounds and noise fields to choose from
SINGLE_THREAD = True  # render on one torch thread (see `render`); False: torch's own setting


# ----- deterministic per-image randomness ----------------------------------------------------
def _hash_uniform(keys: np.ndarray, n: int) -> np.ndarray:
    """(m,) int64 keys -> (m, n) float64 uniforms in [0, 1), a splitmix64 hash of (key, j)."""
    k = keys.astype(np.uint64)[:, None] * np.uint64(n) + np.arange(n, dtype=np.uint64)[None]
    with np.errstate(over="ignore"):
        z = k + np.uint64(0x9E3779B97F4A7C15) * np.uint64(SEED + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


# ----- objects -----------------------------------------------------------------------------
def _box(cx, cy, cz, hx, hy, hz, colour):
    return [cx, cy, cz, hx, hy, hz, colour]


@functools.lru_cache(maxsize=None)
def instance_parts(category: int, instance: int) -> tuple[np.ndarray, np.ndarray]:
    """-> boxes (N_PARTS, 7): centre xyz, half sizes xyz, colour slot (-1 empty); and
    colours (3, 3) RGB in [0, 1] (slot 0 main, 1 secondary, 2 dark parts).

    The object stands on y = 0 with its length along x (azimuth 0 sees its side), and is
    scaled so that its bounding sphere about the orbit centre has radius ~1.
    """
    rng = np.random.default_rng([SEED, category, instance])
    hue = rng.random()
    main = _hsv(hue, rng.uniform(0.45, 0.9), rng.uniform(0.55, 0.95))
    second = _hsv((hue + rng.uniform(0.3, 0.7)) % 1.0, rng.uniform(0.2, 0.7), rng.uniform(0.5, 0.95))
    dark = _hsv(rng.random(), 0.15, rng.uniform(0.12, 0.25))
    parts = []
    if CATEGORIES[category] == "car":
        length, width = rng.uniform(1.7, 2.3), rng.uniform(0.8, 1.0)
        r = rng.uniform(0.17, 0.24)  # wheel radius
        body_h = rng.uniform(0.28, 0.42)
        base = r * 0.9
        parts.append(_box(0, base + body_h / 2, 0, length / 2, body_h / 2, width / 2, 0))
        cab_len = length * rng.uniform(0.38, 0.6)
        cab_h = rng.uniform(0.22, 0.38)
        cab_x = rng.uniform(-0.18, 0.0) * length  # set back: front and rear differ
        parts.append(_box(cab_x, base + body_h + cab_h / 2, 0, cab_len / 2, cab_h / 2, width * 0.42, 1))
        wx = length / 2 - r * rng.uniform(1.2, 1.6)
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(_box(sx * wx, r, sz * (width / 2 - 0.05), r, r, 0.09, 2))
        parts.append(_box(length / 2 + 0.04, base + body_h * 0.3, 0, 0.05, body_h * 0.22, width * 0.45, 2))
        spoiler = rng.random() < 0.5
        parts.append(_box(-length / 2 + 0.08, base + body_h + 0.06, 0, 0.08, 0.03, width * 0.45, 1)
                     if spoiler else None)
    else:
        seat_w, seat_d = rng.uniform(0.8, 1.1), rng.uniform(0.75, 1.0)
        seat_y, seat_t = rng.uniform(0.75, 0.95), rng.uniform(0.07, 0.14)
        back_h, leg = rng.uniform(0.7, 1.1), rng.uniform(0.05, 0.08)
        parts.append(_box(0, seat_y, 0, seat_w / 2, seat_t / 2, seat_d / 2, 0))
        parts.append(_box(0, seat_y + back_h / 2, -seat_d / 2 + 0.05, seat_w / 2, back_h / 2, 0.05, 0))
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(_box(sx * (seat_w / 2 - leg), seat_y / 2, sz * (seat_d / 2 - leg),
                                  leg, seat_y / 2, leg, 2))
        parts.append(_box(0, seat_y + back_h + 0.04, -seat_d / 2 + 0.05, seat_w / 2 + 0.03, 0.05, 0.07, 1))
        arms = rng.random() < 0.5
        parts.append(_box(0, seat_y + 0.25, 0.0, seat_w / 2 + 0.02, 0.03, seat_d / 2 - 0.05, 1)
                     if arms else None)
    boxes = np.full((N_PARTS, 7), 0.0)
    boxes[:, 6] = -1
    for i, p in enumerate(parts):
        if p is not None:
            boxes[i] = p
    used = boxes[:, 6] >= 0
    # centre the orbit on the bounding box and scale to a unit bounding sphere
    lo = (boxes[used, :3] - boxes[used, 3:6]).min(0)
    hi = (boxes[used, :3] + boxes[used, 3:6]).max(0)
    centre, radius = (lo + hi) / 2, np.linalg.norm(hi - lo) / 2
    boxes[used, :3] = (boxes[used, :3] - centre) / radius
    boxes[used, 3:6] /= radius
    return boxes.astype(np.float32), np.stack([main, second, dark]).astype(np.float32)


def _hsv(h, s, v):
    k = (np.array([5.0, 3.0, 1.0]) + h * 6) % 6
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


def pose_radians(factors) -> np.ndarray:
    """(n, 5) factor value indices -> (n, 2) float64 (azimuth, elevation) in radians."""
    f = np.asarray(factors, dtype=np.int64).reshape(-1, len(FACTOR_SIZES))
    az = np.deg2rad(AZIMUTHS_DEG[f[:, 2]])
    caps = np.asarray([ELEVATION_CAP_RAD[c] for c in CATEGORIES])
    el = ELEVATION_FRACTIONS[f[:, 3]] * caps[f[:, 0]]
    return np.stack([az, el], 1)


# ----- camera and rays ---------------------------------------------------------------------
def _rays(az: torch.Tensor, el: torch.Tensor, size: int, ss: int):
    """(m,) azimuth, elevation -> origins (m, 1, 3), unit directions (m, P, 3), P = (size*ss)^2
    ordered so that (m, size, ss, size, ss) groups the subsamples of a pixel."""
    ce = el.cos()
    origin = CAMERA_DISTANCE * torch.stack([ce * az.sin(), el.sin(), ce * az.cos()], -1)
    fwd = -origin / origin.norm(dim=-1, keepdim=True)
    world_up = torch.tensor([0.0, 1.0, 0.0]).expand_as(fwd)
    right = torch.linalg.cross(fwd, world_up)
    right = right / right.norm(dim=-1, keepdim=True)
    up = torch.linalg.cross(right, fwd)
    n = size * ss
    pos = (torch.arange(n) + 0.5) / n * 2 - 1  # (n,)
    half = math.tan(FOV_Y / 2)
    u = pos[None, :].expand(n, n).reshape(-1) * half  # columns
    v = -pos[:, None].expand(n, n).reshape(-1) * half  # rows, top first
    d = fwd[:, None] + u[None, :, None] * right[:, None] + v[None, :, None] * up[:, None]
    return origin[:, None], d / d.norm(dim=-1, keepdim=True)


def _cast(o, d, boxes):
    """Rays against boxes -> depth t (m, P) (inf on a miss), normal (m, P, 3), part (m, P).

    o (m, 1, 3), d (m, P, 3), boxes (m, K, 7). The slab test, one box at a time (keeps the
    working set small), keeping the nearest hit.
    """
    m, n_rays = d.shape[:2]
    inv = 1.0 / torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)  # (m, P, 3)
    t = torch.full((m, n_rays), math.inf)
    axis = torch.zeros((m, n_rays), dtype=torch.long)
    part = torch.zeros((m, n_rays), dtype=torch.long)
    for k in range(boxes.shape[1]):
        used = boxes[:, k, 6] >= 0  # (m,)
        if not used.any():
            continue
        lo = (boxes[:, k, :3] - boxes[:, k, 3:6])[:, None]  # (m, 1, 3)
        hi = (boxes[:, k, :3] + boxes[:, k, 3:6])[:, None]
        t1, t2 = (lo - o) * inv, (hi - o) * inv  # (m, P, 3)
        t_in, ax = torch.minimum(t1, t2).max(-1)  # (m, P)
        t_out = torch.maximum(t1, t2).min(-1).values
        closer = (t_in <= t_out) & (t_in > 0) & (t_in < t) & used[:, None]
        t = torch.where(closer, t_in, t)
        axis = torch.where(closer, ax, axis)
        part = torch.where(closer, k, part)
    normal = -F.one_hot(axis, 3).float() * d.sign()
    return t, normal, part


# ----- the real domain: backgrounds, texture, degradations ---------------------------------
@functools.lru_cache(maxsize=4)
def _banks(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluttered backgrounds (BANK, 3, 2*size, 2*size) and noise fields (BANK, 3, size, size),
    drawn once from a fixed seed; each real image picks one of each and a crop offset."""
    g = torch.Generator().manual_seed(SEED)
    s2 = 2 * size
    yy, xx = torch.meshgrid(torch.linspace(0, 1, s2), torch.linspace(0, 1, s2), indexing="ij")
    bgs = []
    for _ in range(BANK):
        c0, c1 = torch.rand(3, generator=g), torch.rand(3, generator=g)
        ang = torch.rand(1, generator=g) * 2 * math.pi
        ramp = (xx * ang.cos() + yy * ang.sin()).clamp(0, 1)
        img = c0[:, None, None] * (1 - ramp) + c1[:, None, None] * ramp  # gradient wall
        for _ in range(int(torch.randint(6, 14, (1,), generator=g))):  # clutter: boxes, discs
            col = torch.rand(3, generator=g)[:, None, None]
            cx, cy, rx, ry = torch.rand(4, generator=g) * torch.tensor([1, 1, 0.3, 0.3]) + \
                torch.tensor([0, 0, 0.04, 0.04])
            if torch.rand(1, generator=g) < 0.5:
                mask = ((xx - cx).abs() < rx) & ((yy - cy).abs() < ry)
            else:
                mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
            img = torch.where(mask, col * (0.7 + 0.3 * yy), img)
        freq = 4 + 20 * torch.rand(1, generator=g)
        img = img * (0.9 + 0.1 * torch.sin(freq * (xx + 0.3 * yy) * 2 * math.pi))  # texture
        bgs.append(img.clamp(0, 1))
    noise = torch.randn(BANK, 3, size, size, generator=g)
    return torch.stack(bgs), noise


def _dct_matrix(n: int = 8) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64)
    m = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m.float()


# The JPEG standard's luminance quantisation table (Annex K), on 0..255 pixel values.
_JPEG_Q = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float32)


def jpeg_like(x: torch.Tensor, quality_scale: torch.Tensor) -> torch.Tensor:
    """(m, 3, H, W) in [0, 1], H and W multiples of 8 -> the same after quantising each 8x8
    block's DCT coefficients with the JPEG table times `quality_scale` (m,) (1 ~ quality 50)."""
    m, c, h, w = x.shape
    dct = _dct_matrix(8)
    blocks = (x * 255 - 128).view(m, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)
    coef = dct @ blocks @ dct.T  # (m, c, h/8, w/8, 8, 8)
    q = (_JPEG_Q * quality_scale.view(m, 1, 1, 1, 1, 1)).clamp(min=1)
    coef = torch.round(coef / q) * q
    out = dct.T @ coef @ dct
    return (out.permute(0, 1, 2, 4, 3, 5).reshape(m, c, h, w) + 128).div(255).clamp(0, 1)


def _blur(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Mix each image (m, 3, H, W) with its 5x5 binomial blur by `amount` (m,) in [0, 1]."""
    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    k = (k1[:, None] * k1[None, :]).expand(3, 1, 5, 5)
    blurred = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k, groups=3)
    a = amount.view(-1, 1, 1, 1)
    return x + a * (blurred - x)


# ----- rendering ---------------------------------------------------------------------------
def _render_chunk(f: np.ndarray, size: int) -> torch.Tensor:
    """(m, 5) factor indices -> float (m, 3, size, size) in [0, 1]."""
    m, ss = len(f), SUPERSAMPLE
    pose = torch.from_numpy(pose_radians(f)).float()
    parts = [instance_parts(int(c), int(i)) for c, i in f[:, :2]]
    boxes = torch.from_numpy(np.stack([p[0] for p in parts]))  # (m, K, 7)
    palette = torch.from_numpy(np.stack([p[1] for p in parts]))  # (m, 3, 3)
    o, d = _rays(pose[:, 0], pose[:, 1], size, ss)
    t, normal, part = _cast(o, d, boxes)
    hit = torch.isfinite(t)  # (m, P)
    slot = boxes[..., 6].long().clamp(min=0).gather(1, part)  # (m, P) colour slot of the part
    albedo = palette.gather(1, slot[..., None].expand(-1, -1, 3))  # (m, P, 3)
    real = torch.from_numpy(f[:, 4] == 1)  # (m,)
    # per-image randomness, hashed from the factors (the image index)
    key = np.asarray(f, dtype=np.int64) @ np.cumprod((1,) + FACTOR_SIZES[::-1])[:-1][::-1]
    u = torch.from_numpy(_hash_uniform(key, 16)).float()  # (m, 16)

    light = torch.tensor(LIGHT_SYNTHETIC).expand(m, 3).clone()
    # real: a light anywhere in the upper half, a coloured tint, stronger ambient variation
    la, le = u[:, 0] * 2 * math.pi, 0.2 + u[:, 1] * 1.2
    real_light = torch.stack([le.cos() * la.sin(), le.sin(), le.cos() * la.cos()], -1)
    light = torch.where(real[:, None], real_light, light)
    light = light / light.norm(dim=-1, keepdim=True)
    lambert = (normal * light[:, None]).sum(-1).clamp(min=0)  # (m, P)
    ambient = torch.where(real, 0.2 + 0.25 * u[:, 2], torch.full((m,), 0.35))
    shade = ambient[:, None] + (1 - ambient[:, None]) * lambert
    p = o + t.nan_to_num(posinf=0)[..., None] * d  # hit points (m, P, 3)
    freq = 6 + 18 * u[:, 3:6]  # (m, 3) texture frequencies per axis
    tex = torch.sin((p * freq[:, None]).sum(-1) * 2 + 6 * u[:, 6:7]) * torch.sin(
        (p[..., [1, 2, 0]] * freq[:, None]).sum(-1) * 1.3)
    texture = torch.where(real[:, None], 0.8 + 0.2 * tex, torch.ones_like(tex))
    tint = torch.where(real[:, None], 0.8 + 0.4 * u[:, 7:10], torch.ones(m, 3))  # (m, 3)
    colour = albedo * (shade * texture)[..., None] * tint[:, None]  # (m, P, 3)

    n = size * ss
    colour = colour.view(m, n, n, 3).permute(0, 3, 1, 2)  # (m, 3, n, n)
    cover = hit.float().view(m, 1, n, n)
    colour = F.avg_pool2d(colour * cover, ss)  # premultiplied
    cover = F.avg_pool2d(cover, ss)  # (m, 1, size, size)

    # backgrounds: plain grey (synthetic), a random crop of a cluttered scene (real)
    bgs, noise = _banks(size)
    pick = (u[:, 10] * BANK).long()
    oy, ox = (u[:, 11] * size).long(), (u[:, 12] * size).long()
    rows = (oy[:, None] + torch.arange(size)[None])  # (m, size)
    cols = (ox[:, None] + torch.arange(size)[None])
    bg_real = bgs[pick[:, None, None, None], torch.arange(3)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]  # (m, 3, size, size)
    bg = torch.where(real.view(m, 1, 1, 1), bg_real, torch.full_like(bg_real, BACKGROUND_SYNTHETIC))
    img = colour + (1 - cover) * bg

    if real.any():
        r = real.nonzero()[:, 0]
        x = _blur(img[r], 0.3 + 0.7 * u[r, 13])
        sigma = (0.02 + 0.05 * u[r, 14]).view(-1, 1, 1, 1)
        x = (x + sigma * noise[(pick[r] * 7 + 3) % BANK]).clamp(0, 1)
        if size % 8 == 0:
            x = jpeg_like(x, 0.5 + 1.5 * u[r, 15])
        img[r] = x
    return img.clamp(0, 1)


def render(factors, size: int = 64) -> torch.Tensor:
    """(n, 5) factor value indices -> torch.uint8 (n, size, size, 3) images, deterministic."""
    f = np.asarray(factors.numpy() if torch.is_tensor(factors) else factors, dtype=np.int64)
    f = f.reshape(-1, len(FACTOR_SIZES))
    if f.size and ((f < 0).any() or (f >= np.asarray(FACTOR_SIZES)).any()):
        raise ValueError(f"factor value indices out of range; sizes are {FACTOR_SIZES}")
    if int(size) != size or size < 8:
        raise ValueError(f"image size must be an integer of at least 8, got {size!r}")
    from acc_core.analysis.arrays import single_thread

    out = torch.empty((len(f), size, size, 3), dtype=torch.uint8)
    # One intra-op thread (SINGLE_THREAD): the renderer's many small tensor ops gain little
    # from a second thread, and beside another busy process (a worker training) each op's
    # thread barrier stalls (`python benchmarks/bench_pose_render.py --busy`).
    threads = single_thread() if SINGLE_THREAD else contextlib.nullcontext()
    with torch.no_grad(), threads:
        for start in range(0, len(f), CHUNK):
            img = _render_chunk(f[start:start + CHUNK], int(size))
            out[start:start + CHUNK] = img.permute(0, 2, 3, 1).mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    return out
