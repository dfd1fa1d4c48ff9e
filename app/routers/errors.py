"""One place that turns errors into ``{"error", "detail"}`` responses with the right status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.errors import (
    AdminDisabledError,
    AuthError,
    NotFoundError,
    NotReadyError,
    PayloadTooLargeError,
    SongInfoError,
    SpansUnavailableError,
)
from models.errors import (
    AudioError,
    CurveError,
    ManifestError,
    MoodspaceError,
    QueryError,
    UndecodableAudioError,
)

log = logging.getLogger(__name__)

STATUS: dict[type[MoodspaceError], tuple[int, str]] = {
    NotFoundError: (404, "not_found"),
    PayloadTooLargeError: (413, "too_large"),
    UndecodableAudioError: (415, "unsupported_media"),
    AudioError: (422, "bad_audio"),
    CurveError: (422, "bad_curve"),
    QueryError: (422, "bad_query"),
    ManifestError: (422, "bad_manifest"),
    SongInfoError: (422, "bad_song_info"),
    AuthError: (401, "unauthorized"),
    AdminDisabledError: (403, "admin_disabled"),
    NotReadyError: (503, "not_ready"),
    SpansUnavailableError: (409, "no_spans"),
}


def _status(error: MoodspaceError) -> tuple[int, str]:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400, "bad_request"


def error_response(status: int, error: str, detail: object, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


async def domain_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, MoodspaceError)
    status, name = _status(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, name, str(error), headers)


async def validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in error.errors()]
    return error_response(422, "invalid_request", detail)


async def http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    return error_response(error.status_code, "http_error", error.detail, dict(error.headers or {}))


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, "internal", "an internal error occurred; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(MoodspaceError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
