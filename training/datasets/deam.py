"""DEAM, the MediaEval Database for Emotional Analysis in Music (Aljanaki, Yang & Soleymani, PLOS ONE 2017).

Published layout under ROOT::

    DEAM_audio/MEMD_audio/{song_id}.mp3
    DEAM_Annotations/annotations/annotations averaged per song/song_level/
        static_annotations_averaged_songs_1_2000.csv        song_id, valence_mean, valence_std,
        static_annotations_averaged_songs_2000_2058.csv      arousal_mean, arousal_std (1-9 scale)
    DEAM_Annotations/annotations/annotations averaged per song/dynamic (per second annotations)/
        arousal.csv, valence.csv                             song_id, sample_15000ms, sample_15500ms, ... ([-1, 1])

Dynamic annotations run at 2 Hz and start 15 s into each clip (the first 15 s were left unannotated while
listeners settled); times are kept as audio time, so a curve starts at t = 15 s. Static ratings map from 1-9 to
[-1, 1] and are used where a song has no dynamic curve. Songs 2001-2058 (MediaEval 2015 evaluation) form the
test split; the rest are split by a stable hash of the id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.manifest import Clip
from models.vocabulary import mood_tags
from training.datasets.common import (
    audio_file,
    from_1_9,
    join_va,
    read_csv,
    read_wide_dynamic,
    require,
    stable_fraction,
)

ANNOTATIONS = "DEAM_Annotations/annotations/annotations averaged per song"
STATIC = (f"{ANNOTATIONS}/song_level/static_annotations_averaged_songs_1_2000.csv",
          f"{ANNOTATIONS}/song_level/static_annotations_averaged_songs_2000_2058.csv")
DYNAMIC = f"{ANNOTATIONS}/dynamic (per second annotations)"
AUDIO = "DEAM_audio/MEMD_audio"
STATIC_COLUMNS = ("song_id", "valence_mean", "valence_std", "arousal_mean", "arousal_std")


def _static(root: Path) -> dict[str, tuple[float, float, float, float]]:
    """song_id -> (valence, v_std, arousal, a_std) on [-1, 1] (std scaled by the same factor)."""
    result = {}
    for relative in STATIC:
        if (root / relative).is_file():
            for row in read_csv(root / relative, columns=STATIC_COLUMNS):
                v, vs, a, as_ = (float(row[c]) for c in STATIC_COLUMNS[1:])
                result[row["song_id"]] = (from_1_9(v), vs / 4.0, from_1_9(a), as_ / 4.0)
    return result


def _split(song_id: str) -> str:
    if int(song_id) > 2000:
        return "test"
    return "val" if stable_fraction(f"deam-{song_id}") < 0.1 else "train"


def read(root: Path) -> list[Clip]:
    root = Path(root)
    require(root, STATIC[0], f"{DYNAMIC}/valence.csv", f"{DYNAMIC}/arousal.csv", AUDIO)
    static = _static(root)
    valence = read_wide_dynamic(root / DYNAMIC / "valence.csv")
    arousal = read_wide_dynamic(root / DYNAMIC / "arousal.csv")
    clips = []
    for song_id, (v, vs, a, as_) in sorted(static.items(), key=lambda item: int(item[0])):
        dynamic = song_id in valence and song_id in arousal
        curve = join_va(valence[song_id], arousal[song_id]) if dynamic else np.array([[0.0, v, a]])
        clips.append(Clip(
            id=f"deam-{song_id}", audio=audio_file(root / AUDIO / f"{song_id}.mp3", item=f"DEAM song {song_id}"),
            curve=np.clip(curve, [0, -1, -1], [np.inf, 1, 1]),
            curve_std=None if dynamic else np.array([[0.0, vs, as_]]),
            tags=tuple(mood_tags(v, a)), title=f"DEAM {song_id}", split=_split(song_id),
            label_type="dynamic" if dynamic else "static", extra={"static": [round(v, 4), round(a, 4)]},
        ))
    return clips
