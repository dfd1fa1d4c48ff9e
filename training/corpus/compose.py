"""Compose note events whose cues follow a valence/arousal trajectory beat by beat.

Each beat reads the trajectory at its onset and takes tempo, density, level, brightness and articulation from
``cues``; each bar picks its chord from the mode and the harmonic stability the current valence asks for.
A clip's ``Style`` (timbres, texture, rhythm, drums, key, room) is drawn once, so clips do not all sound alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.corpus.cues import Cues, cues
from training.corpus.synth import Note

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Functional harmony: from scale degree (0 = tonic) to the degrees it usually moves to.
FUNCTIONAL_NEXT = {0: (3, 4, 5, 1), 1: (4, 6), 2: (5, 3), 3: (4, 0, 1), 4: (0, 5), 5: (3, 1), 6: (0,)}
CHROMATIC_QUALITIES = ((0, 3, 6), (0, 4, 8), (0, 3, 6, 9), (0, 1, 5), (0, 4, 7), (0, 3, 7))
DISSONANT_ADDITIONS = (1, 6, 13, 11)

LEADS = ("piano", "epiano", "flute", "strings", "clarinet", "brass", "pluck", "marimba", "bell", "organ")
ACCOMPANIMENTS = ("piano", "epiano", "strings", "pad", "organ", "pluck")
BASSES = ("bass", "piano", "pluck")
TEXTURES = ("block", "arpeggio", "alberti", "pad", "ostinato")
RHYTHMS = ("straight", "swing", "dotted", "syncopated", "waltz")


@dataclass(frozen=True)
class Style:
    lead: str
    accompaniment: str
    bass: str
    texture: str
    rhythm: str
    drums: bool
    tonic: int  # pitch class
    tempo_scale: float
    reverb: float
    gain_db: float  # recording level: loudness is a cue, but absolute level varies between recordings

    @property
    def beats_per_bar(self) -> int:
        return 3 if self.rhythm == "waltz" else 4


def sample_style(rng: np.random.Generator) -> Style:
    return Style(
        lead=str(rng.choice(LEADS)), accompaniment=str(rng.choice(ACCOMPANIMENTS)), bass=str(rng.choice(BASSES)),
        texture=str(rng.choice(TEXTURES)), rhythm=str(rng.choice(RHYTHMS)), drums=bool(rng.random() < 0.5),
        tonic=int(rng.integers(12)), tempo_scale=float(rng.uniform(0.9, 1.1)),
        reverb=float(rng.uniform(0.05, 0.35)), gain_db=float(rng.uniform(-6.0, 6.0)),
    )


@dataclass(frozen=True)
class Chord:
    root: int  # pitch class
    intervals: tuple[int, ...]
    scale: tuple[int, ...]  # pitch classes the melody may use under this chord

    def pitch_classes(self) -> set[int]:
        return {(self.root + i) % 12 for i in self.intervals}


def _triad(tonic: int, scale: tuple[int, ...], degree: int) -> tuple[int, tuple[int, ...]]:
    root = scale[degree]
    third, fifth = scale[(degree + 2) % 7], scale[(degree + 4) % 7]
    return (tonic + root) % 12, (0, (third - root) % 12, (fifth - root) % 12)


class Harmony:
    """Chooses one chord per bar: functional and tonic-centred when stable, chromatic when not."""

    def __init__(self, rng: np.random.Generator, tonic: int) -> None:
        self.rng, self.tonic, self.degree = rng, tonic, 0

    def next_chord(self, cue: Cues, *, bar: int) -> Chord:
        scale = MAJOR if self.rng.random() < cue.major_probability else MINOR
        pcs = tuple((self.tonic + s) % 12 for s in scale)
        if self.rng.random() > cue.stability:
            root = int(self.rng.integers(12))
            quality = CHROMATIC_QUALITIES[int(self.rng.integers(len(CHROMATIC_QUALITIES)))]
            chord = Chord(root, quality, pcs)
        else:
            self.degree = self._functional_degree(bar, cue.stability)
            root, intervals = _triad(self.tonic, scale, self.degree)
            if scale is MINOR and self.degree == 4:
                intervals = (0, 4, 7)  # harmonic-minor dominant
            chord = Chord(root, intervals, pcs)
        return self._colour(chord, cue)

    def _functional_degree(self, bar: int, stability: float) -> int:
        if bar % 4 == 0 and self.rng.random() < stability:
            return 0
        if bar % 4 == 3 and self.rng.random() < stability:
            return 4
        options = FUNCTIONAL_NEXT[self.degree]
        return int(options[int(self.rng.integers(len(options)))])

    def _colour(self, chord: Chord, cue: Cues) -> Chord:
        if self.rng.random() >= cue.dissonance:
            return chord
        extra = DISSONANT_ADDITIONS[int(self.rng.integers(len(DISSONANT_ADDITIONS)))]
        return Chord(chord.root, (*chord.intervals, extra), chord.scale)


def _onsets(rhythm: str, n: int, beat: int) -> list[float]:
    """Onset positions within one beat, as fractions of the beat."""
    base = [k / n for k in range(n)]
    if rhythm == "swing" and n % 2 == 0:
        return [x + (1 / (3 * n) if k % 2 else 0.0) for k, x in enumerate(base)]
    if rhythm == "dotted" and n >= 2:
        return [x + (0.5 / n if k % 2 else 0.0) for k, x in enumerate(base)]
    if rhythm == "syncopated" and beat % 2 == 1:
        return [(k + 0.5) / n for k in range(n)]
    return base


def _voice(chord: Chord, *, low: float) -> list[int]:
    """Chord tones stacked upward from the first pitch at or above ``low``."""
    pitches, previous = [], int(np.ceil(low)) - 1
    for interval in chord.intervals:
        pc = (chord.root + interval) % 12
        pitch = previous + 1 + (pc - (previous + 1)) % 12
        pitches.append(pitch)
        previous = pitch
    return pitches


class Melody:
    """A random walk over the current scale around the register cue; strong beats land on chord tones."""

    def __init__(self, rng: np.random.Generator, start: float) -> None:
        self.rng, self.pitch = rng, round(start)

    def next_pitch(self, chord: Chord, cue: Cues, *, strong: bool) -> int:
        allowed = chord.pitch_classes() if strong else set(chord.scale) | chord.pitch_classes()
        if not strong and self.rng.random() < cue.dissonance * 0.3:
            allowed = set(range(12))
        centre = cue.register
        candidates = [p for p in range(int(centre) - 9, int(centre) + 10) if p % 12 in allowed]
        steps = np.abs(np.array(candidates) - self.pitch)
        pull = np.abs(np.array(candidates) - centre) / 9.0
        weights = np.exp(-steps / 2.5 - pull) * (steps > 0 if self.rng.random() < 0.8 else 1)
        weights = weights + 1e-9
        self.pitch = int(self.rng.choice(candidates, p=weights / weights.sum()))
        return self.pitch


def _accompaniment(style: Style, chord: Chord, cue: Cues, *, t0: float, beat_len: float, beat: int,
                   velocity: float) -> list[Note]:
    """Accompaniment notes for one beat, by texture."""
    voicing = _voice(chord, low=cue.register - 14)
    inst, bright = style.accompaniment, cue.brightness
    bar_len = beat_len * style.beats_per_bar
    if style.texture in ("block", "pad"):
        hold = bar_len if style.texture == "pad" else beat_len * max(1.0, 2 * cue.articulation)
        if beat == 0 or (style.texture == "block" and cue.notes_per_beat >= 3):
            return [Note(t0, hold * (1 if beat == 0 else 0.5), p, velocity, inst, bright) for p in voicing]
        return []
    n = max(2, cue.notes_per_beat)
    if style.texture == "alberti":
        order = [0, len(voicing) - 1, 1, len(voicing) - 1]
    elif style.texture == "arpeggio":
        order = [(beat * n + k) % len(voicing) for k in range(n)]
    else:  # ostinato: root and fifth below the chord
        voicing = [voicing[0] - 12, voicing[0] - 5]
        order = [k % 2 for k in range(n)]
    step = beat_len / n
    return [
        Note(t0 + k * step, step * cue.articulation, voicing[order[k % len(order)]], velocity, inst, bright)
        for k in range(n)
    ]


def _drums(style: Style, cue: Cues, *, t0: float, beat_len: float, beat: int, velocity: float) -> list[Note]:
    notes = []
    if beat == 0 or (beat == 2 and style.beats_per_bar == 4):
        notes.append(Note(t0, 0.2, 0, velocity, "kick"))
    if beat % 2 == 1 or (style.beats_per_bar == 3 and beat > 0):
        notes.append(Note(t0, 0.2, 0, velocity * 0.7, "snare"))
    n = max(2, cue.notes_per_beat)
    notes += [Note(t0 + k * beat_len / n, 0.05, 0, velocity * 0.35, "hat") for k in range(n)]
    return notes


def compose(*, trajectory: np.ndarray, frame_rate: float, seconds: float, style: Style,
            rng: np.random.Generator) -> list[Note]:
    """Note events for a clip whose cues follow ``trajectory`` ((T, 2) valence/arousal at ``frame_rate``)."""
    times = np.arange(trajectory.shape[0]) / frame_rate
    harmony, melody = Harmony(rng, style.tonic), None
    notes: list[Note] = []
    t, beat_index, chord = 0.0, 0, None
    while t < seconds:
        v, a = (float(np.interp(t, times, trajectory[:, k])) for k in (0, 1))
        cue = cues(v, a)
        beat_len = 60.0 / (cue.tempo_bpm * style.tempo_scale)
        beat = beat_index % style.beats_per_bar
        if beat == 0 or chord is None:
            chord = harmony.next_chord(cue, bar=beat_index // style.beats_per_bar)
        melody = melody or Melody(rng, cue.register)
        amp = 10.0 ** (cue.level_db / 20.0)
        notes += _lead(style, chord, cue, melody, t0=t, beat_len=beat_len, beat=beat, amp=amp, rng=rng)
        notes += _accompaniment(style, chord, cue, t0=t, beat_len=beat_len, beat=beat, velocity=amp * 0.4)
        if beat == 0:
            bass = _voice(chord, low=34)[0]
            notes.append(Note(t, beat_len * style.beats_per_bar * cue.articulation, bass, amp * 0.6, style.bass,
                              cue.brightness))
        if style.drums and a > -0.3:
            notes += _drums(style, cue, t0=t, beat_len=beat_len, beat=beat, velocity=amp * 0.6)
        t += beat_len
        beat_index += 1
    return notes


def _lead(style: Style, chord: Chord, cue: Cues, melody: Melody, *, t0: float, beat_len: float, beat: int,
          amp: float, rng: np.random.Generator) -> list[Note]:
    onsets = _onsets(style.rhythm, cue.notes_per_beat, beat)
    notes = []
    for k, x in enumerate(onsets):
        if rng.random() < 0.12:
            continue  # a rest
        ioi = ((onsets[k + 1] if k + 1 < len(onsets) else 1.0) - x) * beat_len
        accent = 1.0 if (beat == 0 and k == 0) else 0.8
        pitch = melody.next_pitch(chord, cue, strong=k == 0)
        velocity = amp * accent * float(rng.uniform(0.9, 1.1))
        notes.append(Note(t0 + x * beat_len, ioi * cue.articulation, pitch, velocity, style.lead, cue.brightness))
    return notes
