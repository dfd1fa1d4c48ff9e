"""Named emotions placed on the valence/arousal plane.

``CIRCUMPLEX`` holds the 28 affect words of Russell's circumplex (J. A. Russell, "A circumplex model of affect",
Journal of Personality and Social Psychology 39(6), 1980, Table 3: direct circular scaling; angles in degrees
counter-clockwise from the pleasure axis). Words are placed on a circle of radius ``RADIUS`` at their angle.

``MUSIC_MOODS`` holds the mood tags used for music, at positions after the discrete-to-dimensional mapping of
film-music excerpts by T. Eerola and J. K. Vuoskoski ("A comparison of the discrete and dimensional models of
emotion in music", Psychology of Music 39(1), 2011): happy, sad, tender, scary (fear), angry, peaceful; plus
"exciting" and "calm" in the high- and low-arousal corners of the positive half (Russell's "excited", "calm").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RADIUS = 0.8

_RUSSELL_ANGLES = {
    "pleased": 3.2, "happy": 7.8, "glad": 8.9, "delighted": 24.9, "excited": 48.6, "astonished": 69.8,
    "aroused": 73.8, "tense": 92.8, "alarmed": 96.5, "angry": 99.8, "afraid": 116.0, "annoyed": 123.0,
    "distressed": 138.0, "frustrated": 141.0, "miserable": 188.7, "sad": 207.5, "gloomy": 209.0,
    "depressed": 209.9, "bored": 241.9, "droopy": 256.7, "tired": 267.7, "sleepy": 271.9, "calm": 316.2,
    "relaxed": 318.0, "satisfied": 319.2, "at ease": 321.4, "content": 323.0, "serene": 328.6,
}

MUSIC_MOODS: dict[str, tuple[float, float]] = {
    "happy": (0.70, 0.45),
    "exciting": (0.45, 0.80),
    "tender": (0.55, -0.35),
    "peaceful": (0.50, -0.65),
    "calm": (0.20, -0.80),
    "sad": (-0.60, -0.45),
    "angry": (-0.65, 0.70),
    "scary": (-0.35, 0.45),
}


@dataclass(frozen=True)
class EmotionTerm:
    name: str
    valence: float
    arousal: float
    source: str


def _circumplex() -> list[EmotionTerm]:
    return [
        EmotionTerm(name, RADIUS * math.cos(math.radians(deg)), RADIUS * math.sin(math.radians(deg)),
                    "Russell 1980")
        for name, deg in _RUSSELL_ANGLES.items()
    ]


CIRCUMPLEX: tuple[EmotionTerm, ...] = tuple(_circumplex())


def vocabulary() -> list[EmotionTerm]:
    """All named emotions: Russell's words, then the music moods; a music mood replaces the Russell word of
    the same name (happy, sad, angry, calm), since its position comes from music listeners."""
    moods = {
        name: EmotionTerm(name, v, a, "Eerola & Vuoskoski 2011") for name, (v, a) in MUSIC_MOODS.items()
    }
    words = [term for term in CIRCUMPLEX if term.name not in moods]
    return words + list(moods.values())


def mood_tags(valence: float, arousal: float, *, radius: float = 0.45) -> list[str]:
    """Mood tags whose region holds the point: every mood within ``radius``, nearest first; at least one."""
    names = list(MUSIC_MOODS)
    centres = np.array([MUSIC_MOODS[n] for n in names])
    distances = np.hypot(centres[:, 0] - valence, centres[:, 1] - arousal)
    order = np.argsort(distances)
    return [names[i] for i in order if distances[i] <= radius] or [names[order[0]]]
