"""The text jobs behind the CLI: ``train-text`` (add text heads to a bundle) and ``eval-text`` (Won et al.'s
section 4.3 evaluation, and text -> VA on EmoBank dev)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models.atomic import atomic_file
from models.bundle import Bundle, load_bundle, save_bundle
from models.config import TextConfig
from models.default import resolve_bundle
from models.encoders import CrossModalModel, pad
from models.inference import POINT_FRAMES
from models.manifest import read_manifest
from models.text import sentence_encoder, shipped_version
from training.classify import Logistic
from training.datasets import emobank
from training.datasets.common import from_1_9, read_csv, require, stable_fraction
from training.evaluate import embed
from training.features import Item, cache_dir, load_items
from training.splits import of_split
from training.text import (
    MusicSet,
    RelevanceMetrics,
    TextSet,
    TextTrainConfig,
    VAFit,
    embed_text,
    quadrant_retrieval,
    quadrants,
    relevance_metrics,
    text_va,
    train_metric_bridge,
    train_va_bridge,
    va_metrics,
    with_text_heads,
)

TEXT_VA_SPREAD = 0.5  # the VA bridge maps EmoBank's narrow spread onto this std, as music curves use
MusicSource = tuple[Path, str]  # a manifest and the split of it to use


def encode_texts(texts: list[str]) -> np.ndarray:
    """Sentence vectors of the process-wide encoder, cached on disk by content and encoder version."""
    key = hashlib.sha1("\x00".join([shipped_version(), *texts]).encode()).hexdigest()
    path = cache_dir().parent / "text" / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    vectors = sentence_encoder().encode(texts)
    with atomic_file(path) as out:
        np.save(out, vectors)
    return vectors


def emobank_part(sentence: emobank.Sentence) -> str:
    """``train`` (90 % of the official train split), ``val`` (the other 10 %: early stopping), ``dev`` (the
    official dev split: evaluation only) or ``test`` (never read)."""
    if sentence.split == "train":
        return "val" if stable_fraction(sentence.id) < 0.1 else "train"
    return sentence.split


def emobank_sets(root: Path) -> dict[str, TextSet]:
    """EmoBank's train, val and dev parts (``emobank_part``) as sentence vectors with valence/arousal."""
    sentences = emobank.read(root)
    vectors = encode_texts([s.text for s in sentences])
    va = np.array([[s.valence, s.arousal] for s in sentences])
    parts = np.array([emobank_part(s) for s in sentences])
    return {name: TextSet(vectors[parts == name], va[parts == name]) for name in ("train", "val", "dev")}


def warriner_words(root: Path) -> tuple[list[str], np.ndarray]:
    """Warriner et al. (2013) lemmas with valence/arousal (N, 2) mapped from 1-9 to [-1, 1]."""
    (path,) = require(root, "Ratings_Warriner_et_al.csv")
    rows = read_csv(path, columns=("Word", "V.Mean.Sum", "A.Mean.Sum"))
    va = np.array([[from_1_9(float(r["V.Mean.Sum"])), from_1_9(float(r["A.Mean.Sum"]))] for r in rows])
    return [r["Word"] for r in rows], va


def warriner_set(root: Path) -> TextSet:
    words, va = warriner_words(root)
    return TextSet(encode_texts(words), va)


def music_items(model: CrossModalModel, sources: list[MusicSource]) -> list[Item]:
    items: list[Item] = []
    for manifest, split in sources:
        clips = of_split(read_manifest(manifest), split)
        if not clips:
            raise ValueError(f"{manifest}: no clips with split {split!r}")
        items += load_items(manifest, clips, model.config.frontend)
    return items


def music_set(model: CrossModalModel, items: list[Item]) -> MusicSet:
    """Frozen music embeddings of whole items, with their clip-mean VA."""
    music, _ = embed(model, items)
    return MusicSet(music.E, music.mu, music.logvar, np.stack([i.va_mean for i in items]))


def calibrate(model: CrossModalModel, train: TextSet) -> None:
    """Store the affine map from raw text VA to the music VA scale: z-score on EmoBank train, times
    TEXT_VA_SPREAD (EmoBank's ratings cluster near neutral; music curves spread over the plane)."""
    assert model.text is not None
    predicted = text_va(model, train.vectors)
    model.text.va_shift.copy_(torch.from_numpy(predicted.mean(axis=0)).float())
    model.text.va_scale.copy_(torch.from_numpy(TEXT_VA_SPREAD / predicted.std(axis=0)).float())


def train_text(*, bundle: Path, out: Path, emobank_root: Path, music: list[Path], warriner: Path | None,
               config: TextTrainConfig, text_config: TextConfig) -> Bundle:
    """A copy of ``bundle`` with trained text heads, written to ``out``."""
    loaded = load_bundle(resolve_bundle(bundle))
    model = with_text_heads(loaded.model, text_config)
    texts = emobank_sets(emobank_root)
    words = warriner_set(warriner) if warriner else None
    va = train_va_bridge(model, texts["train"], texts["val"], config, words=words)
    calibrate(model, texts["train"])
    music_train = music_set(model, music_items(model, [(m, "train") for m in music]))
    music_val = music_set(model, music_items(model, [(m, "val") for m in music]))
    metric = train_metric_bridge(model, texts["train"], texts["val"], music_train, music_val, config)
    metrics = {**loaded.metrics, "text": {"va_val": va.to_dict(), "metric_val": {"dev_mrr": metric},
                                           "train_config": asdict(config),
                                           "warriner": words is not None, "music": [str(m) for m in music],
                                           "encoder": sentence_encoder().version}}
    return save_bundle(model, out, metrics=metrics)


def classification_baseline(train_text_set: TextSet, dev: TextSet, music_train: list[Item],
                            music_test: list[Item], *, k: int) -> RelevanceMetrics:
    """Classify text and music into quadrants separately (logistic regression on sentence vectors and on
    mean frame features); rank music by its probability of the text's predicted class."""
    text_classifier = Logistic.fit(train_text_set.vectors, train_text_set.quadrants, classes=4)
    mean_frames = [np.stack([i.features.mean(axis=0) for i in items]) for items in (music_train, music_test)]
    music_classifier = Logistic.fit(mean_frames[0], quadrants(np.stack([i.va_mean for i in music_train])), classes=4)
    predicted = text_classifier.probabilities(dev.vectors).argmax(axis=1)
    scores = music_classifier.probabilities(mean_frames[1])[:, predicted].T  # (queries, music)
    return relevance_metrics(scores, dev.quadrants, quadrants(np.stack([i.va_mean for i in music_test])), k=k)


@dataclass(frozen=True)
class TextEvaluation:
    """Text -> music retrieval for both bridges and the baseline, and text -> VA, on EmoBank dev."""

    bundle: str
    n_queries: int
    n_music: int
    music_quadrants: list[int]
    va_bridge: RelevanceMetrics
    metric_bridge: RelevanceMetrics
    classification: RelevanceMetrics
    text_va_dev: VAFit

    def to_dict(self) -> dict:
        return {"n_queries": self.n_queries, "n_music": self.n_music, "bundle": self.bundle,
                "music_quadrants": self.music_quadrants, "va_bridge": self.va_bridge.to_dict(),
                "metric_bridge": self.metric_bridge.to_dict(), "classification": self.classification.to_dict(),
                "text_va_dev": self.text_va_dev.to_dict()}


def eval_text(*, bundle: Path, emobank_root: Path, music_train: list[Path], music_test: list[MusicSource],
              k: int = 5) -> TextEvaluation:
    """Text queries (EmoBank dev) against a music test set, relevant when the VA quadrants match: P@k and MRR
    for the VA bridge, the metric bridge and the classification baseline; and text -> VA on EmoBank dev."""
    loaded = load_bundle(resolve_bundle(bundle))
    model = loaded.model
    if model.text is None:
        raise ValueError(f"{bundle}: the bundle has no text heads; run `moodspace train-text` first")
    texts = emobank_sets(emobank_root)
    dev = texts["dev"]
    test_items = music_items(model, music_test)
    test_music = music_set(model, test_items)
    with torch.no_grad():
        va = model.text.valence_arousal(torch.from_numpy(dev.vectors.astype(np.float32))).numpy()
        emotion = model.emotion(*pad([np.repeat(p[None, :], POINT_FRAMES, axis=0) for p in va]))
    lam = model.config.score_lam
    train_items = music_items(model, [(m, "train") for m in music_train])
    return TextEvaluation(
        bundle=loaded.version, n_queries=len(dev.va), n_music=len(test_music.va),
        music_quadrants=np.bincount(test_music.quadrants, minlength=4).tolist(),
        va_bridge=quadrant_retrieval(emotion, dev.quadrants, test_music, lam=lam, k=k),
        metric_bridge=quadrant_retrieval(embed_text(model, dev.vectors), dev.quadrants, test_music, lam=lam, k=k),
        classification=classification_baseline(texts["train"], dev, train_items, test_items, k=k),
        text_va_dev=va_metrics(text_va(model, dev.vectors), dev.va),
    )
