"""Configuration dataclasses. Each default is defined once, here; a bundle stores ``asdict(ModelConfig)`` and
``ModelConfig.from_dict`` rebuilds it exactly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

# models.frontend.PRESETS has their settings
FrontEndName = Literal["logmel", "musicnn-msd", "musicnn-msd-pool", "musicnn-msd-tags", "student-msd-tags",
                       "musicnn-msd-tags-key", "student-msd-tags-key", "musicnn-msd-tags-chords"]
EncoderKind = Literal["bigru", "mlp"]
KEY_FEATURES = 3  # mode, key strength, tempo per frame (models.harmony.local_key_features)
CHORD_FEATURES = 25  # no chord, 12 intervals from the tonic x (major, minor) (models.harmony.key_relative_chords)


@dataclass(frozen=True)
class FrontEndConfig:
    """Audio -> (T, F) frame features. VGGish-like framing: 25 ms windows, 10 ms hop, 64 mel bands from 125 Hz
    to 7.5 kHz, grouped into frames of 0.96 s without overlap."""

    name: FrontEndName = "logmel"
    sr: int = 16_000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 64
    fmin: float = 125.0
    fmax: float = 7_500.0
    frame_seconds: float = 0.96

    @property
    def hops_per_frame(self) -> int:
        return round(self.frame_seconds * self.sr / self.hop_length)

    @property
    def n_features(self) -> int:
        """Size of one frame's features: log-mel mean, std and flux per band; musicnn's 200-d penultimate layer,
        plus its 753-d mid-end mean pool for ``-pool`` or its 50 MSD tag activations for ``-tags``; the student's
        estimate of those 250 for ``student-msd-tags``; a ``-key`` front end adds 3 local key and tempo features
        (``models.harmony.local_key_features``), a ``-chords`` one 25 key-relative chord shares
        (``models.harmony.key_relative_chords``)."""
        return FEATURE_SIZES[self.name](self)


FEATURE_SIZES: dict[str, Callable[[FrontEndConfig], int]] = {
    "logmel": lambda c: 3 * c.n_mels,
    "musicnn-msd": lambda c: 200,
    "musicnn-msd-pool": lambda c: 200 + 753,
    "musicnn-msd-tags": lambda c: 200 + 50,
    "student-msd-tags": lambda c: 200 + 50,  # the student's estimate of musicnn-msd-tags
    "musicnn-msd-tags-key": lambda c: 200 + 50 + KEY_FEATURES,
    "student-msd-tags-key": lambda c: 200 + 50 + KEY_FEATURES,
    "musicnn-msd-tags-chords": lambda c: 200 + 50 + CHORD_FEATURES,
}


@dataclass(frozen=True)
class EncoderConfig:
    """One encoder: ``kind`` is "mlp" (mean frame) or "bigru"; ``hidden`` is the GRU size per direction (bigru)
    and ``layers`` the fully connected stack (softplus + dropout) before the three heads. ``stats_pool`` adds the
    frames' mean and standard deviation to the summary (statistics pooling: what the linear probe reads)."""

    kind: EncoderKind = "bigru"
    hidden: int = 128
    layers: tuple[int, ...] = (256,)
    dropout: float = 0.2
    stats_pool: bool = False


@dataclass(frozen=True)
class ChordConfig:
    """The chord-sequence transformer (models.encoders.ChordTransformer): key-relative chord tokens
    (models.harmony) with a CLS token, ``layers`` encoder layers of ``d`` wide with ``heads`` heads; sequences
    are cut to ``max_chords`` (at 0.5 s a chord, 64 is 32 s)."""

    d: int = 32
    layers: int = 2
    heads: int = 4
    max_chords: int = 64
    dropout: float = 0.1


@dataclass(frozen=True)
class TextConfig:
    """Trainable heads on the frozen sentence encoder (models/text.py)."""

    layers: tuple[int, ...] = (256,)
    dropout: float = 0.1
    seconds_per_sentence: float = 4.0  # time a sentence takes on a story's VA curve


@dataclass(frozen=True)
class ModelConfig:
    frontend: FrontEndConfig = field(default_factory=FrontEndConfig)
    music: EncoderConfig = field(default_factory=lambda: EncoderConfig(kind="bigru", hidden=128, layers=(256,)))
    emotion: EncoderConfig = field(default_factory=lambda: EncoderConfig(kind="bigru", hidden=64, layers=(128,)))
    n_features: int | None = None  # frame feature size the music encoder reads; None: the front end's
    d: int = 32  # embedding size of both spaces
    lam: float = 0.5  # composite loss weight: lam * CCA + (1 - lam) * KL ranking
    query_lam: float | None = None  # default lam of the ranking score, chosen on validation (None: lam)
    alpha: float = 0.5  # KL ranking margin (per dimension: KL is divided by d)
    cca_reg: float = 1e-3  # ridge added to the CCA covariances
    logvar_min: float = -4.0
    logvar_max: float = 3.0
    text: TextConfig | None = None  # set once text heads are trained
    taxonomies: tuple[str, ...] = ()  # categorical heads on the music trunk, one per taxonomy (models.taxonomy)
    # A valence/arousal head on the music trunk (the dimensional branch of Kang & Herremans); when present, the
    # VA reading (curve and overall) comes from it instead of retrieval over the VA grid (models.inference).
    dimensional: bool = False
    # A taxonomy whose head gives the VA reading instead: per window, the class probabilities' expected VA
    # placement (models.taxonomy.CLASS_VA) and its spread. Chosen over the grid reading on real recordings' val
    # splits (docs/experiments.md); takes precedence over the dimensional head.
    class_reading: str | None = None
    # With ``class_reading``: the share of the grid reading (retrieval over the VA grid in the shared space, the
    # space the named emotions are ranked in) in the VA reading, (valence, arousal); the rest is the head's
    # placement. (0, 0): the head's placement alone.
    grid_share: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.n_features is None:
            object.__setattr__(self, "n_features", self.frontend.n_features)
        if self.class_reading is not None and self.class_reading not in self.taxonomies:
            raise ValueError(f"class_reading {self.class_reading!r} needs a head: one of taxonomies "
                             f"{list(self.taxonomies)}")
        if len(self.grid_share) != 2 or not all(0.0 <= share <= 1.0 for share in self.grid_share):
            raise ValueError(f"grid_share {self.grid_share!r}: two shares in [0, 1], valence then arousal")
        if any(self.grid_share) and self.class_reading is None:
            raise ValueError("grid_share mixes the grid reading into a class_reading: name the head first")

    def with_frontend(self, frontend: FrontEndConfig) -> ModelConfig:
        """The same model reading another front end's features (the feature size follows the front end)."""
        return replace(self, frontend=frontend, n_features=None)

    @property
    def feature_size(self) -> int:
        assert self.n_features is not None, "set in __post_init__"
        return self.n_features

    @property
    def score_lam(self) -> float:
        """The lam queries use unless they give their own."""
        return self.lam if self.query_lam is None else self.query_lam

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        values = dict(data)
        values["frontend"] = FrontEndConfig(**data.get("frontend", {}))
        for key in ("music", "emotion"):
            if key in data:
                values[key] = EncoderConfig(**{**data[key], "layers": tuple(data[key].get("layers", ()))})
        values["taxonomies"] = tuple(data.get("taxonomies", ()))
        if "grid_share" in data:
            values["grid_share"] = tuple(data["grid_share"])
        if data.get("text") is not None:
            values["text"] = TextConfig(**{**data["text"], "layers": tuple(data["text"].get("layers", ()))})
        return cls(**values)
