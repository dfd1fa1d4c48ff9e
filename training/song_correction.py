"""``moodspace song-correction-experiment``: what a song's words add to a trained music model's own representation.

The music model (the shipped default, or any bundle with categorical heads) stays as it is; a
``RepresentationCorrection`` learns what a song's lyrics and title/artist add to its representation of the whole
track, through the model's own frozen categorical heads: on each categorical set (``mirex_mm``: audio, lyrics and
context; ``4q``: audio and context), a batch of one set updates the correction by that set's head's cross-entropy.
Every head of the music model reads the corrected representation, so the point and Gaussian embedding and the VA
reading move with it; a track without text keeps its representation exactly.

With ``lyrics_sets``, the variants whose lyrics token carries what the lyrics sets teach (``READING_VARIANTS``)
run too, and the same with the lyrics set's own stacked probe (``lyrics_probe_sets``, as the fusion model's
"+ own stack").

With ``replacement_anchors``, a ``RepresentationReplacement`` runs too: a fusion network of its own on the
front-end frames whose output takes the place of the music model's representation where a song has text, read by
the same frozen heads; each anchor weighs a pull towards the music model's own representation (the squared distance
over the representations' summed variance), which keeps the point and Gaussian embedding near where the music model
put the track. ``replacement_readings`` picks the lyrics token: "stack" (the own-stack variants: what other lyrics
sets and the set's own train lyrics teach, through word n-gram probes among others), "vectors" (the same readings
from probes on the segment vectors alone: weights, no word of the lyrics, so a bundle could ship them) or "none"
(``VARIANTS``: no reading token, the segment vectors alone).

Rows per set and split: the music model alone, with the correction, and with the correction but lyrics and context
removed (equal to the model alone by construction; measured, not assumed); for each, the same read in the shared
space ("..., shared space": each song's class is the one whose VA placement, as an emotion query, scores highest
against the song's point and Gaussian embedding at the model's lam). Every correction early-stops on the sum of
the sets' val macro-F1; test is reported, never used for a choice. Splits are the manifests' (by artist).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.bundle import load_bundle
from models.default import resolve_bundle
from models.encoders import MusicEncoder
from models.fusion import (
    FusionConfig,
    Modality,
    RepresentationChange,
    RepresentationCorrection,
    RepresentationReplacement,
)
from models.inference import Embedder
from models.scoring import Gaussians, composite_scores
from models.songtext import TextModality
from models.taxonomy import CLASS_VA, TAXONOMIES
from training.categorical_experiment import markdown, summarize
from training.classify import CategoricalMetrics, categorical_metrics
from training.fusion_experiment import (
    SPLITS,
    FusionTrainConfig,
    Song,
    inputs,
    load_songs,
    modality_dropout,
    own_probe_variants,
    with_own_probe,
)
from training.loop import Validation, descend, fit, mean_parts, seed_everything
from training.lyrics_reader import READING_WIDTH, LyricsReader, fit_reader

EVALUATED = ("val", "test")


@dataclass(frozen=True)
class CorrectionTrainConfig(FusionTrainConfig):
    epochs: int = 60
    patience: int = 10
    replacement: bool = False  # a ``RepresentationReplacement`` (songs with front-end frames) instead of a correction
    anchor: float = 0.0  # weight of the replacement's pull towards the music model's own representation


# "lyrics only": the title and artist are not read, so a track without lyrics (every 4Q clip) keeps the music
# model's representation exactly.
VARIANTS: dict[str, FusionConfig] = {
    "correction": FusionConfig(),
    "correction, lyrics only": FusionConfig(modalities=("audio", "lyrics")),
}
READING_VARIANTS: dict[str, FusionConfig] = {  # with ``lyrics_sets``
    "correction, lyrics reading": FusionConfig(lyrics_reading=READING_WIDTH),
    "correction, lyrics only, lyrics reading": FusionConfig(modalities=("audio", "lyrics"),
                                                            lyrics_reading=READING_WIDTH),
}


def own_stack_variants(sets: list[SongSet]) -> dict[str, FusionConfig]:
    """``READING_VARIANTS`` whose lyrics token also holds the own stacked probe of the set with lyrics
    (``lyrics_probe_sets``)."""
    return own_probe_variants(len(TAXONOMIES[voiced_set(sets).taxonomy]), "stack", READING_VARIANTS)


@dataclass(frozen=True)
class SongSet:
    """One categorical set's songs by split, read by one music model (``Song.features``: its window
    representations; ``Song.track``: its whole-clip representation)."""

    name: str
    taxonomy: str
    songs: dict[str, list[Song]]
    tracks: dict[str, torch.Tensor]  # split -> (N, H) the songs' whole-clip representations

    @classmethod
    def of(cls, name: str, taxonomy: str, songs: dict[str, list[Song]]) -> SongSet:
        if any(s.track is None for rows in songs.values() for s in rows):
            raise ValueError(f"{name}: songs without a music model's representation (load_songs(music=...))")
        return cls(name, taxonomy, songs, {split: torch.from_numpy(np.stack([s.track for s in rows]))  # type: ignore[misc]
                                           for split, rows in songs.items() if rows})


def heads_of(music: MusicEncoder) -> nn.ModuleDict:
    """The music model's categorical heads, held fixed."""
    for parameter in music.categorical.parameters():
        parameter.requires_grad_(False)
    return music.categorical


def voiced_set(sets: list[SongSet]) -> SongSet:
    """The one set whose train songs have lyrics (an own lyrics probe is fitted on it)."""
    voiced = [data for data in sets if any(s.lyrics.shape[0] for s in data.songs["train"])]
    if len(voiced) != 1:
        raise ValueError(f"an own lyrics probe needs exactly one set with lyrics, not {len(voiced)}")
    return voiced[0]


def lyrics_probe_sets(sets: list[SongSet], probe: str = "stack") -> list[SongSet]:
    """The sets with the own lyrics ``probe`` of the one set whose train songs have lyrics (``with_own_probe``:
    read out of fold by artist on its train songs) after each song's lyrics reading; the other sets, which must
    have no lyrics, get zeros in those columns."""
    voiced = voiced_set(sets)
    probed, _ = with_own_probe(voiced.songs, voiced.taxonomy, probe)
    width = len(TAXONOMIES[voiced.taxonomy])
    out = []
    for data in sets:
        if data is voiced:
            out.append(replace(data, songs=probed))
            continue
        if any(s.lyrics.shape[0] for rows in data.songs.values() for s in rows):
            raise ValueError(f"{data.name}: lyrics, but its own probe is not fitted (only {voiced.name}'s is)")
        out.append(replace(data, songs={split: [replace(s, lyrics_reading=np.concatenate(
            [s.lyrics_reading, np.zeros(width, np.float32)])) for s in rows] for split, rows in data.songs.items()}))
    return out


@torch.no_grad()
def probabilities(heads: nn.ModuleDict, data: SongSet, split: str, correction: RepresentationChange | None,
                  *, without: tuple[Modality, ...] = (), batch_size: int = 64) -> np.ndarray:
    """(N, C) the set's head's probabilities for a split, on the corrected representation where a correction is
    given (with ``without`` modalities removed)."""
    songs, h = data.songs[split], data.tracks[split]
    if correction is not None:
        correction.eval()
    parts = []
    for k in range(0, len(songs), batch_size):
        rows = h[k : k + batch_size]
        if correction is not None:
            rows = correction(rows, inputs(songs[k : k + batch_size]).without(*without))
        parts.append(torch.softmax(heads[data.taxonomy](rows), dim=1).numpy())
    return np.concatenate(parts)


def evaluate(heads: nn.ModuleDict, data: SongSet, split: str, correction: RepresentationChange | None, *,
             without: tuple[Modality, ...] = ()) -> CategoricalMetrics:
    labels = np.array([s.label for s in data.songs[split]])
    return categorical_metrics(data.taxonomy, labels, probabilities(heads, data, split, correction, without=without))


def anchor_term(fused: torch.Tensor, h: torch.Tensor, scale: float) -> torch.Tensor:
    """Mean squared distance between the replaced and the music model's own representations, over ``scale`` (the
    train representations' summed variance), so that the weight does not depend on the representation's size."""
    return ((fused - h) ** 2).sum(dim=1).mean() / scale


def train_correction(sets: list[SongSet], heads: nn.ModuleDict, config: CorrectionTrainConfig, *,
                     progress: bool = False) -> RepresentationChange:
    """One correction (or replacement) over every set, early-stopped on the sum of the sets' val macro-F1."""
    seed_everything(config.seed)
    windows = np.concatenate([s.features for data in sets for s in data.songs["train"]])
    width = sets[0].tracks["train"].shape[1]
    model: RepresentationChange = (RepresentationReplacement(windows.shape[1], width, config.fusion)
                                   if config.replacement else RepresentationCorrection(windows.shape[1], config.fusion))
    spread = float(torch.cat([data.tracks["train"] for data in sets]).var(dim=0).sum())
    model.fusion.feature_mean.copy_(torch.from_numpy(windows.mean(axis=0)))
    model.fusion.feature_std.copy_(torch.from_numpy(np.maximum(windows.std(axis=0), 1e-6)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng, generator = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)

    def train_epoch() -> dict[str, float]:
        steps = [(data, rows) for data in sets for rows in np.array_split(
            rng.permutation(len(data.songs["train"])), max(1, len(data.songs["train"]) // config.batch_size))]
        parts = []
        for k in rng.permutation(len(steps)):
            data, rows = steps[k]
            songs = [data.songs["train"][i] for i in rows]
            batch = modality_dropout(inputs(songs), config.fusion.modality_dropout, generator)
            h = data.tracks["train"][torch.from_numpy(rows)]
            fused = model(h, batch)
            loss = nn.functional.cross_entropy(heads[data.taxonomy](fused), torch.tensor([s.label for s in songs]))
            if config.anchor:
                loss = loss + config.anchor * anchor_term(fused, h, spread)
            parts.append({"loss": descend(optimizer, loss)})
        return mean_parts(parts)

    def validate() -> Validation:
        scores = {f"{data.name}_val_macro_f1": evaluate(heads, data, "val", model).macro_f1 for data in sets}
        return Validation(sum(scores.values()), scores)

    fit(model, epochs=config.epochs, patience=config.patience, train_epoch=train_epoch, validate=validate,
        desc=f"correction seed {config.seed}", progress=progress)
    return model


SPACE_TEMPERATURE = 0.05  # only the AUCs of the shared-space rows depend on it; accuracy and F1 do not


@torch.no_grad()
def space_probabilities(embedder: Embedder, data: SongSet, split: str, correction: RepresentationChange | None, *,
                        batch_size: int = 64) -> np.ndarray:
    """(N, C) the set's classes read in the shared space: the softmax over the composite scores (model's lam, at
    temperature ``SPACE_TEMPERATURE``) of each class's VA placement, as an emotion query, against the song's
    point and Gaussian embedding (of the corrected representation where a correction is given)."""
    songs, h = data.songs[split], data.tracks[split]
    if correction is not None:
        correction.eval()
        h = torch.cat([correction(h[k : k + batch_size], inputs(songs[k : k + batch_size]))
                       for k in range(0, len(songs), batch_size)])
    embedder.model.eval()
    return class_space_probabilities(embedder, embedder.model.music.embed(h).numpy(), data.taxonomy)


def class_space_probabilities(embedder: Embedder, music: Gaussians, taxonomy: str) -> np.ndarray:
    """(N, C) ``taxonomy``'s classes read in the shared space from N music embeddings: the softmax over the
    composite scores (model's lam, at temperature ``SPACE_TEMPERATURE``) of each class's VA placement, as an
    emotion query."""
    classes = embedder.embed_points(np.array([CLASS_VA[taxonomy][c] for c in TAXONOMIES[taxonomy]]))
    scores = composite_scores(music, classes, lam=embedder.config.score_lam).score / SPACE_TEMPERATURE
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def space_evaluation(embedder: Embedder, data: SongSet, split: str, correction: RepresentationChange | None) -> dict:
    labels = np.array([s.label for s in data.songs[split]])
    return categorical_metrics(data.taxonomy, labels,
                               space_probabilities(embedder, data, split, correction)).to_dict()


def one_seed(sets: list[SongSet], embedder: Embedder, config: CorrectionTrainConfig,
             variants: dict[str, FusionConfig]) -> dict[str, dict[str, dict[str, dict]]]:
    """method -> set -> split -> metrics, for one seed (each method also read in the shared space)."""
    heads = heads_of(embedder.model.music)
    run: dict[str, dict[str, dict[str, dict]]] = {}
    for variant, fusion in variants.items():
        model = train_correction(sets, heads, replace(config, fusion=fusion))
        for name, without in ((variant, ()), (f"{variant}, lyrics and context missing", ("lyrics", "context"))):
            run[name] = {data.name: {s: evaluate(heads, data, s, model, without=without).to_dict()  # type: ignore[arg-type]
                                     for s in EVALUATED} for data in sets}
        run[f"{variant}, shared space"] = {data.name: {s: space_evaluation(embedder, data, s, model)
                                                       for s in EVALUATED} for data in sets}
    return run


REPLACEMENT_READINGS = ("none", "stack", "vectors")


def check_reading(reading: str) -> None:
    if reading not in REPLACEMENT_READINGS:
        raise ValueError(f"unknown replacement reading {reading!r}; known: {', '.join(REPLACEMENT_READINGS)}")


def check_replacements(anchors: tuple[float, ...], readings: tuple[str, ...], lyrics_sets: Path | None) -> None:
    """A ``ValueError`` naming what is wrong with the replacements asked for, before any data is read."""
    for reading in readings:
        check_reading(reading)
    if anchors and lyrics_sets is None:
        raise ValueError("the replacements read what the lyrics sets teach: give lyrics_sets (--lyrics-sets)")
    negative = [anchor for anchor in anchors if anchor < 0]
    if negative:
        raise ValueError(f"a replacement anchor is a weight of 0 or more, not {negative[0]:g}")


def replacement_variants(sets: list[SongSet], anchors: tuple[float, ...], reading: str
                         ) -> dict[float, dict[str, FusionConfig]]:
    """anchor -> the variants of one lyrics ``reading`` ("none": ``VARIANTS``; "stack": the own-stack variants;
    "vectors": the own vector probe's), named as replacements with that anchor."""
    check_reading(reading)
    if reading == "none":
        variants = VARIANTS
    elif reading == "stack":
        variants = own_stack_variants(sets)
    else:
        variants = own_probe_variants(len(TAXONOMIES[voiced_set(sets).taxonomy]), "vectors", READING_VARIANTS)
    return {anchor: {f"replacement (anchor {anchor:g}){name.removeprefix('correction')}": fusion
                     for name, fusion in variants.items()} for anchor in anchors}


def replacement_sets(manifests: list[Path], embedder: Embedder, reader: LyricsReader, lyrics_sets: Path,
                     readings: tuple[str, ...], *, workers: int | None) -> list[tuple[list[SongSet], str]]:
    """The songs with front-end frames for each reading, and the reading: read by ``reader`` with the set's own
    stack, or for "vectors" by a reader and an own probe without word probes (fitted here on ``lyrics_sets``)."""
    by_words: dict[bool, list[SongSet]] = {}
    for words in sorted({reading != "vectors" for reading in readings}):
        sets = load_sets(manifests, embedder, reader=reader if words else fit_reader(lyrics_sets, words=False),
                         windows=False, workers=workers)
        by_words[words] = lyrics_probe_sets(sets, "stack" if words else "vectors")
    return [(by_words[reading != "vectors"], reading) for reading in readings]


def load_sets(manifests: list[Path], embedder: Embedder, *, reader: LyricsReader | None, windows: bool,
              workers: int | None, context_reader: TextModality | None = None) -> list[SongSet]:
    sets = []
    for manifest in manifests:
        songs, taxonomy, _ = load_songs(manifest, frontend=embedder.config.frontend.name, workers=workers,
                                        reader=reader, context_reader=context_reader, music=embedder,
                                        windows=windows)
        sets.append(SongSet.of(manifest.stem, taxonomy, songs))
    return sets


def song_correction_experiment(manifests: list[Path], *, out: Path, seeds: int, music: Path | None = None,
                               config: CorrectionTrainConfig | None = None, workers: int | None = None,
                               lyrics_sets: Path | None = None, replacement_anchors: tuple[float, ...] = (),
                               replacement_readings: tuple[str, ...] = ("stack",), corrections: bool = True) -> dict:
    """``music``: the bundle to correct (the default if None); ``lyrics_sets``: the folder holding moodylyrics4q/
    and muse_lyrics/, with which the variants that read what they teach run too; ``replacement_anchors`` (with
    ``lyrics_sets``): the replacements to run, with each of ``replacement_readings``; ``corrections``: False runs
    the replacements alone."""
    check_replacements(replacement_anchors, replacement_readings, lyrics_sets)
    config = config or CorrectionTrainConfig()
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(music)))
    reader = fit_reader(lyrics_sets) if lyrics_sets is not None else None
    variants = VARIANTS | (READING_VARIANTS if reader is not None else {})
    sets = load_sets(manifests, embedder, reader=reader, windows=True, workers=workers)
    heads = heads_of(embedder.model.music)
    alone = {"music model alone": {data.name: {s: evaluate(heads, data, s, None).to_dict() for s in EVALUATED}
                                   for data in sets},
             "music model alone, shared space": {data.name: {s: space_evaluation(embedder, data, s, None)
                                                             for s in EVALUATED} for data in sets}}
    probed, own = (lyrics_probe_sets(sets), own_stack_variants(sets)) if reader is not None else (sets, {})
    framed = (replacement_sets(manifests, embedder, reader, lyrics_sets, replacement_readings, workers=workers)
              if replacement_anchors and reader is not None and lyrics_sets is not None else [])
    runs = []
    for seed in range(seeds):
        run = dict(alone)
        if corrections:
            run |= one_seed(sets, embedder, replace(config, seed=seed), variants)
            run |= one_seed(probed, embedder, replace(config, seed=seed), own)
        for songs, reading in framed:
            for anchor, replacements in replacement_variants(songs, replacement_anchors, reading).items():
                run |= one_seed(songs, embedder, replace(config, seed=seed, replacement=True, anchor=anchor),
                                replacements)
        runs.append(run)
    summary = summarize(runs)
    out.mkdir(parents=True, exist_ok=True)
    counts = {data.name: {s: {"songs": len(data.songs[s]),
                              "with_lyrics": sum(x.lyrics.shape[0] > 0 for x in data.songs[s])} for s in SPLITS}
              for data in sets}
    (out / "results.json").write_text(json.dumps({"summary": summary, "runs": runs, "music": embedder.version,
                                                  "counts": counts}, indent=2))
    (out / "results.md").write_text(markdown(summary, seeds=seeds))
    return summary
