"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.routers.errors import error_response
from app.services import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The model and the index are loaded", response_model=None)
def readyz(services: ServicesDep) -> dict[str, object] | Response:
    if not services.ready:
        return error_response(503, "not_ready", services.problem or "the index is not loaded yet")
    snapshot = services.require_index()
    answer: dict[str, object] = {"ready": True, "model_version": snapshot.model_version, "index_size": snapshot.size,
                                 "index_kind": snapshot.kind, "generation": snapshot.generation, "pid": os.getpid()}
    if services.store.problem:
        answer["problem"] = services.store.problem
    return answer


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(services: ServicesDep) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
