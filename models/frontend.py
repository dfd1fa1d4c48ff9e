"""Audio in, frame features out: decode, mono, resample, log-mel, 0.96 s frames. The only place audio settings
live. ``FRONTENDS`` maps a front-end name to its class, so a pretrained front end can be added beside ``logmel``.

Every audio input passes ``load_audio``, which rejects empty, non-finite, too short or undecodable audio with an
``AudioError`` naming the source.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import librosa
import numpy as np
import soundfile as sf

from models.config import FrontEndConfig, FrontEndName
from models.errors import AudioError, UndecodableAudioError
from models.harmony import (
    Key,
    Tonality,
    chord_chroma,
    estimate_key,
    estimate_tempo,
    key_relative_chords,
    local_key_features,
    tonality,
)

# librosa's modules that compile numba gufuncs when imported (librosa imports them lazily, on first use). Processes
# that import them at once on a cold numba cache can leave it mixed, and every later process that loads it crashes
# (numba/numba#10128: a gufunc's two cache files are written apart); a process that starts workers imports these
# first, so that one process writes the cache.
LIBROSA_GUFUNC_MODULES = ("librosa.core.audio", "librosa.core.pitch", "librosa.util.utils", "librosa.beat")

MIN_SECONDS = 0.96
log = logging.getLogger(__name__)


def _decode(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """(samples, channels) float32 and the sample rate; soundfile first, librosa (audioread) as fallback."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        y, sr = sf.read(handle, dtype="float32", always_2d=True)
        return y, sr
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        if isinstance(source, bytes):
            raise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns before falling back to audioread, and about audioread
        y, sr = librosa.load(source, sr=None, mono=False)
    return np.atleast_2d(y).T.astype(np.float32), int(sr)


def load_audio(source: str | Path | bytes, *, sr: int, name: str | None = None) -> np.ndarray:
    """Decode ``source`` (a path or the file's bytes) to mono float32 at ``sr``.

    Raises
    ------
    AudioError
        if the audio cannot be decoded, is empty, holds NaN/inf samples or is shorter than ``MIN_SECONDS``.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "upload")
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise AudioError(f"{label}: audio file not found")
    if isinstance(source, bytes) and not source:
        raise AudioError(f"{label}: the file is empty")
    try:
        y, native_sr = _decode(source)
    except Exception as error:  # decoders raise many types for bad input; all mean "cannot decode"
        log.info("%s: %s: %s", label, type(error).__name__, error)  # the decoder's words stay in the log
        raise UndecodableAudioError(f"{label}: cannot decode audio: not a WAV, FLAC, OGG, MP3 or AIFF file, or "
                                    "a truncated one") from error
    return _check(y.mean(axis=1), native_sr=native_sr, sr=sr, label=label)


def _check(y: np.ndarray, *, native_sr: int, sr: int, label: str) -> np.ndarray:
    if y.size == 0:
        raise AudioError(f"{label}: the audio holds no samples")
    if not np.isfinite(y).all():
        raise AudioError(f"{label}: the audio holds NaN or infinite samples")
    if y.size / native_sr < MIN_SECONDS:
        raise AudioError(f"{label}: {y.size / native_sr:.2f} s of audio; need at least {MIN_SECONDS} s")
    if native_sr != sr:
        y = librosa.resample(y, orig_sr=native_sr, target_sr=sr, res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)


class FrontEnd(Protocol):
    config: FrontEndConfig
    n_features: int

    def __call__(self, y: np.ndarray) -> np.ndarray: ...


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


class LogMelFrontEnd:
    """Per 0.96 s frame, per mel band: mean and std of the log-mel energy and the mean positive spectral flux
    (onsets). Output (T, 3 * n_mels); T = floor(duration / 0.96), at least 1."""

    def __init__(self, config: FrontEndConfig) -> None:
        self.config = config
        self.n_features = config.n_features

    def log_mel(self, y: np.ndarray) -> np.ndarray:
        """(frames, n_mels) log-mel energies, one row per hop."""
        c = self.config
        power = np.abs(librosa.stft(y, n_fft=c.n_fft, hop_length=c.hop_length, window="hann", center=False)) ** 2
        mel = _mel_basis(c.sr, c.n_fft, c.n_mels, c.fmin, c.fmax) @ power
        return np.log(mel + 0.01).T

    def __call__(self, y: np.ndarray) -> np.ndarray:
        hops = self.config.hops_per_frame
        logmel = self.log_mel(y)
        n_frames = max(1, logmel.shape[0] // hops)
        logmel = np.pad(logmel, ((0, max(0, n_frames * hops - logmel.shape[0])), (0, 0)), mode="edge")
        patches = logmel[: n_frames * hops].reshape(n_frames, hops, -1)  # (T, hops, n_mels)
        flux = np.maximum(np.diff(patches, axis=1), 0.0).mean(axis=1)
        features = np.concatenate([patches.mean(axis=1), patches.std(axis=1), flux], axis=1)
        return features.astype(np.float32)


def _musicnn(config: FrontEndConfig) -> FrontEnd:
    from models.musicnn import MusicnnFrontEnd  # torch model with pretrained weights: loaded only when asked for

    return MusicnnFrontEnd(config)


def _student(config: FrontEndConfig) -> FrontEnd:
    from models.student import StudentFrontEnd  # distilled weights: loaded only when asked for

    return StudentFrontEnd(config)


class WithKeyFeatures:
    """Another front end's frames with the local key and tempo features appended to each
    (``models.harmony.local_key_features``: mode, key strength, tempo), after Kang & Herremans' key features."""

    def __init__(self, config: FrontEndConfig) -> None:
        self.config = config
        self.n_features = config.n_features
        self.base = make_frontend(replace(config, name=KEYED[config.name]))

    def extend(self, y: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """The base front end's (T, F) ``frames`` of ``y`` with the key features appended: (T, F + 3)."""
        key = local_key_features(y, self.config.sr, frame_seconds=self.config.frame_seconds, n_frames=frames.shape[0])
        return np.hstack([frames, key]).astype(np.float32)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        return self.extend(y, self.base(y))


class WithChordFeatures(WithKeyFeatures):
    """Another front end's frames with the key-relative chord shares appended to each
    (``models.harmony.key_relative_chords``): Kang & Herremans' chords, in a form the frame encoder reads."""

    def extend(self, y: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """The base front end's (T, F) ``frames`` of ``y`` with the chord shares appended: (T, F + 25)."""
        return self.heard(frames, chord_chroma(y, self.config.sr))[0]

    def heard(self, frames: np.ndarray, chroma: np.ndarray) -> tuple[np.ndarray, Key]:
        """``extend``'s frames and the clip's key, both from one ``chord_chroma`` of the clip."""
        key = estimate_key(chroma)
        chords = key_relative_chords(chroma, key, frame_seconds=self.config.frame_seconds, n_frames=frames.shape[0])
        return np.hstack([frames, chords]).astype(np.float32), key


def hear(frontend: FrontEnd, y: np.ndarray) -> tuple[np.ndarray, Tonality]:
    """The front end's (T, F) frames of ``y`` and the clip's tempo, key and mode (``models.harmony.tonality``), as
    the service stores them: a front end that reads chords shares its chroma and key with the analysis."""
    sr = frontend.config.sr
    if not isinstance(frontend, WithChordFeatures):
        return frontend(y), tonality(y, sr)
    frames, key = frontend.heard(frontend.base(y), chord_chroma(y, sr))
    return frames, Tonality(estimate_tempo(y, sr), key)


# A "-key" or "-chords" front end -> the front end whose frames it extends.
KEYED: dict[FrontEndName, FrontEndName] = {"musicnn-msd-tags-key": "musicnn-msd-tags",
                                  "student-msd-tags-key": "student-msd-tags",
                                  "musicnn-msd-tags-chords": "musicnn-msd-tags"}
FRONTENDS: dict[str, Callable[[FrontEndConfig], FrontEnd]] = {
    "logmel": LogMelFrontEnd, "musicnn-msd": _musicnn, "musicnn-msd-pool": _musicnn, "musicnn-msd-tags": _musicnn,
    "student-msd-tags": _student, **{name: WithKeyFeatures for name in KEYED},
    "musicnn-msd-tags-chords": WithChordFeatures,
}
# The settings each front end needs; `frontend_config(name)` gives them.
PRESETS: dict[FrontEndName, FrontEndConfig] = {
    "logmel": FrontEndConfig(),
    **{name: FrontEndConfig(name=name, n_fft=512, hop_length=256, n_mels=96, fmin=0.0, fmax=8000.0,
                            frame_seconds=187 * 256 / 16_000)  # musicnn's 3 s windows of 187 hops, no overlap
       for name in ("musicnn-msd", "musicnn-msd-pool", "musicnn-msd-tags", "student-msd-tags", *KEYED)},
}


def frontend_config(name: FrontEndName) -> FrontEndConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown front end {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]


def make_frontend(config: FrontEndConfig) -> FrontEnd:
    if config.name not in FRONTENDS:
        raise ValueError(f"unknown front end {config.name!r}; known: {sorted(FRONTENDS)}")
    return FRONTENDS[config.name](config)


def frame_times(n_frames: int, config: FrontEndConfig) -> np.ndarray:
    """Centre time in seconds of each feature frame."""
    return (np.arange(n_frames) + 0.5) * config.frame_seconds
