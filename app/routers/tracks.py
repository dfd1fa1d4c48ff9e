"""The catalogue, read-only: list, one track with its VA reading, its audio."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import AfterValidator

from app import catalog
from app.analysis import SongFusion
from app.db import SessionDep
from app.errors import NotFoundError
from app.routers.schemas import MAX_ID, CurvePoint, ErrorOut, SongReadingsOut, TrackOut, TrackPage, typed_text
from app.services import Model, ServicesDep, SettingsDep
from app.tables import Track, TrackEmbedding
from models.taxonomy import TAXONOMIES

router = APIRouter(prefix="/v1/tracks", tags=["tracks"])
TrackId = Annotated[int, Path(ge=1, le=MAX_ID, description="Track id.")]
MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg", ".mp3": "audio/mpeg"}


def track_out(track: Track, reading: TrackEmbedding | None, *, with_curve: bool = False,
              readings: SongReadingsOut | None = None) -> TrackOut:
    curve, classes = None, None
    if with_curve and reading is not None:
        curve = [CurvePoint(t=t, valence=v, arousal=a) for t, v, a in reading.va_curve]
        classes = named_classes(reading.classes) if reading.classes is not None else None
    return TrackOut(id=track.id, title=track.title, artist=track.artist, duration_s=track.duration_s,
                    tags=list(track.tags or []), added_at=track.added_at, audio_url=f"/v1/tracks/{track.id}/audio",
                    tempo_bpm=track.tempo_bpm, key=track.key, mode=track.mode, album=track.album,
                    genre=track.genre, year=track.year, has_lyrics=track.lyrics is not None,
                    lyrics=track.lyrics if with_curve else None,
                    valence=reading.valence if reading else None, arousal=reading.arousal if reading else None,
                    curve=curve, readings=readings, classes=classes)


def named_classes(stored: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """taxonomy -> class -> probability from the stored taxonomy -> [p, ...] (in the taxonomy's order)."""
    return {t: dict(zip(TAXONOMIES[t], probabilities, strict=True)) for t, probabilities in stored.items()}


def song_readings(model: Model, audio: tuple[float, float], *, title: str, artist: str, lyrics: str | None,
                  song: SongFusion | None = None) -> SongReadingsOut | None:
    """The audio, lyrics, title/artist and fused readings (``models.songtext``; the fused one ``song``'s where
    the song model read the lyrics), or None without the song-text model."""
    readings = model.read_song(audio, title=title, artist=artist, lyrics=lyrics)
    if readings is None or model.song_text is None:
        return None
    return SongReadingsOut.of(readings, model.song_text.version, song)


def stored_fusion(reading: TrackEmbedding) -> SongFusion | None:
    """The song model's fused reading a stored embedding holds, if a song model made it."""
    if reading.song_model is None or reading.fused_valence is None or reading.fused_arousal is None:
        return None
    return SongFusion(reading.song_model, reading.fused_valence, reading.fused_arousal, {})


def full_track_out(track: Track, reading: TrackEmbedding | None, model: Model | None) -> TrackOut:
    """One track with its curve, lyrics and the readings of its sound, lyrics and title/artist (read from what
    the catalogue holds now, so a change of lyrics shows at once)."""
    readings = None
    if model is not None and reading is not None:
        readings = song_readings(model, (reading.valence, reading.arousal), title=track.title, artist=track.artist,
                                 lyrics=track.lyrics, song=stored_fusion(reading))
    return track_out(track, reading, with_curve=True, readings=readings)


def _track(session: SessionDep, track_id: int) -> Track:
    track = catalog.get_track(session, track_id)
    if track is None:
        raise NotFoundError(f"no track with id {track_id}")
    return track


def _typed_query(q: str | None) -> str | None:
    return q if q is None else typed_text(q)


@router.get("", response_model=TrackPage, summary="List tracks")
def list_tracks(
    session: SessionDep, services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    q: Annotated[str | None, Query(max_length=200, description="Title or artist contains."),
                 AfterValidator(_typed_query)] = None,
) -> TrackPage:
    tracks, total = catalog.list_tracks(session, limit=limit, offset=offset, query=q)
    readings = catalog.reading_of(session, [t.id for t in tracks], services.model_version)
    return TrackPage(items=[track_out(t, readings.get(t.id)) for t in tracks], total=total, limit=limit,
                     offset=offset)


@router.get("/{track_id}", response_model=TrackOut, responses={404: {"model": ErrorOut}}, summary="One track")
def get_track(track_id: TrackId, session: SessionDep, services: ServicesDep) -> TrackOut:
    track = _track(session, track_id)
    reading = catalog.reading_of(session, [track.id], services.model_version).get(track.id)
    return full_track_out(track, reading, services.model)


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of an If-None-Match header with the file's entity tag."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


@router.get("/{track_id}/audio", response_class=FileResponse,
            responses={304: {"description": "Not modified (If-None-Match)"}, 404: {"model": ErrorOut}},
            summary="The track's audio file")
def track_audio(track_id: TrackId, session: SessionDep, settings: SettingsDep, request: Request) -> Response:
    """The stored audio, with byte ranges, HEAD, and 304 for an If-None-Match that names its ETag."""
    track = _track(session, track_id)
    path = settings.data_dir / track.audio_path
    if not path.is_file():
        raise NotFoundError(f"the audio of track {track_id} is missing from the data folder")
    response = FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix, "application/octet-stream"),
                            stat_result=path.stat())
    etag = response.headers["etag"]
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"etag": etag, "last-modified": response.headers["last-modified"]})
    return response


router.add_api_route("/{track_id}/audio", track_audio, methods=["HEAD"], include_in_schema=False)
