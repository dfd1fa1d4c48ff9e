"""``moodspace train-song-model``: the song model the service ships beside the default (``models.song_model``).

One ``RepresentationReplacement`` of the music model's representation, the variant docs/experiments.md chose on
validation among those a bundle can ship (stop 39: audio + lyrics, the word-free lyrics reading, anchor 0.3; stop
41: the tri-modal form, ``SongModelConfig.context``, the title and artist read after the lyrics with Deezer's
reading of them, reads MIREX val no better, so it is an option):

1. the lyrics reader without word probes (``lyrics_reader.fit_reader(words=False)``), fitted on the lyrics sets'
   train splits, and the categorical set's own vector probe (``FoldsLogistic``) on its train songs' lyrics;
2. the replacement trained as ``song_correction.train_correction`` trains it (the train songs' own-probe column
   read out of fold by artist), through the music model's frozen categorical heads, early-stopped on the sets'
   val macro-F1, once per seed; the seed whose val macro-F1 (head plus shared space, summed over the sets) is
   best ships: single trainings on a few hundred songs spread widely (MIREX val head 0.49-0.56 over ten), and the
   mean of five members' representations did no better than their average member (docs/experiments.md, stop 40);
3. the saved file loaded back and measured through ``SongModel.represent`` (the service's path) on val and test,
   beside the music model alone: head macro-F1 and the shared-space reading, per set. Test chooses nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from models.bundle import load_bundle
from models.default import resolve_bundle
from models.fusion import MODALITIES, FusionConfig
from models.inference import Embedder
from models.scoring import Gaussians, composite_scores
from models.song_model import CONTEXT_READING_WIDTH, SONG_MODEL_PATH, LinearProbe, LyricsReading, SongModel
from models.taxonomy import CLASS_VA, TAXONOMIES
from models.text import sentence_encoder
from training.classify import FoldsLogistic, categorical_metrics
from training.fusion_experiment import SPLITS, Song
from training.lyrics_reader import READING_WIDTH, LyricsReader, fit_context_reader, fit_reader
from training.song_correction import (
    CorrectionTrainConfig,
    SongSet,
    class_space_probabilities,
    heads_of,
    load_sets,
    lyrics_probe_sets,
    train_correction,
    voiced_set,
)

EVALUATED = ("val", "test")
SONG_MODEL_SETS = ("moodylyrics4q", "muse_lyrics")  # the lyrics sets its reading is fitted on
SONG_MODEL_LYRICS = "mirex_mm"  # the categorical set whose songs have lyrics


@dataclass(frozen=True)
class SongModelConfig:
    anchor: float = 0.3  # the replacement's pull towards the music model's own representation
    seeds: int = 5  # trainings, seeds 0 to seeds - 1; the one with the best val score ships (``val_score``)
    context: bool = False  # tri-modal: the title and artist read after the lyrics, with their Deezer reading


def fusion_config(classes: int, *, context: bool = False) -> FusionConfig:
    """Audio and lyrics, with the lyrics reading and the own probe over ``classes`` as a token; with ``context``,
    then the title/artist and their reading as a token. Only lyrics make a track the song model's."""
    return FusionConfig(modalities=MODALITIES if context else ("audio", "lyrics"),
                        lyrics_reading=READING_WIDTH + classes,
                        context_reading=CONTEXT_READING_WIDTH if context else 0, voiced_by="lyrics")


def probe_of(model: LogisticRegression, *, classes: int, mean: np.ndarray | None = None,
             std: np.ndarray | None = None) -> LinearProbe:
    """A fitted multinomial logistic regression as numbers; it must have seen every class."""
    if list(model.classes_) != list(range(classes)):
        raise ValueError(f"the probe saw classes {list(model.classes_)}, not all {classes}")
    width = model.coef_.shape[1]
    return LinearProbe(np.zeros(width) if mean is None else mean, np.ones(width) if std is None else std,
                       model.coef_.copy(), model.intercept_.copy())


def lyrics_reading(reader: LyricsReader, own: FoldsLogistic) -> LyricsReading:
    """The word-free ``reader`` (one base probe: the segment vectors') and the set's own probe, as numbers."""
    if len(reader.quadrants.bases) != 1:
        raise ValueError("a shipped lyrics reading reads vectors only: fit_reader(words=False)")
    quadrants = reader.quadrants.classes
    return LyricsReading(probe_of(reader.quadrants.bases[0], classes=quadrants),
                         probe_of(reader.quadrants.top, classes=quadrants), reader.va,
                         probe_of(own.model, classes=own.classes, mean=own.mean, std=own.std))


def own_probe(data: SongSet) -> FoldsLogistic:
    """The set's own probe of its classes on its train songs' mean lyrics vectors (as ``with_own_probe`` fits it)."""
    voiced = [s for s in data.songs["train"] if s.lyrics.shape[0]]
    return FoldsLogistic.fit(np.stack([s.lyrics.mean(axis=0) for s in voiced]), np.array([s.label for s in voiced]),
                             [s.artist for s in voiced], classes=len(TAXONOMIES[data.taxonomy]))


def represented(song_model: SongModel | None, data: SongSet, split: str) -> np.ndarray:
    """(N, H): the split's representations, through the song model where one is given."""
    tracks = data.tracks[split].numpy()
    if song_model is None:
        return tracks
    return np.stack([song_model.represent(h, s.features, s.lyrics, s.context[0])
                     for h, s in zip(tracks, data.songs[split], strict=True)])


def measure(embedder: Embedder, song_model: SongModel | None, sets: list[SongSet],
            splits: tuple[str, ...] = EVALUATED) -> dict:
    """set -> split -> {"head": metrics, "shared space": metrics, "emotion -> music": ``class_retrieval``}."""
    out: dict = {}
    for data in sets:
        for split in splits:
            labels = np.array([s.label for s in data.songs[split]])
            read = embedder.read_representations(represented(song_model, data, split))
            space = class_space_probabilities(embedder, read.gaussians, data.taxonomy)
            out.setdefault(data.name, {})[split] = {
                "head": categorical_metrics(data.taxonomy, labels, read.classes[data.taxonomy]).to_dict(),
                "shared space": categorical_metrics(data.taxonomy, labels, space).to_dict(),
                "emotion -> music": class_retrieval(embedder, read.gaussians, labels, data.taxonomy)}
    return out


RETRIEVED = 10  # the precision of emotion -> music is read at this rank


def class_retrieval(embedder: Embedder, music: Gaussians, labels: np.ndarray, taxonomy: str) -> dict[str, float]:
    """Emotion -> music as the index answers it: each class's VA placement as the query, the songs ranked by the
    composite score (model's lam) against their music embeddings; precision at ``RETRIEVED`` and average
    precision of the songs of that class, each averaged over the classes."""
    queries = embedder.embed_points(np.array([CLASS_VA[taxonomy][c] for c in TAXONOMIES[taxonomy]]))
    scores = composite_scores(queries, music, lam=embedder.config.score_lam).score  # (C, N)
    precision, average = [], []
    for c, row in enumerate(scores):
        relevant = labels[np.argsort(-row, kind="stable")] == c
        hits = np.cumsum(relevant)
        precision.append(relevant[:RETRIEVED].mean())
        average.append((hits / np.arange(1, len(relevant) + 1))[relevant].mean() if relevant.any() else 0.0)
    return {f"p@{RETRIEVED}": float(np.mean(precision)), "map": float(np.mean(average))}


def val_score(measured: dict) -> float:
    """The choice among seeds: the sum over sets of the val macro-F1 of the head and of the shared space."""
    return sum(parts["val"][reading]["macro_f1"] for parts in measured.values() for reading in ("head", "shared space"))


def train_song_model(manifests: list[Path], *, lyrics_sets: Path, out: Path = SONG_MODEL_PATH,
                     music: Path | None = None, config: SongModelConfig | None = None, workers: int | None = None,
                     report: Path | None = None) -> dict:
    """Train ``config.seeds`` song models of ``music`` (the default bundle if None) on the categorical
    ``manifests`` (one of them with lyrics), save the one with the best ``val_score`` to ``out`` and measure it
    through the saved file on val and test (test chooses nothing); ``lyrics_sets``: the folder holding
    moodylyrics4q/ and muse_lyrics/ (and deezer_msdd/ for a tri-modal one, ``config.context``). Returns (and writes
    to ``report``, a folder) the measurement."""
    config = config or SongModelConfig()
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(music)))
    reader = fit_reader(lyrics_sets, words=False)
    context = fit_context_reader(lyrics_sets) if config.context else None
    sets = load_sets(manifests, embedder, reader=reader, windows=False, workers=workers, context_reader=context)
    voiced = voiced_set(sets)
    probe = own_probe(voiced)
    reading, probed = lyrics_reading(reader, probe), lyrics_probe_sets(sets, "vectors")
    n_features, heads = sets[0].songs["train"][0].features.shape[1], heads_of(embedder.model.music)
    candidates, val = [], {}
    for seed in range(config.seeds):
        train = CorrectionTrainConfig(seed=seed, replacement=True, anchor=config.anchor,
                                      fusion=fusion_config(len(TAXONOMIES[voiced.taxonomy]), context=config.context))
        replacement = train_correction(probed, heads, train, progress=True)
        # the encoder that read every lyrics vector here
        candidates.append(SongModel(replacement, reading, n_features, embedder.version,  # type: ignore[arg-type]
                                    sentence_encoder().version, context=context))
        val[seed] = measure(embedder, candidates[-1], sets, ("val",))
    chosen = max(val, key=lambda seed: val_score(val[seed]))
    version = candidates[chosen].save(out)
    shipped = SongModel.load(out)
    result = {"version": version, "music_model": embedder.version, "anchor": config.anchor, "seed": chosen,
              "modalities": list(shipped.replacement.fusion.config.modalities),
              "own_probe": {"C": probe.c, "folds_accuracy": probe.folds_accuracy}, "counts": counts(sets),
              "candidates": {seed: {"val_score": val_score(v), **v} for seed, v in val.items()},
              "music model alone": measure(embedder, None, sets), "song model": measure(embedder, shipped, sets)}
    shipped.metrics = {k: result[k] for k in ("seed", "anchor", "modalities", "counts", "music model alone",
                                              "song model")}
    shipped.save(out)  # the same version: the figures are not part of it
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
        (report / "song_model.json").write_text(json.dumps(result, indent=2))
        (report / "song_model.md").write_text(markdown(result))
    return result


def counts(sets: list[SongSet]) -> dict:
    return {data.name: {s: {"songs": len(data.songs[s]), "with_lyrics": sum(_voiced(x) for x in data.songs[s])}
                        for s in SPLITS} for data in sets}


def _voiced(song: Song) -> bool:
    return song.lyrics.shape[0] > 0


def markdown(result: dict) -> str:
    scores = ", ".join(f"{seed}: {c['val_score']:.3f}" for seed, c in result["candidates"].items())
    lines = [f"Song model {result['version']} of {result['music_model']} (anchor {result['anchor']:g}, seed "
             f"{result['seed']}, chosen by val score among seeds {scores}): macro-F1 / accuracy, head and shared "
             "space; emotion -> music with each class's VA placement as the query", "",
             f"| model | set | split | head macro-F1 | head accuracy | space macro-F1 | space accuracy | "
             f"E2M P@{RETRIEVED} | E2M mAP |", "|---|---|---|---|---|---|---|---|---|"]
    for model in ("music model alone", "song model"):
        for name, splits in result[model].items():
            for split, parts in splits.items():
                head, space, e2m = parts["head"], parts["shared space"], parts["emotion -> music"]
                lines.append(f"| {model} | {name} | {split} | {head['macro_f1']:.3f} | {head['accuracy']:.3f} | "
                             f"{space['macro_f1']:.3f} | {space['accuracy']:.3f} | {e2m[f'p@{RETRIEVED}']:.3f} | "
                             f"{e2m['map']:.3f} |")
    return "\n".join(lines) + "\n"
