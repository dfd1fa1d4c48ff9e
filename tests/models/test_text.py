import itertools
import socket

import numpy as np
import pytest

from models.arc import segment, smooth
from models.text import SentenceEncoder, split_sentences


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


def test_encoder_loads_and_runs_without_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    vectors = SentenceEncoder().encode(["No network needed."])
    assert vectors.shape == (1, 384)


def test_vectors_are_unit_deterministic_and_meaningful(encoder: SentenceEncoder):
    texts = ["I am overjoyed, this is the best day of my life!", "What a wonderful, happy morning.",
             "The invoice is attached as a PDF file."]
    first, second = encoder.encode(texts), encoder.encode(texts)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    assert first[0] @ first[1] > first[0] @ first[2]
    batched = encoder.encode(texts, batch_size=1)
    np.testing.assert_allclose(batched, first, atol=1e-5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two! Three?", ["One.", "Two!", "Three?"]),
        ("Mr. Smith met Dr. Jones at 3 p.m. today. They talked.", ["Mr. Smith met Dr. Jones at 3 p.m. today.",
                                                                   "They talked."]),
        ('"Run!" she cried. He ran.', ['"Run!" she cried.', "He ran."]),
        ("First line\nSecond line", ["First line", "Second line"]),
        ("  ", []),
        ("The value is 3.14 exactly. Next.", ["The value is 3.14 exactly.", "Next."]),
    ],
)
def test_split_sentences(text: str, expected: list[str]):
    assert split_sentences(text) == expected


def test_arc_finds_the_turns_of_a_story():
    happy, sad, tense = [0.6, 0.3], [-0.6, -0.4], [-0.4, 0.7]
    va = np.array([happy] * 4 + [sad] * 4 + [tense] * 3) + np.random.default_rng(0).normal(0, 0.03, (11, 2))
    assert segment(va) == [(0, 4), (4, 8), (8, 11)]


def test_a_steady_story_is_one_segment_and_segments_cover_every_sentence():
    steady = np.full((7, 2), 0.2) + np.random.default_rng(1).normal(0, 0.02, (7, 2))
    assert segment(steady) == [(0, 7)]
    assert segment(np.zeros((1, 2))) == [(0, 1)]
    parts = segment(np.random.default_rng(2).uniform(-1, 1, (30, 2)))
    assert parts[0][0] == 0 and parts[-1][1] == 30
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert all(end - start >= 2 for start, end in parts)


def test_smoothing_keeps_length_and_averages_neighbours():
    va = np.array([[0.0, 0.0], [3.0, 3.0], [0.0, 0.0]])
    np.testing.assert_allclose(smooth(va), [[1.5, 1.5], [1.0, 1.0], [1.5, 1.5]])
