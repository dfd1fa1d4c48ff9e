"""PMEmo (Zhang et al., ICMR 2018; release PMEmo2019): pop-song choruses with static and dynamic VA on [0, 1].

Published layout under ROOT::

    metadata.csv                                  musicId, fileName, title, artist, album, duration, ...
    chorus/{musicId}.mp3
    annotations/static_annotations.csv            musicId, Arousal(mean), Valence(mean)
    annotations/static_annotations_std.csv        musicId, Arousal(std), Valence(std)
    annotations/dynamic_annotations.csv           musicId, frameTime, Arousal(mean), Valence(mean)
    annotations/dynamic_annotations_std.csv       musicId, frameTime, Arousal(std), Valence(std)

Dynamic rows run at 2 Hz from 15 s into the chorus (frameTime is the audio time in seconds). Values map from
[0, 1] to [-1, 1] (x -> 2x - 1; std x 2). There is no official split: a stable hash of the id gives one.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from models.manifest import Clip
from models.vocabulary import mood_tags
from training.datasets.common import audio_file, from_0_1, hash_split, read_csv, require

STATIC = "annotations/static_annotations.csv"
STATIC_STD = "annotations/static_annotations_std.csv"
DYNAMIC = "annotations/dynamic_annotations.csv"
DYNAMIC_STD = "annotations/dynamic_annotations_std.csv"


def _dynamic(path: Path, kind: str) -> dict[str, list[list[float]]]:
    """musicId -> rows [t, valence, arousal] of the ``kind`` ("mean" or "std") file."""
    columns = ("musicId", "frameTime", f"Arousal({kind})", f"Valence({kind})")
    curves: dict[str, list[list[float]]] = defaultdict(list)
    if path.is_file():
        for row in read_csv(path, columns=columns):
            t, a, v = (float(row[c]) for c in columns[1:])
            curves[row["musicId"]].append([t, from_0_1(v), from_0_1(a)] if kind == "mean" else [t, 2 * v, 2 * a])
    return curves


def read(root: Path) -> list[Clip]:
    root = Path(root)
    require(root, "metadata.csv", STATIC, "chorus")
    metadata = {row["musicId"]: row for row in read_csv(root / "metadata.csv", columns=("musicId",))}
    static_std = {r["musicId"]: r for r in read_csv(root / STATIC_STD)} if (root / STATIC_STD).is_file() else {}
    dynamic, dynamic_std = _dynamic(root / DYNAMIC, "mean"), _dynamic(root / DYNAMIC_STD, "std")
    clips = []
    for row in read_csv(root / STATIC, columns=("musicId", "Arousal(mean)", "Valence(mean)")):
        music_id = row["musicId"]
        v, a = from_0_1(float(row["Valence(mean)"])), from_0_1(float(row["Arousal(mean)"]))
        std = static_std.get(music_id)
        if music_id in dynamic:
            curve = np.array(sorted(dynamic[music_id]))
            curve_std = np.array(sorted(dynamic_std[music_id])) if music_id in dynamic_std else None
        else:
            curve = np.array([[0.0, v, a]])
            curve_std = (np.array([[0.0, 2 * float(std["Valence(std)"]), 2 * float(std["Arousal(std)"])]])
                         if std else None)
        meta = metadata.get(music_id, {})
        clips.append(Clip(
            id=f"pmemo-{music_id}", audio=audio_file(root / "chorus" / f"{music_id}.mp3", item=f"PMEmo {music_id}"),
            curve=np.clip(curve, [0, -1, -1], [np.inf, 1, 1]), curve_std=curve_std, tags=tuple(mood_tags(v, a)),
            title=meta.get("title", ""), artist=meta.get("artist", ""), split=hash_split(f"pmemo-{music_id}"),
            label_type="dynamic" if music_id in dynamic else "static",
            extra={"static": [round(v, 4), round(a, 4)]},
        ))
    return clips
