"""Readings of a song's words beside its sound: the lyrics, and the context (title and artist).

Each text modality maps a frozen sentence-encoder vector to valence and arousal with a linear model (ridge,
fitted by ``moodspace train-song-text``: lyrics on MuSe's tag valence/arousal, context on the Deezer mood set):
the lyrics' vector is the mean of their segment vectors (at most 128 tokens each), the context's the vector of
"title by artist". The model's output is standardised with its training set's statistics (``z``), then

- the modality's own reading is ``slope * z + intercept`` per dimension, clipped to [-1, 1]: the calibration onto
  the VA plane of the shared space, fitted on real recordings' class placements;
- the fused reading is the audio reading plus ``weight * z`` for each modality present, per dimension (weights
  fitted jointly on the same recordings), so a track without lyrics or context reads exactly as its audio.

All parameters ship in one small file (``SONG_TEXT_PATH``); ``SongTextModel.read`` is the whole inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.atomic import atomic_file
from models.fusion import context_text
from models.text import BASE_VERSION, SentenceEncoder, sentence_encoder

SONG_TEXT_PATH = Path(__file__).with_name("song_text.npz")
TEXT_MODALITIES = ("lyrics", "context")


@dataclass(frozen=True)
class VA:
    valence: float
    arousal: float

    @classmethod
    def of(cls, values: np.ndarray) -> VA:
        v, a = np.clip(values, -1.0, 1.0)
        return cls(round(float(v), 4), round(float(a), 4))


@dataclass(frozen=True)
class TextModality:
    """One text modality: vector -> standardised (valence, arousal) -> its reading, and its weight in the fusion."""

    weights: np.ndarray  # (1 + 384, 2): intercept first, over standardised inputs
    input_mean: np.ndarray  # (384,)
    input_std: np.ndarray
    output_mean: np.ndarray  # (2,) of the ridge output on its training set
    output_std: np.ndarray
    slope: np.ndarray  # (2,) calibration of z onto the VA plane
    intercept: np.ndarray
    fusion_weight: np.ndarray  # (2,)

    def predict(self, vectors: np.ndarray) -> np.ndarray:
        """(N, 384) -> (N, 2) ridge output, in the training set's own scale."""
        z = (vectors - self.input_mean) / self.input_std
        return np.hstack([np.ones((z.shape[0], 1)), z]) @ self.weights

    def standardised(self, vectors: np.ndarray) -> np.ndarray:
        return (self.predict(vectors) - self.output_mean) / self.output_std

    def reading(self, z: np.ndarray) -> np.ndarray:
        return self.slope * z + self.intercept


FIELDS = tuple(TextModality.__dataclass_fields__)


@dataclass(frozen=True)
class SongReadings:
    """What a track's sound, lyrics and context each say, and the fused reading; None where a modality is
    missing."""

    audio: VA
    lyrics: VA | None
    context: VA | None
    fused: VA


@dataclass(frozen=True)
class SongTextModel:
    lyrics: TextModality
    context: TextModality
    version: str
    audio_model: str  # the music model whose audio reading the fusion weights were fitted with
    text_encoder: str = BASE_VERSION  # the sentence encoder whose vectors the ridges read

    def save(self, path: Path) -> None:
        arrays = {f"{m}.{f}": getattr(getattr(self, m), f) for m in TEXT_MODALITIES for f in FIELDS}
        with atomic_file(path) as handle:
            np.savez(handle, version=np.array(self.version), audio_model=np.array(self.audio_model),
                     text_encoder=np.array(self.text_encoder), **arrays)

    @classmethod
    def load(cls, path: Path = SONG_TEXT_PATH) -> SongTextModel:
        with np.load(path) as data:
            parts = {m: TextModality(**{f: data[f"{m}.{f}"] for f in FIELDS}) for m in TEXT_MODALITIES}
            encoder = str(data["text_encoder"]) if "text_encoder" in data else BASE_VERSION
            return cls(parts["lyrics"], parts["context"], str(data["version"]), str(data["audio_model"]), encoder)

    def vectors(self, encoder: SentenceEncoder, *, lyrics: str | None, title: str, artist: str
                ) -> dict[str, np.ndarray]:
        """The sentence vectors of the modalities present: lyrics with words, a title or an artist."""
        out = {}
        if lyrics and (segments := encoder.encode_segments(lyrics)).shape[0]:
            out["lyrics"] = segments.mean(axis=0)
        if context := context_text(title, artist):
            out["context"] = encoder.encode([context])[0]
        return out

    def read_song(self, audio: tuple[float, float], *, lyrics: str | None, title: str, artist: str,
                  music_model: str) -> SongReadings:
        """All readings of one song whose audio ``music_model`` read as ``audio``; fused only if that is the model
        the fusion weights were fitted with."""
        given = bool(lyrics and lyrics.strip()) or bool(context_text(title, artist))
        vectors = self.vectors(sentence_encoder(), lyrics=lyrics, title=title, artist=artist) if given else {}
        return self.read(np.asarray(audio, dtype=np.float64), vectors, fuse=music_model == self.audio_model)

    def read(self, audio: np.ndarray, vectors: dict[str, np.ndarray], *, fuse: bool = True) -> SongReadings:
        """``audio``: the track's (valence, arousal) reading; ``vectors``: from ``vectors``. Without ``fuse`` (the
        audio comes from another music model than the fusion was fitted with) the fused reading is the audio's."""
        fused, own = np.asarray(audio, dtype=np.float64).copy(), {}
        for name, vector in vectors.items():
            modality: TextModality = getattr(self, name)
            z = modality.standardised(vector[None, :])[0]
            own[name] = VA.of(modality.reading(z))
            if fuse:
                fused += modality.fusion_weight * z
        return SongReadings(VA.of(audio), own.get("lyrics"), own.get("context"), VA.of(fused))
