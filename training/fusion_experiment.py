"""``moodspace fusion-experiment``: the hierarchical cross-modal attention model (``models.fusion``) and the
ablations of Zhao et al.'s Table 3 on a categorical set with lyrics (``mirex_mm``), over seeds.

Variants: tri-modal hierarchical (audio with lyrics, then with context); the reversed order; concatenation instead
of attention; audio + lyrics; audio only. The tri-modal model is also scored with its lyrics and context removed
(the path a catalogue track without lyrics takes) against the audio-only model, and each text modality alone gets
a linear probe (the mean lyrics segment; the title/artist vector). Given the lyrics sets, three variants also read
what those sets teach (``training.lyrics_reader``) as one more lyrics token, and the hierarchical one is also
routed (``RoutedFusion``: the audio-only model reads the tracks without text). Every learned model early-stops on
the val split's macro-F1; test is reported, never used for a choice. Splits are the manifest's (by artist).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.bundle import load_bundle
from models.config import FrontEndName
from models.default import resolve_bundle
from models.encoders import TEXT_DIM, pad
from models.frontend import frontend_config
from models.fusion import (
    FusionConfig,
    FusionModel,
    FusionNet,
    Inputs,
    Modality,
    RoutedFusion,
    audio_path,
    context_text,
)
from models.inference import Embedder
from models.manifest import read_manifest
from models.song_model import CONTEXT_READING_WIDTH
from models.songtext import TextModality
from models.taxonomy import TAXONOMIES, class_index
from models.text import sentence_encoder
from training.categorical_experiment import markdown, summarize
from training.classify import CategoricalMetrics, FoldsLogistic, categorical_metrics, vector_probe
from training.datasets.lyrics import read_lyrics
from training.features import Skipped, clip_feature_sets
from training.loop import OptimConfig, Validation, descend, fit, mean_parts, seed_everything
from training.lyrics_probe import ngram_probe, stack_readings, stacking_readings
from training.lyrics_reader import READING_WIDTH, LyricsReader, fit_context_reader, fit_reader
from training.probe import taxonomy_of

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FusionTrainConfig(OptimConfig):
    epochs: int = 80
    batch_size: int = 32
    patience: int = 15
    weight_decay: float = 1e-2
    fusion: FusionConfig = field(default_factory=FusionConfig)


VARIANTS: dict[str, FusionConfig] = {
    "tri-modal, hierarchical": FusionConfig(),
    "tri-modal, reversed order": FusionConfig(order="reversed"),
    "tri-modal, concatenation": FusionConfig(order="concat"),
    "audio + lyrics": FusionConfig(modalities=("audio", "lyrics")),
    "audio only": FusionConfig(modalities=("audio",), modality_dropout=0.0),
}
# with ``lyrics_sets``: the same models with what the lyrics sets teach as one more lyrics token
READING_VARIANTS: dict[str, FusionConfig] = {
    "tri-modal, hierarchical, lyrics reading": FusionConfig(lyrics_reading=READING_WIDTH),
    "tri-modal, hierarchical, lyrics reading, routed": FusionConfig(lyrics_reading=READING_WIDTH, routed=True),
    "tri-modal, concatenation, lyrics reading": FusionConfig(order="concat", lyrics_reading=READING_WIDTH),
    "audio + lyrics, lyrics reading": FusionConfig(modalities=("audio", "lyrics"), lyrics_reading=READING_WIDTH),
    "tri-modal, hierarchical, lyrics and context readings": FusionConfig(lyrics_reading=READING_WIDTH,
                                                                         context_reading=CONTEXT_READING_WIDTH),
    "tri-modal, concatenation, lyrics and context readings": FusionConfig(
        order="concat", lyrics_reading=READING_WIDTH, context_reading=CONTEXT_READING_WIDTH),
}
OWN_PROBES = {"vectors": " + own probe", "stack": " + own stack"}  # the set's own lyrics probe (``with_own_probe``)


def own_probe_variants(classes: int, probe: str = "vectors", variants: dict[str, FusionConfig] | None = None
                       ) -> dict[str, FusionConfig]:
    """``variants`` (``READING_VARIANTS`` by default) whose lyrics token also holds the own ``probe``'s
    log-probabilities over ``classes``."""
    return {name + OWN_PROBES[probe]: replace(config, lyrics_reading=config.lyrics_reading + classes)
            for name, config in (READING_VARIANTS if variants is None else variants).items()}


@dataclass(frozen=True)
class Song:
    """One clip's three modalities and its class."""

    features: np.ndarray  # (T, F) front-end frames
    lyrics: np.ndarray  # (S, 384) segment vectors; S = 0 without lyrics
    context: np.ndarray  # (1, 384)
    label: int
    lyrics_reading: np.ndarray = field(default_factory=lambda: np.zeros(READING_WIDTH, np.float32))
    context_reading: np.ndarray = field(default_factory=lambda: np.zeros(CONTEXT_READING_WIDTH, np.float32))
    lyrics_text: str = ""  # for the own word n-gram probe (``with_own_probe``)
    artist: str = ""  # for the probes' artist folds; "" reads as a group of its own
    track: np.ndarray | None = None  # (H,) a music model's representation of the whole clip (``load_songs(music)``)


def load_songs(manifest: Path, *, frontend: FrontEndName, workers: int | None = None,
               reader: LyricsReader | None = None, context_reader: TextModality | None = None,
               music: Embedder | None = None, windows: bool = True
               ) -> tuple[dict[str, list[Song]], str, list[Skipped]]:
    """Songs by split, the manifest's taxonomy, and the clips skipped (audio that does not decode); with a
    ``reader``, each song with lyrics carries its lyrics reading, with a ``context_reader`` each song its context
    reading (``lyrics_reader.fit_context_reader``); with a ``music`` model, each song keeps that
    model's representation of the whole clip (``Song.track``) and, where ``windows``, the audio is its music
    representation of each frame's window (``Embedder.represent_windows``) instead of the front-end frames."""
    clips = read_manifest(manifest)
    taxonomy = taxonomy_of(clips, manifest)
    config = music.config.frontend if music is not None else frontend_config(frontend)
    pairs, skipped = clip_feature_sets(manifest, clips, config, workers=workers)
    tracks = [music.represent_tracks([f])[0] if music is not None else None for _, f in pairs]
    if music is not None and windows:
        pairs = [(clip, music.represent_windows(features)) for clip, features in pairs]
    encoder = sentence_encoder()
    contexts = encoder.encode([context_text(c.title, c.artist) for c, _ in pairs])
    songs: dict[str, list[Song]] = {s: [] for s in SPLITS}
    for (clip, features), context, track in zip(pairs, contexts, tracks, strict=True):
        text = read_lyrics(clip)
        lyrics = encoder.encode_segments(text)
        song = Song(features, lyrics, context[None, :], class_index(taxonomy, clip.labels[taxonomy]),
                    artist=clip.group, lyrics_text=text if lyrics.shape[0] else "", track=track)
        if reader is not None and lyrics.shape[0]:
            song = replace(song, lyrics_reading=reader.read([text], lyrics.mean(axis=0, keepdims=True))[0])
        if context_reader is not None:
            song = replace(song, context_reading=context_reader.standardised(context[None, :])[0].astype(np.float32))
        songs[clip.split].append(song)
    return songs, taxonomy, skipped


def with_own_probe(songs: dict[str, list[Song]], taxonomy: str, probe: str = "vectors"
                   ) -> tuple[dict[str, list[Song]], float]:
    """The songs with the log-probabilities of their set's own lyrics probe after their lyrics reading (zeros
    without lyrics), and the probe's accuracy over artist folds of train. ``probe`` "vectors": a logistic probe on
    the mean lyrics segment vector; "stack": that and a word n-gram probe, stacked (``lyrics_probe.fit_stack``).
    Fitted on the train songs with lyrics, read out of fold by artist on those songs and by the fitted probe
    elsewhere (``lyrics_probe.stacking_readings``, ``stack_readings``): the set's few hundred songs teach it the
    classes' own words, the fusion model weighs it."""
    classes = len(TAXONOMIES[taxonomy])
    where = {split: [i for i, song in enumerate(songs[split]) if song.lyrics.shape[0]] for split in SPLITS}
    voiced = {split: [songs[split][i] for i in rows] for split, rows in where.items()}
    vectors = {split: np.stack([s.lyrics.mean(axis=0) for s in rows]) if rows else np.zeros((0, TEXT_DIM), np.float32)
               for split, rows in voiced.items()}
    texts = {split: np.array([s.lyrics_text for s in rows], dtype=object) for split, rows in voiced.items()}
    y, artists = np.array([s.label for s in voiced["train"]]), [s.artist for s in voiced["train"]]
    if probe == "stack":
        held, others, accuracy = stack_readings([vector_probe, ngram_probe], [vectors["train"], texts["train"]], y,
                                                artists, [[vectors[s], texts[s]] for s in SPLITS[1:]], classes=classes)
    else:
        held, others, accuracy = stacking_readings(vectors["train"], y, artists, [vectors[s] for s in SPLITS[1:]],
                                                   classes=classes)
    readings = dict(zip(SPLITS, [held, *others], strict=True))
    out = {}
    for split in SPLITS:
        extra = np.zeros((len(songs[split]), classes), np.float32)
        extra[where[split]] = readings[split]
        out[split] = [replace(song, lyrics_reading=np.concatenate([song.lyrics_reading, row]))
                      for song, row in zip(songs[split], extra, strict=True)]
    return out, accuracy


def _padded_text(rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([r.shape[0] for r in rows])
    out = torch.zeros(len(rows), max(1, int(lengths.max())), TEXT_DIM)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = torch.from_numpy(r)
    return out, lengths


def inputs(songs: list[Song]) -> Inputs:
    audio, audio_lengths = pad([s.features for s in songs])
    lyrics, lyrics_lengths = _padded_text([s.lyrics for s in songs])
    context, context_lengths = _padded_text([s.context for s in songs])
    reading = torch.from_numpy(np.stack([s.lyrics_reading for s in songs]))
    context_reading = torch.from_numpy(np.stack([s.context_reading for s in songs]))
    return Inputs(audio, audio_lengths, lyrics, lyrics_lengths, context, context_lengths, reading, context_reading)


def modality_dropout(batch: Inputs, p: float, generator: torch.Generator, *, together: float = 0.0) -> Inputs:
    """Hide each track's lyrics, and apart from that its context, with probability ``p``; then, with probability
    ``together``, all of a track's text at once (drawn only where ``together`` > 0, so other runs repeat)."""
    out = Inputs(**batch.__dict__)
    for name in ("lyrics", "context"):
        lengths = getattr(batch, f"{name}_lengths")
        hidden = torch.rand(lengths.shape, generator=generator) < p
        setattr(out, f"{name}_lengths", torch.where(hidden, torch.zeros_like(lengths), lengths))
    if together > 0:
        silent = torch.rand(batch.lyrics_lengths.shape, generator=generator) < together
        for name in ("lyrics", "context"):
            lengths = getattr(out, f"{name}_lengths")
            setattr(out, f"{name}_lengths", torch.where(silent, torch.zeros_like(lengths), lengths))
    return out


@torch.no_grad()
def probabilities(model: FusionModel, songs: list[Song], taxonomy: str, *, without: tuple[Modality, ...] = (),
                  batch_size: int = 64) -> np.ndarray:
    model.eval()
    parts = [torch.softmax(model(inputs(songs[k : k + batch_size]).without(*without), taxonomy), dim=1).numpy()
             for k in range(0, len(songs), batch_size)]
    return np.concatenate(parts)


def evaluate(model: FusionModel, songs: list[Song], taxonomy: str, *, without: tuple[Modality, ...] = ()
             ) -> CategoricalMetrics:
    labels = np.array([s.label for s in songs])
    return categorical_metrics(taxonomy, labels, probabilities(model, songs, taxonomy, without=without))


def train_fusion(songs: dict[str, list[Song]], taxonomy: str, config: FusionTrainConfig, *,
                 progress: bool = False) -> FusionModel:
    """One model, early-stopped on val macro-F1; a routed one is two, the fused model and the audio-only one (the
    same as the "audio only" variant, seed for seed)."""
    if not config.fusion.routed:
        return train_network(songs, taxonomy, config, progress=progress)
    audio = train_network(songs, taxonomy, replace(config, fusion=audio_path(config.fusion)), progress=progress)
    fused = train_network(songs, taxonomy, replace(config, fusion=replace(config.fusion, routed=False)),
                          progress=progress)
    return RoutedFusion(audio, fused)


def train_network(songs: dict[str, list[Song]], taxonomy: str, config: FusionTrainConfig, *,
                  progress: bool = False) -> FusionNet:
    """One ``FusionNet``, early-stopped on val macro-F1."""
    seed_everything(config.seed)
    train = songs["train"]
    frames = np.concatenate([s.features for s in train])
    model = FusionNet(frames.shape[1], [taxonomy], config.fusion)
    model.feature_mean.copy_(torch.from_numpy(frames.mean(axis=0)))
    model.feature_std.copy_(torch.from_numpy(np.maximum(frames.std(axis=0), 1e-6)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    rng, generator = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)
    labels = torch.tensor([s.label for s in train])

    def train_epoch() -> dict[str, float]:
        parts = []
        order = rng.permutation(len(train))
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            batch = modality_dropout(inputs([train[i] for i in rows]), config.fusion.modality_dropout, generator,
                                     together=config.fusion.text_dropout)
            loss = nn.functional.cross_entropy(model(batch, taxonomy), labels[rows])
            parts.append({"loss": descend(optimizer, loss)})
        return mean_parts(parts)

    def validate() -> Validation:
        metrics = evaluate(model, songs["val"], taxonomy)
        return Validation(metrics.macro_f1, {"val_macro_f1": metrics.macro_f1})

    fit(model, epochs=config.epochs, patience=config.patience, train_epoch=train_epoch, validate=validate,
        desc=f"fusion seed {config.seed}", progress=progress)
    return model


def probe(songs: dict[str, list[Song]], taxonomy: str, modality: str) -> dict[str, dict]:
    """A linear probe on one text modality alone (songs without it read as the zero vector), its penalty chosen by
    artist folds of train (``FoldsLogistic``)."""
    def x(split: str) -> np.ndarray:
        rows = [getattr(s, modality) for s in songs[split]]
        return np.stack([r.mean(axis=0) if r.shape[0] else np.zeros(TEXT_DIM, np.float32) for r in rows])

    labels = {s: np.array([song.label for song in songs[s]]) for s in SPLITS}
    artists = [song.artist or str(i) for i, song in enumerate(songs["train"])]
    model = FoldsLogistic.fit(x("train"), labels["train"], artists, classes=len(TAXONOMIES[taxonomy]))
    return {s: categorical_metrics(taxonomy, labels[s], model.probabilities(x(s))).to_dict() for s in ("val", "test")}


def one_seed(songs: dict[str, list[Song]], taxonomy: str, name: str, config: FusionTrainConfig,
             variants: dict[str, FusionConfig]) -> dict[str, dict[str, dict[str, dict]]]:
    """method -> set -> split -> metrics, for one seed."""
    run: dict[str, dict[str, dict[str, dict]]] = {}
    for variant, fusion in variants.items():
        model = train_fusion(songs, taxonomy, replace(config, fusion=fusion))
        run[variant] = {name: {s: evaluate(model, songs[s], taxonomy).to_dict() for s in ("val", "test")}}
        if variant.startswith("tri-modal, hierarchical"):
            run[f"{variant}, lyrics and context missing"] = {
                name: {s: evaluate(model, songs[s], taxonomy, without=("lyrics", "context")).to_dict()
                       for s in ("val", "test")}}
    return run


def fusion_experiment(manifest: Path, *, out: Path, frontend: FrontEndName, seeds: int,
                      config: FusionTrainConfig | None = None, variants: dict[str, FusionConfig] | None = None,
                      workers: int | None = None, lyrics_sets: Path | None = None,
                      music: Path | None = None) -> dict:
    """``lyrics_sets``: the folder holding moodylyrics4q/, muse_lyrics/ and deezer_msdd/; with it the reading
    variants run too (``READING_VARIANTS``: a lyrics reading, and a context reading), and, unless ``variants`` are
    chosen, the same with the set's own lyrics probe (``with_own_probe``). ``music``: a bundle whose music
    representation is the audio input."""
    config, chosen = config or FusionTrainConfig(), variants
    variants = variants or (VARIANTS | READING_VARIANTS if lyrics_sets is not None else VARIANTS)
    reader = fit_reader(lyrics_sets) if lyrics_sets is not None else None
    context_reader = fit_context_reader(lyrics_sets) if lyrics_sets is not None else None
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(music))) if music is not None else None
    songs, taxonomy, skipped = load_songs(manifest, frontend=frontend, workers=workers, reader=reader,
                                          context_reader=context_reader, music=embedder)
    name = manifest.stem
    probes = {f"{m} alone (linear probe)": {name: probe(songs, taxonomy, m)} for m in ("lyrics", "context")}
    own = {probe: own_probe_variants(len(TAXONOMIES[taxonomy]), probe)
           for probe in OWN_PROBES} if reader is not None and chosen is None else {}
    own_songs = {probe: with_own_probe(songs, taxonomy, probe) for probe in own}

    def run(seed: int) -> dict[str, dict[str, dict[str, dict]]]:
        seeded = replace(config, seed=seed)
        result = one_seed(songs, taxonomy, name, seeded, variants)
        for probe, (own_data, _) in own_songs.items():
            result |= one_seed(own_data, taxonomy, name, seeded, own[probe])
        return result | probes

    runs = [run(seed) for seed in range(seeds)]
    summary = summarize(runs)
    out.mkdir(parents=True, exist_ok=True)
    counts = {s: {"songs": len(songs[s]), "with_lyrics": sum(x.lyrics.shape[0] > 0 for x in songs[s])}
              for s in SPLITS}
    (out / "results.json").write_text(json.dumps({"summary": summary, "runs": runs, "frontend": frontend,
                                                  "music": embedder.version if embedder is not None else None,
                                                  "counts": counts, "skipped": [s.__dict__ for s in skipped],
                                                  "own_probe_folds_accuracy": {p: own_songs[p][1] for p in own}},
                                                 indent=2))
    (out / "results.md").write_text(markdown(summary, seeds=seeds))
    return summary
