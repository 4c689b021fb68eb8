"""What a method declares, so that one training loop, store, worker, CLI, app and analysis
serve every method (DESIGN.md, "Layout": methods/).

A method is a plain object registered by name in `acc_core.methods.METHODS`. It declares

- `supervision`: which weak supervision it consumes, derived from the one scenario the user
  states (inactive factors of set A and set B, or B unconstrained): "sets" (ACC, ML-VAE
  groups), "classes" (LORD: class = the combination of the inactive factors' values),
  "pairs" (Ada-GVAE: two images sharing the inactive factors), "none" (beta-VAE, InfoNCE).
- `params`: a frozen dataclass of its own hyperparameters (part of the run's identity), or
  None when `TrainConfig` already holds all of them (ACC, the InfoNCE baseline);
- `presets`: `quick` (at most 5 minutes on 2 CPU cores) and `paper` (the publication);
- `build`: all its networks as ONE nn.Module, whose state dict is the checkpoint's `model`;
- `batcher`: a function (rng, step) -> batch of dataset indices (+ extras), from its sampler;
- `loss`: (model, batch, config, generator, step) -> (scalar loss, {name: float} to log);
- `representations`: the codes it exposes for analysis, by name (the first is the default),
  and `encode` (model, images, name) -> (B, D) codes.

The training loop never looks inside: it draws `batcher(rng, step)`, loads the images of
`batch["indices"]` (any shape) into `batch["x"]` (shape `indices.shape + (C, H, W)`), and calls
`loss`; backward and the optimiser step are the loop's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

Batch = dict  # {"indices": int64 ndarray (any shape), "x": float tensor, extras...}


class Method:
    """Defaults shared by the methods; each method module subclasses this once and
    registers one instance. No training logic lives here."""

    name: str = ""
    title: str = ""  # one line for pickers: "ACC (affinity cycle consistency)"
    paper: str = ""  # where it comes from: "seed 000, section 3"
    supervision: str = "sets"  # sets | classes | pairs | none
    params: type | None = None  # frozen dataclass of the method's own hyperparameters
    representations: tuple[str, ...] = ("embedding",)
    uses_similarity: bool = False  # whether TrainConfig.similarity/temperature mean anything

    # ----- the scenario -------------------------------------------------------------------
    def supervision_text(self, config) -> str:
        """One sentence for the Train page: what supervision this run receives."""
        raise NotImplementedError

    def check(self, config, dataset) -> None:
        """Raise ValueError (one sentence: why, and what to do) if the scenario cannot be
        taken by this method. Called before anything is queued."""

    def validate(self, config) -> None:
        """Config-only checks of the method's own hyperparameters (ValueError)."""

    def presets(self, name: str, source: str):
        """`quick` or `paper` RunConfig for `source` (the scenario may be replaced after)."""
        raise NotImplementedError

    # ----- training -----------------------------------------------------------------------
    def build(self, config, dataset) -> torch.nn.Module:
        raise NotImplementedError

    def optimizer(self, model: torch.nn.Module, config) -> torch.optim.Optimizer:
        """Adam(0.9, 0.999) at the run's lr, as the ABC supplement S8; methods may add groups."""
        return torch.optim.Adam(model.parameters(), lr=config.train.lr, betas=(0.9, 0.999))

    def batcher(self, config, dataset) -> Callable[[np.random.Generator, int], Batch]:
        raise NotImplementedError

    def loss(self, model, batch: Batch, config, gen: torch.Generator, step: int):
        """-> (scalar loss tensor, {name: float} extra terms for the log)."""
        raise NotImplementedError

    # ----- analysis -------------------------------------------------------------------------
    def encode(self, model, x: torch.Tensor, representation: str) -> torch.Tensor:
        """(B, C, H, W) float images in [0, 1] -> (B, D) codes of `representation`."""
        raise NotImplementedError

    def length_scale(self, config, representation: str) -> float | None:
        """The loss's length scale for this code, or None (the noise sweep is then drawn
        against sigma relative to the code's RMS radius)."""
        return None

    def retrieval_similarity(self, config, representation: str) -> str:
        """The similarity nearest neighbours use for this code."""
        return "l2sq"

    def unit_vectors(self, config, representation: str) -> bool:
        """Whether the analyses should see unit rows (cosine-similarity codes)."""
        return False

    def evaluate_model(self, model, config, dataset, device) -> dict:
        """Method-specific evaluation that needs the networks (LORD's content transfer, the
        VAEs' latent traversals), computed once by the training loop when a run ends, so a
        shipped run without weights still shows it. Returns {"scores": {name: float or
        nested dict of floats}, "images": {name: uint8 array (..., H, W, C)}}; both are cached
        in the run folder (`acc_core.rundir.write_model_eval`)."""
        return {"scores": {}, "images": {}}

    def check_representation(self, representation: str | None) -> str:
        if representation is None:
            return self.representations[0]
        if representation not in self.representations:
            raise ValueError(f"method {self.name!r} has no representation {representation!r}; "
                             f"valid: {', '.join(self.representations)}")
        return representation


@dataclass(frozen=True)
class Sentence:
    """Helper for supervision texts: factor lists in words."""

    @staticmethod
    def factors(names) -> str:
        names = list(names)
        if not names:
            return "no factor"
        if len(names) == 1:
            return names[0].replace("_", " ")
        return ", ".join(n.replace("_", " ") for n in names[:-1]) + " and " + names[-1].replace("_", " ")
