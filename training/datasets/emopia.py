"""EMOPIA (Hung et al., ISMIR 2021): pop piano clips with one Russell quadrant per clip.

Layout: ``ROOT/labels.csv`` (clip, quadrant 1-4, split train/val[/test]) and ``ROOT/midi/{clip}.mid``.
A quadrant is a class, not a rating: each clip gets the tag ``Q<n>``, the mood tags of its quadrant, and a curve
holding one point at the centre of the quadrant's region, marked ``label_type = "categorical"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import DatasetLayoutError
from models.manifest import SPLITS, Clip
from models.vocabulary import mood_tags
from training.datasets.common import read_csv, require

# Q1 high valence, high arousal; Q2 low V, high A; Q3 low V, low A; Q4 high V, low A.
QUADRANT_VA = {1: (0.5, 0.5), 2: (-0.5, 0.5), 3: (-0.5, -0.5), 4: (0.5, -0.5)}


def quadrant_of(valence: float, arousal: float) -> int:
    """Russell quadrant (1-4) of a VA point, in EMOPIA's numbering."""
    if valence >= 0:
        return 1 if arousal >= 0 else 4
    return 2 if arousal >= 0 else 3


def song_of(clip: str) -> str:
    """EMOPIA clip names read ``Q<n>_<youtube id>_<k>``; clips of one song share the id."""
    return clip.split("_", 1)[1].rsplit("_", 1)[0] if clip.count("_") >= 2 else clip


def read(root: Path) -> list[Clip]:
    """One clip per labelled MIDI clip; ``audio`` is the MIDI file."""
    labels, midi_dir = require(Path(root), "labels.csv", "midi")
    clips = []
    for row in read_csv(labels, columns=("clip", "quadrant", "split")):
        quadrant, split = int(row["quadrant"]), row["split"]
        if quadrant not in QUADRANT_VA or split not in SPLITS:
            raise DatasetLayoutError(f"{labels}: clip {row['clip']}: bad quadrant {quadrant} or split {split!r}")
        midi = midi_dir / f"{row['clip']}.mid"
        if not midi.is_file():
            raise DatasetLayoutError(f"{midi}: MIDI file for clip {row['clip']} in {labels} not found")
        v, a = QUADRANT_VA[quadrant]
        clips.append(Clip(
            id=f"emopia-{row['clip']}", audio=str(midi.resolve()), curve=np.array([[0.0, v, a]]),
            tags=(f"Q{quadrant}", *mood_tags(v, a)), title=song_of(row["clip"]), artist="", split=split,
            label_type="categorical", labels={"quadrant": f"Q{quadrant}"},
            extra={"quadrant": quadrant, "song": song_of(row["clip"])},
        ))
    return clips
