"""Soft targets for the default model's categorical heads: Kang & Herremans' knowledge distillation.

One teacher per data set, trained on that set alone (``training.multitask``: a single-task net over the frozen
front end, early-stopped on the set's own val split), gives logits for every train clip of its set; the default
model's heads then learn from the labels and from those soft targets (``training.train.categorical_loss``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from models.config import FrontEndConfig
from models.errors import ManifestError
from models.manifest import read_manifest
from training.features import clip_feature_sets
from training.multitask import LabelledSet, MultitaskConfig, logits, train_multitask
from training.probe import taxonomy_of

log = logging.getLogger(__name__)


def teacher_logits(manifests: list[Path], *, frontend: FrontEndConfig, config: MultitaskConfig | None = None,
                   workers: int | None = None) -> dict[str, np.ndarray]:
    """Clip id -> (classes,) logits of its data set's teacher, for the train clips of each categorical manifest."""
    targets: dict[str, np.ndarray] = {}
    for manifest in manifests:
        clips = read_manifest(manifest)
        pairs, _ = clip_feature_sets(manifest, clips, frontend, workers=workers)  # the trainer lists skipped clips
        data = LabelledSet.of(manifest.stem, pairs, taxonomy_of(clips, manifest))
        teacher = train_multitask([data], config or MultitaskConfig())
        ids = [clip.id for clip, _ in pairs if clip.split == "train"]
        if set(ids) & set(targets):
            raise ManifestError(f"{manifest}: clip ids also in another data set: {sorted(set(ids) & set(targets))[:5]}")
        targets |= dict(zip(ids, logits(teacher, data.features["train"], data.taxonomy), strict=True))
        log.info("teacher of %s: %d train clips", manifest.stem, len(ids))
    return targets
