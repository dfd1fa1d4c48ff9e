"""Music to emotion: upload a clip, get its valence/arousal, a VA curve over time and ranked named emotions; with
``tracks``, the catalogue tracks that feel like it (a reference track, as ``like_track`` ranks a catalogue track's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile

from app import catalog, limits
from app.analysis import TrackAnalysis, rank_emotions
from app.index import SearchIndex
from app.ingest import analyze_bytes
from app.routers.schemas import LYRICS, CurvePoint, EmotionHit, ErrorOut, MusicToEmotionResponse, TrackHit
from app.routers.tracks import song_readings
from app.routers.uploads import known_form_fields, read_upload
from app.search import QueryEmbedding, search_alike
from app.services import ModelDep, Services, ServicesDep, SettingsDep
from app.songinfo import request_lyrics, request_text
from app.tables import MAX_TITLE_CHARS
from models.harmony import PITCHES
from models.text import MAX_LYRICS_CHARS

router = APIRouter(prefix="/v1", tags=["music"])
ERRORS = {code: {"model": ErrorOut} for code in (413, 415, 422, 503)}


@router.post("/music-to-emotion", response_model=MusicToEmotionResponse, responses=ERRORS,  # type: ignore[arg-type]
             summary="Emotions of an audio clip", dependencies=[Depends(known_form_fields)])
def music_to_emotion(
    settings: SettingsDep, model: ModelDep, services: ServicesDep,
    file: Annotated[UploadFile, File(description="Audio: WAV, FLAC, OGG or MP3.")],
    k: Annotated[int, Query(ge=1, description="Named emotions to return (at most MOODSPACE_MAX_K).")] = 10,
    lam: Annotated[float | None, Query(ge=0, le=1, allow_inf_nan=False,
                                       description="Score weight (default: the model's).")] = None,
    tracks: Annotated[int, Query(ge=0, description="Catalogue tracks that feel like the clip to return (a "
                                 "reference track: its embedding is the query, as like_track's; at most "
                                 "MOODSPACE_MAX_K; 0: none).")] = 0,
    title: Annotated[str, Form(max_length=MAX_TITLE_CHARS, description="The song's title: adds the title/artist "
                               "reading.")] = "",
    artist: Annotated[str, Form(max_length=MAX_TITLE_CHARS, description="The song's artist.")] = "",
    lyrics: Annotated[str, Form(max_length=MAX_LYRICS_CHARS, description=LYRICS + " Adds the lyrics reading.")] = "",
) -> MusicToEmotionResponse:
    limits.check_k(settings, k)
    limits.check_k(settings, tracks, name="tracks")
    snapshot = services.require_index() if tracks else None  # before the analysis: no index, no work done
    song_title, song_artist = request_text(title, field="title"), request_text(artist, field="artist")
    song_lyrics = request_lyrics(lyrics)
    data = read_upload(file, limit=settings.max_upload_bytes)
    analysis = analyze_bytes(model, data, name=file.filename or "upload", lyrics=song_lyrics, title=song_title,
                             artist=song_artist)
    embedder = model.embedder
    lam = embedder.query_lam(lam)
    emotions = rank_emotions(embedder, analysis.windows, lam=lam, k=k)
    tonality = analysis.tonality
    return MusicToEmotionResponse(
        valence=analysis.valence, arousal=analysis.arousal, valence_std=analysis.valence_std,
        arousal_std=analysis.arousal_std, duration_s=round(analysis.duration_s, 3),
        curve=[CurvePoint(t=t, valence=v, arousal=a) for t, v, a in analysis.curve],
        emotions=[EmotionHit(**e.__dict__) for e in emotions], classes=analysis.classes,
        tempo_bpm=round(tonality.tempo_bpm, 1) if tonality.tempo_bpm > 0 else None,
        key=PITCHES[tonality.key.tonic], mode=tonality.key.mode, key_strength=round(tonality.key.strength, 4), lam=lam,
        model_version=embedder.version,
        readings=song_readings(model, (analysis.valence, analysis.arousal), title=song_title, artist=song_artist,
                               lyrics=song_lyrics, song=analysis.song.fusion if analysis.song else None),
        tracks=_like(services, snapshot, analysis, lam=lam, k=tracks) if snapshot is not None else None,
    )


def _like(services: Services, snapshot: SearchIndex, analysis: TrackAnalysis, *, lam: float, k: int
          ) -> list[TrackHit]:
    """The ``k`` catalogue tracks that feel most like an analysed upload, the upload itself left out where the
    catalogue holds the same audio."""
    with services.sessions() as session:
        same = catalog.track_by_fingerprint(session, analysis.fingerprint)
        asked = QueryEmbedding(analysis.indexed, (analysis.valence, analysis.arousal), analysis.indexed_classes)
        results = search_alike(session, snapshot, asked, settings=services.settings, lam=lam, k=k,
                               exclude=() if same is None else (same.id,))
    return [TrackHit.of(r, query_va=(analysis.valence, analysis.arousal)) for r in results]
