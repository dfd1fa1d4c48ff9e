"""Categorical emotion labels: one vocabulary per taxonomy. A manifest clip may carry ``labels`` such as
``{"quadrant": "Q2"}`` or ``{"mirex_cluster": "5"}``; every label is checked against its taxonomy here.

- ``quadrant``: Russell's quadrants (Q1 = high valence, high arousal; Q2 = low valence, high arousal;
  Q3 = low valence, low arousal; Q4 = high valence, low arousal), as in 4Q and EMOPIA.
- ``mirex_cluster``: the five MIREX audio mood clusters (AllMusic tags): 1 passionate, rousing, confident;
  2 rollicking, cheerful, fun, sweet; 3 literate, poignant, wistful, bittersweet, autumnal, brooding;
  4 humorous, silly, campy, quirky, whimsical, witty; 5 aggressive, fiery, tense/anxious, intense, volatile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from models.errors import ManifestError
from models.vocabulary import CIRCUMPLEX

TAXONOMIES: dict[str, tuple[str, ...]] = {
    "quadrant": ("Q1", "Q2", "Q3", "Q4"),
    "mirex_cluster": ("1", "2", "3", "4", "5"),
}
POSITIVE_VALENCE = ("Q1", "Q4")
HIGH_AROUSAL = ("Q1", "Q2")

# Where each class sits on the VA plane, for the emotion side of the shared space (a class enters training as a
# constant VA sequence at this point, as a named emotion does at query time). Quadrants: the centre of their
# region (as EMOPIA's clips). MIREX clusters: the Russell (1980) circumplex word nearest in meaning to the
# cluster's adjectives: 1 rousing/passionate -> excited, 2 cheerful/fun -> happy, 3 poignant/wistful -> sad,
# 4 humorous/whimsical -> delighted, 5 aggressive/tense -> angry.
_MIREX_WORDS = {"1": "excited", "2": "happy", "3": "sad", "4": "delighted", "5": "angry"}
_CIRCUMPLEX = {term.name: (term.valence, term.arousal) for term in CIRCUMPLEX}
CLASS_VA: dict[str, dict[str, tuple[float, float]]] = {
    "quadrant": {"Q1": (0.5, 0.5), "Q2": (-0.5, 0.5), "Q3": (-0.5, -0.5), "Q4": (0.5, -0.5)},
    "mirex_cluster": {c: _CIRCUMPLEX[word] for c, word in _MIREX_WORDS.items()},
}


def check_labels(labels: Mapping[str, object], *, where: str) -> dict[str, str]:
    """``labels`` as {taxonomy: class} strings, or a ``ManifestError`` naming ``where``, the taxonomy and the
    classes it allows."""
    if not isinstance(labels, Mapping):
        raise ManifestError(f"{where}: labels must be an object such as {{\"quadrant\": \"Q1\"}}")
    checked = {}
    for taxonomy, value in labels.items():
        if taxonomy not in TAXONOMIES:
            raise ManifestError(f"{where}: unknown label taxonomy {taxonomy!r}; known: {', '.join(TAXONOMIES)}")
        if str(value) not in TAXONOMIES[taxonomy]:
            raise ManifestError(f"{where}: {taxonomy} label {value!r} is not one of "
                                f"{', '.join(TAXONOMIES[taxonomy])}")
        checked[taxonomy] = str(value)
    return checked


def class_index(taxonomy: str, label: str) -> int:
    return TAXONOMIES[taxonomy].index(label)


def likeness_vector(classes: Mapping[str, Sequence[float] | np.ndarray]) -> np.ndarray:
    """(C,) unit vector of a track's class probabilities: each taxonomy's scaled to unit length and set side by
    side (taxonomies in sorted order), over the root of their number, so every taxonomy counts the same. The dot
    product of two tracks' vectors is their likeness in [0, 1]: how tracks that feel alike are found (``app.alike``,
    ``training.like_experiment``)."""
    parts = [np.asarray(classes[t], dtype=np.float64) for t in sorted(classes)]
    parts = [p / max(float(np.linalg.norm(p)), 1e-12) for p in parts]
    return np.concatenate(parts) / np.sqrt(len(parts)) if parts else np.zeros(0)
