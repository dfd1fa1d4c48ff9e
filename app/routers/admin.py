"""Catalogue administration behind a bearer token: add and delete tracks, reindex, follow jobs."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from fastapi import Path as FastAPIPath
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator

from app import catalog
from app.db import SessionDep
from app.errors import AdminDisabledError, AuthError, NotFoundError, SongInfoError
from app.ingest import ingest_audio, reembed
from app.jobs import submit_reindex
from app.routers.schemas import LYRICS, AddedTrack, ErrorOut, JobOut, LyricsIn, TrackOut, typed_text
from app.routers.tracks import TrackId, full_track_out
from app.routers.uploads import known_form_fields, read_upload
from app.services import ModelDep, ServicesDep, SettingsDep
from app.songinfo import read_tags, request_lyrics, request_text
from app.tables import MAX_GENRE_CHARS, MAX_TITLE_CHARS, Job, JobState
from models.text import MAX_LYRICS_CHARS

bearer = HTTPBearer(auto_error=False)


def require_admin(settings: SettingsDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """Constant-time comparison with MOODSPACE_ADMIN_TOKEN; no token configured means admin is off."""
    token = settings.admin_token
    if token is None or not token.get_secret_value():
        raise AdminDisabledError("admin endpoints are off: set MOODSPACE_ADMIN_TOKEN to enable them")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise AuthError("missing or wrong bearer token")


ERRORS = {code: {"model": ErrorOut} for code in (401, 403, 404, 413, 415, 422, 503)}
router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses=ERRORS)  # type: ignore[arg-type]


def job_out(job: Job) -> JobOut:
    return JobOut(job_id=job.id, kind=job.kind, state=JobState(job.state), progress=job.progress,
                  message=job.message, result=job.result or {}, created_at=job.created_at,
                  started_at=job.started_at, finished_at=job.finished_at)


@router.post("/tracks", response_model=AddedTrack, status_code=201, summary="Add a track",
             dependencies=[Depends(known_form_fields)])
def add_track(
    services: ServicesDep, model: ModelDep, session: SessionDep,
    file: Annotated[UploadFile, File(description="Audio: WAV, FLAC, OGG or MP3.")],
    title: Annotated[str, Form(max_length=MAX_TITLE_CHARS, description="Default: the file's title tag.")] = "",
    artist: Annotated[str, Form(max_length=MAX_TITLE_CHARS, description="Default: the file's tag.")] = "",
    album: Annotated[str, Form(max_length=MAX_TITLE_CHARS, description="Default: the file's tag.")] = "",
    genre: Annotated[str, Form(max_length=MAX_GENRE_CHARS, description="Default: the file's tag.")] = "",
    year: Annotated[int | None, Form(ge=1000, le=2999, description="Default: the file's date tag.")] = None,
    lyrics: Annotated[str, Form(max_length=MAX_LYRICS_CHARS, description=LYRICS + " Default: the file's tag, "
                                "else none.")] = "",
) -> AddedTrack:
    """Adds audio with its song context: each form field given replaces what the file's own tags (ID3, Vorbis
    comments, FLAC, MP4) say; a title is needed from one or the other."""
    settings = services.settings
    data = read_upload(file, limit=settings.max_upload_bytes)
    song = read_tags(data, name=file.filename or "upload").overridden_by(
        title=request_text(title, field="title"), artist=request_text(artist, field="artist"),
        album=request_text(album, field="album"), genre=request_text(genre, field="genre"), year=year,
        lyrics=request_lyrics(lyrics))
    if not song.title:
        raise SongInfoError("title: give the form field title, or upload a file whose tags name its title")
    added = ingest_audio(session, model, data_dir=settings.data_dir, data=data, info=song)
    session.commit()
    reading = catalog.embedding_for(session, added.track.id, model.embedder.version)
    snapshot = services.store.current
    indexed = snapshot is not None and snapshot.holds(added.track.id)
    return AddedTrack(track=full_track_out(added.track, reading, model), created=added.created,
                      indexed=indexed)


@router.put("/tracks/{track_id}/lyrics", response_model=TrackOut, summary="Set or replace a track's lyrics")
def setrequest_lyrics(track_id: TrackId, body: LyricsIn, session: SessionDep, model: ModelDep,
                      settings: SettingsDep) -> TrackOut:
    """Replaces the track's lyrics (LRC time stamps are removed); an empty text removes them. Where the service
    has a song model, the track's embedding is computed again with the new lyrics (the index holds it after the
    next reindex)."""
    track = catalog.get_track(session, track_id)
    if track is None:
        raise NotFoundError(f"no track with id {track_id}")
    lyrics = request_lyrics(body.lyrics)
    changed = lyrics != track.lyrics
    track.lyrics = lyrics
    if changed and model.song_model is not None:
        reembed(session, model, track, data_dir=settings.data_dir)
    session.commit()
    return full_track_out(track, catalog.embedding_for(session, track.id, model.embedder.version), model)


@router.delete("/tracks/{track_id}", status_code=204, response_class=Response, summary="Delete a track")
def delete_track(track_id: TrackId, session: SessionDep, settings: SettingsDep) -> Response:
    """Removes the track, its embeddings and its audio file; the index drops it at the next reindex (until
    then queries skip it)."""
    track = catalog.delete_track(session, track_id)
    if track is None:
        raise NotFoundError(f"no track with id {track_id}")
    session.commit()
    (settings.data_dir / track.audio_path).unlink(missing_ok=True)
    return Response(status_code=204)


@router.post("/reindex", response_model=JobOut, status_code=202, summary="Rebuild the index")
def reindex(services: ServicesDep) -> JobOut:
    """Starts a reindex job, or returns the one already queued or running."""
    job, _ = submit_reindex(services)
    return job_out(job)


@router.get("/jobs/{job_id}", response_model=JobOut, summary="A job's state and progress")
def get_job(job_id: Annotated[str, FastAPIPath(max_length=64), AfterValidator(typed_text)],
            session: SessionDep) -> JobOut:
    job = catalog.get_job(session, job_id)
    if job is None:
        raise NotFoundError(f"no job with id {job_id}")
    return job_out(job)
