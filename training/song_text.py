"""``moodspace train-song-text``: the lyrics and context readings of ``models.songtext`` and their fusion with the
audio reading.

1. Lyrics: the mean of two standardised ridges from the mean lyrics segment vector, one to MuSe's tag
   valence/arousal, one to MoodyLyrics4Q's quadrants placed on the VA plane (``CLASS_VA``), each on its set's train
   split (by artist), joined into one linear reading (``joined``). Context: ridge from the "title by artist"
   vector to the Deezer set's valence/arousal (its train split).
2. On the val splits of the real-recording sets (4Q: audio + context; MIREX: audio + lyrics + context), with the
   audio read by a music bundle as the service reads it: each modality's calibration onto the VA plane (least
   squares of the class placements ``CLASS_VA`` on its standardised output), and the fusion weights (least
   squares of the class placement minus the audio reading on the standardised outputs of the modalities present).
3. Scored on the test splits, never used for a choice: valence and arousal AUC of the audio, lyrics, context and
   fused readings (positive sides as in ``training.classify.positive_classes``).

Sentence vectors are cached under the feature cache, keyed by the texts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.bundle import load_bundle
from models.default import resolve_bundle
from models.fusion import context_text
from models.inference import Embedder
from models.manifest import read_manifest
from models.songtext import TEXT_MODALITIES, SongTextModel, TextModality
from models.taxonomy import CLASS_VA, class_index
from models.text import sentence_encoder, shipped_version
from training.classify import auc, positive_classes
from training.datasets.lyrics import TextRow, TextSet, read_deezer, read_lyrics, read_moodylyrics4q, read_muse
from training.features import cache_dir, clip_feature_sets
from training.learnability import ridge_fit
from training.probe import taxonomy_of

RIDGE_ALPHA = 10_000.0  # on 384 standardised dimensions: the best val R^2 of MuSe and Deezer among 10 to 30,000
READINGS = ("audio", "lyrics", "context", "fused")
SONG_TEXT_SETS = ("muse_lyrics", "moodylyrics4q", "deezer_msdd")  # the folders the readings train on


def _cached(texts: list[str], kind: str, encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    key = hashlib.sha256("\x00".join([kind, shipped_version(), *texts]).encode()).hexdigest()[:24]
    path = cache_dir() / "text" / f"{key}.npy"
    if path.is_file():
        return np.load(path)
    vectors = encode(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def lyrics_vectors(texts: list[str], *, progress: bool = True) -> np.ndarray:
    """(N, 384): each text's mean segment vector (zeros for a text without tokens)."""
    encoder = sentence_encoder()

    def encode(batch: list[str]) -> np.ndarray:
        rows = []
        for text in tqdm(batch, desc="lyrics", unit="song", disable=not progress):
            segments = encoder.encode_segments(text)
            rows.append(segments.mean(axis=0) if segments.shape[0] else np.zeros(segments.shape[1], np.float32))
        return np.stack(rows) if rows else np.zeros((0, 384), np.float32)

    return _cached(texts, "lyrics-mean-segments", encode)


def context_vectors(texts: list[str]) -> np.ndarray:
    return _cached(texts, "context", lambda batch: sentence_encoder().encode(batch))


def _train_rows(data: TextSet) -> list[int]:
    return [i for i, r in enumerate(data.rows) if r.split == "train"]


def _target(row: TextRow) -> tuple[float, float]:
    """A row's valence and arousal: its own, or its quadrant's placement on the VA plane."""
    if row.va is not None:
        return row.va
    return CLASS_VA["quadrant"][row.quadrant or ""]


def _modality(weights: np.ndarray, mean: np.ndarray, std: np.ndarray, x_train: np.ndarray) -> TextModality:
    """A linear reading with the output's mean and std on ``x_train``; calibration and fusion left neutral."""
    model = TextModality(weights, mean, std, np.zeros(2), np.ones(2), np.ones(2), np.zeros(2), np.zeros(2))
    out = model.predict(x_train)
    return replace(model, output_mean=out.mean(axis=0), output_std=out.std(axis=0) + 1e-9)


def fit_ridge(data: TextSet, x: np.ndarray) -> TextModality:
    """Ridge to each train row's valence and arousal (``_target``), standardised on the train rows."""
    train = _train_rows(data)
    y = np.array([_target(data.rows[i]) for i in train])
    return _modality(*ridge_fit(x[train], y, alpha=RIDGE_ALPHA), x[train])


def joined(parts: list[TextModality], x_train: np.ndarray) -> TextModality:
    """One linear reading that is the mean of ``parts``' standardised outputs, standardised on ``x_train``: each
    part's map rewritten on the raw vector (weights over ``(x - mean) / std`` -> over ``x``) and summed."""
    linear = sum(p.weights[1:] / p.input_std[:, None] / p.output_std for p in parts) / len(parts)
    offset = sum((p.weights[0] - (p.input_mean / p.input_std) @ p.weights[1:] - p.output_mean) / p.output_std
                 for p in parts) / len(parts)
    dim = parts[0].input_mean.shape[0]
    return _modality(np.vstack([offset, linear]), np.zeros(dim), np.ones(dim), x_train)


def fit_lyrics(muse: TextSet, x_muse: np.ndarray, moody: TextSet, x_moody: np.ndarray) -> TextModality:
    """The lyrics reading: MuSe's VA ridge and MoodyLyrics4Q's quadrant-placement ridge, joined on their train
    rows."""
    return joined([fit_ridge(muse, x_muse), fit_ridge(moody, x_moody)],
                  np.vstack([x_muse[_train_rows(muse)], x_moody[_train_rows(moody)]]))


@dataclass
class RealSong:
    """One real recording: its set, split, class, the class's VA placement, the audio reading, text vectors."""

    name: str
    taxonomy: str
    split: str
    label: str
    target: np.ndarray
    audio: np.ndarray
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


def real_songs(manifests: list[Path], *, embedder: Embedder, splits: tuple[str, ...] = ("val", "test"),
               workers: int | None = None) -> list[RealSong]:
    songs = []
    for manifest in manifests:
        clips = [c for c in read_manifest(manifest) if c.split in splits]
        taxonomy = taxonomy_of(clips, manifest)
        pairs, _ = clip_feature_sets(manifest, clips, embedder.config.frontend, workers=workers)
        lyrics = {c.id: read_lyrics(c) for c, _ in pairs}
        with_lyrics = [c.id for c, _ in pairs if lyrics[c.id].strip()]
        lyric_x = dict(zip(with_lyrics, lyrics_vectors([lyrics[i] for i in with_lyrics]), strict=True))
        contexts = {c.id: context_text(c.title, c.artist) for c, _ in pairs}
        with_context = [i for i, text in contexts.items() if text]
        context_x = dict(zip(with_context, context_vectors([contexts[i] for i in with_context]), strict=True))
        for clip, features in pairs:
            label = clip.labels[taxonomy]
            vectors = {k: v[clip.id] for k, v in (("lyrics", lyric_x), ("context", context_x)) if clip.id in v}
            songs.append(RealSong(manifest.stem, taxonomy, clip.split, label, np.array(CLASS_VA[taxonomy][label]),
                                  np.asarray(embedder.read_track(features).mean, dtype=np.float64), vectors))
    return songs


def _z(model: SongTextModel, songs: list[RealSong]) -> dict[str, np.ndarray]:
    """modality -> (N, 2) standardised outputs, zeros where a song lacks the modality."""
    out = {}
    for name in TEXT_MODALITIES:
        modality: TextModality = getattr(model, name)
        out[name] = np.stack([modality.standardised(s.vectors[name][None, :])[0] if name in s.vectors
                              else np.zeros(2) for s in songs])
    return out


def calibrate(model: SongTextModel, songs: list[RealSong]) -> SongTextModel:
    """Each modality's reading and the fusion weights, fitted on ``songs`` (the val splits)."""
    z, target = _z(model, songs), np.stack([s.target for s in songs])
    residual = target - np.stack([s.audio for s in songs])
    design = np.stack([z[m] for m in TEXT_MODALITIES], axis=-1)  # (N, 2 dims, modalities)
    weights = np.stack([np.linalg.lstsq(design[:, d], residual[:, d], rcond=None)[0] for d in range(2)])
    parts = {}
    for k, name in enumerate(TEXT_MODALITIES):
        present = np.array([name in s.vectors for s in songs])
        slope, intercept = np.ones(2), np.zeros(2)
        for d in range(2):
            slope[d], intercept[d] = np.polyfit(z[name][present, d], target[present, d], 1)
        modality: TextModality = getattr(model, name)
        parts[name] = TextModality(**{**modality.__dict__, "slope": slope, "intercept": intercept,
                                      "fusion_weight": weights[:, k]})
    return replace(model, lyrics=parts["lyrics"], context=parts["context"])


def reading_metrics(model: SongTextModel, songs: list[RealSong]) -> dict[str, dict[str, dict]]:
    """set -> reading -> {n, valence_auc, arousal_auc}; a text reading is scored on the songs that have the text."""
    out: dict[str, dict[str, dict]] = {}
    for name in sorted({s.name for s in songs}):
        group = [s for s in songs if s.name == name]
        readings = [model.read(s.audio, s.vectors) for s in group]
        taxonomy = group[0].taxonomy
        sides = [positive_classes(taxonomy, axis) for axis in (0, 1)]
        labels = np.array([class_index(taxonomy, s.label) for s in group])
        for reading in READINGS:
            values = [getattr(r, reading) for r in readings]
            keep = np.array([v is not None for v in values])
            if keep.sum() < 2:
                continue
            va = np.array([[v.valence, v.arousal] for v in values if v is not None])
            out.setdefault(name, {})[reading] = {
                "n": int(keep.sum()),
                "valence_auc": auc(va[:, 0], np.isin(labels[keep], sides[0])),
                "arousal_auc": auc(va[:, 1], np.isin(labels[keep], sides[1]))}
    return out


def train_song_text(*, datasets: Path, manifests: list[Path], bundle: Path, out: Path,
                    workers: int | None = None) -> dict:
    """Fit, calibrate on val, score on test; writes ``out`` and returns the report."""
    muse, moody = read_muse(datasets / "muse_lyrics"), read_moodylyrics4q(datasets / "moodylyrics4q")
    deezer = read_deezer(datasets / "deezer_msdd")
    lyrics = fit_lyrics(muse, lyrics_vectors([r.text for r in muse.rows]),
                        moody, lyrics_vectors([r.text for r in moody.rows]))
    context = fit_ridge(deezer, context_vectors([r.text for r in deezer.rows]))
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(bundle)))
    songs = real_songs(manifests, embedder=embedder, workers=workers)
    embedder_version = embedder.version
    encoder = shipped_version()
    version = "song-text-" + hashlib.sha256(lyrics.weights.tobytes() + context.weights.tobytes()
                                            + embedder_version.encode() + encoder.encode()).hexdigest()[:12]
    model = calibrate(SongTextModel(lyrics, context, version, embedder_version, encoder),
                      [s for s in songs if s.split == "val"])
    model.save(out)
    return {"version": version, "audio_model": embedder_version, "text_encoder": encoder,
            "val": reading_metrics(model, [s for s in songs if s.split == "val"]),
            "test": reading_metrics(model, [s for s in songs if s.split == "test"]),
            "fusion_weight": {m: getattr(model, m).fusion_weight.round(4).tolist() for m in TEXT_MODALITIES},
            "skipped": {"muse_lyrics": muse.skipped, "moodylyrics4q": moody.skipped, "deezer_msdd": deezer.skipped}}


def markdown(report: dict) -> str:
    lines = ["| set | split | reading | n | valence AUC | arousal AUC |", "|---|---|---|---|---|---|"]
    for split in ("val", "test"):
        for name, by_reading in report[split].items():
            for reading, m in by_reading.items():
                lines.append(f"| {name} | {split} | {reading} | {m['n']} | {m['valence_auc']:.3f} | "
                             f"{m['arousal_auc']:.3f} |")
    return "\n".join(lines) + "\n\nval: calibration and fusion weights fitted there; test: held apart.\n"


def write_report(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=2))
