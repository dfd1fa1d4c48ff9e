"""Readers for labelled data sets, one module each. Music readers return ``Clip``s whose ``audio`` is the source
file (MIDI for vgmidi/emopia, audio for deam/pmemo/emomusic); ``emobank`` returns sentences."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from models.manifest import Clip
from training.datasets import deam, emomusic, emopia, fourq, mirex_mm, pmemo, vgmidi

MidiDataset = Literal["vgmidi", "emopia"]
AudioDataset = Literal["deam", "pmemo", "emomusic", "4q", "mirex_mm"]
MIDI_READERS: dict[str, Callable[[Path], list[Clip]]] = {"vgmidi": vgmidi.read, "emopia": emopia.read}
AUDIO_READERS: dict[str, Callable[[Path], list[Clip]]] = {
    "deam": deam.read, "pmemo": pmemo.read, "emomusic": emomusic.read, "4q": fourq.read, "mirex_mm": mirex_mm.read,
}
