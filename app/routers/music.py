"""Music to emotion: upload a clip, get its valence/arousal, a VA curve over time and ranked named emotions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile

from app import limits
from app.analysis import rank_emotions
from app.ingest import analyze_bytes
from app.routers.schemas import LYRICS, CurvePoint, EmotionHit, ErrorOut, MusicToEmotionResponse
from app.routers.tracks import song_readings
from app.routers.uploads import known_form_fields, read_upload
from app.services import ModelDep, SettingsDep
from app.songinfo import request_lyrics, request_text
from app.tables import MAX_TITLE_CHARS
from models.harmony import PITCHES
from models.text import MAX_LYRICS_CHARS

router = APIRouter(prefix="/v1", tags=["music"])
ERRORS = {code: {"model": ErrorOut} for code in (413, 415, 422, 503)}


@router.post("/music-to-emotion", response_model=MusicToEmotionResponse, responses=ERRORS,  # type: ignore[arg-type]
             summary="Emotions of an audio clip", dependencies=[Depends(known_form_fields)])
def music_to_emotion(
    settings: SettingsDep, model: ModelDep,
    file: Annotated[UploadFile, File(description="Audio: WAV, FLAC, OGG or MP3.")],
    k: Annotated[int, Query(ge=1, description="Named emotions to return (at most MOODSPACE_MAX_K).")] = 10,
    lam: Annotated[float | None, Query(ge=0, le=1, allow_inf_nan=False,
                                       description="Score weight (default: the model's).")] = None,
    title: Annotated[str, Form(max_length=MAX_TITLE_CHARS, description="The song's title: adds the title/artist "
                               "reading.")] = "",
    artist: Annotated[str, Form(max_length=MAX_TITLE_CHARS, description="The song's artist.")] = "",
    lyrics: Annotated[str, Form(max_length=MAX_LYRICS_CHARS, description=LYRICS + " Adds the lyrics reading.")] = "",
) -> MusicToEmotionResponse:
    limits.check_k(settings, k)
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
    )
