"""One place that turns errors into ``{"error", "detail"}`` responses with the right status."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from typing import Any, get_args

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
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


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    body = request_model(request)
    detail = [{"loc": list(e.get("loc", ())), "msg": _message(e, body)} for e in error.errors()]
    return error_response(422, "invalid_request", detail)


def request_model(request: Request) -> type[BaseModel] | None:
    """The model of the request body the matched route reads (for a form, the one FastAPI makes of its fields)."""
    body = getattr(getattr(request.scope.get("route"), "body_field", None), "field_info", None)
    models = _models(getattr(body, "annotation", None))
    return models[0] if models else None


def _message(error: dict[str, Any], body: type[BaseModel] | None) -> str:
    """Pydantic's message, but for a field the request's object does not have: which field, what was probably
    meant and what the object takes (pydantic says only "Extra inputs are not permitted")."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") != "extra_forbidden" or body is None or loc[:1] != ("body",) or not loc[1:]:
        return str(error.get("msg", ""))
    model = _model_at(body, loc[1:-1])
    return str(error.get("msg", "")) if model is None else unknown_field(model, str(loc[-1]))


def unknown_field(model: type[BaseModel], name: str) -> str:
    """The message for ``name``, a field ``model`` does not have: the fields it probably meant (``tempo`` ->
    ``tempo_min``, a misspelling -> the nearest names, a field of a nested object -> ``filters.tempo_min``), then
    every field the model has."""
    fields = list(model.model_fields)
    meant = _named_like(name, fields) or difflib.get_close_matches(name, fields, n=2) or [
        f"{outer}.{inner}" for outer, field in model.model_fields.items() for nested in _models(field.annotation)
        for inner in _named_like(name, list(nested.model_fields))]
    hint = f" (did you mean {' or '.join(meant)}?)" if meant else ""
    return f"unknown field {name!r}{hint}; this object takes {', '.join(fields)}"


def _named_like(name: str, fields: list[str]) -> list[str]:
    """``name`` itself or the fields it begins (a range's ``tempo`` -> ``tempo_min``, ``tempo_max``)."""
    return [f for f in fields if f == name or f.startswith(f"{name}_")]


def _models(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds, through Optional, lists and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models(arg)]


def _model_at(model: type[BaseModel], path: Sequence[object]) -> type[BaseModel] | None:
    """The model of the object at ``path`` (field names; list positions are passed over) inside ``model``."""
    for step in path:
        if isinstance(step, int):
            continue
        field = model.model_fields.get(str(step))
        inner = _models(field.annotation) if field is not None else []
        if not inner:
            return None
        model = inner[0]
    return model


async def http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    headers = dict(error.headers or {})
    return error_response(error.status_code, "http_error", _routing_message(request, error, headers), headers)


def _routing_message(request: Request, error: HTTPException, headers: dict[str, str]) -> object:
    """Starlette's bare "Not Found" and "Method Not Allowed" said in the user's terms: which method and path, and
    the endpoint probably meant (``GET /emotion-to-music`` -> ``POST /v1/emotion-to-music``, ``DELETE
    /v1/tracks/3`` -> ``DELETE /v1/admin/tracks/{track_id}``). A 404 from inside an endpoint or a mount (a static
    file) keeps its own detail."""
    method, path = request.method, request.url.path
    endpoints = request.app.openapi().get("paths", {})
    taking = {template: methods for template, methods in endpoints.items() if method.lower() in methods}
    allowed = {name.lower(): value for name, value in headers.items()}.get("allow")
    if error.status_code == 405 and allowed:
        meant = endpoint_like(path, taking)
        return f"{path} does not take {method}; it takes {allowed}" + (f" (did you mean {meant}?)" if meant else "")
    if error.status_code != 404 or "endpoint" in request.scope:
        return error.detail
    meant = endpoint_like(path, taking) or endpoint_like(path, endpoints)
    hint = f" (did you mean {meant}?)" if meant else ""
    return f"no endpoint {method} {path}{hint}; the endpoints are listed at /docs"


def endpoint_like(path: str, endpoints: dict[str, dict[str, Any]]) -> str | None:
    """The endpoint of ``endpoints`` (OpenAPI's ``paths``) whose path is nearest ``path``, with its methods. Both
    are compared by their shape, each parameter or part with a digit in it read as ``{}``, so ``/v1/track/3``
    finds ``/v1/tracks/{track_id}``."""
    shapes: dict[str, str] = {}
    for template in endpoints:
        shapes.setdefault(_shape(template), template)
    nearest = difflib.get_close_matches(_shape(path), list(shapes), n=1, cutoff=0.75)
    if not nearest:
        return None
    template = shapes[nearest[0]]
    return f"{' or '.join(method.upper() for method in endpoints[template])} {template}"


def _shape(path: str) -> str:
    parts = path.strip("/").split("/")
    return "/" + "/".join("{}" if part.startswith("{") or any(c.isdigit() for c in part) else part for part in parts)


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, "internal", "an internal error occurred; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(MoodspaceError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
