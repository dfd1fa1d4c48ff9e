"""The model jobs behind the CLI: train a bundle, evaluate one, run the paper's experiment. Each reads manifests,
checks every clip (curves, audio files, decodability) before any training starts, and writes its outputs."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models.bundle import Bundle, load_bundle, save_bundle
from models.config import ModelConfig
from models.default import resolve_bundle
from models.encoders import CrossModalModel
from models.errors import ManifestError
from models.inference import Embedder
from models.manifest import read_manifest
from training.evaluate import RetrievalMetrics, evaluate_model
from training.experiment import Splits, run_experiment, sweep, write_results
from training.features import Item, Skipped, load_items, load_training_items
from training.plots import plot_history, plot_va
from training.splits import Split, of_split, test_clips, train_val
from training.train import Teachers, TrainConfig, train_model

log = logging.getLogger(__name__)


def _items(manifest: Path, clips: list, config: ModelConfig, *, workers: int | None) -> list[Item]:
    return load_items(manifest, clips, config.frontend, workers=workers)


def check_feature_size(config: ModelConfig, items: list[Item]) -> None:
    """The front end's features are the size the config says (sizes come from configs, never from data)."""
    sizes = {i.features.shape[1] for i in items}
    assert sizes == {config.feature_size}, f"front end {config.frontend.name} gave sizes {sizes}, config says " \
                                           f"{config.feature_size}"


@dataclass
class TrainingSet:
    """Training and validation items, and the clips left out because their audio did not decode."""

    train: list[Item] = field(default_factory=list)
    val: list[Item] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def add(self, split: str, manifest: Path, clips: list, config: ModelConfig, workers: int | None) -> None:
        items, skipped = load_training_items(manifest, clips, config.frontend, workers=workers)
        getattr(self, split).extend(items)
        self.skipped += skipped


def train_val_items(data: list[Path], val: list[Path], config: ModelConfig, *, workers: int | None = None
                    ) -> TrainingSet:
    """Training items: the train clips of every ``data`` manifest. Validation: the val clips (or all clips) of
    every ``val`` manifest; without any, the val clips of the ``data`` manifests (see ``splits.train_val``)."""
    found = TrainingSet()
    for manifest in data:
        train_clips, own_val = train_val(read_manifest(manifest))
        found.add("train", manifest, train_clips, config, workers)
        if not val:
            found.add("val", manifest, own_val, config, workers)
    for manifest in val:
        clips = read_manifest(manifest)
        found.add("val", manifest, of_split(clips, "val") or clips, config, workers)
    overlap = {i.id for i in found.train} & {i.id for i in found.val}
    if overlap:
        raise ManifestError(f"clips in both training and validation: {sorted(overlap)[:5]}")
    for skipped in found.skipped:
        log.warning("skipped %s: %s", skipped.id, skipped.reason)
    return found


def train_bundle(*, data: list[Path], val: list[Path], out: Path, config: ModelConfig, train_config: TrainConfig,
                 workers: int | None = None, name: str = "moodspace", teachers: Teachers | None = None,
                 init: CrossModalModel | None = None) -> Bundle:
    """Train on the ``data`` manifests, validate as ``train_val_items`` says; write a bundle to ``out``;
    ``teachers``: soft targets for the categorical heads (``training.teachers``); ``init``: a trained model to
    start from (``train_model``)."""
    found = train_val_items(data, val, config, workers=workers)
    train_items, val_items = found.train, found.val
    check_feature_size(config, train_items)
    start = time.perf_counter()
    result = train_model(config, train_items, val_items, train_config, teachers=teachers, init=init)
    metrics = {
        "train_seconds": round(time.perf_counter() - start, 1), "best_epoch": result.best_epoch,
        "n_train": len(train_items), "n_val": len(val_items),
        "val": {**result.best_val.to_dict(), "lam": result.query_lam} if result.best_val else {},
        "train_config": asdict(train_config), "data": [str(d) for d in data], "val_data": [str(v) for v in val],
        "history": result.history, "skipped": [s.__dict__ for s in found.skipped],
        "distilled": len({i.id for i in train_items} & set(teachers or {})),
    }
    bundle = save_bundle(result.model, out, name=name, metrics=metrics)
    plot_history(result.history, out / "training.png")
    plot_va_reading(result.model, val_items, out / "va_validation.png", title="VA read from music, validation")
    return bundle


def plot_va_reading(model: CrossModalModel, items: list[Item], path: Path, *, title: str) -> Path:
    """Scatter of the model's VA reading of each item's music against the item's true clip-mean VA."""
    embedder = Embedder(model)
    reading = embedder.read_features([i.features for i in items])
    return plot_va(np.stack([i.va_mean for i in items]), reading.mean, path, title=title)


@dataclass(frozen=True)
class BundleEvaluation:
    metrics: RetrievalMetrics
    bundle: str  # the bundle's version
    lam: float  # the query lam used

    def to_dict(self) -> dict:
        return {**self.metrics.to_dict(), "bundle": self.bundle, "lam": self.lam}


def eval_bundle(*, bundle: Path, data: Path, split: Split = "auto", lam: float | None = None,
                workers: int | None = None) -> BundleEvaluation:
    """Retrieval metrics of a bundle on a manifest's test clips (see ``splits.test_clips``)."""
    loaded = load_bundle(resolve_bundle(bundle))
    clips = test_clips(read_manifest(data), split)
    items = _items(data, clips, loaded.config, workers=workers)
    lam = loaded.config.score_lam if lam is None else lam
    return BundleEvaluation(evaluate_model(loaded.model, items, lam=lam), loaded.version, lam)


def experiment(*, train: Path, test: Path, out: Path, config: ModelConfig, train_config: TrainConfig, seeds: int,
               sweep_lam: list[float] | None = None, sweep_alpha: list[float] | None = None,
               workers: int | None = None) -> dict:
    train_clips, val_clips = train_val(read_manifest(train))
    held_out = test_clips(read_manifest(test))
    leaked = {c.id for c in held_out} & {c.id for c in train_clips + val_clips}
    if leaked:
        raise ManifestError(f"clips in both the test set and training/validation: {sorted(leaked)[:5]}")
    splits = Splits(_items(train, train_clips, config, workers=workers), _items(train, val_clips, config,
                    workers=workers), _items(test, held_out, config, workers=workers))
    check_feature_size(config, splits.train)
    results = run_experiment(splits, config, train_config, seeds=seeds, plots=out)
    settings = {"train": str(train), "test": str(test), "n_train": len(splits.train), "n_val": len(splits.val),
                "n_test": len(splits.test), "seeds": seeds, "sweep_lam": sweep_lam, "sweep_alpha": sweep_alpha,
                "model": config.to_dict(), "train_config": asdict(train_config)}
    write_results(results, out, title=f"moodspace experiment: {train.parent.name} -> {test.parent.name}",
                  settings=settings)
    for name, values in (("lam", sweep_lam), ("alpha", sweep_alpha)):
        if values:
            sweep(splits, config, train_config, name=name, values=values, seeds=seeds, out=out)
    return results
