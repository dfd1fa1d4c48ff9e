"""MIDI -> note events (mido), and the renderers: the built-in synthesizer and FluidSynth, each plain or varied.

``RENDERERS`` maps a renderer name to ``render(path) -> (y, duration)``: float32 mono audio at ``SR`` and the MIDI's
own length in seconds. Every renderer returns ``duration + TAIL`` seconds so that their outputs line up.

``builtin-varied`` is the built-in synthesizer with a different production per file (seeded by the file's name, so
a render is reproducible): each channel's General MIDI program gets a random built-in timbre, the piece is
transposed by up to ``MAX_TRANSPOSE`` semitones, and the mix gets a random room, a spectral tilt, sometimes a band
limit (a telephone or an old recording), noise and a level. ``fluidsynth-varied`` draws the same production but
plays the piece with FluidSynth on another soundfont than the ``fluidsynth`` renderer's, each channel on a random
General MIDI program (``training.corpus.fluidsynth``). Training on them keeps a model from learning one timbre
(docs/experiments.md, "Renderer augmentation").
"""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import mido
import numpy as np

from models.errors import MidiError, RendererUnavailableError
from training.corpus.fluidsynth import (
    DRUM_CHANNEL,
    MELODIC_PROGRAMS,
    fluidsynth_binary,
    reorchestrate,
    run_fluidsynth,
    soundfont,
    varied_soundfonts,
)
from training.corpus.synth import SR, TIMBRES, Note, master, render_notes, reverb

TAIL = 1.0  # seconds of release after the last MIDI event
BUILTIN_GAIN = 1.0

# General MIDI program ranges -> built-in timbres (GM 1 families of eight programs).
_GM_FAMILIES = ("piano", "bell", "organ", "pluck", "bass", "strings", "strings", "brass", "clarinet",
                "flute", "brass", "pad", "pad", "pluck", "marimba", "pad")
_GM_DRUMS = {35: "kick", 36: "kick", 38: "snare", 39: "snare", 40: "snare"}


@dataclass(frozen=True)
class MidiNote:
    start: float
    end: float
    pitch: int
    velocity: int
    program: int
    channel: int


class _Channel:
    """Per-channel state while reading: program, sustain pedal, sounding and pedal-held notes."""

    def __init__(self) -> None:
        self.program, self.pedal = 0, False
        self.sounding: dict[int, tuple[float, int]] = {}
        self.held: dict[int, tuple[float, int]] = {}


def read_midi(path: str | Path) -> tuple[list[MidiNote], float]:
    """Notes (sustain pedal applied) and length in seconds of a MIDI file.

    Raises
    ------
    MidiError
        naming the file if it is missing, cannot be parsed or holds no notes.
    """
    path = Path(path)
    if not path.is_file():
        raise MidiError(f"{path}: MIDI file not found")
    try:
        midi = mido.MidiFile(path)
        notes, now = _collect(midi)
    except (OSError, ValueError, EOFError, KeyError, IndexError) as error:
        raise MidiError(f"{path}: not a readable MIDI file ({error})") from error
    if not notes:
        raise MidiError(f"{path}: the MIDI file holds no notes")
    return notes, max(now, max(n.end for n in notes))


def _collect(midi: mido.MidiFile) -> tuple[list[MidiNote], float]:
    channels = [_Channel() for _ in range(16)]
    notes: list[MidiNote] = []
    now = 0.0
    for message in midi:
        now += message.time
        if message.is_meta or not hasattr(message, "channel"):
            continue
        state = channels[message.channel]
        notes += _apply(message, state, now)
    for channel, state in enumerate(channels):
        for pitch, (start, velocity) in {**state.held, **state.sounding}.items():
            notes.append(MidiNote(start, now, pitch, velocity, state.program, channel))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes, now


def _apply(message: mido.Message, state: _Channel, now: float) -> list[MidiNote]:
    """Update channel state; return the notes this message ends."""
    ended: list[MidiNote] = []
    if message.type == "program_change":
        state.program = message.program
    elif message.type == "control_change" and message.control == 64:
        state.pedal = message.value >= 64
        if not state.pedal:
            ended = [_note(p, sv, state, message.channel, now) for p, sv in state.held.items()]
            state.held.clear()
    elif message.type == "note_on" and message.velocity > 0:
        for table in (state.sounding, state.held):
            if message.note in table:
                ended.append(_note(message.note, table.pop(message.note), state, message.channel, now))
        state.sounding[message.note] = (now, message.velocity)
    elif message.type in ("note_off", "note_on") and message.note in state.sounding:
        start_velocity = state.sounding.pop(message.note)
        if state.pedal:
            state.held[message.note] = start_velocity
        else:
            ended.append(_note(message.note, start_velocity, state, message.channel, now))
    return ended


def _note(pitch: int, start_velocity: tuple[float, int], state: _Channel, channel: int, now: float) -> MidiNote:
    start, velocity = start_velocity
    return MidiNote(start, max(now, start + 0.01), pitch, velocity, state.program, channel)


def _synth_note(note: MidiNote, *, timbres: dict[int, str] | None = None, transpose: int = 0) -> Note | None:
    """The built-in synthesizer's note for a MIDI note; ``timbres`` replaces the General MIDI family of a channel."""
    level = note.velocity / 127.0
    if note.channel == DRUM_CHANNEL:
        return Note(note.start, 0.2, 0, 0.3 * level, _GM_DRUMS.get(note.pitch, "hat"))
    instrument = (timbres or {}).get(note.channel) or _GM_FAMILIES[note.program // 8]
    return Note(note.start, note.end - note.start, note.pitch + transpose, 0.3 * level**1.5, instrument,
                0.2 + 0.6 * level)


def render_builtin(path: str | Path) -> tuple[np.ndarray, float]:
    """Render with the project's own synthesizer (no system packages)."""
    notes, duration = read_midi(path)
    synth_notes = [n for n in map(_synth_note, notes) if n is not None]
    y = render_notes(synth_notes, seconds=duration + TAIL)
    return master(reverb(y, wet=0.15), gain=BUILTIN_GAIN), duration


MAX_TRANSPOSE = 3  # semitones either way (a key change a listener would not call another mood)
_MELODIC = tuple(sorted(TIMBRES))


@dataclass(frozen=True)
class Production:
    """One random production of a piece: timbre per channel, transposition, room, tilt, band limit, noise, level."""

    timbres: dict[int, str]
    transpose: int
    wet: float  # reverb mix
    rt60: float  # seconds
    tilt: float  # spectral slope change in dB per octave around 1 kHz
    band: tuple[float, float] | None  # Hz: a band-pass of the whole mix, or None
    snr_db: float
    gain: float  # master gain (the limiter's drive)


def production(seed: int) -> Production:
    """The production a seed draws (``builtin-varied``)."""
    rng = np.random.default_rng(seed)
    band = (float(rng.uniform(80, 400)), float(rng.uniform(3000, 7000))) if rng.random() < 0.3 else None
    return Production(timbres={channel: str(rng.choice(_MELODIC)) for channel in range(16)},
                      transpose=int(rng.integers(-MAX_TRANSPOSE, MAX_TRANSPOSE + 1)),
                      wet=float(rng.uniform(0.0, 0.4)), rt60=float(rng.uniform(0.4, 2.5)),
                      tilt=float(rng.uniform(-3.0, 3.0)), band=band, snr_db=float(rng.uniform(25, 60)),
                      gain=float(10 ** (rng.uniform(-6, 6) / 20)))


def produce(y: np.ndarray, p: Production, *, seed: int) -> np.ndarray:
    """Apply a production's room, tilt, band limit, level and noise to a dry mix."""
    y = reverb(y, wet=p.wet, rt60=p.rt60, seed=seed)
    spectrum = np.fft.rfft(y)
    hz = np.maximum(np.fft.rfftfreq(y.size, 1.0 / SR), 20.0)
    response = 10 ** (p.tilt * np.log2(hz / 1000.0) / 20)
    if p.band is not None:
        low, high = p.band
        response = response / np.sqrt(1 + (low / hz) ** 4) / np.sqrt(1 + (hz / high) ** 8)
    y = np.fft.irfft(spectrum * response, n=y.size).astype(np.float32)
    y = master(y, gain=p.gain * BUILTIN_GAIN)
    rms = float(np.sqrt(np.mean(y**2))) if y.size else 0.0
    noise = np.random.default_rng(seed + 1).standard_normal(y.size).astype(np.float32)
    return (y + noise * rms * 10 ** (-p.snr_db / 20)).astype(np.float32)


def render_builtin_varied(path: str | Path) -> tuple[np.ndarray, float]:
    """The built-in synthesizer with a production drawn from the file's name (module docstring)."""
    seed = zlib.crc32(Path(path).name.encode())
    p = production(seed)
    notes, duration = read_midi(path)
    synth_notes = [n for n in (_synth_note(m, timbres=p.timbres, transpose=p.transpose) for m in notes)
                   if n is not None]
    return produce(render_notes(synth_notes, seconds=duration + TAIL, seed=seed), p, seed=seed), duration


def _fit(y: np.ndarray, duration: float) -> np.ndarray:
    """Cut or pad a render to ``duration + TAIL`` seconds."""
    size = int((duration + TAIL) * SR)
    return np.pad(y[:size], (0, max(0, size - y.shape[0]))).astype(np.float32)


def render_fluidsynth(path: str | Path) -> tuple[np.ndarray, float]:
    """Render with FluidSynth and a General MIDI soundfont; mono at SR, cut or padded to duration + TAIL."""
    _, duration = read_midi(path)
    return _fit(run_fluidsynth(Path(path), soundfont()), duration), duration


def render_fluidsynth_varied(path: str | Path) -> tuple[np.ndarray, float]:
    """FluidSynth with a production drawn from the file's name: one of ``VARIED_SOUNDFONTS`` (never the
    ``fluidsynth`` renderer's FluidR3), a random General MIDI program per channel and a transposition, then
    ``builtin-varied``'s room, tilt, band limit, noise and level."""
    seed = zlib.crc32(Path(path).name.encode())
    p, rng = production(seed), np.random.default_rng(seed + 2)
    _, duration = read_midi(path)
    fonts = varied_soundfonts()
    programs = {channel: int(rng.integers(MELODIC_PROGRAMS)) for channel in range(16)}
    with tempfile.TemporaryDirectory() as tmp:
        midi = reorchestrate(Path(path), Path(tmp) / "varied.mid", programs=programs, transpose=p.transpose)
        y = run_fluidsynth(midi, fonts[int(rng.integers(len(fonts)))])
    return produce(_fit(y, duration), p, seed=seed), duration


Renderer = Literal["builtin", "builtin-varied", "fluidsynth", "fluidsynth-varied"]
RENDERERS: dict[str, Callable[[str | Path], tuple[np.ndarray, float]]] = {
    "builtin": render_builtin,
    "builtin-varied": render_builtin_varied,
    "fluidsynth": render_fluidsynth,
    "fluidsynth-varied": render_fluidsynth_varied,
}


def check_renderer(name: str) -> None:
    """Fail before any work starts if a renderer cannot run here."""
    if name not in RENDERERS:
        raise RendererUnavailableError(f"unknown renderer {name!r}; choose one of {sorted(RENDERERS)}")
    if name.startswith("fluidsynth"):
        fluidsynth_binary()
        if name == "fluidsynth":
            soundfont()
        else:
            varied_soundfonts()
