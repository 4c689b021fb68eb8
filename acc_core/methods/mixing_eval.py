"""The mixing autoencoder's own evaluation (seed 003, section 4): computed once when a run
ends (`Method.evaluate_model`) and cached in its folder, so shipped runs without weights show it.

- Table 2's protocol: nearest-neighbour mean average precision of every chunk for every
  factor over a fixed sample of images (`map_chunk`, an 8 x K matrix), the best chunk's value
  per factor (`map_best_chunk`; its index is the argmax of the matrix's column), the whole
  code's (`map_code`: how Table 2 scores the plain autoencoder, "one chunk of the same
  dimensionality as the full feature"), and a random ranking's (`map_chance`, the "Random" row).
- Figures 2, 3 and 5: chunk-swap grids. Grid i (of 8) has image A down the left column and
  image B along the top row; cell (A, B) decodes A's feature with chunk i taken from B
  (`chunk_swap`, at 16 levels per channel for display, with the donors once in `chunk_swap_a`
  / `_b`; `swap_grid` assembles one).
"""

from __future__ import annotations

import numpy as np
import torch

from acc_core.analysis.nn_map import chance_map, chunk_factor_map, mean_average_precision

EVAL_IMAGES = 1000  # images ranked per query: as the shipped runs' probe subsets


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(..., C, H, W) in [0, 1] -> uint8 (..., H, W, C)."""
    return (x.float().clamp(0, 1) * 255).round().to(torch.uint8).movedim(-3, -1).cpu().numpy()


def display_levels(img: np.ndarray, levels: int = 16) -> np.ndarray:
    """uint8 images kept for display only, at `levels` values per channel (the centre of each
    bin): decoded images are noisy, and so they compress 3x better (shipped runs stay small);
    side by side at the page's sizes, 16 levels look like 32."""
    step = 256 // levels
    return (img // step * step + step // 2).astype(np.uint8)


def _eval_dataset(config, dataset):
    from acc_core import data as data_sources

    split = data_sources.eval_split(config.data)
    return (dataset if split == "train" else data_sources.load_for(config.data, split)), split


@torch.no_grad()
def _encode(model, x: torch.Tensor, chunk: int = 250) -> torch.Tensor:
    return torch.cat([model.encoder(x[i:i + chunk]).float() for i in range(0, len(x), chunk)])


@torch.no_grad()
def swap_cells(model, xa: torch.Tensor, xb: torch.Tensor, n_chunks: int, chunk_size: int) -> np.ndarray:
    """xa (R, C, H, W) images A, xb (Q, C, H, W) images B -> uint8 (n_chunks, R, Q, H, W, C):
    cell (i, a, b) decodes A's feature with chunk i taken from B's."""
    fa, fb = model.encoder(xa).float(), model.encoder(xb).float()  # (R, F), (Q, F)
    R, Q = len(xa), len(xb)
    out = []
    for i in range(n_chunks):
        f = fa[:, None, :].repeat(1, Q, 1)  # (R, Q, F): A's feature in every cell
        s = slice(i * chunk_size, (i + 1) * chunk_size)
        f[:, :, s] = fb[None, :, s]  # chunk i from B
        cells = _to_uint8(model.decoder(f.reshape(R * Q, -1)))  # (R*Q, H, W, C)
        out.append(cells.reshape(R, Q, *cells.shape[1:]))
    return np.stack(out)


def swap_grid(images: dict, i: int) -> np.ndarray:
    """Chunk i's grid from the cached images, (R + 1, Q + 1, H, W, C): A down column 0, B along
    row 0, a blank corner (the cells and the donors are cached apart, the donors once)."""
    cells, a, b = images["chunk_swap"][i], images["chunk_swap_a"], images["chunk_swap_b"]
    R, Q = cells.shape[:2]
    grid = np.zeros((R + 1, Q + 1, *cells.shape[2:]), np.uint8)
    grid[1:, 1:], grid[1:, 0], grid[0, 1:] = cells, a, b
    return grid


def evaluate(model, config, dataset, device) -> dict:
    """{"scores": {...}, "images": {"chunk_swap": (8, R + 1, Q + 1, H, W, C)}}."""
    from acc_core.methods.mixing import CHUNKS, EVAL_SEED, SWAP_DONORS
    from acc_core.train import to_tensor

    ds, _ = _eval_dataset(config, dataset)
    rng = np.random.default_rng(EVAL_SEED)
    idx = np.sort(rng.choice(len(ds), size=min(EVAL_IMAGES, len(ds)), replace=False))
    x = to_tensor(ds.images(idx), config.data.image_size, device)
    labels = ds.factors(idx)  # (N, K)
    codes = _encode(model, x)  # (N, 8d)
    with torch.no_grad():
        rec = torch.cat([model.decoder(codes[i:i + 250]) for i in range(0, len(codes), 250)])
        rec_mse = float((rec.float() - x).pow(2).mean())
    codes = codes.cpu().numpy()
    names = list(ds.factor_names)
    per_chunk = chunk_factor_map(codes, labels, CHUNKS)  # (8, K)
    whole, chance = mean_average_precision(codes, labels), chance_map(labels)
    best = per_chunk.max(axis=0)
    scores = {
        "map_chunk": {f"chunk{i}": dict(zip(names, map(float, row))) for i, row in enumerate(per_chunk)},
        "map_best_chunk": dict(zip(names, map(float, best))),
        "map_code": dict(zip(names, map(float, whole))),
        "map_chance": dict(zip(names, map(float, chance))),
        "map_best_chunk_mean": float(best.mean()),
        "map_code_mean": float(whole.mean()),
        "map_chance_mean": float(chance.mean()),
        "reconstruction_mse": rec_mse,
        "eval_images": float(len(idx)),
    }
    donors = rng.choice(len(ds), size=min(2 * SWAP_DONORS, len(ds)), replace=False)
    xd = to_tensor(ds.images(donors), config.data.image_size, device)
    xa, xb = xd[:len(xd) // 2], xd[len(xd) // 2:]
    return {"scores": scores, "images": {
        "chunk_swap": display_levels(swap_cells(model, xa, xb, CHUNKS, model.chunk_size)),  # (8, R, Q, H, W, C)
        "chunk_swap_a": _to_uint8(xa), "chunk_swap_b": _to_uint8(xb)}}


def best_chunks(scores: dict) -> dict[str, str]:
    """factor -> the name of its best chunk, from a cached `map_chunk` matrix."""
    m = scores["map_chunk"]
    factors = list(next(iter(m.values())))
    return {f: max(m, key=lambda c: m[c][f]) for f in factors}


__all__ = ["best_chunks", "display_levels", "evaluate", "swap_cells", "swap_grid"]
