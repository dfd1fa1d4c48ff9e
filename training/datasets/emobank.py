"""EmoBank (Buechel & Hahn, EACL 2017): English sentences with valence, arousal and dominance on 1-5.

Layout: ``ROOT/emobank.csv`` (id, split, V, A, D, text). Ratings are mapped to [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.errors import DatasetLayoutError
from training.datasets.common import from_1_5, read_csv, require


@dataclass(frozen=True)
class Sentence:
    id: str
    split: str
    text: str
    valence: float
    arousal: float
    dominance: float


def read(root: Path) -> list[Sentence]:
    (path,) = require(Path(root), "emobank.csv")
    sentences = []
    for row in read_csv(path, columns=("id", "split", "V", "A", "D", "text")):
        try:
            v, a, d = (from_1_5(float(row[k])) for k in ("V", "A", "D"))
        except ValueError as error:
            raise DatasetLayoutError(f"{path}: sentence {row['id']}: non-numeric rating ({error})") from error
        sentences.append(Sentence(row["id"], row["split"], row["text"], v, a, d))
    return sentences
