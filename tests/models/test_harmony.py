import numpy as np
import pytest

from models.harmony import (
    CHORD_SECONDS,
    CHORDS,
    PITCHES,
    Key,
    chord_chroma,
    estimate_key,
    estimate_tempo,
    key_relative_chords,
    local_key_features,
    recognizer,
    relative_tokens,
    tonality,
)

SR = 16_000


def triad(root: int, minor: bool, seconds: float, *, bpm: float = 120.0, octave: int = 4) -> np.ndarray:
    """A triad of harmonic tones (bass an octave down), struck on every beat with a decaying envelope."""
    t = np.arange(int(seconds * SR)) / SR
    beat = 60.0 / bpm
    envelope = np.exp(-4.0 * (t % beat))
    y = np.zeros_like(t)
    for interval, gain in ((0, 1.0), (3 if minor else 4, 0.8), (7, 0.8), (-12, 0.7)):
        hz = 440.0 * 2 ** ((12 * (octave - 4) + root - 9 + interval) / 12)
        y += gain * sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, 4))
    return (0.1 * envelope * y).astype(np.float32)


def progression(chords: list[tuple[int, bool]], *, seconds: float = 2.0, bpm: float = 120.0) -> np.ndarray:
    return np.concatenate([triad(r, m, seconds, bpm=bpm) for r, m in chords])


C_MAJOR = [(0, False), (5, False), (7, False), (0, False)] * 3  # I IV V I
A_MINOR = [(9, True), (2, True), (4, False), (9, True)] * 3  # i iv V i


def test_key_and_mode_of_a_cadence_in_c_major_and_in_a_minor():
    major, minor = estimate_key(chord_chroma(progression(C_MAJOR), SR)), estimate_key(chord_chroma(
        progression(A_MINOR), SR))
    assert (major.name, minor.name) == ("C major", "A minor")
    assert major.strength > 0.6 and minor.strength > 0.6


def test_a_transposed_cadence_moves_the_tonic_and_keeps_the_mode():
    up_a_fifth = [((r + 7) % 12, m) for r, m in C_MAJOR]
    assert estimate_key(chord_chroma(progression(up_a_fifth), SR)).name == "G major"


@pytest.mark.parametrize("bpm", [90.0, 120.0])
def test_tempo_of_struck_chords(bpm: float):
    assert estimate_tempo(progression(C_MAJOR, bpm=bpm), SR) == pytest.approx(bpm, rel=0.04)


@pytest.mark.parametrize("level", [0.3, 0.001])
def test_a_steady_tone_has_no_tempo(level: float):
    t = np.arange(10 * SR) / SR
    steady = level * np.sin(2 * np.pi * 440.0 * t)
    swell = np.linspace(0.0, level, t.size) * np.sin(2 * np.pi * 220.0 * t)
    assert estimate_tempo(steady.astype(np.float32), SR) == 0.0
    assert estimate_tempo(swell.astype(np.float32), SR) == 0.0
    assert estimate_tempo(level / 0.1 * progression(C_MAJOR), SR) == pytest.approx(120.0, rel=0.04)


def test_local_key_features_follow_a_modulation_and_ignore_looping():
    y = np.concatenate([progression(C_MAJOR), progression(A_MINOR)])  # 24 s in C major, then 24 s in A minor
    frame = 3.0
    features = local_key_features(y, SR, frame_seconds=frame, n_frames=16)
    mode, strength, tempo = features.T
    assert (mode[:7] > 0.2).all() and mode[-7:].mean() < -0.03  # major at first, leaning minor at the end
    assert (strength > 0.5).all() and np.allclose(tempo, 120.0 / 200, rtol=0.04)
    looped = local_key_features(np.tile(progression(C_MAJOR), 4), SR, frame_seconds=frame, n_frames=32)
    once = local_key_features(progression(C_MAJOR), SR, frame_seconds=frame, n_frames=8)
    assert np.allclose(looped[2:6, :2], once[2:6, :2], atol=0.05)  # away from the ends the same chroma is heard


def test_silence_has_no_tempo_and_no_clear_key():
    reading = tonality(np.zeros(5 * SR, dtype=np.float32), SR)
    assert reading.tempo_bpm == 0.0 and reading.key.strength == 0.0


def test_the_shipped_recognizer_reads_a_progression_it_never_heard():
    chords = [(0, False), (9, True), (5, False), (7, False), (2, True), (4, True)] * 2  # C Am F G Dm Em
    y = progression(chords)
    estimated = recognizer().chords(chord_chroma(y, SR))
    per_chord = int(2.0 / CHORD_SECONDS)
    reference = np.repeat([1 + 12 * m + r for r, m in chords], per_chord)[: len(estimated)]
    inner = np.ones(len(estimated), dtype=bool)
    inner[::per_chord] = False  # a frame at a chord change may hear both chords
    accuracy = (estimated[inner] == reference[inner]).mean()
    assert accuracy >= 0.8, [CHORDS[i] for i in estimated]


def test_chords_relative_to_the_key_name_the_same_function_in_every_key():
    g_in_c = relative_tokens(np.array([CHORDS.index("G:maj")]), Key(PITCHES.index("C"), "major", 1.0))
    d_in_g = relative_tokens(np.array([CHORDS.index("D:maj")]), Key(PITCHES.index("G"), "major", 1.0))
    a_min_in_c = relative_tokens(np.array([CHORDS.index("A:min")]), Key(0, "major", 1.0))
    no_chord = relative_tokens(np.array([0]), Key(0, "major", 1.0))
    assert g_in_c[0] == d_in_g[0] == 2 + 2 * 7
    assert a_min_in_c[0] == 2 + 2 * 9 + 1 and no_chord[0] == 1


def chord_shares(y: np.ndarray, *, frame_seconds: float, n_frames: int) -> np.ndarray:
    chroma = chord_chroma(y, SR)
    return key_relative_chords(chroma, estimate_key(chroma), frame_seconds=frame_seconds, n_frames=n_frames)


def test_local_chord_shares_name_each_frames_chords_relative_to_the_key():
    frame = 4.0  # two chords of 2 s per frame: I IV, V I, ...
    shares = chord_shares(progression(C_MAJOR), frame_seconds=frame, n_frames=6)
    assert shares.shape == (6, 25) and np.allclose(shares.sum(axis=1), 1.0, atol=1e-5)
    tonic, subdominant, dominant = 1 + 0, 1 + 5, 1 + 7  # major triads on intervals 0, 5, 7 from the tonic
    assert set(np.argsort(shares[0])[-2:]) == {tonic, subdominant}
    assert set(np.argsort(shares[1])[-2:]) == {dominant, tonic}
    in_g = chord_shares(progression([((r + 7) % 12, m) for r, m in C_MAJOR]), frame_seconds=frame, n_frames=6)
    assert np.abs(in_g - shares).max() < 0.1  # the same functions in another key
