"""Harmony from audio: chroma, key and mode, tempo, and chords.

- Chroma: librosa's chroma filter bank over a 256 ms STFT (at 16 kHz) with a 32 ms hop, averaged into chord frames
  of ``CHORD_SECONDS`` (the constant-Q chroma costs 0.2 s per 30 s clip, the STFT one a fifth of it).
- Key and mode: the Krumhansl-Kessler key profiles (Krumhansl, "Cognitive Foundations of Musical Pitch", 1990)
  correlated with the clip's mean chroma, the usual chroma key-profile method; ``strength`` is the best
  correlation.
- Tempo: librosa's onset-autocorrelation tempo estimate, in beats per minute.
- Chords: 24 major/minor triads and "N" (no chord), in mir_eval's syntax ("C:maj", "A:min", "N"). A
  ``ChordRecognizer`` (a linear softmax over log-chroma with +-``CONTEXT`` frames of context; Viterbi smoothing
  with a self-transition prior lowered its scores on the validation renders, so there is none) is trained on
  rendered MIDI, where the chords are known (``training/chords.py``); its weights ship as
  ``models/chord_recognizer.npz``.
- Chords normalised to the key: each triad's root relative to the tonic, so "G:maj" in C major and "D:maj" in
  G major are the same token (the dominant). ``relative_tokens`` gives them as integers for the chord-sequence
  transformer: 0 = padding, 1 = no chord, 2 + 2 * interval + (0 major, 1 minor).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np

from models.atomic import atomic_file

PITCHES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
QUALITIES = ("maj", "min")
CHORDS = ("N", *(f"{p}:{q}" for q in QUALITIES for p in PITCHES))  # index 1 + 12 * quality + root
CHORD_SECONDS = 0.5  # one chord estimate per half second
CHROMA_HOP = 512  # samples at 16 kHz: 32 ms
# librosa's onset strength (spectral flux in dB, relative to the clip's loudest frame) that some moment of a clip
# with a beat exceeds: music and struck chords peak at 4.6-27, a steady sine at 0.05 and a swelling tone at 0.11
ONSET_FLOOR = 1.0
CHROMA_FFT = 4096  # 256 ms at 16 kHz: about 4 Hz per bin
CONTEXT = 2  # chord frames either side the recognizer reads
LOCAL_KEY_SECONDS = 12.0  # chroma span around each front-end frame for its key features
N_TOKENS = 2 + 24  # padding, no chord, 12 intervals x 2 qualities
RECOGNIZER = Path(__file__).with_name("chord_recognizer.npz")
# Krumhansl-Kessler probe-tone profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class, 0 = C
    mode: str  # "major" or "minor"
    strength: float  # correlation of the chroma with the key's profile, in [-1, 1]

    @property
    def name(self) -> str:
        return f"{PITCHES[self.tonic]} {self.mode}"


@dataclass(frozen=True)
class Tonality:
    """What the service stores per track: tempo, key and mode."""

    tempo_bpm: float
    key: Key


@lru_cache(maxsize=4)
def _chroma_filters(sr: int) -> np.ndarray:
    return librosa.filters.chroma(sr=sr, n_fft=CHROMA_FFT, n_chroma=12).astype(np.float32)


def chord_chroma(y: np.ndarray, sr: int) -> np.ndarray:
    """(frames, 12) chroma, one row per ``CHORD_SECONDS`` (the last partial frame dropped, at least one row)."""
    power = np.abs(librosa.stft(y, n_fft=CHROMA_FFT, hop_length=CHROMA_HOP)) ** 2
    chroma = _chroma_filters(sr) @ power
    chroma /= np.maximum(chroma.max(axis=0, keepdims=True), 1e-10)
    per_frame = max(1, round(CHORD_SECONDS * sr / CHROMA_HOP))
    n = max(1, chroma.shape[1] // per_frame)
    chroma = np.pad(chroma, ((0, 0), (0, max(0, n * per_frame - chroma.shape[1]))), mode="edge")
    return chroma[:, : n * per_frame].reshape(12, n, per_frame).mean(axis=2).T.astype(np.float32)


def estimate_key(chroma: np.ndarray) -> Key:
    """The best of the 24 Krumhansl-Kessler keys for (frames, 12) chroma."""
    profile = chroma.mean(axis=0)
    if not np.isfinite(profile).all() or profile.std() < 1e-8:
        return Key(0, "major", 0.0)
    correlations = _key_correlations(profile[None])[0]
    best = int(np.argmax(correlations))
    return Key(best % 12, "major" if best < 12 else "minor", float(correlations[best]))


def _key_correlations(profiles: np.ndarray) -> np.ndarray:
    """(N, 24) Pearson correlation of each (N, 12) chroma profile with the 12 major then the 12 minor keys."""
    templates = np.stack([np.roll(t, tonic) for t in (MAJOR_PROFILE, MINOR_PROFILE) for tonic in range(12)])
    templates = (templates - templates.mean(axis=1, keepdims=True)) / templates.std(axis=1, keepdims=True)
    centred = profiles - profiles.mean(axis=1, keepdims=True)
    spread = centred.std(axis=1, keepdims=True)
    z = np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 1e-8)
    return z @ templates.T / 12.0


def local_key_features(y: np.ndarray, sr: int, *, frame_seconds: float, n_frames: int,
                       context_seconds: float = LOCAL_KEY_SECONDS) -> np.ndarray:
    """(n_frames, 3) key and tempo features per front-end frame: mode (the best major key's correlation minus
    the best minor key's, so > 0 leans major), key strength (the best correlation), both from the chroma of
    ``context_seconds`` around the frame's centre, and the clip's tempo / 200 BPM. Local, so a looped clip keeps
    its features and a modulation shows on the curve."""
    chroma = chord_chroma(y, sr)
    sums = np.vstack([np.zeros((1, 12)), np.cumsum(chroma, axis=0)])
    centres = (np.arange(n_frames) + 0.5) * frame_seconds / CHORD_SECONDS
    half = context_seconds / 2 / CHORD_SECONDS
    lo = np.clip(np.floor(centres - half), 0, chroma.shape[0] - 1).astype(int)
    hi = np.clip(np.ceil(centres + half), lo + 1, chroma.shape[0]).astype(int)
    corr = _key_correlations((sums[hi] - sums[lo]) / (hi - lo)[:, None])
    mode = corr[:, :12].max(axis=1) - corr[:, 12:].max(axis=1)
    tempo = np.full(n_frames, estimate_tempo(y, sr) / 200.0)
    return np.stack([mode, corr.max(axis=1), tempo], axis=1).astype(np.float32)


def key_relative_chords(chroma: np.ndarray, key: Key, *, frame_seconds: float, n_frames: int,
                        chords: ChordRecognizer | None = None) -> np.ndarray:
    """(n_frames, 25) the recognizer's chord posteriors of ``chord_chroma`` averaged over each front-end frame,
    relative to ``key``: no chord, then the 12 intervals from the tonic as major triads, then as minor ones (so I,
    IV and V read alike in every key). What a piece's harmony says, whatever instrument plays it; a frame past the
    audio's end repeats the last chord frame's."""
    p = (chords or recognizer()).probabilities(chroma)
    tonic = key.tonic
    p = np.hstack([p[:, :1], np.roll(p[:, 1:13], -tonic, axis=1), np.roll(p[:, 13:], -tonic, axis=1)])
    sums = np.vstack([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])
    per_frame = frame_seconds / CHORD_SECONDS
    lo = np.clip(np.floor(np.arange(n_frames) * per_frame), 0, p.shape[0] - 1).astype(int)
    hi = np.clip(np.ceil((np.arange(n_frames) + 1) * per_frame), lo + 1, p.shape[0]).astype(int)
    return ((sums[hi] - sums[lo]) / (hi - lo)[:, None]).astype(np.float32)


def estimate_tempo(y: np.ndarray, sr: int) -> float:
    """Beats per minute (librosa's estimate from the onset-strength autocorrelation); 0 for a clip without
    onsets: one whose onset strength never reaches ``ONSET_FLOOR`` (a steady tone, a drone, a slow swell)."""
    onset = librosa.onset.onset_strength(y=y, sr=sr, hop_length=CHROMA_HOP)
    if onset.max(initial=0.0) < ONSET_FLOOR:
        return 0.0
    return float(librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=CHROMA_HOP)[0])


def chord_features(chroma: np.ndarray) -> np.ndarray:
    """(frames, 12 * (2 * CONTEXT + 1)) inputs of the recognizer: log chroma normalised per frame, with context."""
    x = np.log1p(10.0 * chroma / np.maximum(chroma.max(axis=1, keepdims=True), 1e-6))
    padded = np.pad(x, ((CONTEXT, CONTEXT), (0, 0)), mode="edge")
    return np.hstack([padded[i : i + x.shape[0]] for i in range(2 * CONTEXT + 1)]).astype(np.float32)


class ChordRecognizer:
    """Linear softmax over ``chord_features``: chroma -> chord indices into ``CHORDS``."""

    def __init__(self, weights: np.ndarray, bias: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
        self.weights, self.bias, self.mean, self.std = weights, bias, mean, std

    @classmethod
    def load(cls, path: Path = RECOGNIZER) -> ChordRecognizer:
        data = np.load(path)
        return cls(data["weights"], data["bias"], data["mean"], data["std"])

    def save(self, path: Path) -> None:
        with atomic_file(path) as out:
            np.savez(out, weights=self.weights, bias=self.bias, mean=self.mean, std=self.std)

    def probabilities(self, chroma: np.ndarray) -> np.ndarray:
        """(frames, 25) chord posteriors, frame by frame."""
        logits = ((chord_features(chroma) - self.mean) / self.std) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def chords(self, chroma: np.ndarray) -> np.ndarray:
        """(frames,) the most probable chord of each frame."""
        return self.probabilities(chroma).argmax(axis=1).astype(np.int64)


@lru_cache(maxsize=1)
def recognizer() -> ChordRecognizer:
    """The shipped recognizer (loaded once per process)."""
    return ChordRecognizer.load()


def relative_tokens(chords: np.ndarray, key: Key) -> np.ndarray:
    """Chord indices -> key-relative tokens (see the module docstring)."""
    chords = np.asarray(chords)
    quality, root = (chords - 1) // 12, (chords - 1) % 12
    interval = (root - key.tonic) % 12
    return np.where(chords == 0, 1, 2 + 2 * interval + quality).astype(np.int64)


def chord_labels(chords: np.ndarray) -> list[str]:
    return [CHORDS[int(c)] for c in chords]


def tonality(y: np.ndarray, sr: int) -> Tonality:
    """Tempo, key and mode of mono audio."""
    return Tonality(estimate_tempo(y, sr), estimate_key(chord_chroma(y, sr)))


@dataclass(frozen=True)
class Harmony:
    """Tempo, key, mode and the chord sequence of a clip."""

    tonality: Tonality
    chords: np.ndarray  # (frames,) indices into CHORDS, one per CHORD_SECONDS

    @property
    def tokens(self) -> np.ndarray:
        """The chords relative to the key (``relative_tokens``)."""
        return relative_tokens(self.chords, self.tonality.key)

    def scalars(self) -> np.ndarray:
        """(3,) mode (1 major, 0 minor), key strength, tempo / 200 BPM: the key and tempo features."""
        key = self.tonality.key
        return np.array([key.mode == "major", key.strength, self.tonality.tempo_bpm / 200.0], dtype=np.float32)


def harmony(y: np.ndarray, sr: int, *, chords: ChordRecognizer | None = None) -> Harmony:
    """Tempo, key, mode and chords of mono audio (the shipped recognizer unless ``chords`` is given)."""
    chroma = chord_chroma(y, sr)
    return Harmony(Tonality(estimate_tempo(y, sr), estimate_key(chroma)), (chords or recognizer()).chords(chroma))
