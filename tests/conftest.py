"""Shared fixtures: tiny, seeded inputs so the suite runs in minutes on two cores."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest


def write_midi(path: Path, notes: list[tuple[float, float, int]], *, bpm: float = 120.0, pedal: tuple = ()) -> Path:
    """A one-track MIDI file; ``notes`` are (start_beat, length_beats, pitch); ``pedal`` (down_beat, up_beat)."""
    tpb = 480
    events = []
    for start, length, pitch in notes:
        events.append((start, 1, mido.Message("note_on", note=pitch, velocity=90)))
        events.append((start + length, 0, mido.Message("note_off", note=pitch, velocity=0)))
    if pedal:
        events.append((pedal[0], 1, mido.Message("control_change", control=64, value=127)))
        events.append((pedal[1], 0, mido.Message("control_change", control=64, value=0)))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0)])
    now = 0
    for beat, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        tick = round(beat * tpb)
        track.append(message.copy(time=tick - now))
        now = tick
    midi = mido.MidiFile(ticks_per_beat=tpb)
    midi.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(path)
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
