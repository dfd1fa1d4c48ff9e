"""A small additive/FM synthesizer: notes -> mono audio. Used by the generator and the built-in MIDI renderer.

Timbres are band-limited harmonic wavetables (only partials below Nyquist are summed) with two brightness
levels crossfaded over time (bright attack fading to a darker tone, as in struck and plucked strings), FM pairs
for bells and electric pianos, and noise/sine models for drums. Everything is numpy; a note costs a few vector
operations over its samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import fftconvolve

SR = 16_000
TABLE_SIZE = 4096
BRIGHTNESS_LEVELS = 8


@dataclass(frozen=True)
class Note:
    """One note event. ``pitch`` is a MIDI number; ``velocity`` a linear amplitude on [0, 1]."""

    start: float
    duration: float
    pitch: float
    velocity: float
    instrument: str
    brightness: float = 0.5


@dataclass(frozen=True)
class Timbre:
    slope_bright: float  # partial k has amplitude k**-slope at full brightness
    slope_dark: float  # ... and at zero brightness
    attack: float  # seconds
    decay: float  # exponential decay time constant in seconds at middle C; 0 = sustained
    release: float  # seconds
    tone_decay: float = 0.0  # time constant of the bright-to-dark crossfade; 0 = constant tone
    vibrato: float = 0.0  # depth in semitones
    odd_only: bool = False
    fm_ratio: float = 0.0  # > 0: FM pair (carrier : modulator = 1 : fm_ratio) instead of a wavetable
    fm_index: float = 0.0


TIMBRES: dict[str, Timbre] = {
    "piano": Timbre(1.1, 2.6, attack=0.004, decay=1.1, release=0.18, tone_decay=0.35),
    "epiano": Timbre(0, 0, attack=0.003, decay=1.4, release=0.2, fm_ratio=1.0, fm_index=1.8),
    "bell": Timbre(0, 0, attack=0.002, decay=1.8, release=0.4, fm_ratio=3.5, fm_index=2.5),
    "organ": Timbre(1.4, 2.4, attack=0.012, decay=0.0, release=0.06),
    "strings": Timbre(0.9, 2.0, attack=0.16, decay=0.0, release=0.35, vibrato=0.12),
    "pad": Timbre(1.5, 3.0, attack=0.45, decay=0.0, release=0.7, vibrato=0.05),
    "pluck": Timbre(0.8, 2.6, attack=0.002, decay=0.55, release=0.08, tone_decay=0.07),
    "marimba": Timbre(2.6, 4.0, attack=0.002, decay=0.3, release=0.05, tone_decay=0.04),
    "flute": Timbre(2.4, 3.6, attack=0.07, decay=0.0, release=0.12, vibrato=0.15),
    "clarinet": Timbre(1.2, 2.4, attack=0.04, decay=0.0, release=0.1, odd_only=True),
    "brass": Timbre(0.7, 1.8, attack=0.06, decay=0.0, release=0.12, tone_decay=0.25),
    "bass": Timbre(1.6, 3.0, attack=0.005, decay=0.9, release=0.08, tone_decay=0.15),
}
DRUMS = ("kick", "snare", "hat")


def midi_to_hz(pitch: float | np.ndarray) -> float | np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(pitch) - 69.0) / 12.0)


@lru_cache(maxsize=4096)
def _wavetable(slope: float, n_partials: int, odd_only: bool) -> np.ndarray:
    """One period of sum_k k**-slope sin(2 pi k x), peak-normalised; shape (TABLE_SIZE,)."""
    k = np.arange(1, n_partials + 1)
    amplitudes = k.astype(np.float64) ** -slope
    if odd_only:
        amplitudes[1::2] = 0.0
    x = np.arange(TABLE_SIZE) / TABLE_SIZE
    table = amplitudes @ np.sin(2 * np.pi * np.outer(k, x))
    return (table / np.abs(table).max()).astype(np.float32)


def _slope(timbre: Timbre, brightness: float) -> float:
    level = round(float(np.clip(brightness, 0, 1)) * (BRIGHTNESS_LEVELS - 1)) / (BRIGHTNESS_LEVELS - 1)
    return timbre.slope_dark + (timbre.slope_bright - timbre.slope_dark) * level


def _envelope(timbre: Timbre, *, t: np.ndarray, duration: float, pitch: float) -> np.ndarray:
    attack = np.minimum(t / max(timbre.attack, 1e-4), 1.0)
    body = np.exp(-t / (timbre.decay * 2.0 ** ((60.0 - pitch) / 24.0))) if timbre.decay > 0 else np.ones_like(t)
    release = np.exp(-np.maximum(t - duration, 0.0) / max(timbre.release / 4.0, 1e-3))
    return attack * body * release


def _phase(timbre: Timbre, *, t: np.ndarray, hz: float) -> np.ndarray:
    """Phase in cycles, with vibrato at 5.5 Hz."""
    phase = hz * t
    if timbre.vibrato > 0:
        deviation = hz * (2.0 ** (timbre.vibrato / 12.0) - 1.0)
        phase = phase + deviation / (2 * np.pi * 5.5) * np.sin(2 * np.pi * 5.5 * t) * (t > 0.25)
    return phase


def _tone(timbre: Timbre, *, t: np.ndarray, hz: float, brightness: float) -> np.ndarray:
    phase = _phase(timbre, t=t, hz=hz)
    if timbre.fm_ratio > 0:
        index = timbre.fm_index * (0.4 + brightness) * np.exp(-t / 0.6)
        index *= min(1.0, SR / 2 / (hz * (timbre.fm_ratio * 3 + 1)))
        return np.sin(2 * np.pi * phase + index * np.sin(2 * np.pi * timbre.fm_ratio * phase))
    n_partials = max(1, min(40, int(0.45 * SR / hz)))
    idx = ((phase % 1.0) * TABLE_SIZE).astype(np.int64) % TABLE_SIZE
    bright = _wavetable(_slope(timbre, brightness), n_partials, timbre.odd_only)[idx]
    if timbre.tone_decay <= 0:
        return bright
    dark = _wavetable(_slope(timbre, brightness * 0.3), n_partials, timbre.odd_only)[idx]
    w = np.exp(-t / timbre.tone_decay)
    return w * bright + (1.0 - w) * dark


def _drum(name: str, *, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if name == "kick":
        hz = 45.0 + 90.0 * np.exp(-t / 0.03)
        return np.sin(2 * np.pi * np.cumsum(hz) / SR) * np.exp(-t / 0.18)
    noise = rng.standard_normal(t.size)
    if name == "snare":
        return (0.7 * noise + 0.5 * np.sin(2 * np.pi * 185.0 * t)) * np.exp(-t / 0.09)
    return np.diff(noise, prepend=0.0) * 0.5 * np.exp(-t / 0.035)


def note_samples(note: Note, *, rng: np.random.Generator) -> np.ndarray:
    """Audio of one note, including its release tail."""
    if note.instrument in DRUMS:
        t = np.arange(int(0.4 * SR)) / SR
        return (note.velocity * _drum(note.instrument, t=t, rng=rng)).astype(np.float32)
    timbre = TIMBRES[note.instrument]
    hz = float(midi_to_hz(note.pitch))
    length = note.duration + timbre.release
    if timbre.decay > 0:
        length = min(length, note.duration + timbre.release, 6.0 * timbre.decay + 0.05)
    t = np.arange(max(1, int(length * SR))) / SR
    envelope = _envelope(timbre, t=t, duration=note.duration, pitch=note.pitch)
    tone = _tone(timbre, t=t, hz=hz, brightness=note.brightness)
    return (note.velocity * envelope * tone).astype(np.float32)


def render_notes(notes: list[Note], *, seconds: float, seed: int = 0) -> np.ndarray:
    """Mix notes into a mono float32 buffer of ``seconds`` (notes past the end are cut)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * SR), dtype=np.float32)
    for note in notes:
        start = int(note.start * SR)
        if start >= y.size:
            continue
        samples = note_samples(note, rng=rng)[: y.size - start]
        y[start : start + samples.size] += samples
    return y


def reverb(y: np.ndarray, *, wet: float, rt60: float = 1.2, seed: int = 0) -> np.ndarray:
    """Mix in a synthetic room: exponentially decaying, low-passed noise as the impulse response."""
    if wet <= 0:
        return y
    rng = np.random.default_rng(seed)
    t = np.arange(int(rt60 * SR)) / SR
    ir = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    ir = np.convolve(ir, np.ones(4) / 4, mode="same")
    ir /= np.sqrt(np.sum(ir**2))
    tail = fftconvolve(y, ir.astype(np.float32))[: y.size]
    return ((1.0 - wet) * y + wet * tail).astype(np.float32)


def master(y: np.ndarray, *, gain: float = 1.0) -> np.ndarray:
    """Fixed master gain and a soft limiter. Never normalises per clip: loudness is a cue."""
    return np.tanh(gain * y).astype(np.float32)
