"""MIDI -> note events (mido), and the two renderers: the built-in synthesizer and FluidSynth.

``RENDERERS`` maps a renderer name to ``render(path) -> (y, duration)``: float32 mono audio at ``SR`` and the MIDI's
own length in seconds. Both renderers return ``duration + TAIL`` seconds so that their outputs line up.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import mido
import numpy as np
import soundfile as sf

from models.errors import MidiError, RendererUnavailableError
from training.corpus.synth import SR, Note, master, render_notes, reverb

TAIL = 1.0  # seconds of release after the last MIDI event
DRUM_CHANNEL = 9
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
FLUIDSYNTH_GAIN = 1.0
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


def _synth_note(note: MidiNote) -> Note | None:
    level = note.velocity / 127.0
    if note.channel == DRUM_CHANNEL:
        return Note(note.start, 0.2, 0, 0.3 * level, _GM_DRUMS.get(note.pitch, "hat"))
    instrument = _GM_FAMILIES[note.program // 8]
    return Note(note.start, note.end - note.start, note.pitch, 0.3 * level**1.5, instrument, 0.2 + 0.6 * level)


def render_builtin(path: str | Path) -> tuple[np.ndarray, float]:
    """Render with the project's own synthesizer (no system packages)."""
    notes, duration = read_midi(path)
    synth_notes = [n for n in map(_synth_note, notes) if n is not None]
    y = render_notes(synth_notes, seconds=duration + TAIL)
    return master(reverb(y, wet=0.15), gain=BUILTIN_GAIN), duration


def soundfont() -> Path:
    """The General MIDI soundfont: ``MOODSPACE_SOUNDFONT`` or Debian's fluid-soundfont-gm."""
    candidates = [os.environ.get("MOODSPACE_SOUNDFONT", ""), *SOUNDFONTS]
    for candidate in filter(None, candidates):
        if Path(candidate).is_file():
            return Path(candidate)
    raise RendererUnavailableError(
        "no General MIDI soundfont found: install Debian's fluid-soundfont-gm "
        "(apt-get install fluidsynth fluid-soundfont-gm), set MOODSPACE_SOUNDFONT, or use --renderer builtin"
    )


def fluidsynth_binary() -> str:
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise RendererUnavailableError(
            "FluidSynth is not installed: apt-get install fluidsynth fluid-soundfont-gm, or use --renderer builtin"
        )
    return binary


def render_fluidsynth(path: str | Path) -> tuple[np.ndarray, float]:
    """Render with FluidSynth and a General MIDI soundfont; mono at SR, cut or padded to duration + TAIL."""
    _, duration = read_midi(path)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        command = [fluidsynth_binary(), "-ni", "-q", "-g", str(FLUIDSYNTH_GAIN), "-r", str(SR), "-T", "wav",
                   "-F", str(wav), str(soundfont()), str(path)]
        result = subprocess.run(command, capture_output=True, timeout=600, check=False)
        if result.returncode != 0 or not wav.is_file():
            raise MidiError(f"{path}: FluidSynth failed ({result.stderr.decode(errors='replace').strip()[:200]})")
        y, sr = sf.read(wav, dtype="float32", always_2d=True)
    assert sr == SR, sr
    y = y.mean(axis=1)
    size = int((duration + TAIL) * SR)
    return np.pad(y[:size], (0, max(0, size - y.shape[0]))), duration


Renderer = Literal["builtin", "fluidsynth"]
RENDERERS: dict[str, Callable[[str | Path], tuple[np.ndarray, float]]] = {
    "builtin": render_builtin,
    "fluidsynth": render_fluidsynth,
}


def check_renderer(name: str) -> None:
    """Fail before any work starts if a renderer cannot run here."""
    if name not in RENDERERS:
        raise RendererUnavailableError(f"unknown renderer {name!r}; choose one of {sorted(RENDERERS)}")
    if name == "fluidsynth":
        fluidsynth_binary()
        soundfont()
