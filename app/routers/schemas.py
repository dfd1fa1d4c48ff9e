"""Request and response models. Valence and arousal are declared on [-1, 1]; NaN and infinity are refused."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from app.analysis import SongFusion
from app.catalog import TrackFilters
from app.search import TrackResult
from app.tables import MAX_GENRE_CHARS, MAX_TITLE_CHARS, JobState
from models.curves import validate_curve
from models.errors import CurveError
from models.songtext import SongReadings
from models.text import MAX_LYRICS_CHARS

VA = Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]
Pitch = Literal["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
Mode = Literal["major", "minor"]
TEMPO = "Tempo in beats per minute, from the onset autocorrelation (null when no beat was found)."
KEY = "Tonic of the key that best fits the audio's chroma (Krumhansl-Kessler key profiles)."
MODE = "Mode of that key."
LYRICS = f"Plain text or LRC (its time stamps are removed), at most {MAX_LYRICS_CHARS} characters."
MAX_ID = 2**31 - 1  # ids are 32-bit integers in every supported database
Seconds = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class CurvePoint(Strict):
    t: Seconds = Field(description="Time in seconds from the start of the curve.")
    valence: VA
    arousal: VA


class VAPoint(Strict):
    valence: VA
    arousal: VA


MAX_FILTER_NAMES = 100  # artists or tags in one filter


def typed_text(value: str) -> str:
    """``value`` if a person could have typed it: no control characters (NUL, escape, bell), which no title,
    artist, genre, tag or id holds and PostgreSQL refuses in a text parameter."""
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("control characters (such as NUL) are not allowed here")
    return value


Name = Annotated[str, Field(min_length=1, max_length=MAX_TITLE_CHARS), AfterValidator(typed_text)]
Genre = Annotated[str, Field(min_length=1, max_length=MAX_GENRE_CHARS), AfterValidator(typed_text)]
QUERY_KINDS = ("curve", "point", "emotion", "like_track")  # what an emotion -> music query may be


class TrackFilter(Strict):
    """Conditions every returned track meets; the top k is exact among the tracks that pass. Ranges are
    inclusive; text compares case-insensitively; a track without a tempo, key or year passes no condition on it."""

    tempo_min: float | None = Field(None, gt=0, le=400, allow_inf_nan=False, description="Slowest tempo, BPM.")
    tempo_max: float | None = Field(None, gt=0, le=400, allow_inf_nan=False, description="Fastest tempo, BPM.")
    key: Pitch | None = Field(None, description="Tonic of the key.")
    mode: Mode | None = None
    duration_min: float | None = Field(None, ge=0, allow_inf_nan=False, description="Shortest track, seconds.")
    duration_max: float | None = Field(None, ge=0, allow_inf_nan=False, description="Longest track, seconds.")
    genre: Genre | None = None
    year_min: int | None = Field(None, ge=1000, le=2999)
    year_max: int | None = Field(None, ge=1000, le=2999)
    artists: list[Name] = Field(
        default_factory=list, max_length=MAX_FILTER_NAMES, description="Only these artists.")
    exclude_artists: list[Name] = Field(
        default_factory=list, max_length=MAX_FILTER_NAMES, description="Not these artists.")
    tags: list[Name] = Field(
        default_factory=list, max_length=MAX_FILTER_NAMES, description="Tracks with every one of these tags.")

    @model_validator(mode="after")
    def _ranges(self) -> TrackFilter:
        for name in ("tempo", "duration", "year"):
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if low is not None and high is not None and low > high:
                raise ValueError(f"{name}_min {low} is above {name}_max {high}: no track can pass")
        both = {a.lower() for a in self.artists} & {a.lower() for a in self.exclude_artists}
        if both:
            raise ValueError(f"artists and exclude_artists both name {sorted(both)}: no track can pass")
        return self

    def to_filters(self) -> TrackFilters:
        return TrackFilters(
            tempo_min=self.tempo_min, tempo_max=self.tempo_max, key=self.key, mode=self.mode,
            duration_min=self.duration_min, duration_max=self.duration_max, genre=self.genre,
            year_min=self.year_min, year_max=self.year_max, artists=tuple(self.artists),
            exclude_artists=tuple(self.exclude_artists), tags=tuple(self.tags))


class EmotionQuery(Strict):
    """Exactly one of ``curve``, ``point``, ``emotion`` or ``like_track``."""

    curve: list[CurvePoint] | None = Field(None, description="A valence/arousal curve over time.")
    point: VAPoint | None = Field(None, description="One valence/arousal point.")
    emotion: str | None = Field(None, description="A named emotion (see GET /v1/emotions).", max_length=64)
    like_track: int | None = Field(None, ge=1, le=MAX_ID,
                                   description="A catalogue track's id: tracks that feel like it (its embedding in "
                                               "the emotion space is the query); the track itself is left out.")
    k: int = Field(10, ge=1, description="Number of tracks.")
    lam: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False,
                              description="Weight of correlation vs KL in the score (default: the model's).")
    filters: TrackFilter | None = Field(None, description="Only tracks that meet these conditions.")
    span: bool = Field(False, description="Return each track's best-matching stretch (start and end in seconds, "
                                          "its score parts; the audio URL plays from its start), not whole tracks.")
    span_seconds: float | None = Field(
        None, gt=0, allow_inf_nan=False,
        description="How long the stretch is, for a point, a named emotion or a track (implies span; default "
                    "one span, about 10 s), rounded down to the span grid (one span, then one more every hop). A "
                    "curve's stretch is as long as the curve.")
    _curve: np.ndarray | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _exactly_one(self) -> EmotionQuery:
        given = [name for name in QUERY_KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(QUERY_KINDS)} (got {given or 'none'})")
        if self.span_seconds is not None:
            if self.curve is not None:
                raise ValueError("span_seconds: a curve's span is as long as the curve; leave span_seconds out")
            self.span = True
        if self.curve is not None:
            try:  # the one validation of a query curve: [t, valence, arousal] rows, times non-decreasing
                self._curve = validate_curve([[p.t, p.valence, p.arousal] for p in self.curve], name="curve")
            except CurveError as error:
                raise ValueError(str(error)) from None
        return self

    def curve_array(self) -> np.ndarray | None:
        """The validated (T, 3) curve, or None when the query is a point or an emotion."""
        return self._curve


class ScoreParts(BaseModel):
    score: float = Field(description="lam * corr - (1 - lam) * KL / d")
    corr: float = Field(description="Pearson correlation of the point embeddings")
    neg_kl: float = Field(description="Minus the KL divergence KL(query || item)")


class TrackHit(ScoreParts):
    track_id: int
    title: str
    artist: str
    valence: VA
    arousal: VA
    audio_url: str
    va_distance: float = Field(description="Distance on the valence/arousal plane between the query's VA and the "
                                           "track's reading (0 is exactly where asked; the plane's diagonal is 2.83).")
    start_s: float | None = Field(None, description="Span search: where the best-matching stretch starts (s).")
    end_s: float | None = Field(None, description="Span search: where it ends (s); score parts are its own.")
    likeness: float | None = Field(None, description="Tracks that feel like a track (``like_track``, an upload's "
                                   "``tracks``): how alike the two tracks' class probabilities are (cosine, 0 to 1), "
                                   "which such answers are ranked by; their score parts are still the embeddings'. "
                                   "None elsewhere, and until a reindex where the catalogue has embeddings stored "
                                   "before class probabilities were kept (those answers rank by score).")

    @classmethod
    def of(cls, result: TrackResult, *, query_va: tuple[float, float]) -> TrackHit:
        distance = float(np.hypot(result.valence - query_va[0], result.arousal - query_va[1]))
        return cls(track_id=result.track_id, title=result.title, artist=result.artist, score=result.score,
                   corr=result.corr, neg_kl=result.neg_kl, valence=result.valence, arousal=result.arousal,
                   audio_url=result.audio_url, va_distance=round(distance, 4), start_s=result.start_s,
                   end_s=result.end_s, likeness=None if result.likeness is None else round(result.likeness, 4))


class EmotionToMusicResponse(BaseModel):
    results: list[TrackHit]
    reason: str | None = Field(None, description="Why there are no results, when there are none.")
    query: VAPoint
    lam: float
    model_version: str
    index_generation: str = Field(description="The index snapshot that answered: every result of one answer comes "
                                  "from it (a reindex publishes a new one; each server process swaps within a second).")


class EmotionHit(ScoreParts):
    name: str
    valence: VA
    arousal: VA


class Reading(BaseModel):
    valence: VA
    arousal: VA


class SongReadingsOut(BaseModel):
    """What each part of the song says, so a user sees why: the audio (the overall ``valence``/``arousal``), the
    lyrics and the title/artist (the sentence encoder's reading, calibrated onto the VA plane on real recordings),
    and the fused reading. Where the service's song model read the lyrics with the audio (``fused_by`` "song
    model"), the fused reading is what the music model's heads read from the song model's representation of the
    track, the one the index holds for it; otherwise ("readings") it is the audio's plus a fitted weight times
    each text reading given. A part not sent is null; without text the fused reading is the audio's."""

    audio: Reading
    lyrics: Reading | None = Field(description="From the lyrics alone; null without lyrics.")
    context: Reading | None = Field(description="From the title and artist alone; null without either.")
    fused: Reading = Field(description="Audio and text together.")
    fused_by: Literal["song model", "readings"] = Field(description="What made the fused reading (see above).")
    fused_classes: dict[str, dict[str, float]] | None = Field(
        None, description="The song model's class probabilities per taxonomy (as ``classes``, of the whole clip); "
        "null where it did not read the lyrics, and in a catalogue track's view.")
    model_version: str = Field(description="Version of the lyrics and title/artist readings.")
    song_model: str | None = Field(None, description="Version of the song model that read the lyrics with the "
                                   "audio; null where none did.")

    @classmethod
    def of(cls, readings: SongReadings, version: str, song: SongFusion | None = None) -> SongReadingsOut:
        parts = {k: Reading(**v.__dict__) if v else None for k, v in readings.__dict__.items()}
        if song is None:
            return cls(**parts, fused_by="readings", model_version=version)
        parts["fused"] = Reading(valence=song.valence, arousal=song.arousal)
        return cls(**parts, fused_by="song model", fused_classes=song.classes or None, model_version=version,
                   song_model=song.version)


class MusicToEmotionResponse(BaseModel):
    """One reading per track: ``valence`` and ``arousal`` are the mean of ``curve`` (the model's reading of
    windows of about 7.7 s, one centred on each frame and cut at the clip's ends, so the curve covers the whole
    clip); ``*_std`` the spread of the window readings around that mean (mean within-window variance plus the
    variance of the window means); ``emotions`` ranked by the composite score averaged over the same windows.
    Looping a clip leaves all three where they were. Silent audio is refused (422, "no music heard"). A window's
    reading comes from the model's quadrant head where its config says so (the class probabilities' expected
    placement, the quadrant centres at +-0.5), mixed axis by axis with the retrieval over the VA grid that ranks
    the emotions (the default model's valence: 0.6 of the grid reading, 0.4 of the head's; its arousal the head's
    alone), else from its dimensional head or by retrieval over the VA grid alone."""

    valence: VA = Field(description="Mean valence of the curve.")
    arousal: VA = Field(description="Mean arousal of the curve.")
    valence_std: float = Field(description="Spread of the window readings' valence around the mean.")
    arousal_std: float = Field(description="Spread of the window readings' arousal around the mean.")
    duration_s: float
    curve: list[CurvePoint] = Field(description="VA of the window centred on each frame, at the frame's centre: "
                                    "from the first frame to the last, covering the whole clip.")
    emotions: list[EmotionHit] = Field(description="Named emotions by window-averaged composite score.")
    classes: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Per taxonomy the model has heads for (quadrant: Russell quadrants Q1-Q4; "
        "mirex_cluster: MIREX mood clusters 1-5), each class's probability averaged over the same windows.")
    tempo_bpm: float | None = Field(description=TEMPO)
    key: Pitch = Field(description=KEY)
    mode: Mode = Field(description=MODE)
    key_strength: float = Field(description="Correlation of the chroma with that key's profile (-1 to 1): how "
                                "clearly the audio is in one key.")
    lam: float
    model_version: str
    readings: SongReadingsOut | None = Field(None, description="Audio, lyrics, title/artist and fused readings; "
                                             "null where the service has no lyrics and title/artist model.")
    tracks: list[TrackHit] | None = Field(None, description="With ?tracks=N: the catalogue tracks that feel most "
                                          "like the clip (its embedding as the query, ranked as like_track ranks; "
                                          "the clip itself left out where the catalogue holds the same audio).")


class TrackOut(BaseModel):
    id: int
    title: str
    artist: str
    duration_s: float
    tags: list[str]
    added_at: datetime
    audio_url: str
    album: str = ""
    genre: str = ""
    year: int | None = None
    has_lyrics: bool = Field(False, description="Whether the catalogue holds lyrics for the track.")
    lyrics: str | None = Field(None, description="The lyrics, in a single track's view (not in lists).")
    tempo_bpm: float | None = Field(None, description=TEMPO)
    key: Pitch | None = Field(None, description=KEY + " Null for a track not analysed since tracks had keys.")
    mode: Mode | None = Field(None, description=MODE)
    valence: VA | None = None
    arousal: VA | None = None
    curve: list[CurvePoint] | None = None
    readings: SongReadingsOut | None = Field(None, description="In a single track's view: what its sound, lyrics "
                                             "and title/artist say, and the fused reading.")
    classes: dict[str, dict[str, float]] | None = Field(
        None, description="In a single track's view: each categorical head's class probabilities (as "
        "music-to-emotion's ``classes``) of the representation its embedding came from (the song model's where it "
        "read the lyrics), what tracks that feel like it are ranked by; null for an embedding stored before they "
        "were kept.")


class LyricsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lyrics: str = Field(max_length=MAX_LYRICS_CHARS, description=LYRICS)


class TrackPage(BaseModel):
    items: list[TrackOut]
    total: int
    limit: int
    offset: int


class AddedTrack(BaseModel):
    track: TrackOut
    created: bool = Field(description="False when the same audio was already in the catalogue.")
    indexed: bool = Field(description="Whether the serving index holds the track; POST /v1/admin/reindex if not.")


class JobOut(BaseModel):
    job_id: str
    kind: str
    state: JobState
    progress: float
    message: str
    result: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class NamedEmotion(BaseModel):
    name: str
    valence: VA
    arousal: VA
    source: str


class ErrorOut(BaseModel):
    error: str
    detail: Any


class TextQuery(Strict):
    text: str = Field(description="A story: one or more paragraphs.")
    k: int = Field(5, ge=1, description="Tracks for the whole text, or per segment in arc mode.")
    mode: Literal["whole", "arc"] = Field("whole", description="One list, or a cue list following the arc.")
    bridge: Literal["va", "metric"] = Field(
        "va", description="va: sentence valence/arousal through the emotion encoder; metric: text embedded "
                          "straight into the space.")
    lam: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)
    filters: TrackFilter | None = Field(None, description="Only tracks that meet these conditions.")
    span: bool = Field(False, description="Return each track's best-matching stretch, as long as the text (or "
                                          "the cue) takes at seconds_per_sentence, not whole tracks.")
    seconds_per_sentence: float | None = Field(
        None, gt=0, le=60, allow_inf_nan=False,
        description="Span search: the time one sentence takes (default: the model's, 4 s).")


class SentenceOut(BaseModel):
    text: str
    valence: VA
    arousal: VA


class SegmentOut(BaseModel):
    start: int = Field(description="First sentence (0-based).")
    end: int = Field(description="One past the last sentence.")
    sentences: list[str]
    valence: VA
    arousal: VA
    results: list[TrackHit]


class TextToMusicResponse(BaseModel):
    mode: str
    bridge: str
    sentences: list[SentenceOut]
    results: list[TrackHit] | None = None
    segments: list[SegmentOut] | None = None
    reason: str | None = Field(None, description="Why there are no results, when there are none.")
    lam: float
    model_version: str
    index_generation: str = Field(description="The index snapshot that answered: every result of one answer comes "
                                  "from it (a reindex publishes a new one; each server process swaps within a second).")
