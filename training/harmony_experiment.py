"""``moodspace harmony-experiment``: do key, mode, tempo and chords help on real recordings? (the "with and without
chord/key" rows of Kang & Herremans' Table II).

Per categorical set (4Q quadrants, MIREX clusters), the same small classifier over four inputs:

- ``audio``: the mean and spread of the frozen front end's frames (what the probe reads), through one hidden layer;
- ``audio+key``: and the key features (mode, key strength, tempo: ``models.harmony.Harmony.scalars``);
- ``audio+key+chords``: and the CLS output of the chord-sequence transformer over the key-relative chords;
- ``key+chords``: harmony alone.

Each is trained on the train split for a fixed number of epochs (validation is not looked at while fitting, so
val and test are both held apart, by artist) over several seeds; results.json and results.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from models.atomic import atomic_file
from models.config import ChordConfig, FrontEndName
from models.encoders import ChordTransformer
from models.frontend import frontend_config, load_audio
from models.harmony import N_TOKENS, RECOGNIZER, Harmony, Key, Tonality, harmony
from models.manifest import Clip, audio_path, read_manifest
from models.taxonomy import TAXONOMIES, class_index
from training.categorical_experiment import markdown, summarize
from training.classify import categorical_metrics, summary_features
from training.features import cache_dir, clip_feature_sets
from training.loop import OptimConfig, descend, seed_everything
from training.parallel import parallel_map
from training.probe import taxonomy_of

VARIANTS = ("audio", "audio+key", "audio+key+chords", "key+chords")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class HarmonyTrainConfig(OptimConfig):
    """A fixed number of epochs (``patience`` is not used: validation is not looked at while fitting)."""

    epochs: int = 60
    batch_size: int = 32
    weight_decay: float = 1e-2
    hidden: int = 64
    dropout: float = 0.3
    chords: ChordConfig = field(default_factory=ChordConfig)


def _harmony_cache(path: Path) -> Path:
    stat = path.stat()
    recognizer = hashlib.sha1(RECOGNIZER.read_bytes()).hexdigest()[:12]
    raw = json.dumps([str(path), stat.st_size, stat.st_mtime_ns, recognizer, "harmony-v1"])
    return cache_dir() / "harmony" / f"{hashlib.sha1(raw.encode()).hexdigest()}.npz"


def clip_harmony(path: Path) -> Harmony:
    """Tempo, key, mode and chords of one audio file (cached per file and recognizer)."""
    cached = _harmony_cache(path)
    if cached.is_file():
        data = np.load(cached)
        key = Key(int(data["tonic"]), str(data["mode"]), float(data["strength"]))
        return Harmony(Tonality(float(data["tempo"]), key), data["chords"])
    result = harmony(load_audio(path, sr=16_000), 16_000)
    key = result.tonality.key
    with atomic_file(cached) as out:
        np.savez(out, tonic=key.tonic, mode=key.mode, strength=key.strength, tempo=result.tonality.tempo_bpm,
                 chords=result.chords)
    return result


def _harmony_of(clip: Clip, *, manifest: Path) -> Harmony:
    return clip_harmony(audio_path(manifest, clip))


@dataclass(frozen=True)
class HarmonySet:
    """One categorical set's inputs by split: audio summaries (N, 2F), key scalars (N, 3), chord tokens (N, L)."""

    name: str
    taxonomy: str
    audio: dict[str, np.ndarray]
    key: dict[str, np.ndarray]
    chords: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]


def _tokens(harmonies: list[Harmony], length: int) -> np.ndarray:
    out = np.zeros((len(harmonies), length), dtype=np.int64)
    for row, h in enumerate(harmonies):
        tokens = h.tokens[:length]
        out[row, : tokens.size] = tokens
    return out


def load_set(manifest: Path, *, frontend: FrontEndName, max_chords: int, workers: int | None = None) -> HarmonySet:
    clips = read_manifest(manifest)
    taxonomy = taxonomy_of(clips, manifest)
    pairs, _ = clip_feature_sets(manifest, clips, frontend_config(frontend), workers=workers)
    kept = [clip for clip, _ in pairs]
    harmonies = parallel_map(partial(_harmony_of, manifest=manifest), kept, workers=workers, desc="harmony",
                             unit="clip")
    by = {s: [i for i, c in enumerate(kept) if c.split == s] for s in SPLITS}
    return HarmonySet(
        manifest.stem, taxonomy,
        {s: np.stack([summary_features(pairs[i][1]) for i in idx]) for s, idx in by.items()},
        {s: np.stack([harmonies[i].scalars() for i in idx]) for s, idx in by.items()},
        {s: _tokens([harmonies[i] for i in idx], max_chords) for s, idx in by.items()},
        {s: np.array([class_index(taxonomy, kept[i].labels[taxonomy]) for i in idx]) for s, idx in by.items()})


class HarmonyNet(nn.Module):
    """Audio summary and/or key scalars and/or chord transformer CLS -> one hidden layer -> class logits."""

    def __init__(self, variant: str, *, n_audio: int, n_classes: int, config: HarmonyTrainConfig) -> None:
        super().__init__()
        self.variant = variant
        self.chords = ChordTransformer(N_TOKENS, config.chords) if "chords" in variant else None
        width = (n_audio if "audio" in variant else 0) + (3 if "key" in variant else 0)
        width += self.chords.out_dim if self.chords is not None else 0
        self.head = nn.Sequential(nn.Linear(width, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
                                  nn.Linear(config.hidden, n_classes))

    def forward(self, audio: Tensor, key: Tensor, chords: Tensor) -> Tensor:
        parts = [audio] if "audio" in self.variant else []
        parts += [key] if "key" in self.variant else []
        parts += [self.chords(chords)] if self.chords is not None else []
        return self.head(torch.cat(parts, dim=1))


def _standardise(data: HarmonySet) -> dict[str, dict[str, Tensor]]:
    mean, std = data.audio["train"].mean(axis=0), data.audio["train"].std(axis=0) + 1e-6
    return {s: {"audio": torch.from_numpy(((data.audio[s] - mean) / std).astype(np.float32)),
                "key": torch.from_numpy(data.key[s]), "chords": torch.from_numpy(data.chords[s])} for s in SPLITS}


def run_variant(data: HarmonySet, variant: str, config: HarmonyTrainConfig, seed: int) -> dict[str, dict]:
    seed_everything(seed)
    inputs = _standardise(data)
    n_classes = len(TAXONOMIES[data.taxonomy])
    model = HarmonyNet(variant, n_audio=data.audio["train"].shape[1], n_classes=n_classes, config=config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    labels = torch.from_numpy(data.labels["train"])
    generator = torch.Generator().manual_seed(seed)
    for _ in range(config.epochs):
        model.train()
        for batch in torch.randperm(len(labels), generator=generator).split(config.batch_size):
            x = inputs["train"]
            loss = nn.functional.cross_entropy(model(x["audio"][batch], x["key"][batch], x["chords"][batch]),
                                               labels[batch])
            descend(optimizer, loss)
    model.eval()
    with torch.no_grad():
        return {s: categorical_metrics(data.taxonomy, data.labels[s], torch.softmax(model(**inputs[s]), dim=1)
                                       .numpy()).to_dict() for s in ("val", "test")}


def harmony_experiment(manifests: list[Path], *, out: Path, frontend: FrontEndName, seeds: int,
                       config: HarmonyTrainConfig = HarmonyTrainConfig(), workers: int | None = None) -> dict:
    sets = [load_set(m, frontend=frontend, max_chords=config.chords.max_chords, workers=workers) for m in manifests]
    runs = [{v: {d.name: run_variant(d, v, config, seed) for d in sets} for v in VARIANTS} for seed in range(seeds)]
    summary = summarize(runs)
    out.mkdir(parents=True, exist_ok=True)
    key_stats = {d.name: {"major_share": float(np.concatenate([d.key[s][:, 0] for s in SPLITS]).mean())}
                 for d in sets}
    (out / "results.json").write_text(json.dumps({"summary": summary, "runs": runs, "frontend": frontend,
                                                  "keys": key_stats}, indent=2))
    (out / "results.md").write_text(markdown(summary, seeds=seeds))
    return summary
