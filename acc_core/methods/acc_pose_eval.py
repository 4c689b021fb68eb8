"""The pose evaluation of an `acc_pose` run (the ACC paper section 4.3, Tables 1-2, Figure 5),
computed once when training ends and cached in the run folder like the other methods' own
evaluations.

Per category: the 1,800 synthetic images of the dictionary instances (0-9, every viewpoint)
with their ground-truth poses, and the 360 real-domain images of the held-out instances
(10-11) as queries. Table 1: each query takes the pose of its nearest dictionary embedding
(cosine, or the similarity the run trained with); Table 2: the spherical-regression head's pose, when the run trained one. The same
lookup with the untrained network (the run's own initial weights) is the baseline row.
`lookup_synthetic` looks up the synthetic images of the held-out instances instead (the ABC
supplement Table S1: pose within the synthetic domain), which separates what the embedding
learned about pose from what it transfers across the domain gap.

Scores: {"lookup": {cat: scores}, "untrained": {cat: scores}, "lookup_synthetic": {cat: scores},
"regression": {cat: scores}},
each scores dict from `acc_core.analysis.pose.pose_scores`. Arrays (in "images", as the
run folder stores them): `<cat>_query` (Q,) query image indices, `<cat>_dictionary` (N,),
`<cat>_nn` / `<cat>_nn_untrained` (Q, 4) nearest dictionary positions, and `<cat>_err`,
`<cat>_err_untrained`, `<cat>_err_regression` (Q,) errors in degrees.
"""

from __future__ import annotations

import numpy as np
import torch

from acc_core.analysis import pose as pose_metrics

NEIGHBOURS = 4  # Figure 5 shows four nearest neighbours per query


def _codes(model, config, dataset, idx, device) -> np.ndarray:
    from acc_core.train import encode_images

    return encode_images(model, config, dataset.images(idx), device)


@torch.no_grad()
def _regressed_poses(model, config, dataset, idx, device) -> np.ndarray:
    """(Q,) image indices -> (Q, 2) poses from the spherical-regression head."""
    from acc_core.spherical_regression import decode
    from acc_core.train import to_tensor

    out = []
    for start in range(0, len(idx), 256):
        x = to_tensor(dataset.images(idx[start:start + 256]), config.data.image_size, device)
        mag, quad = model.regression(model.encoder(x.contiguous(memory_format=torch.channels_last)))
        out.append(decode(mag.float(), quad.float()).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def untrained_model(config, dataset, device):
    """The run's network at step 0: the same seed before building, as the training loop."""
    from acc_core.train import build_model

    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(config.train.seed)
        model = build_model(config, dataset)
    finally:
        torch.random.set_rng_state(state)
    return model.to(device).eval()


def split(dataset, cat: str) -> tuple[np.ndarray, np.ndarray]:
    """Table 1's images of one category: (the synthetic dictionary of the training instances,
    the real-domain queries of the held-out ones), sorted image indices."""
    from acc_core.data.pose_procedural import DICTIONARY_INSTANCES, TEST_INSTANCES

    return (dataset.select(category=cat, instances=DICTIONARY_INSTANCES, domain="synthetic"),
            dataset.select(category=cat, instances=TEST_INSTANCES, domain="real"))


def evaluate(model, config, dataset, device, *, untrained=None) -> dict:
    from acc_core.data.pose_procedural import TEST_INSTANCES

    untrained = untrained if untrained is not None else untrained_model(config, dataset, device)
    p = config.params
    similarity = config.train.similarity  # the lookup measures what the loss measured (cosine in the presets)
    scores = {"lookup": {}, "untrained": {}, "lookup_synthetic": {}}
    if p.regression_weight > 0:
        scores["regression"] = {}
    arrays = {}
    for cat in p.categories:
        dict_idx, query_idx = split(dataset, cat)
        dict_pose, true = dataset.poses(dict_idx), dataset.poses(query_idx)
        arrays[f"{cat}_query"], arrays[f"{cat}_dictionary"] = query_idx, dict_idx
        for key, net, suffix in (("lookup", model, ""), ("untrained", untrained, "_untrained")):
            q, d = _codes(net, config, dataset, query_idx, device), _codes(net, config, dataset, dict_idx, device)
            if key == "lookup":
                d_trained = d  # (N, E) the trained network's dictionary codes
            pred, nn_idx = pose_metrics.nearest_neighbour_poses(q, d, dict_pose, k=NEIGHBOURS,
                                                                similarity=similarity)
            scores[key][cat] = pose_metrics.pose_scores(pred, true)
            arrays[f"{cat}_nn{suffix}"] = nn_idx.astype(np.int32)
            arrays[f"{cat}_err{suffix}"] = pose_metrics.angular_error(pred, true).astype(np.float32)
        syn_idx = dataset.select(category=cat, instances=TEST_INSTANCES, domain="synthetic")
        q = _codes(model, config, dataset, syn_idx, device)
        pred, _ = pose_metrics.nearest_neighbour_poses(q, d_trained, dict_pose, similarity=similarity)
        scores["lookup_synthetic"][cat] = pose_metrics.pose_scores(pred, dataset.poses(syn_idx))
        if p.regression_weight > 0:
            pred = _regressed_poses(model, config, dataset, query_idx, device)
            scores["regression"][cat] = pose_metrics.pose_scores(pred, true)
            arrays[f"{cat}_err_regression"] = pose_metrics.angular_error(pred, true).astype(np.float32)
    return {"scores": scores, "images": arrays}


@torch.no_grad()
def lookup_scores(model, config, dataset, device, *, representation=None,
                  similarity: str = "cosine", categories=("car", "chair")) -> dict:
    """Table 1's lookup with any method's network (e.g. the weakly supervised VAEs): the
    real-domain images of the held-out instances against the synthetic dictionary, encoded
    with `representation` of the run's method. -> {category: pose_scores}."""
    from acc_core.train import encode_images

    out = {}
    for cat in categories:
        dict_idx, query_idx = split(dataset, cat)
        d = encode_images(model, config, dataset.images(dict_idx), device, representation)
        q = encode_images(model, config, dataset.images(query_idx), device, representation)
        pred, _ = pose_metrics.nearest_neighbour_poses(q, d, dataset.poses(dict_idx),
                                                       similarity=similarity)
        out[cat] = pose_metrics.pose_scores(pred, dataset.poses(query_idx))
    return out
