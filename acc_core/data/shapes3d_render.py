"""Ray casting the Shapes3D scene in torch: `render(factors, size) -> uint8 images`.

The ACC paper section 4.1 evaluates ACC on Shapes3D (Burgess & Kim 2018): an object in a square
room under six factors (floor, wall and object hue, scale, shape, orientation). This module
draws that scene with a look-at camera swinging in azimuth around the object, analytic
floor, walls and shapes, Lambert shading and a soft shadow. The scene constants were
fitted to images of the real dataset (room corners, floor line,
object sizes, shadow masks, wall and floor shading).

The scene factorises: the room depends only on the orientation, the object only on
(orientation, shape, scale), and colours only on the hues. So rays are cast once per image
size over those 15 + 480 configurations (`_layers`, a few seconds, 2x2 rays per pixel) and
every image is a composite of cached layers, which makes `render` fast enough that data is
never the training bottleneck. `shapes3d_procedural` wraps it as a data source.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
SHAPES = ("cube", "cylinder", "sphere", "capsule")
HUES = np.round(np.arange(10) / 10, 2)
SCALES = np.linspace(0.75, 1.25, 8)
ORIENTATIONS = np.linspace(-30.0, 30.0, 15)  # degrees of camera azimuth
SKY_RGB = (153, 226, 249)

# Scene, in units where the room is 2 * ROOM_HALF wide; fitted to the reference frames.
ROOM_HALF, WALL_HEIGHT = 12.4, 7.5
CAMERA_DISTANCE, CAMERA_HEIGHT, TARGET_HEIGHT = 11.0, 3.24, 3.04  # orbit around the object
FOV_Y = math.radians(46.3)
# Object sizes at scale 1: cube half-side; cylinder radius, height; sphere radius;
# capsule radius, total height. Everything rests on the floor at the room's centre.
CUBE_HALF, CYL_RADIUS, CYL_HEIGHT, SPHERE_RADIUS = 1.4, 1.5, 2.9, 1.72
CAPSULE_RADIUS, CAPSULE_HEIGHT = 1.35, 5.3
# Lights are fixed in the room, in world coordinates: x to the right and z towards the
# camera at orientation 0, y up (so the shadow direction turns as the camera swings). A
# lamp up and to the left with inverse-square falloff shades the floor brighter on the
# left and lights left-facing sides; a distant light casts the shadow; a headlight along
# the view makes walls facing the camera brighter than side walls; a light from straight
# above brightens the tops of objects.
LAMP, LAMP_FALLOFF = (-5.5, 19.2, -1.6), 2.85  # intensity / (1 + (distance / falloff)^2)
SUN = (-0.25, 1.0, -0.1)  # direction towards the shadow-casting light
# Per surface: (ambient, headlight, top light, lamp) gains, fitted to reference pixels
# by least squares; intensity saturates at 1 per colour channel.
GAINS = {"floor": (0.0, 0.0, 0.0, 56.85), "wall": (0.35, 0.63, 0.0, 5.68),
         "object": (0.37, 0.57, 0.24, 40.7)}
SHADOW_STRENGTH, SHADOW_SOFTNESS = 0.67, 0.06
SHADOW_REACH = 9.0  # no shadow falls further than this from the object's axis
SUPERSAMPLE = 2  # 2x2 rays per pixel for antialiased edges (costs nothing per image)
CHUNK = 1024  # images per compositing step: bounds working memory (about 70 MB at 64x64)


def hsv_rgb(hues: torch.Tensor) -> torch.Tensor:
    """(n,) hues in [0, 1) -> (n, 3) HSV(h, 1, 1) colours in [0, 1]."""
    h6 = hues[:, None].double() * 6
    k = torch.tensor([3.0, 2.0, 4.0], dtype=torch.float64)
    sign = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)
    off = torch.tensor([-1.0, 2.0, 2.0], dtype=torch.float64)
    return (sign * (h6 - k).abs() + off).clamp(0, 1).float()


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


# ----- camera and rays ---------------------------------------------------------------------
def _camera(theta: torch.Tensor):
    """(m,) azimuths in radians -> origin, forward, right, up, each (m, 3)."""
    zero = torch.zeros_like(theta)
    origin = torch.stack([CAMERA_DISTANCE * theta.sin(), zero + CAMERA_HEIGHT,
                          CAMERA_DISTANCE * theta.cos()], -1)
    target = torch.tensor([0.0, TARGET_HEIGHT, 0.0])
    fwd = _normalize(target - origin)
    right = _normalize(torch.stack([-fwd[:, 2], zero, fwd[:, 0]], -1))  # fwd x world up
    up = torch.linalg.cross(right, fwd)
    return origin, fwd, right, up


def _rays(theta: torch.Tensor, size: int, ss: int):
    """Rays through ss x ss points of every pixel -> origin (m, 1, 3), dirs (m, P, 3).

    P = size * size * ss * ss, ordered (row, column, subsample) so that a mean over the
    last ss * ss entries of a (m, size, size, ss * ss) view gives pixel averages.
    """
    origin, fwd, right, up = _camera(theta)
    sub = (torch.arange(ss) + 0.5) / ss
    pos = ((torch.arange(size)[:, None] + sub[None, :]) / size).reshape(-1)  # (size * ss,)
    u = (pos * 2 - 1) * math.tan(FOV_Y / 2)
    v = (1 - pos * 2) * math.tan(FOV_Y / 2)
    # (size, ss, size, ss) grid -> (size, size, ss, ss) so subsamples are innermost
    uu = u.view(size, ss)[None, None, :, :].expand(size, ss, size, ss).permute(0, 2, 1, 3)
    vv = v.view(size, ss)[:, :, None, None].expand(size, ss, size, ss).permute(0, 2, 1, 3)
    uu, vv = uu.reshape(-1), vv.reshape(-1)  # (P,)
    dirs = fwd[:, None] + uu[None, :, None] * right[:, None] + vv[None, :, None] * up[:, None]
    return origin[:, None], _normalize(dirs), fwd


def _safe(d: torch.Tensor) -> torch.Tensor:
    return torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)


# ----- room: floor, four walls, open sky ---------------------------------------------------
def _cast_room(o: torch.Tensor, d: torch.Tensor):
    """Rays from inside the room -> kind (m, P) (0 sky, 1 floor, 2 wall), point, normal."""
    dx, dy, dz = _safe(d[..., 0]), d[..., 1], _safe(d[..., 2])
    tx = (dx.sign() * ROOM_HALF - o[..., 0]) / dx  # exit through x = +-R
    tz = (dz.sign() * ROOM_HALF - o[..., 2]) / dz
    t_side = torch.minimum(tx, tz)
    t_floor = torch.where(dy < 0, -o[..., 1] / _safe(dy), torch.full_like(dy, math.inf))
    floor = t_floor < t_side
    t = torch.where(floor, t_floor, t_side)
    point = o + t[..., None] * d
    wall = ~floor & (point[..., 1] < WALL_HEIGHT)
    kind = floor.to(torch.int8) + 2 * wall.to(torch.int8)
    zero = torch.zeros_like(dx)
    n_wall = torch.where((tx < tz)[..., None],
                         torch.stack([-dx.sign(), zero, zero], -1),
                         torch.stack([zero, zero, -dz.sign()], -1))
    normal = torch.where(floor[..., None], torch.tensor([0.0, 1.0, 0.0]), n_wall)
    return kind, point, normal


# ----- object: analytic ray intersections and signed distances -----------------------------
def _first_hit(*cands):
    """Candidates (t, normal) with t = inf for a miss -> the nearest (t, normal)."""
    t, n = cands[0]
    for tc, nc in cands[1:]:
        closer = tc < t
        t, n = torch.where(closer, tc, t), torch.where(closer[..., None], nc, n)
    return t, n


def _sphere_hit(o, d, centre, r):
    """centre (m, 1, 3), r (m, 1) -> t (m, P), normal (m, P, 3)."""
    oc = o - centre
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - r * r)
    t = -b - disc.clamp(min=0).sqrt()
    t = torch.where((disc >= 0) & (t > 0), t, torch.full_like(t, math.inf))
    p = o + t.nan_to_num(posinf=0)[..., None] * d
    return t, (p - centre) / r[..., None]


def _tube_hit(o, d, r, y0, y1):
    """Vertical open tube of radius r (m, 1) over heights y0..y1 (m, 1)."""
    a = _safe(d[..., 0] ** 2 + d[..., 2] ** 2)
    b = o[..., 0] * d[..., 0] + o[..., 2] * d[..., 2]
    c = o[..., 0] ** 2 + o[..., 2] ** 2 - r * r
    disc = b * b - a * c
    t = (-b - disc.clamp(min=0).sqrt()) / a
    y = o[..., 1] + t * d[..., 1]
    t = torch.where((disc >= 0) & (t > 0) & (y >= y0) & (y <= y1), t, torch.full_like(t, math.inf))
    p = o + t.nan_to_num(posinf=0)[..., None] * d
    n = torch.stack([p[..., 0], torch.zeros_like(t), p[..., 2]], -1) / r[..., None]
    return t, n


def _cap_hit(o, d, r, y):
    """Horizontal disc of radius r at height y, facing up."""
    t = (y - o[..., 1]) / _safe(d[..., 1])
    p = o + t[..., None] * d
    ok = (t > 0) & (p[..., 0] ** 2 + p[..., 2] ** 2 <= r * r)
    n = torch.tensor([0.0, 1.0, 0.0]).expand_as(p)
    return torch.where(ok, t, torch.full_like(t, math.inf)), n


def _box_hit(o, d, a, height=None):
    """Box of half-side a (m, 1) standing on the floor, a cube unless given a height."""
    lo = torch.stack([-a, torch.zeros_like(a), -a], -1)  # (m, 1, 3)
    hi = torch.stack([a, 2 * a if height is None else height, a], -1)
    inv = 1 / _safe(d)
    t1, t2 = (lo - o) * inv, (hi - o) * inv
    tn, tf = torch.minimum(t1, t2), torch.maximum(t1, t2)
    t_in, axis = tn.max(-1)
    ok = (t_in <= tf.min(-1).values) & (t_in > 0)
    n = -torch.nn.functional.one_hot(axis, 3).float() * d.sign()
    return torch.where(ok, t_in, torch.full_like(t_in, math.inf)), n


def _object_hit(o, d, shape: int, s):
    """Rays against one shape at scales s (m, 1) -> t (m, P), normal (m, P, 3)."""
    if shape == 0:
        return _box_hit(o, d, CUBE_HALF * s)
    if shape == 1:
        r, h = CYL_RADIUS * s, CYL_HEIGHT * s
        return _first_hit(_tube_hit(o, d, r, 0 * h, h), _cap_hit(o, d, r, h))
    if shape == 2:
        r = SPHERE_RADIUS * s
        return _sphere_hit(o, d, _on_axis(r), r)
    r, h = CAPSULE_RADIUS * s, CAPSULE_HEIGHT * s
    return _first_hit(_tube_hit(o, d, r, r, h - r),
                      _sphere_hit(o, d, _on_axis(r), r), _sphere_hit(o, d, _on_axis(h - r), r))


def _on_axis(y):
    """(m, 1) heights -> (m, 1, 3) points on the vertical axis through the room centre."""
    return torch.stack([torch.zeros_like(y), y, torch.zeros_like(y)], -1)


def _object_sdf(p, shape: int, s):
    """Signed distance from points p (m, Q, 3) to the shape at scales s (m, 1)."""
    x, y, z = p.unbind(-1)
    if shape == 0:
        a = CUBE_HALF * s
        q = torch.stack([x.abs() - a, (y - a).abs() - a, z.abs() - a], -1)
        return q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0)
    if shape == 1:
        r, h = CYL_RADIUS * s, CYL_HEIGHT * s
        q = torch.stack([torch.hypot(x, z) - r, (y - h / 2).abs() - h / 2], -1)
        return q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0)
    if shape == 2:
        r = SPHERE_RADIUS * s
        return torch.stack([x, y - r, z], -1).norm(dim=-1) - r
    r, h = CAPSULE_RADIUS * s, CAPSULE_HEIGHT * s
    return torch.stack([x, y - y.clamp(min=r, max=h - r), z], -1).norm(dim=-1) - r


def _object_top(shape: int, s):
    return s * (2 * CUBE_HALF, CYL_HEIGHT, 2 * SPHERE_RADIUS, CAPSULE_HEIGHT)[shape]


# ----- shading -----------------------------------------------------------------------------
def _light(m: int):
    """Lamp position and unit direction towards the sun, each (m, 1, 3)."""
    lamp = torch.tensor(LAMP).expand(m, 1, 3)
    return lamp, _normalize(torch.tensor(SUN)).expand(m, 1, 3)


def _intensity(surface: str, point, normal, fwd, lamp):
    """Lambert shading (m, P): ambient + headlight + top light + lamp; may exceed 1."""
    ambient, head, top, gain = GAINS[surface]
    i = ambient + head * (-(normal * fwd[:, None]).sum(-1)).clamp(min=0)
    if top:
        i = i + top * normal[..., 1].clamp(min=0)
    if gain:
        to_lamp = lamp - point
        dist2 = (to_lamp * to_lamp).sum(-1)
        cos = (normal * to_lamp).sum(-1).clamp(min=0) / dist2.sqrt()
        i = i + gain * cos / (1 + dist2 / LAMP_FALLOFF**2)
    return i


def _soft_shadow(point, shape: int, s, sun, steps: int = 16):
    """Floor points (m, Q, 3) -> (m, Q) sunlight visibility in [0, 1], soft at the edges.

    Samples the segment from each point towards the sun up to the object's top and
    keeps the smallest distance to the object relative to the distance travelled.
    """
    to_light = sun.expand_as(point)  # (m, Q, 3)
    t_max = (_object_top(shape, s) + 0.1) / to_light[..., 1]  # (m, Q)
    frac = (torch.arange(steps) + 0.5) / steps  # (K,)
    t = t_max[..., None] * frac  # (m, Q, K)
    q = point[..., None, :] + t[..., None] * to_light[..., None, :]  # (m, Q, K, 3)
    dist = _object_sdf(q.flatten(1, 2), shape, s).view_as(t)
    vis = (dist / (SHADOW_SOFTNESS * t + 0.05)).min(-1).values.clamp(0, 1)
    return vis * vis * (3 - 2 * vis)  # smoothstep


class _Layers:
    """Everything `render` composites, cast once per image size (colours on 0..255).

    Indices: room o * 10 + hue over 150 rows; config c = (o * 4 + shape) * 8 + scale over
    480; object colour c * 10 + hue over 4800. An image is
        (floor * shadow + wall_sky) * transmit + obj
    where transmit = 1 - object coverage and obj is premultiplied by coverage. Outside one
    window (the union of every object and shadow) this is the background alone, so `bg`
    holds it for each (o, floor hue, wall hue) as uint8 and the float work is windowed.
    """

    def __init__(self, size: int):
        ss, k, hw = SUPERSAMPLE, SUPERSAMPLE**2, (size, size)
        theta = torch.deg2rad(torch.tensor(ORIENTATIONS, dtype=torch.float32))  # (15,)
        lamp, sun = _light(len(theta))  # (15, 1, 3) each
        o, d, fwd = _rays(theta, size, ss)  # (15, 1, 3), (15, P, 3)
        kind, point, normal = _cast_room(o, d)
        # HSV(h, 1, 1) channels take few distinct values (0, 0.2, ..., 1 for these hues):
        # shade each level once, then gather the (hue, channel) table from the levels
        levels, level_of = torch.unique(hsv_rgb(torch.tensor(HUES)) * 255, return_inverse=True)

        def paint(mask, inten):  # (m, P) coverage and shading -> (m * 10, H, W, 3)
            c = (levels[:, None, None] * inten[None]).clamp_(max=255) * mask  # (V, m, P)
            c = c.view(len(levels), -1, *hw, k).mean(-1)  # (V, m, H, W)
            return c[level_of].permute(2, 0, 3, 4, 1).flatten(0, 1)

        floor = paint(kind == 1, _intensity("floor", point, normal, fwd, lamp))
        sky = (kind == 0).float().view(15, *hw, k).mean(-1)[..., None] * torch.tensor(SKY_RGB)
        wall_sky = paint(kind == 2, _intensity("wall", point, normal, fwd, lamp))
        wall_sky += sky.repeat_interleave(10, 0)

        # shadows are soft, so one floor point per pixel is enough; only floor points near
        # the object can be in its shadow
        kind1, floor_pt, _ = _cast_room(*_rays(theta, size, 1)[:2])  # (15, HW)
        near = ((kind1 == 1) & (floor_pt[..., [0, 2]].norm(dim=-1) < SHADOW_REACH)).any(0)
        # only whole pixels whose rays pass near the largest object need object rays
        big = torch.tensor([[max(SCALES)]])
        half = big * max(CUBE_HALF * 2**0.5, CYL_RADIUS, SPHERE_RADIUS, CAPSULE_RADIUS) + 0.1
        top = max(_object_top(shape, big) for shape in range(len(SHAPES))) + 0.1
        bound = torch.isfinite(_box_hit(o, d, half, top)[0]).view(15, -1, k)
        near_obj = bound.any(-1).any(0).repeat_interleave(k)  # (P',) of P
        n_scale = len(SCALES)
        scale = torch.tensor(SCALES, dtype=torch.float32).repeat(15)[:, None]  # (120, 1)
        rep = functools.partial(torch.repeat_interleave, repeats=n_scale, dim=0)
        m = 15 * n_scale
        shadow, transmit, obj = [], [], []
        for shape in range(len(SHAPES)):
            vis = torch.ones(m, size * size)
            vis[:, near] = 1 - SHADOW_STRENGTH * (
                1 - _soft_shadow(rep(floor_pt[:, near]), shape, scale, rep(sun)))
            t, n = _object_hit(rep(o), rep(d[:, near_obj]), shape, scale)  # (120, P')
            p = rep(o) + t.nan_to_num(posinf=0)[..., None] * rep(d[:, near_obj])
            hit, inten = torch.zeros(m, d.shape[1]), torch.zeros(m, d.shape[1])
            hit[:, near_obj] = torch.isfinite(t).float()
            inten[:, near_obj] = _intensity("object", p, n, rep(fwd), rep(lamp))
            shadow.append(vis.view(15, n_scale, *hw))
            transmit.append(1 - hit.view(15, n_scale, *hw, k).mean(-1))
            obj.append(paint(hit, inten).view(15, n_scale, 10, *hw, 3))
        # stack as (orientation, shape, scale[, hue]) to match the index arithmetic
        shadow = torch.stack(shadow, 1).reshape(-1, *hw, 1)
        transmit = torch.stack(transmit, 1).reshape(-1, *hw, 1)
        obj = torch.stack(obj, 1).reshape(-1, *hw, 3)

        bg = floor.view(15, 10, 1, *hw, 3) + wall_sky.view(15, 1, 10, *hw, 3)
        self.bg = _to_uint8(bg.reshape(-1, *hw, 3))  # (1500, H, W, 3) by (o, floor, wall)
        touched = ((transmit < 1) | (shadow < 1)).any(0)[..., 0]  # (H, W)
        rows, cols = touched.any(1).nonzero()[:, 0], touched.any(0).nonzero()[:, 0]
        self.window = (slice(int(rows.min()), int(rows.max()) + 1),
                       slice(int(cols.min()), int(cols.max()) + 1))

        def win(x):
            return x[:, self.window[0], self.window[1]].contiguous()

        self.floor, self.wall_sky = win(floor), win(wall_sky)
        self.lit, self.transmit = win(shadow * transmit), win(transmit)
        self.obj = _to_uint8(win(obj))


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.add(0.5).clamp_(0, 255).to(torch.uint8)


@functools.lru_cache(maxsize=4)
def _layers(size: int) -> _Layers:
    return _Layers(size)


def render(factors, size: int = 64) -> torch.Tensor:
    """(n, 6) factor value indices -> torch.uint8 (n, size, size, 3) images.

    Deterministic: the same factors always give the same pixels. Works in chunks of
    `CHUNK` images so memory stays bounded for any n.
    """
    f = factors if torch.is_tensor(factors) else torch.from_numpy(np.asarray(factors))
    f = f.to(torch.long).reshape(-1, len(FACTOR_SIZES))
    if f.numel() and ((f < 0).any() or (f >= torch.tensor(FACTOR_SIZES)).any()):
        raise ValueError(f"factor value indices out of range; sizes are {FACTOR_SIZES}")
    if int(size) != size or size < 4:
        raise ValueError(f"image size must be an integer of at least 4, got {size!r}")
    lay = _layers(int(size))
    rows, cols = lay.window
    out = torch.empty((len(f), size, size, 3), dtype=torch.uint8)
    for start in range(0, len(f), CHUNK):
        floor_hue, wall_hue, object_hue, scale, shape, orientation = f[start:start + CHUNK].T
        config = (orientation * 4 + shape) * 8 + scale
        chunk = out[start:start + CHUNK]
        torch.index_select(lay.bg, 0, (orientation * 10 + floor_hue) * 10 + wall_hue, out=chunk)
        img = lay.floor.index_select(0, orientation * 10 + floor_hue)  # (c, h, w, 3)
        img.mul_(lay.lit.index_select(0, config))
        img.addcmul_(lay.wall_sky.index_select(0, orientation * 10 + wall_hue),
                     lay.transmit.index_select(0, config))
        img.add_(lay.obj.index_select(0, config * 10 + object_hue))
        chunk[:, rows, cols] = img.add_(0.5).clamp_(max=255)
    return out
