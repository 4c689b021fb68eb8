"""Figure: the real Shapes3D traversal frames above procedural renders of the same factors.

Reads shared/reference/shapes3d/traversal_frames.png (the real dataset's own animation,
53 frames in reading order: orientation first, then shape, scale, object hue, wall hue and
floor hue, each traversal starting from the previous one's last frame). The geometric
factors follow that order; the three hues are read off each frame's colours (floor at the
bottom left, wall at the upper left, object at the centre). Writes
docs/figures/shapes3d_procedural_vs_real.png and prints JSON with the factors used and the
mean absolute pixel difference, real vs procedural, on the 0..255 scale (and, for
scale, against renders of random factors).

    python benchmarks/make_render_figure.py
"""

from __future__ import annotations

import colorsys
import json

import numpy as np
from PIL import Image, ImageDraw

from acc_core.data.shapes3d_render import FACTOR_SIZES, render
from acc_core.paths import REPO_ROOT

REFERENCE = REPO_ROOT.parent / "shared" / "reference" / "shapes3d" / "traversal_frames.png"
OUT = REPO_ROOT / "docs" / "figures" / "shapes3d_procedural_vs_real.png"
CELL = 113  # frame pitch in traversal_frames.png (1 px grey separators)
ROW_STARTS = (0, 113, 227, 340, 453, 567, 680)
N_FRAMES, PER_ROW, TILE, GAP, LABEL_W = 53, 9, 128, 4, 92


def reference_frames() -> np.ndarray:
    """The 53 frames, cropped inside their separators and area-resized to 64x64."""
    sheet = Image.open(REFERENCE).convert("RGB")
    frames = []
    for k in range(N_FRAMES):
        r, c = divmod(k, 8)
        top, left = ROW_STARTS[r] + 1, c * CELL + 1
        box = (left, top, left + CELL - 1, top + CELL - 1)
        frames.append(np.asarray(sheet.crop(box).resize((64, 64), Image.BOX)))
    return np.stack(frames)


def hue_index(region: np.ndarray) -> int:
    """Mean colour of a (h, w, 3) region -> nearest of the ten hue values 0.0..0.9."""
    h, _, _ = colorsys.rgb_to_hsv(*(region.reshape(-1, 3).mean(0) / 255))
    return int(round(h * 10)) % 10


def traversal_factors(frames: np.ndarray) -> np.ndarray:
    """(53, 64, 64, 3) frames -> (53, 6) factor value indices."""
    rows = []
    for k, im in enumerate(frames):
        orientation = min(k, 14)
        shape = 0 if k < 15 else min(k - 14, 3)  # cube, then cylinder, sphere, capsule
        scale = min(max(0, k - 17), 7)  # the capsule grows from frame 17 to 24
        rows.append([hue_index(im[58:63, 2:6]), hue_index(im[20:26, 2:8]),
                     hue_index(im[44:47, 29:33]), scale, shape, orientation])
    return np.asarray(rows)


def sheet(real: np.ndarray, ours: np.ndarray) -> Image.Image:
    blocks = -(-len(real) // PER_ROW)
    block_h = 2 * (TILE + GAP) + 3 * GAP
    fig = Image.new("RGB", (LABEL_W + PER_ROW * (TILE + GAP), blocks * block_h), "white")
    draw = ImageDraw.Draw(fig)
    for b in range(blocks):
        y0 = b * block_h
        for j, name in enumerate(("real", "procedural")):
            draw.text((6, y0 + j * (TILE + GAP) + TILE // 2 - 6), name, fill="black")
        for i in range(PER_ROW):
            k = b * PER_ROW + i
            if k >= len(real):
                break
            x = LABEL_W + i * (TILE + GAP)
            for j, img in enumerate((real[k], ours[k])):
                tile = Image.fromarray(img).resize((TILE, TILE), Image.NEAREST)
                fig.paste(tile, (x, y0 + j * (TILE + GAP)))
    return fig


def main() -> dict:
    real = reference_frames()
    factors = traversal_factors(real)
    ours = render(factors, 64).numpy()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    sheet(real, ours).save(OUT, optimize=True)
    diff = np.abs(real.astype(int) - ours.astype(int)).mean(axis=(1, 2, 3))
    # baseline for scale: the same frames against renders of random factors
    rng = np.random.default_rng(0)
    random_factors = np.stack([rng.integers(0, n, len(real)) for n in FACTOR_SIZES], 1)
    chance = np.abs(real.astype(int) - render(random_factors, 64).numpy().astype(int)).mean()
    return {
        "figure": str(OUT.relative_to(REPO_ROOT)),
        "bytes": OUT.stat().st_size,
        "mean_abs_pixel_diff": round(float(diff.mean()), 1),
        "baseline_random_factors_mean_abs_pixel_diff": round(float(chance), 1),
        "worst_frame": int(diff.argmax()),
        "factors (floor_hue, wall_hue, object_hue, scale, shape, orientation)":
            [" ".join(map(str, f)) for f in factors.tolist()],
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=1))
