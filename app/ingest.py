"""Put audio into the catalogue: content-addressed storage, analysis, one track row and one embedding row.

Idempotent by content: the same bytes twice, or the same decoded audio in another file (a FLAC of a WAV), give
the same track. Client file names never become paths: audio is stored as ``audio/<hh>/<sha256>.<ext>`` under the
data folder. Decoding happens in the services' audio workers (separate processes, time-limited).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import soundfile as sf
from sqlalchemy.orm import Session

from app import catalog
from app.analysis import TrackAnalysis, analyze_decoded
from app.decoding import Decoded
from app.services import Model
from app.songinfo import SongInfo, read_tags
from app.tables import MAX_TITLE_CHARS, Track
from models.atomic import atomic_file
from models.inference import Embedder
from models.scoring import Gaussians

UNTITLED = "untitled"  # a track's title where neither the request nor the file gives one (not read as context)
_SUFFIXES = {"WAV": ".wav", "FLAC": ".flac", "OGG": ".ogg", "MP3": ".mp3", "AIFF": ".aiff"}


@dataclass(frozen=True)
class Ingested:
    track: Track
    created: bool


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _suffix(data: bytes) -> str:
    try:
        return _SUFFIXES.get(sf.info(io.BytesIO(data)).format, ".audio")
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return ".audio"


def store_audio(data: bytes, *, data_dir: Path, digest: str) -> str:
    """Write the bytes once under the data folder; returns the path relative to it."""
    relative = Path("audio") / digest[:2] / f"{digest}{_suffix(data)}"
    target = data_dir / relative
    if not target.is_file():
        with atomic_file(target) as out:
            out.write(data)
    return relative.as_posix()


def analyze_bytes(model: Model, data: bytes, *, name: str, spans: bool = False, lyrics: str | None = None,
                  title: str = "", artist: str = "") -> TrackAnalysis:
    """Decode (in a worker, time-limited) and analyse one audio file (``spans``, ``lyrics``, ``title``,
    ``artist``: as ``analyze_decoded``, with the model's song model)."""
    return analyze_decoded(model.embedder, model.audio.decode(data, name=name), spans=spans, song=model.song_model,
                           lyrics=lyrics, title=title, artist=artist)


def embed_track(session: Session, embedder: Embedder, track: Track, analysis: TrackAnalysis) -> None:
    """Store the track's embedding (the song model's where it read the lyrics) and spans (analyse with
    ``spans=True``) under the model's version; fill in tempo, key, mode and the fingerprint where the track was
    added before they existed."""
    assert analysis.spans is not None, "a catalogue track is analysed with its spans"
    if track.key is None:
        catalog.set_tonality(track, analysis.tonality)
    if track.audio_fingerprint is None and catalog.track_by_fingerprint(session, analysis.fingerprint) is None:
        track.audio_fingerprint = analysis.fingerprint
    fusion = analysis.song.fusion if analysis.song is not None else None
    catalog.add_embedding(
        session, track_id=track.id, model_version=embedder.version,
        gaussians=Gaussians(*(part[0] for part in analysis.indexed)),
        va=(analysis.valence, analysis.arousal, analysis.valence_std, analysis.arousal_std), curve=analysis.curve,
        spans=analysis.spans, song=(fusion.version, fusion.valence, fusion.arousal) if fusion is not None else None,
        classes=analysis.indexed_classes)


def reembed(session: Session, model: Model, track: Track, *, data_dir: Path) -> None:
    """Embed the track again from its stored audio, with its lyrics as they are now (after they changed)."""
    data = (data_dir / track.audio_path).read_bytes()
    words = words_of(track)
    embed_track(session, model.embedder, track, analyze_bytes(model, data, name=track.title, spans=True,
                                                              lyrics=words.lyrics, title=words.title,
                                                              artist=words.artist))


class Words(NamedTuple):
    """A track's words, as the song model reads them (``analyze_decoded``)."""

    lyrics: str | None
    title: str
    artist: str


def words_of(track: Track) -> Words:
    """A stored track's words (a title the catalogue made up is none)."""
    return Words(track.lyrics, "" if track.title == UNTITLED else track.title, track.artist)


def already_embedded(session: Session, data: bytes, *, model_version: str) -> bool:
    """Whether these bytes are in the catalogue with an embedding for ``model_version``."""
    existing = catalog.track_by_hash(session, content_hash(data))
    return existing is not None and catalog.embedding_for(session, existing.id, model_version) is not None


def ingest_audio(session: Session, model: Model, *, data_dir: Path, data: bytes, title: str = "",
                 artist: str = "", source: str = "upload", tags: tuple[str, ...] = (),
                 decoded: Decoded | None = None, info: SongInfo | None = None) -> Ingested:
    """Add audio to the catalogue (the caller commits). The same bytes again, or the same decoded audio in another
    file (a FLAC of a WAV, other tags), return the existing track, embedded for the current model version.
    ``decoded`` passes features already computed by the audio workers. Song context: ``title`` and ``artist``
    where given, else ``info``'s (by default the file's own tags, ``app.songinfo.read_tags``)."""
    embedder = model.embedder
    digest = content_hash(data)
    decoded_: list[Decoded] = [] if decoded is None else [decoded]

    def analysis(words: Words) -> TrackAnalysis:
        if not decoded_:  # decoded once, even where a track with the same audio needs it read with its own words
            decoded_.append(model.audio.decode(data, name=title or "upload"))
        return analyze_decoded(embedder, decoded_[0], spans=True, song=model.song_model, lyrics=words.lyrics,
                               title=words.title, artist=words.artist)

    existing = catalog.track_by_hash(session, digest)
    if existing is not None:
        if catalog.embedding_for(session, existing.id, embedder.version) is None:
            embed_track(session, embedder, existing, analysis(words_of(existing)))
        return Ingested(existing, False)
    song = (info or read_tags(data, name=title or "upload")).overridden_by(title=title, artist=artist)
    stored_title, stored_artist = song.title[:MAX_TITLE_CHARS], song.artist[:MAX_TITLE_CHARS]
    words = Words(song.lyrics, stored_title, stored_artist)
    analysis_ = analysis(words)
    same_audio = catalog.track_by_fingerprint(session, analysis_.fingerprint)
    if same_audio is not None:
        if catalog.embedding_for(session, same_audio.id, embedder.version) is None:
            embed_track(session, embedder, same_audio, analysis_ if words_of(same_audio) == words else
                        analysis(words_of(same_audio)))
        return Ingested(same_audio, False)
    track = catalog.add_track(session, title=stored_title or UNTITLED,
                              artist=stored_artist, duration_s=analysis_.duration_s,
                              fingerprint=analysis_.fingerprint,
                              audio_path=store_audio(data, data_dir=data_dir, digest=digest),
                              content_hash=digest, source=source, tags=tags, album=song.album,
                              genre=song.genre, year=song.year, lyrics=song.lyrics)
    embed_track(session, embedder, track, analysis_)
    return Ingested(track, True)
