"""The lyrics quadrant probes (artist folds, out-of-fold readings, a stack that joins what each probe reads) and the
lyrics reader built on them, on lyrics the tests make up."""

import csv

import numpy as np
import pytest

from training.classify import artist_folds, vector_probe
from training.lyrics_probe import fit_stack, ngram_probe, out_of_fold, stack_readings, stacking_readings
from training.lyrics_reader import READING_WIDTH, fit_reader
from training.song_text import lyrics_vectors

AROUSAL_WORDS = {True: ["shouting", "racing", "burning", "jumping"], False: ["sleepy", "slowly", "resting", "hush"]}
FILLER = ["the", "road", "and", "a", "window", "at", "night", "we", "walk", "home"]


def _songs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Quadrant labels (0 Q1 happy, 1 Q2 angry, 2 Q3 sad, 3 Q4 relaxed); the vectors carry valence only (Q1 and Q4
    positive), the words arousal only (Q1 and Q2 high), so each probe alone sits near half right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    positive = np.isin(y, (0, 3))
    x = rng.normal(0.0, 1.0, (n, 16))
    x[:, 0] += np.where(positive, 2.5, -2.5)
    high = np.isin(y, (0, 1))
    texts = np.array([" ".join(rng.choice(FILLER, 12).tolist() + rng.choice(AROUSAL_WORDS[bool(h)], 3).tolist())
                      for h in high], dtype=object)
    artists = [f"artist {i // 4}" for i in range(n)]
    return x, texts, y, artists


def test_artist_folds_hold_each_artist_apart_once():
    artists = [f"Band {i % 7} " if i % 2 else f"band {i % 7}" for i in range(60)]
    folds = artist_folds(artists)
    held = np.concatenate([b for _, b in folds])
    assert sorted(held.tolist()) == list(range(60))
    for a, b in folds:
        assert not {artists[i].strip().lower() for i in a} & {artists[i].strip().lower() for i in b}


def test_out_of_fold_readings_come_from_models_that_did_not_see_the_artist():
    """Each artist has its own word and a label of its own: a fitted model reads the train rows perfectly, the
    out-of-fold readings cannot (the artist's word was never seen with its label)."""
    rng = np.random.default_rng(0)
    artists = [f"a{i // 3}" for i in range(120)]
    label_of = {a: int(rng.integers(0, 4)) for a in set(artists)}
    y = np.array([label_of[a] for a in artists])
    texts = np.array([f"{a} {a} la la" for a in artists], dtype=object)
    folds = artist_folds(artists)
    inside = ngram_probe(10.0).fit(texts, y).predict_proba(texts).argmax(axis=1)
    held = out_of_fold(ngram_probe, 10.0, texts, y, folds, classes=4).argmax(axis=1)
    assert np.mean(inside == y) == 1.0
    assert np.mean(held == y) < 0.45


def test_the_stack_joins_what_each_probe_reads():
    x, texts, y, artists = _songs(400, seed=1)
    x_new, texts_new, y_new, _ = _songs(200, seed=2)
    stack = fit_stack([vector_probe, ngram_probe], [x, texts], y, artists, classes=4)
    vectors, words = stack.base_probabilities([x_new, texts_new])
    both = stack.probabilities([x_new, texts_new])
    accuracy = {name: float(np.mean(p.argmax(axis=1) == y_new))
                for name, p in (("vectors", vectors), ("words", words), ("both", both))}
    assert accuracy["vectors"] < 0.6 and accuracy["words"] < 0.6
    assert accuracy["both"] > 0.85
    assert stack.folds_accuracy > 0.85
    assert all(c["folds_accuracy"] < 0.6 for c in stack.chosen)
    assert np.allclose(both.sum(axis=1), 1.0)


MOOD_WORDS = {  # mood: (words, MuSe's valence and arousal tags on 1-9)
    "happy": (["sunshine", "laughing", "dancing", "joy", "smile", "celebrate"], ("8", "8")),
    "angry": (["rage", "fight", "scream", "hate", "burning", "fury"], ("2", "8")),
    "sad": (["tears", "lonely", "grave", "crying", "goodbye", "sorrow"], ("2", "2")),
    "relaxed": (["calm", "gentle", "breeze", "peaceful", "quiet", "resting"], ("8", "2")),
}


def _lyrics_sets(root, rng):
    """MoodyLyrics4Q's four moods and MuSe's matching tags, each song a few mood words among others."""
    moody, muse = [], []
    for k in range(120):
        mood = list(MOOD_WORDS)[k % 4]
        words, (valence, arousal) = MOOD_WORDS[mood]
        text = " ".join(rng.choice(words, 5).tolist() + rng.choice(FILLER, 5).tolist())
        moody.append([f"M{k}", f"artist {k % 30}", f"song {k}", mood, "en", text])
        muse.append([f"other {k % 30}", f"tune {k}", "pop", valence, arousal, "5", "3", "[]", text])
    _write(root / "moodylyrics4q" / "lyrics.csv", ["id", "artist", "title", "mood", "language", "lyrics"], moody)
    _write(root / "muse_lyrics" / "lyrics.csv", ["artist", "title", "genre", "valence_tags", "arousal_tags",
                                                 "dominance_tags", "number_of_emotion_tags", "seeds", "lyrics"], muse)


def _write(path, header, rows):
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])


@pytest.mark.parametrize("words", [True, False])
def test_the_lyrics_reader_reads_what_the_lyrics_sets_teach(tmp_path, monkeypatch, words):
    monkeypatch.setenv("MOODSPACE_CACHE", str(tmp_path / "cache"))
    _lyrics_sets(tmp_path, np.random.default_rng(3))
    reader = fit_reader(tmp_path, words=words)
    assert len(reader.quadrants.bases) == (2 if words else 1)  # without words: the vector probe alone
    texts = ["joy and sunshine, we are dancing and laughing", "tears at the grave, lonely and crying goodbye"]
    reading = reader.read(texts, lyrics_vectors(texts, progress=False))
    assert reading.shape == (2, READING_WIDTH)
    happy, sad = reading
    assert happy[0] > sad[0] and sad[2] > happy[2]  # log P(Q1), log P(Q3)
    assert happy[4] > sad[4]  # the joined reading's standardised valence


def test_a_class_one_artist_holds_leaves_the_folds_that_miss_it_at_zero():
    x, texts, y, artists = _songs(200, seed=4)
    y = np.where(np.arange(200) < 4, 3, np.minimum(y, 2))  # Q4 only for the first artist's four songs
    stack = fit_stack([vector_probe, ngram_probe], [x, texts], y, artists, classes=4)
    folds = artist_folds(artists)
    held = out_of_fold(vector_probe, 1.0, x, y, folds, classes=4)
    first = next(b for _, b in folds if 0 in b)
    assert np.all(held[first[first < 4], 3] == 0.0)  # the fold without the artist never saw Q4
    assert stack.probabilities([x[:8], texts[:8]]).shape == (8, 4)


def _own_artists(seed: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """40 artists of 4 songs, each with a label, a vector dimension and a word of its own."""
    rng = np.random.default_rng(seed)
    artists = [f"a{i // 4}" for i in range(160)]
    y = np.repeat(rng.integers(0, 4, 40), 4)
    x = 3.0 * np.eye(40)[[int(a[1:]) for a in artists]] + 0.1 * rng.normal(size=(160, 40))
    texts = np.array([f"{a} {a} la la" for a in artists], dtype=object)
    return artists, y, x, texts


def test_stacking_readings_read_train_rows_out_of_fold_and_others_by_the_fitted_probe():
    """A probe fitted on every row reads those rows right (it saw each artist's label), out of fold it cannot; a
    new song by a known artist reads as the fitted probe reads it."""
    artists, y, x, _ = _own_artists(3)
    rng = np.random.default_rng(4)
    held, (inside, new), _ = stacking_readings(x, y, artists, [x, x[::4] + 0.1 * rng.normal(size=(40, 40))], classes=4)
    assert held.shape == inside.shape == (160, 4) and new.shape == (40, 4)
    assert np.all(held <= 0) and np.allclose(np.exp(held).sum(axis=1), 1.0)  # log-probabilities
    assert np.mean(inside.argmax(axis=1) == y) > 0.95
    assert np.mean(new.argmax(axis=1) == y[::4]) > 0.95
    assert np.mean(held.argmax(axis=1) == y) < 0.45


def test_stack_readings_read_train_rows_by_stacks_that_never_saw_the_artist():
    """Where each artist's word and label are its own, a stack fitted without the artist cannot read its songs;
    where one word per label is shared by every artist, it can, and so can the stack fitted on every row."""
    artists, y, x, texts = _own_artists(5)
    held, _, _ = stack_readings([vector_probe, ngram_probe], [x, texts], y, artists, [], classes=4)
    assert held.shape == (160, 4) and np.mean(held.argmax(axis=1) == y) < 0.45
    shared = np.array([f"{a} word{label} la" for a, label in zip(artists, y, strict=True)], dtype=object)
    held, (new,), _ = stack_readings([vector_probe, ngram_probe], [x, shared], y, artists, [[x[:8], shared[:8]]],
                                     classes=4)
    assert np.mean(held.argmax(axis=1) == y) > 0.9 and np.mean(new.argmax(axis=1) == y[:8]) > 0.9
