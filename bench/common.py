"""Helpers shared by the benchmarks: synthetic catalogues with a trained model's statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.bundle import load_bundle
from models.default import resolve_bundle
from models.frontend import load_audio
from models.inference import Embedder
from models.manifest import audio_path, read_manifest
from models.scoring import Gaussians
from training.corpus.generate import synth_clip


def embedder(bundle: str) -> Embedder:
    return Embedder.from_bundle(load_bundle(resolve_bundle(bundle)))


def real_embeddings(model: Embedder, *, corpus: Path | None, n: int = 200) -> Gaussians:
    """Music embeddings of real clips: from a manifest, or freshly generated 30 s clips."""
    if corpus is not None:
        clips = read_manifest(corpus)[:n]
        audio = [load_audio(audio_path(corpus, c), sr=model.config.frontend.sr) for c in clips]
    else:
        audio = [synth_clip(i, seed=321, seconds=30)[1] for i in range(n)]
    return model.embed_features([model.frontend(y) for y in audio])


def synthetic_catalogue(base: Gaussians, n: int, *, seed: int = 0, jitter: float = 0.25) -> Gaussians:
    """``n`` items drawn around real embeddings: a random real item plus Gaussian noise of ``jitter`` times each
    dimension's spread, so the catalogue has a trained model's statistics."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(base.E.shape[0], size=n)
    parts = []
    for part in base:
        spread = part.std(axis=0) * jitter
        parts.append((part[pick] + rng.normal(size=(n, part.shape[1])) * spread).astype(np.float32))
    return Gaussians(*parts)
