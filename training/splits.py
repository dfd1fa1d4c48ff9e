"""Which clips train, validate and test. Test clips never reach a trainer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from models.errors import ManifestError
from models.manifest import Clip
from training.datasets.common import stable_fraction

Split = Literal["auto", "all", "train", "val", "test"]  # which clips of a manifest an evaluation reads


def of_split(clips: Sequence[Clip], split: str) -> list[Clip]:
    return [clip for clip in clips if clip.split == split]


def train_val(data: Sequence[Clip], val: Sequence[Clip] | None = None) -> tuple[list[Clip], list[Clip]]:
    """Training and validation clips.

    Training: the ``train`` clips of ``data``. Validation: the ``val`` clips of ``val`` (all of them if it has no
    split marks), else the ``val`` clips of ``data``, else a stable 10 % of the training clips.
    """
    train = of_split(data, "train")
    if not train:
        raise ManifestError("the training manifest has no clips with split 'train'")
    chosen = of_split(val, "val") or list(val) if val is not None else of_split(data, "val")
    if not chosen:
        chosen = [c for c in train if stable_fraction(c.id) < 0.1] or train[:1]
        train = [c for c in train if c not in chosen]
    overlap = {c.id for c in train} & {c.id for c in chosen}
    if overlap:
        raise ManifestError(f"clips in both training and validation: {sorted(overlap)[:5]}")
    return train, chosen


def test_clips(clips: Sequence[Clip], split: Split = "auto") -> list[Clip]:
    """``auto``: the ``test`` clips if the manifest marks any, else every clip; ``all``: every clip."""
    if split == "all":
        return list(clips)
    if split == "auto":
        return of_split(clips, "test") or list(clips)
    chosen = of_split(clips, split)
    if not chosen:
        raise ManifestError(f"the manifest has no clips with split {split!r}")
    return chosen
