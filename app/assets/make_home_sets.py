"""Write `home_sets.npz`, the two example sets the Home page shows (run from the repo root).

    python app/assets/make_home_sets.py

Two sets of six images with wall hue and floor hue inactive, drawn by the real set sampler
(`acc_core.sets.SetSampler`) and rendered by the procedural Shapes3D renderer at 64x64.
Shipping them lets Home open without loading the renderer; `tests/test_app.py` checks that
the file equals a fresh draw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "home_sets.npz"
INACTIVE = ("wall_hue", "floor_hue")


def draw(set_size: int = 6, seed: int = 3) -> dict:
    from acc_core import data
    from acc_core.sets import SetSampler

    ds = data.load("shapes3d-procedural")
    rng = np.random.default_rng(seed)
    a = SetSampler(ds, INACTIVE, set_size).sample(rng, 1)[0]
    b = SetSampler(ds, INACTIVE, set_size).sample(rng, 1)[0]
    idx = np.stack([a, b])  # (2, set_size)
    labels = np.array([[ds.value_labels[ds.factor_index(n)][int(v)]
                        for n, v in zip(ds.factor_names, ds.factors(s)[0])] for s in (a, b)])
    return {
        "indices": idx,
        "images": np.stack([ds.images(a), ds.images(b)]),  # (2, set_size, 64, 64, 3) uint8
        "factors": np.stack([ds.factors(a), ds.factors(b)]),  # (2, set_size, 6)
        "factor_names": np.array(ds.factor_names),
        "first_labels": labels,  # (2, 6) value labels of each set's first image
    }


def main() -> None:
    np.savez_compressed(OUT, **draw())
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
