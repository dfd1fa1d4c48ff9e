"""Are a corpus's labels learnable, and not trivially so? Ridge regression from four simple audio descriptors
(tempo, RMS level, spectral centroid, a major/minor chroma score) to clip-mean valence and arousal, fitted on the
non-test clips and scored (R^2) on the held-apart test split."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import librosa
import numpy as np

from models.curves import curve_mean
from models.manifest import Clip, audio_path, read_manifest
from training.parallel import parallel_map

SR = 16_000
DESCRIPTORS = ("tempo_bpm", "rms_db", "centroid_hz", "mode_score")
# Krumhansl & Kessler (1982) key profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def mode_score(chroma: np.ndarray) -> float:
    """Best major-key correlation minus best minor-key correlation of a mean chroma vector (12,)."""
    def best(profile: np.ndarray) -> float:
        return max(float(np.corrcoef(chroma, np.roll(profile, k))[0, 1]) for k in range(12))

    return best(MAJOR_PROFILE) - best(MINOR_PROFILE)


def descriptors(y: np.ndarray, *, sr: int = SR) -> np.ndarray:
    """(4,) tempo (BPM), RMS level (dBFS), spectral centroid (Hz), major/minor chroma score."""
    tempo = float(np.atleast_1d(librosa.feature.tempo(y=y, sr=sr))[0])
    rms_db = float(20 * np.log10(np.sqrt(np.mean(y**2)) + 1e-9))
    centroid = float(np.mean(librosa.feature.spectral_centroid(y=y, sr=sr)))
    chroma = librosa.feature.chroma_stft(y=y, sr=sr).mean(axis=1)
    return np.array([tempo, rms_db, centroid, mode_score(chroma)])


def _clip_descriptors(clip: Clip, *, manifest: Path) -> np.ndarray:
    y, _ = librosa.load(audio_path(manifest, clip), sr=SR, mono=True)
    return descriptors(y)


def ridge_fit(x: np.ndarray, y: np.ndarray, *, alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge on standardised features: returns (weights (F, K), feature mean, feature std); intercept first."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([np.ones((x.shape[0], 1)), (x - mean) / std])
    penalty = alpha * np.eye(z.shape[1])
    penalty[0, 0] = 0.0
    weights = np.linalg.solve(z.T @ z + penalty, z.T @ y)
    return weights, mean, std


def ridge_predict(model: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    weights, mean, std = model
    return np.hstack([np.ones((x.shape[0], 1)), (x - mean) / std]) @ weights


def r2(reference: np.ndarray, estimated: np.ndarray) -> float:
    return float(1.0 - np.sum((reference - estimated) ** 2) / np.sum((reference - reference.mean()) ** 2))


@dataclass(frozen=True)
class Learnability:
    n_train: int
    n_test: int
    valence_r2: float
    arousal_r2: float
    coefficients: dict[str, list[float]]  # standardised ridge weights per descriptor: [valence, arousal]


def learnability(manifest: str | Path, *, workers: int | None = None, progress: bool = True) -> Learnability:
    """Fit on clips whose split is not "test", score R^2 on the test split."""
    manifest = Path(manifest)
    clips = [clip for clip in read_manifest(manifest, check_audio=True) if clip.curve is not None]  # VA labels
    x = np.array(parallel_map(partial(_clip_descriptors, manifest=manifest), clips, workers=workers,
                              desc="descriptors", unit="clip", progress=progress))
    y = np.array([curve_mean(clip.curve) for clip in clips if clip.curve is not None])
    test = np.array([clip.split == "test" for clip in clips])
    if test.sum() < 2 or (~test).sum() < 5:
        raise ValueError(f"{manifest}: need >= 5 non-test and >= 2 test clips, got {(~test).sum()} and {test.sum()}")
    model = ridge_fit(x[~test], y[~test])
    estimated = ridge_predict(model, x[test])
    return Learnability(
        n_train=int((~test).sum()), n_test=int(test.sum()),
        valence_r2=r2(y[test, 0], estimated[:, 0]), arousal_r2=r2(y[test, 1], estimated[:, 1]),
        coefficients={name: [round(float(w), 4) for w in model[0][i + 1]] for i, name in enumerate(DESCRIPTORS)},
    )
