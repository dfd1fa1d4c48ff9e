"""Musical cues as functions of valence and arousal.

The mapping follows the cue-emotion relations that music-psychology studies agree on:

- Arousal -> tempo, note density (event rate), sound level, timbral brightness and articulation
  (staccato when aroused, legato when calm): P. N. Juslin and P. Laukka, "Communication of emotions in vocal
  expression and music performance: different channels, same code?", Psychological Bulletin 129(5), 2003;
  R. Bresin and A. Friberg, "Emotion rendering in music: range and characteristic values of seven musical
  variables", Cortex 47(9), 2011 (tempo about 60-150 BPM from sad/tender to happy/angry, sound level,
  articulation); E. Schubert, "Modeling perceived emotion with continuous musical features", Music Perception
  21(4), 2004 (loudness and tempo track arousal over time).
- Valence -> mode (major happy, minor sad), consonance, pitch register (higher is more positive) and harmonic
  stability: K. Hevner, "The affective character of the major and minor modes in music", American Journal of
  Psychology 47(1), 1935; A. Gabrielsson and E. Lindstrom, "The role of structure in the musical expression of
  emotions", Handbook of Music and Emotion, 2010; T. Eerola, A. Friberg and R. Bresin, "Emotional expression in
  music: contribution, linearity, and additivity of primary musical cues", Frontiers in Psychology 4, 2013
  (mode dominates valence, tempo and dynamics dominate arousal; register adds to valence); A. J. Blood et al.,
  "Emotional responses to pleasant and unpleasant music correlate with activity in paralimbic brain regions",
  Nature Neuroscience 2(4), 1999 (dissonance is unpleasant).

All functions take valence and arousal on [-1, 1] and are monotonic in the direction the studies report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _unit(x: float) -> float:
    """[-1, 1] -> [0, 1]."""
    return (float(np.clip(x, -1.0, 1.0)) + 1.0) / 2.0


@dataclass(frozen=True)
class Cues:
    tempo_bpm: float
    notes_per_beat: int  # melodic event density
    level_db: float  # sound level relative to full scale
    brightness: float  # 0 dark .. 1 bright
    articulation: float  # sounding fraction of the inter-onset interval: 1 legato .. 0.35 staccato
    major_probability: float
    dissonance: float  # 0 consonant .. 1 clustered and tritone-laden
    register: float  # centre MIDI pitch of the melody
    stability: float  # 0 chromatic, unresolved .. 1 diatonic, tonic-centred


def cues(valence: float, arousal: float) -> Cues:
    v, a = float(np.clip(valence, -1, 1)), _unit(arousal)
    return Cues(
        tempo_bpm=62.0 + 92.0 * a,
        notes_per_beat=int(np.clip(1 + round(3.0 * a**1.3), 1, 4)),
        level_db=-24.0 + 18.0 * a,
        brightness=float(np.clip(0.1 + 0.75 * a + 0.15 * v, 0.0, 1.0)),
        articulation=1.0 - 0.65 * a,
        major_probability=float(1.0 / (1.0 + np.exp(-7.0 * v))),
        dissonance=float(np.clip(-v, 0.0, 1.0) * (0.35 + 0.65 * a)),
        register=64.0 + 9.0 * v + 3.0 * (a - 0.5),
        stability=float(np.clip(0.75 + 0.25 * v, 0.0, 1.0)),
    )
