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


def unique_titles(titles: list[str]) -> list[str]:
    """The same titles, a repeat numbered by its order ("Racing Storm", "Racing Storm II", ...), so that no two
    tracks of one catalogue share a title."""
    seen: dict[str, int] = {}
    out = []
    for name in titles:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} {_roman(seen[name])}")
    return out


def _roman(n: int) -> str:
    numerals = ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"), (40, "XL"),
                (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"))
    out = ""
    for value, numeral in numerals:
        count, n = divmod(n, value)
        out += numeral * count
    return out
