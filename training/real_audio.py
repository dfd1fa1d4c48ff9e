"""Held-apart metrics on real recordings labelled by category (4Q quadrants, MIREX clusters), read the way the
service reads a track: the VA reading is the mean of the model's curve (``Embedder.read_track``).

Quadrant sets: valence AUC (Q1 + Q4 against Q2 + Q3, scored by the reading's valence), arousal AUC (Q1 + Q2
against Q3 + Q4, by its arousal), and quadrant accuracy of the reading's quadrant; every set with a head for its
taxonomy also gets the head's accuracy and macro-F1. Beside them, the linear probe on the same splits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.bundle import load_bundle
from models.config import FrontEndName
from models.default import resolve_bundle
from models.inference import Embedder
from models.manifest import Clip, read_manifest
from models.taxonomy import HIGH_AROUSAL, POSITIVE_VALENCE, class_index
from training.classify import CategoricalMetrics, auc, categorical_metrics
from training.datasets.emopia import quadrant_of
from training.features import clip_feature_sets
from training.probe import probe, taxonomy_of


@dataclass(frozen=True)
class RealAudioMetrics:
    manifest: str
    split: str
    taxonomy: str
    n: int
    valence_auc: float | None  # quadrant sets, from the VA reading
    arousal_auc: float | None
    reading_accuracy: float | None  # quadrant of the VA reading
    head: CategoricalMetrics | None  # the taxonomy's categorical head, if the model has one

    def to_dict(self) -> dict:
        return asdict(self)


def _reading_metrics(readings: np.ndarray, labels: list[str]) -> tuple[float, float, float]:
    positive = np.isin(labels, POSITIVE_VALENCE)
    high = np.isin(labels, HIGH_AROUSAL)
    estimated = [f"Q{quadrant_of(v, a)}" for v, a in readings]
    return (auc(readings[:, 0], positive), auc(readings[:, 1], high),
            float(np.mean(np.array(estimated) == np.array(labels))))


def split_features(embedder: Embedder, manifest: Path, split: str, *, workers: int | None = None
                   ) -> tuple[str, list[tuple[Clip, np.ndarray]]]:
    """The taxonomy that labels ``manifest``, and (clip, features) of its ``split`` as ``embedder`` hears them
    (clips that do not decode left out)."""
    clips = [c for c in read_manifest(manifest) if c.split == split]
    taxonomy = taxonomy_of(clips, manifest)
    pairs, _ = clip_feature_sets(manifest, clips, embedder.config.frontend, workers=workers, progress=False)
    return taxonomy, pairs


def eval_real_audio(*, bundle: Path, data: Path, split: str, workers: int | None = None) -> RealAudioMetrics:
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(bundle)))
    taxonomy, pairs = split_features(embedder, data, split, workers=workers)
    tracks = [embedder.read_track(features) for _, features in pairs]
    labels = [clip.labels[taxonomy] for clip, _ in pairs]
    reading = np.stack([t.mean for t in tracks])
    valence_auc, arousal_auc, accuracy = (_reading_metrics(reading, labels) if taxonomy == "quadrant"
                                          else (None, None, None))
    head = None
    if taxonomy in embedder.config.taxonomies:
        reference = np.array([class_index(taxonomy, label) for label in labels])
        head = categorical_metrics(taxonomy, reference, np.stack([t.classes[taxonomy] for t in tracks]))
    return RealAudioMetrics(str(data), split, taxonomy, len(pairs), valence_auc, arousal_auc, accuracy, head)


def probe_baseline(data: Path, *, frontend: FrontEndName, workers: int | None = None) -> dict[str, dict]:
    """The linear probe's metrics on ``data``'s val and test splits (fitted on its train split)."""
    return {split: m.to_dict() for split, m in probe(data, frontend=frontend, workers=workers).metrics.items()}

