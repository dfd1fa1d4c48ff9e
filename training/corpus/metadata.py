"""Synthetic titles and artists for generated clips; titles take their words from the clip's mood."""

from __future__ import annotations

import numpy as np

_ADJECTIVES = {
    "happy": ("Sunlit", "Golden", "Bright", "Merry", "Summer"),
    "exciting": ("Racing", "Electric", "Rising", "Wild", "Burning"),
    "tender": ("Gentle", "Quiet", "Tender", "Soft", "Warm"),
    "peaceful": ("Still", "Open", "Slow", "Drifting", "Green"),
    "calm": ("Silent", "Pale", "Distant", "Sleeping", "Hushed"),
    "sad": ("Grey", "Fading", "Lonely", "Falling", "Lost"),
    "angry": ("Iron", "Broken", "Raging", "Black", "Shattered"),
    "scary": ("Hollow", "Creeping", "Shadowed", "Cold", "Haunted"),
}
_NOUNS = ("Morning", "Harbour", "River", "Lanterns", "Fields", "Tide", "Corridor", "Letters", "Garden",
          "Machines", "Snow", "Bridges", "Storm", "Orchard", "Station", "Embers", "Window", "Forest")
_FIRST = ("Mira", "Jonas", "Ada", "Tomas", "Lena", "Idris", "Noor", "Felix", "Saoirse", "Kenji", "Ines", "Otto")
_LAST = ("Vale", "Okafor", "Lindqvist", "Moreau", "Hart", "Sato", "Brennan", "Novak", "Reyes", "Castell")
_ENSEMBLES = ("Quartet", "Ensemble", "Trio", "Collective", "Orchestra")


def title(rng: np.random.Generator, mood: str) -> str:
    adjectives = _ADJECTIVES.get(mood, _ADJECTIVES["calm"])
    return f"{adjectives[int(rng.integers(len(adjectives)))]} {_NOUNS[int(rng.integers(len(_NOUNS)))]}"


def artist(rng: np.random.Generator) -> str:
    name = f"{_FIRST[int(rng.integers(len(_FIRST)))]} {_LAST[int(rng.integers(len(_LAST)))]}"
    if rng.random() < 0.25:
        return f"The {_LAST[int(rng.integers(len(_LAST)))]} {_ENSEMBLES[int(rng.integers(len(_ENSEMBLES)))]}"
    return name
