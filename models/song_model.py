"""A song's lyrics in place of the music model's own representation: the replacement of issue 15, as the service
runs it.

``SongModel`` is a ``RepresentationReplacement`` (``models.fusion``) trained beside one music model (its
``music_model`` version) by ``moodspace train-song-model``: where a track has lyrics, a fusion network reads the
track's front-end frames and its lyrics segment vectors (at most 128 tokens each, from the frozen sentence
encoder), with one more lyrics token, the ``LyricsReading``, and its output, mapped into the music model's
representation space, takes the place of the music model's representation of the whole clip. Every head of the
music model reads it unchanged: the point and Gaussian embedding (the index's item), the categorical heads and
the VA reading. A track without lyrics keeps the music model's representation exactly.

The ``LyricsReading`` is what other songs' lyrics teach, as linear probes on the mean segment vector (weights
only, no word of any lyrics): MoodyLyrics4Q's quadrant probe and the logistic that weighs it, MuSe's valence and
arousal ridge (standardised), and the categorical set's own probe of its classes.

A tri-modal song model (``reads_context``) also reads the title and artist, after the lyrics (Zhao et al.'s
hierarchy): their sentence vector and, as one more context token, what other songs' titles and artists teach
(``context``: Deezer's valence/arousal ridge, standardised). Only lyrics make a track the song model's
(``FusionConfig.voiced_by``): a track with a title and an artist but no lyrics keeps the music model's
representation, since a replacement read from title and artist alone lost on 4Q (docs/experiments.md, stop 39).

The file holds the network's weights, its ``FusionConfig``, the probes and the versions it was fitted with;
``SongModel.version`` names its contents.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from models.atomic import atomic_file
from models.fusion import FusionConfig, Inputs, RepresentationReplacement
from models.songtext import FIELDS as VA_FIELDS
from models.songtext import TextModality
from models.text import BASE_VERSION

SONG_MODEL_PATH = Path(__file__).with_name("song_model.pt")
LOG_FLOOR = 1e-9  # probabilities are clipped here before their log, as the trainers read them
CONTEXT_READING_WIDTH = 2  # the title/artist reading: standardised valence and arousal


@dataclass(frozen=True)
class LinearProbe:
    """Multinomial logistic regression over standardised inputs: ``softmax(weight @ (x - mean) / std + bias)``."""

    mean: np.ndarray  # (D,)
    std: np.ndarray
    weight: np.ndarray  # (C, D)
    bias: np.ndarray  # (C,)

    def log_probabilities(self, x: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, C), each probability clipped at ``LOG_FLOOR`` first."""
        logits = ((x - self.mean) / self.std) @ self.weight.T + self.bias
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return np.log(np.clip(p, LOG_FLOOR, 1.0))


PROBE_FIELDS = tuple(f.name for f in fields(LinearProbe))


@dataclass(frozen=True)
class LyricsReading:
    """(N, 384) mean lyrics segment vectors -> (N, width): the quadrant stack's log-probabilities, MuSe's
    standardised valence and arousal, and the categorical set's own probe's log-probabilities."""

    quadrant_base: LinearProbe  # MoodyLyrics4Q's quadrants from the vector
    quadrant_top: LinearProbe  # the stack: the quadrants from the base's log-probabilities
    va: TextModality  # MuSe's valence and arousal
    own: LinearProbe  # the categorical set's classes from the vector

    @property
    def width(self) -> int:
        return self.quadrant_top.weight.shape[0] + 2 + self.own.weight.shape[0]

    def read(self, vectors: np.ndarray) -> np.ndarray:
        quadrants = self.quadrant_top.log_probabilities(self.quadrant_base.log_probabilities(vectors))
        return np.hstack([quadrants, self.va.standardised(vectors), self.own.log_probabilities(vectors)]
                         ).astype(np.float32)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"va.{f}": getattr(self.va, f) for f in VA_FIELDS}
        for probe in ("quadrant_base", "quadrant_top", "own"):
            out |= {f"{probe}.{f}": getattr(getattr(self, probe), f) for f in PROBE_FIELDS}
        return out

    @classmethod
    def of_arrays(cls, arrays: dict[str, np.ndarray]) -> LyricsReading:
        probes = {p: LinearProbe(**{f: arrays[f"{p}.{f}"] for f in PROBE_FIELDS})
                  for p in ("quadrant_base", "quadrant_top", "own")}
        return cls(**probes, va=TextModality(**{f: arrays[f"va.{f}"] for f in VA_FIELDS}))


@dataclass
class SongModel:
    """The replacement and its lyrics reading (see the module's docstring)."""

    replacement: RepresentationReplacement
    reading: LyricsReading
    n_features: int
    music_model: str  # the music model whose representation is replaced
    text_encoder: str = BASE_VERSION
    version: str = "unsaved"
    metrics: dict = field(default_factory=dict)  # held-apart figures its trainer measured (not in its version)
    context: TextModality | None = None  # the title/artist reading, where the model reads the context

    def __post_init__(self) -> None:
        self.replacement.eval()
        config = self.replacement.fusion.config
        width = CONTEXT_READING_WIDTH if self.context is not None else 0
        if self.reads_context != (self.context is not None) or config.context_reading != width:
            raise ValueError("a song model reads the title and artist with their reading, or neither")

    @property
    def reads_context(self) -> bool:
        return "context" in self.replacement.fusion.config.modalities

    @torch.inference_mode()
    def represent(self, h: np.ndarray, features: np.ndarray, lyrics: np.ndarray, context: np.ndarray | None = None
                  ) -> np.ndarray:
        """(H,) the representation of a track whose music model's representation is ``h`` (H,), front-end frames
        ``features`` (T, F), lyrics segment vectors ``lyrics`` (S, 384) and, where known, the sentence vector of
        its title and artist ``context`` (384,; ``models.fusion.context_text``): ``h`` itself where S is 0."""
        if lyrics.shape[0] == 0:
            return h
        text = torch.from_numpy(lyrics.astype(np.float32))[None]
        reading = torch.from_numpy(self.reading.read(lyrics.mean(axis=0, keepdims=True)))
        title, title_length, title_reading = self._context(context, text.shape[2])
        batch = Inputs(torch.from_numpy(features.astype(np.float32))[None], torch.tensor([features.shape[0]]),
                       text, torch.tensor([lyrics.shape[0]]), title, title_length, reading, title_reading)
        return self.replacement(torch.from_numpy(h.astype(np.float32))[None], batch)[0].numpy()

    def _context(self, context: np.ndarray | None, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The context as the network reads it: its (1, 1, width) vector, (1,) length and (1, 2) reading; absent
        (length 0) where the model does not read it or it is not known."""
        if self.context is None or context is None:
            return torch.zeros(1, 1, width), torch.tensor([0]), torch.zeros(1, CONTEXT_READING_WIDTH)
        vector = np.asarray(context, dtype=np.float32).reshape(1, -1)
        return (torch.from_numpy(vector)[None], torch.tensor([1]),
                torch.from_numpy(self.context.standardised(vector).astype(np.float32)))

    def save(self, path: Path) -> str:
        """Write the model to ``path`` and return its version (a hash of what it holds)."""
        payload = self._payload()
        buffer = io.BytesIO()
        torch.save(payload | {"version": "", "music_model": self.music_model}, buffer)
        self.version = f"song-{hashlib.sha256(buffer.getvalue()).hexdigest()[:12]}"
        with atomic_file(path) as handle:
            torch.save(payload | {"version": self.version, "music_model": self.music_model,
                                  "metrics": json.dumps(self.metrics)}, handle)
        return self.version

    def _payload(self) -> dict:
        return {"state": self.replacement.state_dict(), "fusion": asdict(self.replacement.fusion.config),
                "n_features": self.n_features, "width": self.replacement.out.out_features,
                "reading": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.reading.arrays().items()},
                "text_encoder": self.text_encoder} | ({} if self.context is None else {"context": {
                    f: torch.from_numpy(np.ascontiguousarray(getattr(self.context, f))) for f in VA_FIELDS}})

    @classmethod
    def load(cls, path: Path = SONG_MODEL_PATH) -> SongModel:
        """The song model in ``path``; a ``ValueError`` naming the file where it holds no song model."""
        try:
            return cls._read(torch.load(path, map_location="cpu", weights_only=True))
        except OSError:
            raise
        except Exception as error:  # a damaged file fails anywhere in the unpickler (struct, zip, key errors...)
            raise ValueError(f"{path} is not a song model: {type(error).__name__}: {error}") from None

    @classmethod
    def _read(cls, data: dict) -> SongModel:
        fusion = data["fusion"] | {"modalities": tuple(data["fusion"]["modalities"])}
        replacement = RepresentationReplacement(data["n_features"], data["width"], FusionConfig(**fusion))
        replacement.load_state_dict(data["state"])
        reading = LyricsReading.of_arrays({k: v.numpy() for k, v in data["reading"].items()})
        context = TextModality(**{f: data["context"][f].numpy() for f in VA_FIELDS}) if "context" in data else None
        return cls(replacement, reading, data["n_features"], data["music_model"], data["text_encoder"],
                   data["version"], json.loads(data.get("metrics", "{}")), context)
