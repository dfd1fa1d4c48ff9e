"""``moodspace like-experiment``: which query makes "tracks that feel like this track" (``like_track``) agree with
listeners' labels.

Each clip of a split asks for the other clips of that split; a result is relevant when listeners gave it the
query's class (4Q quadrant, MIREX cluster). The rankings: the likeness of both categorical heads' class
probabilities (``models.taxonomy.likeness_vector``; what the service ranks by, ``app.alike``), the set's own
head's alone (which a service cannot choose: it does not know the catalogue's taxonomy), the two the index can
answer in one inner product (the track's own embedding, and its VA reading curve through the emotion encoder),
the nearest VA readings, and a random order. Scores: precision of the top 10, mean average precision, and the mean
VA distance between the query's reading and its top 10's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.bundle import load_bundle
from models.default import resolve_bundle
from models.inference import Embedder
from models.scoring import composite_scores, stack
from models.taxonomy import likeness_vector
from training.real_audio import split_features

TOP = 10


def rankings(embedder: Embedder, features: list[np.ndarray], taxonomy: str, *, seed: int = 0
             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """query name -> (N, N) scores of every clip (rows) for every clip (columns); and the (N, 2) VA readings."""
    whole = stack([embedder.read_representations(embedder.represent_tracks([f])).gaussians for f in features])
    tracks = [embedder.read_track(f) for f in features]
    va = np.stack([t.mean for t in tracks])
    curves = stack([embedder.embed_curve(np.column_stack([t.times, t.curve])) for t in tracks])
    probabilities = np.stack([t.classes[taxonomy] for t in tracks])
    unit = probabilities / np.linalg.norm(probabilities, axis=1, keepdims=True)
    likeness = np.stack([likeness_vector(t.classes) for t in tracks])
    lam = embedder.query_lam(None)
    return {
        "both heads' class probabilities, cosine (the service's)": likeness @ likeness.T,
        "the track's embedding (the index's)": composite_scores(whole, whole, lam=lam).score,
        "its reading curve through the emotion encoder": composite_scores(curves, whole, lam=lam).score,
        "nearest VA reading": -((va[:, None] - va[None]) ** 2).sum(axis=-1),
        "the set's own head's class probabilities, cosine": unit @ unit.T,
        "random": np.random.default_rng(seed).random((len(features), len(features))),
    }, va


def agreement(scores: np.ndarray, labels: np.ndarray, va: np.ndarray, *, top: int = TOP) -> dict[str, float]:
    """Precision of the top ``top`` others, mean average precision and the top's mean VA distance, each clip's
    own row leaving the clip itself out."""
    scores = np.array(scores, dtype=np.float64)
    np.fill_diagonal(scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :-1]  # the clip itself ranks last: dropped
    relevant = labels[order] == labels[:, None]
    hits = np.cumsum(relevant, axis=1)
    ranks = np.arange(1, order.shape[1] + 1)
    with np.errstate(invalid="ignore"):
        precision_at_hits = np.where(relevant, hits / ranks, 0.0).sum(axis=1) / relevant.sum(axis=1)
    return {"precision_at_10": float(relevant[:, :top].mean()),
            "map": float(np.nanmean(precision_at_hits)),
            "va_distance": float(np.linalg.norm(va[order[:, :top]] - va[:, None], axis=-1).mean())}


def like_experiment(bundle: Path, manifests: list[Path], *, workers: int | None = None) -> dict:
    """set -> split -> query -> ``agreement``'s scores."""
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(bundle)))
    results: dict = {}
    for manifest in manifests:
        for split in ("val", "test"):
            taxonomy, pairs = split_features(embedder, manifest, split, workers=workers)
            labels = np.array([c.labels[taxonomy] for c, _ in pairs])
            found, va = rankings(embedder, [f for _, f in pairs], taxonomy)
            results.setdefault(manifest.stem, {})[split] = {name: agreement(s, labels, va) for name, s in found.items()}
    return results


def markdown(results: dict) -> str:
    lines = ["| set | split | query | P@10 | mAP | top-10 VA distance |", "|---|---|---|---|---|---|"]
    for name, by_split in results.items():
        for split, by_query in by_split.items():
            for query, m in by_query.items():
                lines.append(f"| {name} | {split} | {query} | {m['precision_at_10']:.3f} | {m['map']:.3f} | "
                             f"{m['va_distance']:.3f} |")
    return "\n".join(lines) + "\n"
