import itertools
import socket
import subprocess
import sys

import numpy as np
import pytest

from models.arc import SWING, VALENCE_MARGIN, segment, smooth
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
        ("\u200b\u200b \ufeff", []),
        ("She smiled.\n\u200b\nThe rain stopped.", ["She smiled.", "The rain stopped."]),
        ("The value is 3.14 exactly. Next.", ["The value is 3.14 exactly.", "Next."]),
        ('"Stop! Don\'t go," she said. He stayed.', ['"Stop! Don\'t go," she said.', "He stayed."]),
        ('"I won. We did it!" He smiled.', ['"I won. We did it!"', "He smiled."]),
        ("He said “Wait. Please.” Then he left.", ["He said “Wait. Please.”", "Then he left."]),
        ("She laughed; the floorboards creaked.", ["She laughed;", "the floorboards creaked."]),
        ("夏の海で踊ろう。星が輝く！本当？", ["夏の海で踊ろう。", "星が輝く！", "本当？"]),
        ("「行こう。早く！」と彼は言った。雨が降った。", ["「行こう。早く！」と彼は言った。", "雨が降った。"]),
        ('A stray " mark. The next sentence.', ['A stray " mark.', "The next sentence."]),
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
    parts = segment(np.random.default_rng(2).uniform([0.15, -1], [1, 1], (30, 2)))  # valence of one side
    assert parts[0][0] == 0 and parts[-1][1] == 30
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert all(end - start >= 2 for start, end in parts)


def test_no_segment_joins_sentences_of_opposite_valence():
    rng = np.random.default_rng(3)
    va = rng.uniform(-1, 1, (40, 2))
    parts = segment(va)
    assert parts[0][0] == 0 and parts[-1][1] == 40 and all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    for start, end in parts:
        sides = {np.sign(v) for v in va[start:end, 0] if abs(v) > VALENCE_MARGIN}
        assert len(sides) <= 1, (start, end, va[start:end, 0])
    # the cue: a happy sentence, then a creak that reads a little negative; neutral ones stay with either
    story = np.array([[0.8, 0.4], [0.6, 0.3], [0.05, 0.0], [-0.17, 0.2], [-0.3, 0.1]])
    first, second = segment(story)
    assert first[1] == second[0] in (2, 3)  # the neutral sentence may go either way, the creak never with joy


def test_a_short_story_is_cut_where_its_feeling_swings():
    calm, frantic = [0.3, -0.6], [0.5, 0.9]  # one side of valence: only the swing in arousal can cut them
    assert segment(np.array([calm, frantic])) == [(0, 1), (1, 2)]
    assert segment(np.array([calm, calm, frantic])) == [(0, 2), (2, 3)]
    near = [calm[0], calm[1] + 0.9 * SWING]  # a little apart, as one mood read twice can be
    assert segment(np.array([calm, near])) == [(0, 2)]


def test_smoothing_keeps_length_and_averages_neighbours():
    va = np.array([[0.0, 0.0], [3.0, 3.0], [0.0, 0.0]])
    np.testing.assert_allclose(smooth(va), [[1.5, 1.5], [1.0, 1.0], [1.5, 1.5]])


def test_request_threads_that_all_need_the_encoder_first_get_one_load():
    """Four threads asking at once in a fresh process (concurrent imports of transformers used to fail)."""
    code = ("import threading\nfrom models.text import sentence_encoder\nout = []\n"
            "def go():\n    out.append(id(sentence_encoder()))\n"
            "threads = [threading.Thread(target=go) for _ in range(4)]\n"
            "[t.start() for t in threads]\n[t.join() for t in threads]\n"
            "assert len(out) == 4 and len(set(out)) == 1, out\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_remembered_texts_are_not_encoded_again_and_read_the_same(monkeypatch):
    encoder = SentenceEncoder()
    texts = ["The storm broke at noon.", "She laughed all the way home.", "The storm broke at noon."]
    plain = encoder.encode(texts)
    encoder.keep_recent(2)
    encoded: list[list[str]] = []
    inner = encoder._encode
    monkeypatch.setattr(encoder, "_encode", lambda batch, **kw: encoded.append(batch) or inner(batch, **kw))
    first = encoder.encode(texts)
    again = encoder.encode(["She laughed all the way home.", "The storm broke at noon."])
    assert encoded == [["The storm broke at noon.", "She laughed all the way home."]]  # each text once, then none
    np.testing.assert_allclose(first, plain, atol=1e-6)
    np.testing.assert_allclose(again, plain[[1, 0]], atol=1e-6)
    encoder.encode(["A third sentence pushes the least recent out."])
    encoder.encode(["The storm broke at noon.", "She laughed all the way home."])
    assert encoded[-1] == ["She laughed all the way home."]  # only the last 2 distinct texts are kept


def test_remembered_lyrics_are_cut_and_encoded_once_and_read_the_same(monkeypatch):
    encoder = SentenceEncoder()
    lyrics = [f"Verse {k}: the night is long and the road goes on, we sing until the morning" for k in range(6)]
    plain = encoder.encode_segments(lyrics[0])
    encoder.keep_recent(2)
    encoded: list[str] = []
    inner = encoder._encode_segments
    monkeypatch.setattr(encoder, "_encode_segments", lambda text, width: encoded.append(text) or inner(text, width))
    first, again = encoder.encode_segments(lyrics[0]), encoder.encode_segments(lyrics[0])
    assert encoded == [lyrics[0]] and again is first and not first.flags.writeable
    np.testing.assert_allclose(first, plain, atol=1e-6)
    for text in lyrics[1:]:
        encoder.encode_segments(text)
    encoder.encode_segments(lyrics[0])
    assert encoded[-1] == lyrics[0] and len(encoded) == 7  # only the last SEGMENT_MEMO lyrics are kept
