"""``moodspace probe``: the linear-probe baseline on categorically labelled sets (4Q quadrants, MIREX clusters).

For each manifest: frozen front-end features of every clip (clips that do not decode are skipped and listed),
summarised by their mean and spread over time, a logistic regression per taxonomy fitted on the train split (its
penalty chosen by artist folds of that split, ``training.classify.FoldsLogistic``), and categorical metrics on the
val and test splits (both held apart by artist). Nothing here sees val or test data while fitting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.config import FrontEndName
from models.errors import ManifestError
from models.frontend import frontend_config
from models.manifest import Clip, read_manifest
from models.taxonomy import TAXONOMIES, class_index
from training.classify import CategoricalMetrics, FoldsLogistic, categorical_metrics, summary_features
from training.features import Skipped, clip_feature_sets

EVAL_SPLITS = ("val", "test")


@dataclass(frozen=True)
class ProbeResult:
    manifest: str
    frontend: str
    n_train: int
    metrics: dict[str, CategoricalMetrics]  # split -> metrics
    skipped: list[Skipped] = field(default_factory=list)
    c: float = float("nan")  # the inverse L2 strength the artist folds chose
    folds_accuracy: float = float("nan")

    def to_dict(self) -> dict:
        return {"manifest": self.manifest, "frontend": self.frontend, "n_train": self.n_train, "C": self.c,
                "folds_accuracy": self.folds_accuracy,
                "metrics": {split: m.to_dict() for split, m in self.metrics.items()},
                "skipped": [s.__dict__ for s in self.skipped]}


def taxonomy_of(clips: list[Clip], manifest: Path) -> str:
    """The one taxonomy every clip of a categorical manifest is labelled in."""
    found = {t for clip in clips for t in clip.labels}
    if len(found) != 1 or any(not clip.labels for clip in clips):
        raise ManifestError(f"{manifest}: a probe needs every clip labelled in one taxonomy, found {sorted(found)}")
    return found.pop()


def _arrays(pairs: list[tuple[Clip, np.ndarray]], taxonomy: str, split: str
            ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    chosen = [(clip, f) for clip, f in pairs if clip.split == split]
    x = np.stack([summary_features(f) for _, f in chosen]) if chosen else np.zeros((0, 0))
    y = np.array([class_index(taxonomy, clip.labels[taxonomy]) for clip, _ in chosen], dtype=np.int64)
    return x, y, [clip.group for clip, _ in chosen]


def probe(manifest: Path, *, frontend: FrontEndName, workers: int | None = None) -> ProbeResult:
    clips = read_manifest(manifest)
    taxonomy = taxonomy_of(clips, manifest)
    pairs, skipped = clip_feature_sets(manifest, clips, frontend_config(frontend), workers=workers)
    x_train, y_train, artists = _arrays(pairs, taxonomy, "train")
    if len(y_train) < 2 * len(TAXONOMIES[taxonomy]):
        raise ManifestError(f"{manifest}: {len(y_train)} training clips; the probe needs at least two per class")
    model = FoldsLogistic.fit(x_train, y_train, artists, classes=len(TAXONOMIES[taxonomy]))
    metrics = {}
    for split in EVAL_SPLITS:
        x, y, _ = _arrays(pairs, taxonomy, split)
        if len(y):
            metrics[split] = categorical_metrics(taxonomy, y, model.probabilities(x))
    return ProbeResult(str(manifest), frontend, len(y_train), metrics, skipped, model.c, model.folds_accuracy)
