"""``moodspace readings-experiment``: which VA reading of one bundle's weights reads real recordings best.

Candidates, each read per window and averaged over the curve as the service does: the grid reading (retrieval
over the VA grid), each categorical head's expected class placement (``Embedder.read_classes``), means of them,
and the bundle's own reading (``Embedder.read_track``). Scored on the val and test splits of categorical sets:
valence and arousal AUC (positive sides as in ``training.classify.positive_classes``) and, on quadrant sets, the
accuracy of the reading's quadrant. ``share_sweep`` scores the grid reading mixed into the quadrant head's axis by
axis (``ModelConfig.grid_share``) over a grid of shares; val chooses.
"""

from __future__ import annotations

import itertools
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
    out["the bundle's reading"] = np.stack([t.mean for t in tracks])
    return out


def _scores(va: np.ndarray, taxonomy: str, labels: np.ndarray) -> dict[str, float]:
    sides = [np.isin(labels, positive_classes(taxonomy, axis)) for axis in (0, 1)]
    cell = {"valence_auc": auc(va[:, 0], sides[0]), "arousal_auc": auc(va[:, 1], sides[1])}
    if taxonomy == "quadrant":
        cell["quadrant_accuracy"] = float(np.mean(quadrant_of(va) == labels))
    return cell


def _read(bundle: Path, manifests: list[Path], workers: int | None) -> dict:
    """set -> split -> (taxonomy, labels, candidate readings)."""
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(bundle)))
    read: dict = {}
    for manifest in manifests:
        for split in ("val", "test"):
            taxonomy, pairs = split_features(embedder, manifest, split, workers=workers)
            labels = np.array([TAXONOMIES[taxonomy].index(c.labels[taxonomy]) for c, _ in pairs])
            read.setdefault(manifest.stem, {})[split] = (taxonomy, labels,
                                                         candidates(embedder, [f for _, f in pairs]))
    return read


def readings_experiment(bundle: Path, manifests: list[Path], *, workers: int | None = None) -> dict:
    """{"readings": set -> split -> reading -> {valence_auc, arousal_auc, quadrant_accuracy (quadrant sets)},
    "shares": ``share_sweep``'s rows}."""
    read = _read(bundle, manifests, workers)
    readings = {name: {split: {reading: _scores(va, taxonomy, labels) for reading, va in found.items()}
                       for split, (taxonomy, labels, found) in by_split.items()}
                for name, by_split in read.items()}
    return {"readings": readings, "shares": share_sweep(read)}


SHARES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0)


def share_sweep(read: dict, shares: tuple[float, ...] = SHARES) -> list[dict]:
    """For each (valence, arousal) share of the grid reading mixed into the quadrant head's placement: the scores
    on every set and split, and the sum of the val figures; best val sum first. Empty without a quadrant head."""
    if not all("quadrant head" in found for by_split in read.values() for _, _, found in by_split.values()):
        return []
    rows = []
    for share in itertools.product(shares, shares):
        w = np.array(share)
        scores = {name: {split: _scores((1 - w) * found["quadrant head"] + w * found["grid"], taxonomy, labels)
                         for split, (taxonomy, labels, found) in by_split.items()}
                  for name, by_split in read.items()}
        val = sum(sum(by_split["val"].values()) for by_split in scores.values() if "val" in by_split)
        rows.append({"grid_share": share, "val_sum": val, "scores": scores})
    return sorted(rows, key=lambda row: -row["val_sum"])


def _cells(m: dict) -> str:
    accuracy = f"{m['quadrant_accuracy']:.3f}" if "quadrant_accuracy" in m else ""
    return f"{m['valence_auc']:.3f} | {m['arousal_auc']:.3f} | {accuracy}"


def markdown(results: dict, *, top: int = 8) -> str:
    lines = ["| set | split | reading | valence AUC | arousal AUC | quadrant acc. |", "|---|---|---|---|---|---|"]
    for name, by_split in results["readings"].items():
        for split, by_reading in by_split.items():
            lines += [f"| {name} | {split} | {reading} | {_cells(m)} |" for reading, m in by_reading.items()]
    rows = results["shares"]
    if rows:
        lines += ["", f"Grid share in the quadrant head's reading (valence, arousal): the {top} best val sums, and "
                  "the head alone", "", "| grid share | val sum | set | split | valence AUC | arousal AUC | "
                  "quadrant acc. |", "|---|---|---|---|---|---|---|"]
        for row in [*rows[:top], *(r for r in rows[top:] if not any(r["grid_share"]))]:
            share = " / ".join(f"{w:g}" for w in row["grid_share"])
            lines += [f"| {share} | {row['val_sum']:.3f} | {name} | {split} | {_cells(m)} |"
                      for name, by_split in row["scores"].items() for split, m in by_split.items()]
    return "\n".join(lines) + "\n"
