"""``moodspace readings-experiment``: which VA reading of one bundle's weights reads real recordings best.

Candidates, each read per window and averaged over the curve as the service does: the grid reading (retrieval
over the VA grid), each categorical head's expected class placement (``Embedder.read_classes``), and means of
them. Scored on the val and test splits of categorical sets: valence and arousal AUC (positive sides as in
``training.classify.positive_classes``) and, on quadrant sets, the accuracy of the reading's quadrant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.bundle import load_bundle
from models.default import resolve_bundle
from models.inference import Embedder
from models.taxonomy import TAXONOMIES
from training.classify import auc, positive_classes
from training.real_audio import split_features


def quadrant_of(va: np.ndarray) -> np.ndarray:
    """(N, 2) -> (N,) quadrant indices (Q1 0 ... Q4 3); 0 counts as positive."""
    return np.where(va[:, 0] >= 0, np.where(va[:, 1] >= 0, 0, 3), np.where(va[:, 1] >= 0, 1, 2))


def candidates(embedder: Embedder, features: list[np.ndarray]) -> dict[str, np.ndarray]:
    """reading name -> (N, 2) overall VA of each clip."""
    tracks = [embedder.read_track(f) for f in features]
    windows = [embedder.window_frames(f)[0] for f in features]
    out = {"grid": np.stack([embedder.read_va(t.windows).mean.mean(axis=0) for t in tracks])}
    for taxonomy in embedder.config.taxonomies:
        out[f"{taxonomy} head"] = np.stack([embedder.read_classes(w, taxonomy).mean.mean(axis=0) for w in windows])
    heads = [out[f"{t} head"] for t in embedder.config.taxonomies]
    if len(heads) > 1:
        out["heads"] = np.mean(heads, axis=0)
        out["grid and heads"] = np.mean([out["grid"], *heads], axis=0)
    if "quadrant head" in out:
        out["grid and quadrant head"] = (out["grid"] + out["quadrant head"]) / 2
    return out


def readings_experiment(bundle: Path, manifests: list[Path], *, workers: int | None = None) -> dict:
    """set -> split -> reading -> {valence_auc, arousal_auc, quadrant_accuracy (quadrant sets)}."""
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(bundle)))
    results: dict = {}
    for manifest in manifests:
        for split in ("val", "test"):
            taxonomy, pairs = split_features(embedder, manifest, split, workers=workers)
            labels = np.array([TAXONOMIES[taxonomy].index(c.labels[taxonomy]) for c, _ in pairs])
            sides = [np.isin(labels, positive_classes(taxonomy, axis)) for axis in (0, 1)]
            for name, va in candidates(embedder, [f for _, f in pairs]).items():
                cell = {"valence_auc": auc(va[:, 0], sides[0]), "arousal_auc": auc(va[:, 1], sides[1])}
                if taxonomy == "quadrant":
                    cell["quadrant_accuracy"] = float(np.mean(quadrant_of(va) == labels))
                results.setdefault(manifest.stem, {}).setdefault(split, {})[name] = cell
    return results


def markdown(results: dict) -> str:
    lines = ["| set | split | reading | valence AUC | arousal AUC | quadrant acc. |", "|---|---|---|---|---|---|"]
    for name, by_split in results.items():
        for split, by_reading in by_split.items():
            for reading, m in by_reading.items():
                accuracy = f"{m['quadrant_accuracy']:.3f}" if "quadrant_accuracy" in m else ""
                lines.append(f"| {name} | {split} | {reading} | {m['valence_auc']:.3f} | {m['arousal_auc']:.3f} | "
                             f"{accuracy} |")
    return "\n".join(lines) + "\n"
