"""``moodspace span-experiment``: does span search find the moment a curve describes?

On a split with dynamic labels (VGMIDI's test series, the built-in test split), each query is a stretch of a
piece's own annotated curve, cut at a random place. The catalogue is every piece of the split, cut into spans as
the service cuts them (``models.inference.SpanGrid``) and every run scored (``models.spans``: the answers the
service's span index gives, by its certificate). Reported per query length:

- ``located_top1``: the top span of the whole catalogue is in the true piece and covers at least half the cut;
- ``located_within``: the true piece's best run covers at least half the cut (localisation alone), beside
  ``chance_within``, the same for a run drawn uniformly from the piece;
- ``span_mrr``: MRR of the true piece ranked by its best run, beside ``track_mrr``, the true piece ranked by
  whole-track retrieval of the same cut (the service without spans), and ``random_mrr``;
- ``labels_top1``: ``located_top1`` for a perfect reader of each span, the runs ranked by the distance between the
  cut's VA and the spans' annotated VA: what the labels allow, the ceiling of the measure;
- with ``panel`` (the annotators behind each label point), ``panel_top1`` and ``panel_within``: the same reader
  over another panel's labels (``second_panel``): a perfect reader of the music's true emotion differs from the
  labels by that much, so this is the ceiling any model can reach when the labels are means of a few annotators.

And once per split, each piece's whole curve as the query (``WholeCurve``): MRR by the best aligned run against
whole-track retrieval, both over every piece and over the pieces at least as long as the query (a run needs
that length, so the aligned figure must beat whole-track retrieval among those to count).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.bundle import load_bundle
from models.default import resolve_bundle
from models.inference import Embedder, SpanGrid
from models.manifest import Clip, read_manifest
from models.scoring import Gaussians, composite_scores
from models.spans import SpanTable
from training.features import Item, load_items

COVER = 0.5  # a found run "overlaps" the cut when it covers at least this fraction of it


@dataclass(frozen=True)
class SpanScores:
    seconds: float
    queries: int
    located_top1: float
    located_within: float
    chance_within: float
    span_mrr: float
    track_mrr: float
    random_mrr: float
    labels_top1: float
    panel_top1: float = float("nan")  # nan: no panel asked for
    panel_within: float = float("nan")


@dataclass(frozen=True)
class Cut:
    piece: int
    start_s: float
    curve: np.ndarray  # (T, 3): times from the cut's start


def piece_curve(item: Item, frame_seconds: float) -> np.ndarray:
    """An item's label curve at its frame centres, timed from its first frame's start (as its spans are)."""
    return np.column_stack([(np.arange(item.va.shape[0]) + 0.5) * frame_seconds, item.va])


def cut(curve: np.ndarray, start_s: float, seconds: float, *, step: float) -> np.ndarray:
    """The stretch ``[start_s, start_s + seconds]`` of ``curve``, read every ``step`` s, timed from 0."""
    times = np.linspace(start_s, start_s + seconds, max(2, round(seconds / step) + 1))
    va = np.column_stack([np.interp(times, curve[:, 0], curve[:, i]) for i in (1, 2)])
    return np.column_stack([times - start_s, va])


def draw_cuts(curves: list[np.ndarray], durations: np.ndarray, seconds: float, *, per_piece: int,
              rng: np.random.Generator, step: float) -> list[Cut]:
    """``per_piece`` cuts of every piece at least ``seconds`` long, at uniform random starts."""
    cuts = []
    for piece, (curve, duration) in enumerate(zip(curves, durations, strict=True)):
        if duration < seconds:
            continue
        for start in rng.uniform(0.0, duration - seconds, size=per_piece):
            cuts.append(Cut(piece, float(start), cut(curve, float(start), seconds, step=step)))
    return cuts


def covers(start: float, end: float, cut_start: float, seconds: float) -> bool:
    return min(end, cut_start + seconds) - max(start, cut_start) >= COVER * seconds


def chance_cover(index: SpanTable, piece: int, runs: int, cut_start: float, seconds: float) -> float:
    """The fraction of the piece's runs of ``runs`` spans that cover the cut."""
    rows = index.rows_of(np.array([piece]))
    count = rows.size - runs + 1
    if count <= 0:
        return 0.0
    hits = [covers(index.starts[rows[i]], index.ends[rows[i + runs - 1]], cut_start, seconds) for i in range(count)]
    return float(np.mean(hits))


@dataclass(frozen=True)
class WholeCurve:
    queries: int
    aligned_mrr: float  # pieces ranked by their best run for the whole curve (shorter pieces have none)
    track_mrr: float  # whole-track retrieval over every piece
    track_mrr_as_long: float  # whole-track retrieval over the pieces at least as long as the query
    random_mrr_as_long: float


def whole_curves(embedder: Embedder, index: SpanTable, tracks: Gaussians, curves: list[np.ndarray]) -> WholeCurve:
    """Each piece's whole curve as the query (module docstring)."""
    lam, n = embedder.config.score_lam, len(curves)
    aligned, whole, as_long, random = [], [], [], []
    for piece, curve in enumerate(curves):
        scores = composite_scores(embedder.embed_curve(curve), tracks, lam=lam).score[0]
        order = [h.track_id for h in index.best_runs(embedder.span_curve_query(curve), np.arange(n), lam=lam)]
        aligned.append(1.0 / (order.index(piece) + 1) if piece in order else 0.0)
        long_enough = np.isin(np.arange(n), order)
        whole.append(1.0 / (1 + int(np.sum(scores > scores[piece]))))
        as_long.append(1.0 / (1 + int(np.sum((scores > scores[piece]) & long_enough))))
        random.append(float(np.mean(1.0 / np.arange(1, long_enough.sum() + 1))) if long_enough.any() else 0.0)
    return WholeCurve(n, float(np.mean(aligned)), float(np.mean(whole)), float(np.mean(as_long)),
                      float(np.mean(random)))


def second_panel(clip: Clip, panel: int, rng: np.random.Generator) -> Clip:
    """``clip`` as another panel of ``panel`` annotators might have labelled it: each label point moved by a normal
    draw of its annotators' spread (``curve_std``) over sqrt(``panel``), independently from point to point (the
    sampling error of a mean of ``panel`` ratings), clipped to [-1, 1]."""
    if clip.curve is None or clip.curve_std is None:
        raise ValueError(f"clip {clip.id!r}: a second panel needs the annotators' spread (curve_std)")
    curve = clip.curve.copy()
    spread = np.interp(curve[:, 0], clip.curve_std[:, 0], clip.curve_std[:, 1]), \
        np.interp(curve[:, 0], clip.curve_std[:, 0], clip.curve_std[:, 2])
    curve[:, 1:] += rng.normal(size=(curve.shape[0], 2)) * np.column_stack(spread) / np.sqrt(panel)
    curve[:, 1:] = np.clip(curve[:, 1:], -1.0, 1.0)
    return replace(clip, curve=curve)


def panel_curve(clip: Clip, curve: np.ndarray, noisy: Clip) -> np.ndarray:
    """A piece's ``piece_curve`` (``curve``) with ``noisy``'s change to ``clip``'s labels added, read at the curve's
    frames (counted from the clip's first label point)."""
    curve = curve.copy()
    times = clip.curve[0, 0] + curve[:, 0]  # type: ignore[index]
    for i in (1, 2):
        curve[:, i] += np.interp(times, clip.curve[:, 0], noisy.curve[:, i] - clip.curve[:, i])  # type: ignore[index]
    return curve


def _span_va(index: SpanTable, curves: list[np.ndarray]) -> np.ndarray:
    """(spans, 2): each span's mean label VA."""
    return np.array([curves[owner][(curves[owner][:, 0] >= start) & (curves[owner][:, 0] <= end), 1:].mean(axis=0)
                     for owner, start, end in zip(index.track_ids, index.starts, index.ends, strict=True)])


def piece_va(curve: np.ndarray, grid: SpanGrid, pieces: int) -> np.ndarray:
    """(pieces, 2): the mean VA of a cut over each piece's stretch of the span grid."""
    return np.array([curve[(curve[:, 0] >= j * grid.hop_s) & (curve[:, 0] <= j * grid.hop_s + grid.width_s), 1:]
                     .mean(axis=0) for j in range(pieces)])


def labels_best(index: SpanTable, span_va: np.ndarray, va: np.ndarray,
                pieces: np.ndarray | None = None) -> tuple[int, float, float]:
    """The piece, start and end of the run whose annotated VA lies closest to ``va`` ((n, 2), one per piece),
    among ``pieces`` (default: every piece)."""
    n, best = va.shape[0], (np.inf, -1, 0.0, 0.0)
    for piece in np.unique(index.track_ids) if pieces is None else pieces:
        rows = np.flatnonzero(index.track_ids == piece)
        if rows.size < n:
            continue
        distances = [np.linalg.norm(span_va[rows[i : i + n]] - va, axis=1).mean() for i in range(rows.size - n + 1)]
        i = int(np.argmin(distances))
        if distances[i] < best[0]:
            best = (distances[i], int(piece), float(index.starts[rows[i]]), float(index.ends[rows[i + n - 1]]))
    return best[1], best[2], best[3]


def score_length(embedder: Embedder, index: SpanTable, tracks: Gaussians, curves: list[np.ndarray],
                 durations: np.ndarray, seconds: float, *, per_piece: int, seed: int,
                 panel_curves: list[np.ndarray] | None = None) -> SpanScores:
    """The scores of one query length (module docstring)."""
    rng = np.random.default_rng(seed)
    lam = embedder.config.score_lam
    cuts = draw_cuts(curves, durations, seconds, per_piece=per_piece, rng=rng,
                     step=embedder.config.frontend.frame_seconds / 2)
    n_pieces = len(curves)
    random_mrr = float(np.mean([1.0 / r for r in range(1, n_pieces + 1)]))
    if not cuts:  # no piece this long
        nan = float("nan")
        return SpanScores(seconds, 0, nan, nan, nan, nan, nan, random_mrr, nan)
    span_va = _span_va(index, curves)
    panel_va = None if panel_curves is None else _span_va(index, panel_curves)
    top1, within, chance, span_rr, track_rr, labels, panel, panel_own = [], [], [], [], [], [], [], []
    for query in tqdm(cuts, desc=f"span queries {seconds:g} s", unit="query"):
        pieces = embedder.span_curve_query(query.curve)
        ranked = index.best_runs(pieces, np.arange(n_pieces), lam=lam)
        order = [h.track_id for h in ranked]
        best = ranked[0]
        top1.append(best.track_id == query.piece and covers(best.start_s, best.end_s, query.start_s, seconds))
        span_rr.append(1.0 / (order.index(query.piece) + 1) if query.piece in order else 0.0)
        own = index.best_runs(pieces, np.array([query.piece]), lam=lam)
        within.append(bool(own) and covers(own[0].start_s, own[0].end_s, query.start_s, seconds))
        chance.append(chance_cover(index, query.piece, pieces.E.shape[0], query.start_s, seconds))
        whole = composite_scores(embedder.embed_curve(query.curve), tracks, lam=lam).score[0]
        track_rr.append(1.0 / (1 + int(np.sum(whole > whole[query.piece]))))
        asked = piece_va(query.curve, embedder.span_grid, pieces.E.shape[0])
        piece, start, end = labels_best(index, span_va, asked)
        labels.append(piece == query.piece and covers(start, end, query.start_s, seconds))
        if panel_va is not None:
            piece, start, end = labels_best(index, panel_va, asked)
            panel.append(piece == query.piece and covers(start, end, query.start_s, seconds))
            _, start, end = labels_best(index, panel_va, asked, np.array([query.piece]))
            panel_own.append(covers(start, end, query.start_s, seconds))
    return SpanScores(seconds, len(cuts), _mean(top1), _mean(within), _mean(chance), _mean(span_rr),
                      _mean(track_rr), random_mrr, _mean(labels), _mean(panel), _mean(panel_own))


def _mean(values: list) -> float:
    return float(np.mean(values)) if values else float("nan")


def span_experiment(*, bundle: Path, data: Path, split: str, seconds: list[float], per_piece: int = 5,
                    seed: int = 0, workers: int | None = None,
                    panel: int | None = None) -> tuple[list[SpanScores], WholeCurve]:
    """Span search against whole-track retrieval on ``data``'s ``split`` (module docstring); with ``panel``, the
    ceiling of a second panel of that many annotators."""
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(bundle)))
    clips = [c for c in read_manifest(data) if c.split == split and c.label_type == "dynamic"]
    items = load_items(data, clips, embedder.config.frontend, workers=workers)
    frame_seconds = embedder.config.frontend.frame_seconds
    spans = [embedder.embed_spans(item.features) for item in items]
    owners = np.concatenate([np.full(s.starts.size, i) for i, s in enumerate(spans)])
    index = SpanTable(owners, np.concatenate([s.starts for s in spans]), np.concatenate([s.ends for s in spans]),
                      Gaussians(*(np.vstack(parts) for parts in zip(*(s.gaussians for s in spans), strict=True))))
    tracks = embedder.embed_features([item.features for item in items])
    curves = [piece_curve(item, frame_seconds) for item in items]
    durations = np.array([item.va.shape[0] * frame_seconds for item in items])
    rng = np.random.default_rng([seed, 1])  # a stream of its own: the cuts draw from seed + i
    panel_curves = None if panel is None else [
        panel_curve(clip, curve, second_panel(clip, panel, rng)) for clip, curve in zip(clips, curves, strict=True)]
    lengths = [score_length(embedder, index, tracks, curves, durations, s, per_piece=per_piece, seed=seed + i,
                            panel_curves=panel_curves) for i, s in enumerate(seconds)]
    return lengths, whole_curves(embedder, index, tracks, curves)


def markdown(name: str, results: list[SpanScores], whole: WholeCurve) -> str:
    lines = [f"{name}", "", "| query length | queries | top-1 covers the cut (labels' ceiling) | true piece's best run "
             "covers it (chance) | MRR by best run | MRR whole-track | MRR random | a second panel: top-1 / within the "
             "piece |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if not r.queries:
            lines.append(f"| {r.seconds:g} s | 0 | no piece is this long | | | | | |")
            continue
        lines.append(f"| {r.seconds:g} s | {r.queries} | {r.located_top1:.3f} ({r.labels_top1:.3f}) | "
                     f"{r.located_within:.3f} "
                     f"({r.chance_within:.3f}) | {r.span_mrr:.3f} | {r.track_mrr:.3f} | {r.random_mrr:.3f} | "
                     + ("not asked |" if np.isnan(r.panel_top1) else f"{r.panel_top1:.3f} / {r.panel_within:.3f} |"))
    lines += ["", f"Each piece's whole curve as the query ({whole.queries} pieces): MRR by the best aligned run "
              f"{whole.aligned_mrr:.3f}; whole-track {whole.track_mrr:.3f}; whole-track among the pieces at least as "
              f"long {whole.track_mrr_as_long:.3f} (random among them {whole.random_mrr_as_long:.3f})."]
    return "\n".join(lines) + "\n"


def to_json(results: list[SpanScores], whole: WholeCurve) -> dict:
    """The results as JSON values (a length no piece reaches has nulls)."""
    return {"lengths": [{k: None if isinstance(v, float) and np.isnan(v) else v for k, v in asdict(r).items()}
                        for r in results], "whole_curve": asdict(whole)}
