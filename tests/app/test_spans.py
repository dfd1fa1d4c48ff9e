"""Span search (app.spans): each track's best run of spans, exact against scoring every run of every track; the
span grid and span embeddings of the model; spans saved and loaded with a snapshot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from app import spans as spans_module
from app.index import IndexStore
from app.spans import build_spans
from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel
from models.inference import Embedder, SpanGrid
from models.scoring import Gaussians, composite_scores
from models.spans import SpanTable

D = 4


def _catalogue(seed: int, tracks: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray, Gaussians]:
    """Spans of ``tracks`` tracks with 1 to 9 spans each (5 s apart, 10 s long), random embeddings."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 10, size=tracks)
    owners = np.repeat(np.arange(100, 100 + tracks), counts)
    starts = np.concatenate([np.arange(c) * 5.0 for c in counts])
    gaussians = Gaussians(rng.normal(size=(owners.size, D)), rng.normal(scale=0.5, size=(owners.size, D)),
                          rng.normal(scale=0.3, size=(owners.size, D)))
    return owners, starts, starts + 10.0, gaussians


def _brute_force(owners, starts, ends, gaussians, pieces: Gaussians, lam: float, *, allowed=None, exclude=()):
    """(track, start, end, score) of every track's best run, best first: every run of every track scored."""
    n = pieces.E.shape[0]
    scores = composite_scores(pieces, gaussians, lam=lam).score  # (n, S)
    best = []
    for track in np.unique(owners):
        rows = np.flatnonzero(owners == track)
        if track in exclude or (allowed is not None and not np.isin(rows, allowed).all()) or rows.size < n:
            continue
        runs = [np.mean([scores[j, rows[i + j]] for j in range(n)]) for i in range(rows.size - n + 1)]
        i = int(np.argmax(runs))
        best.append((int(track), starts[rows[i]], ends[rows[i + n - 1]], runs[i]))
    return sorted(best, key=lambda b: (-b[3], b[0]))


def _pieces(seed: int, n: int) -> Gaussians:
    rng = np.random.default_rng(seed)
    return Gaussians(rng.normal(size=(n, D)), rng.normal(scale=0.5, size=(n, D)), rng.normal(scale=0.3, size=(n, D)))


@pytest.mark.parametrize("lam", [0.5, 0.9, 0.98])
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("first_tracks", [1, 4])
def test_span_search_is_the_exact_best_run_of_every_track(monkeypatch, lam: float, n: int, first_tracks: int):
    monkeypatch.setattr(spans_module, "FIRST_TRACKS", first_tracks)
    owners, starts, ends, gaussians = _catalogue(seed=n)
    index = build_spans(SpanTable(owners, starts, ends, gaussians))
    pieces = _pieces(seed=7, n=n)
    found = index.search(pieces, lam=lam, k=5)
    expected = _brute_force(owners, starts, ends, index.gaussians, pieces, lam)[:5]
    assert [(h.track_id, h.start_s, h.end_s) for h in found] == [e[:3] for e in expected]
    np.testing.assert_allclose([h.score for h in found], [e[3] for e in expected], rtol=1e-9, atol=1e-9)
    for hit in found:
        assert hit.end_s - hit.start_s == pytest.approx(10.0 + 5.0 * (n - 1))  # n spans 5 s apart


def test_filters_and_exclusions_keep_the_answer_exact_among_the_tracks_left(monkeypatch):
    monkeypatch.setattr(spans_module, "FIRST_TRACKS", 1)
    owners, starts, ends, gaussians = _catalogue(seed=3)
    index = build_spans(SpanTable(owners, starts, ends, gaussians))
    pieces = _pieces(seed=8, n=2)
    passing = np.unique(owners)[::3]
    allowed = index.rows_of(passing)
    exclude = {int(passing[0]), int(passing[1])}
    found = index.search(pieces, lam=0.9, k=4, allowed=allowed, exclude=exclude)
    expected = _brute_force(owners, starts, ends, index.gaussians, pieces, 0.9, allowed=allowed, exclude=exclude)
    assert [h.track_id for h in found] == [e[0] for e in expected[:4]]
    assert set(h.track_id for h in found) <= set(passing.tolist()) - exclude


@pytest.mark.parametrize("lam", [0.5, 0.98])
def test_coarse_first_scores_make_the_search_rescore_more_tracks_until_the_answer_is_certain(monkeypatch,
                                                                                             lam: float):
    """The first pass read through half-precision vectors (its slack widened to match): its order is wrong near the
    top, and only the certificate's growth keeps the answer exact."""
    monkeypatch.setattr(spans_module, "FIRST_TRACKS", 1)
    monkeypatch.setattr(spans_module, "FLOAT32_SLACK", 2.0**-9)  # half precision: 2^-11 per stored value
    owners, starts, ends, gaussians = _catalogue(seed=6, tracks=20)
    rng = np.random.default_rng(0)  # four near copies of each track: close calls at the top
    copies = [Gaussians(*(part + rng.normal(scale=2e-4, size=part.shape) for part in gaussians)) for _ in range(4)]
    owners = np.concatenate([owners + 1000 * c for c in range(4)])
    starts, ends = np.tile(starts, 4), np.tile(ends, 4)
    stacked = Gaussians(*(np.vstack(p) for p in zip(*copies, strict=True)))
    index = build_spans(SpanTable(owners, starts, ends, stacked))
    coarse = replace(index, vectors=index.vectors.astype(np.float16).astype(np.float32))
    for seed in range(20):
        pieces = _pieces(seed=seed, n=2)
        found = coarse.search(pieces, lam=lam, k=5)
        expected = _brute_force(owners, starts, ends, index.gaussians, pieces, lam)[:5]
        assert [h.track_id for h in found] == [e[0] for e in expected]


def test_a_run_longer_than_every_track_finds_nothing_and_the_longest_is_named():
    owners, starts, ends, gaussians = _catalogue(seed=4)
    index = build_spans(SpanTable(owners, starts, ends, gaussians))
    assert index.search(_pieces(seed=1, n=10), lam=0.9, k=3) == []  # tracks have at most 9 spans
    assert index.longest_s() == pytest.approx(10.0 + 5.0 * 8)
    assert build_spans(SpanTable(owners[:0], starts[:0], ends[:0], Gaussians(*(p[:0] for p in gaussians)))).search(
        _pieces(seed=1, n=1), lam=0.9, k=3) == []


def test_spans_are_saved_with_the_snapshot_and_answer_the_same_after_loading(tmp_path: Path):
    owners, starts, ends, gaussians = _catalogue(seed=5)
    tracks = np.unique(owners)
    rng = np.random.default_rng(0)
    track_gaussians = Gaussians(*(rng.normal(size=(tracks.size, D)) for _ in range(3)))
    store = IndexStore(tmp_path)
    snapshot = store.build(model_version="v", track_ids=tracks, gaussians=track_gaussians,
                           spans=SpanTable(owners, starts, ends, gaussians))
    store.publish(snapshot)
    loaded = IndexStore(tmp_path).load_current("v")
    assert loaded is not None and loaded.spans is not None and snapshot.spans is not None
    pieces = _pieces(seed=2, n=2)
    assert loaded.spans.search(pieces, lam=0.9, k=5) == snapshot.spans.search(pieces, lam=0.9, k=5)


def test_a_snapshot_saved_without_spans_loads_without_them(tmp_path: Path):
    store = IndexStore(tmp_path)
    rng = np.random.default_rng(0)
    store.publish(store.build(model_version="v", track_ids=np.arange(5),
                              gaussians=Gaussians(*(rng.normal(size=(5, D)) for _ in range(3)))))
    loaded = IndexStore(tmp_path).load_current("v")
    assert loaded is not None and loaded.spans is None


# The model's side: the grid, span embeddings, span queries ------------------------------------------------------

@pytest.fixture(scope="module")
def embedder() -> Embedder:
    torch.manual_seed(0)
    config = ModelConfig(music=EncoderConfig(kind="bigru", hidden=8, layers=(16,)),
                         emotion=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), d=D)
    return Embedder(CrossModalModel(config))


def test_the_span_grid_rounds_10_s_spans_every_5_s_to_whole_frames():
    grid = SpanGrid.of(0.96)
    assert (grid.width, grid.hop) == (10, 5)
    assert grid.starts(26).tolist() == [0, 5, 10, 15]  # the last span ends at frame 25
    assert grid.starts(4).tolist() == [0]  # a track shorter than one span is one span
    assert grid.pieces(5.0) == 1 and grid.pieces(grid.width_s) == 1
    assert grid.pieces(grid.width_s + 2 * grid.hop_s) == 3


def test_each_span_embedding_is_the_music_embedding_of_its_frames(embedder: Embedder):
    features = np.random.default_rng(0).normal(size=(26, embedder.config.n_features)).astype(np.float32)
    spans = embedder.embed_spans(features)
    assert spans.starts.tolist() == pytest.approx([0.0, 4.8, 9.6, 14.4])
    assert spans.ends.tolist() == pytest.approx([9.6, 14.4, 19.2, 24.0])
    third = embedder.embed_features([features[10:20]])
    for part, alone in zip(spans.gaussians, third, strict=True):
        np.testing.assert_allclose(part[2], alone[0], rtol=1e-5, atol=1e-6)


def test_a_rising_curve_becomes_pieces_that_follow_it(embedder: Embedder):
    grid = embedder.span_grid
    seconds = grid.width_s + 2 * grid.hop_s
    rising = np.array([[0.0, -0.8, -0.8], [seconds, 0.8, 0.8]])
    pieces = embedder.span_curve_query(rising)
    assert pieces.E.shape[0] == 3
    offsets = (np.arange(grid.width) + 0.5) * grid.frame_seconds
    low = -0.8 + 1.6 * offsets / seconds  # piece 0 reads the start of the curve, where it is low
    alone = embedder.embed_va([np.column_stack([low, low])])
    np.testing.assert_allclose(pieces.E[0], alone.E[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(pieces.E[0], pieces.E[2])  # the last piece reads the high end
    steady = embedder.span_steady_query(Gaussians(*(p[:1] for p in pieces)), seconds)
    assert steady.E.shape[0] == 3 and np.allclose(steady.E, pieces.E[0])


def test_only_a_catalogue_track_s_analysis_embeds_its_spans(embedder: Embedder):
    """A music-to-emotion upload is not stored: its analysis skips the span embeddings a catalogue track keeps."""
    from app.analysis import analyze_decoded
    from app.decoding import Decoded, fingerprint
    from models.harmony import tonality
    from training.corpus.generate import synth_clip
    from training.corpus.synth import SR

    _, y = synth_clip(0, seed=3, seconds=25)
    decoded = Decoded(embedder.frontend(y), y.size / SR, tonality(y, SR), fingerprint(y))
    assert analyze_decoded(embedder, decoded).spans is None
    stored = analyze_decoded(embedder, decoded, spans=True).spans
    assert stored is not None and stored.starts.size == 4 and stored.ends[-1] <= 25.0
