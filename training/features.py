"""Labelled clips -> aligned training items: frame features (T, F) and the VA sequence (T, 2) at frame centres.

Frames are kept where the clip is annotated: for dynamic curves, frames whose centre lies within half a frame of
the curve's first and last times (DEAM-style curves start 15 s in); static and categorical labels cover the
whole clip. Features are cached on disk by audio file and front-end config (``MOODSPACE_CACHE``, default
``~/.cache/moodspace``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from models.atomic import atomic_file
from models.config import FrontEndConfig
from models.curves import curve_mean, resample_curve
from models.errors import AudioError, ManifestError
from models.frontend import WithKeyFeatures, frame_times, load_audio, make_frontend
from models.manifest import Clip, audio_path
from models.taxonomy import CLASS_VA, class_index
from training.parallel import parallel_map

# Data sets of real recordings, by the prefix their readers give clip ids (``training.datasets``); the rest (the
# built-in corpus, VGMIDI, EMOPIA) are rendered from MIDI or synthesized.
RECORDED_SETS = frozenset({"4q", "mirex", "deam", "pmemo", "emomusic"})


@dataclass(frozen=True)
class Item:
    """One training/evaluation pair: music frames and the emotion sequence read at the same times."""

    id: str
    features: np.ndarray  # (T, F) float32
    va: np.ndarray  # (T, 2) float32
    va_mean: np.ndarray  # (2,) clip-mean valence, arousal
    label_type: str
    split: str
    labels: dict[str, int] = field(default_factory=dict)  # taxonomy -> class index (models.taxonomy)

    @property
    def source(self) -> str:
        """The data set the item comes from: every reader names its clips "<data set>-<its own id>"."""
        return self.id.split("-", 1)[0]

    @property
    def recorded(self) -> bool:
        """Whether the item is a recording of real instruments and voices, not music rendered from MIDI or
        synthesized."""
        return self.source in RECORDED_SETS


def cache_dir() -> Path:
    return Path(os.environ.get("MOODSPACE_CACHE", Path.home() / ".cache" / "moodspace")) / "features"


def _cache_key(path: Path, config: FrontEndConfig) -> str:
    stat = path.stat()
    raw = json.dumps([str(path), stat.st_size, stat.st_mtime_ns, asdict(config)], sort_keys=True)
    return hashlib.sha1(raw.encode()).hexdigest()


def clip_features(path: Path, config: FrontEndConfig, *, use_cache: bool = True) -> np.ndarray:
    """(T, F) features of one audio file, computed once per (file, config)."""
    cached = cache_dir() / f"{_cache_key(path, config)}.npy"
    if use_cache and cached.is_file():
        return np.load(cached)
    frontend = make_frontend(config)
    y = load_audio(path, sr=config.sr)
    if isinstance(frontend, WithKeyFeatures):  # the base front end's frames are cached on their own and reused
        features = frontend.extend(y, clip_features(path, frontend.base.config, use_cache=use_cache))
    else:
        features = frontend(y)
    if use_cache:
        with atomic_file(cached) as out:
            np.save(out, features)
    return features


@dataclass(frozen=True)
class Skipped:
    """A clip left out of a run, and why (listed in the run's report)."""

    id: str
    reason: str


def _features_or_reason(clip: Clip, *, manifest: Path, config: FrontEndConfig) -> np.ndarray | str:
    try:
        features = clip_features(audio_path(manifest, clip), config)
    except AudioError as error:
        return str(error)
    return features if np.isfinite(features).all() else "features hold NaN or infinite values"


def clip_feature_sets(manifest: str | Path, clips: list[Clip], config: FrontEndConfig, *,
                      workers: int | None = None, progress: bool = True
                      ) -> tuple[list[tuple[Clip, np.ndarray]], list[Skipped]]:
    """(clip, (T, F) features) for every clip that decodes; a missing, corrupt or unreadable clip is skipped and
    listed with its reason instead of stopping the run."""
    job = partial(_features_or_reason, manifest=Path(manifest), config=config)
    results = parallel_map(job, clips, workers=workers, desc="features", unit="clip", progress=progress)
    kept = [(clip, r) for clip, r in zip(clips, results, strict=True) if not isinstance(r, str)]
    skipped = [Skipped(clip.id, r) for clip, r in zip(clips, results, strict=True) if isinstance(r, str)]
    return kept, skipped


def class_curve(clip: Clip) -> np.ndarray:
    """The emotion-side input of a clip labelled only by a class: one point at the class's VA placement."""
    taxonomy, label = next(iter(clip.labels.items()))
    return np.array([[0.0, *CLASS_VA[taxonomy][label]]])


def align(clip: Clip, features: np.ndarray, config: FrontEndConfig) -> Item:
    """Crop ``features`` to the annotated span and read the curve at the kept frame centres."""
    curve = clip.curve if clip.curve is not None else class_curve(clip)
    times = frame_times(features.shape[0], config)
    keep = np.ones(times.size, dtype=bool)
    if clip.label_type == "dynamic" and curve.shape[0] > 1:
        half = config.frame_seconds / 2
        keep = (times >= curve[0, 0] - half) & (times <= curve[-1, 0] + half)
    if not keep.any():
        raise ManifestError(f"clip {clip.id!r}: no audio frame lies inside the annotated span "
                            f"{curve[0, 0]:.1f}-{curve[-1, 0]:.1f} s")
    if not np.isfinite(features).all():
        raise AudioError(f"clip {clip.id!r}: features hold NaN or infinite values")
    va = resample_curve(curve, times[keep]).astype(np.float32)
    labels = {t: class_index(t, label) for t, label in clip.labels.items()}
    return Item(clip.id, features[keep], va, curve_mean(curve).astype(np.float32), clip.label_type, clip.split,
                labels)


def _item(clip: Clip, *, manifest: Path, config: FrontEndConfig) -> Item:
    path = audio_path(manifest, clip)
    try:
        features = clip_features(path, config)
    except AudioError as error:
        raise AudioError(f"clip {clip.id!r}: {error}") from error
    return align(clip, features, config)


def load_training_items(manifest: str | Path, clips: list[Clip], config: FrontEndConfig, *,
                        workers: int | None = None, progress: bool = True) -> tuple[list[Item], list[Skipped]]:
    """Items for ``clips`` of ``manifest`` for training: a clip whose audio does not decode is skipped and listed
    with its reason instead of stopping the run; missing files are still an error before any extraction."""
    check_audio_files(Path(manifest), clips)
    pairs, skipped = clip_feature_sets(manifest, clips, config, workers=workers, progress=progress)
    return [align(clip, features, config) for clip, features in pairs], skipped


def check_audio_files(manifest: Path, clips: list[Clip]) -> None:
    for clip in clips:
        if not audio_path(manifest, clip).is_file():
            raise ManifestError(f"{manifest}: clip {clip.id!r}: audio file {audio_path(manifest, clip)} not found")


def load_items(manifest: str | Path, clips: list[Clip], config: FrontEndConfig, *, workers: int | None = None,
               progress: bool = True) -> list[Item]:
    """Items for ``clips`` of ``manifest``; missing audio is reported, naming the clip, before any extraction."""
    manifest = Path(manifest)
    check_audio_files(manifest, clips)
    job = partial(_item, manifest=manifest, config=config)
    return parallel_map(job, clips, workers=workers, desc="features", unit="clip", progress=progress)
