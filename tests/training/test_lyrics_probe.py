"""The lyrics quadrant probes: artist folds, out-of-fold readings, and a stack that joins what each probe reads."""

import numpy as np

from training.lyrics_probe import artist_folds, fit_stack, ngram_probe, out_of_fold, vector_probe

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
