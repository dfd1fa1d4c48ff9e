"""Span search through the API: emotion -> music and text -> music return each track's best-matching stretch, on
SQLite and PostgreSQL and on the Milvus index; bad span requests are 4xx naming the field; an index without spans
is a 409."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile as sf
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.main import create_app
from app.tables import TrackEmbedding
from models.inference import SpanGrid
from tests.app.conftest import AUTH, make_settings, reindex, service
from tests.app.test_text import STORY
from training.corpus.generate import synth_clip
from training.corpus.synth import SR

GRID = SpanGrid.of(0.96)  # the tests' tiny model frames audio at 0.96 s: 9.6 s spans, one every 4.8 s


@pytest.fixture(scope="module")
def long_wavs() -> list[bytes]:
    """Three 25 s clips (four spans each) and a 3 s one (one span)."""
    out = []
    for index, seconds in ((0, 25), (1, 25), (2, 25), (3, 3)):
        _, y = synth_clip(index, seed=5, seconds=seconds)
        buffer = io.BytesIO()
        sf.write(buffer, y, SR, format="WAV")
        out.append(buffer.getvalue())
    return out


def _fill(client: TestClient, wavs: list[bytes]) -> list[dict]:
    tracks = []
    for k, wav in enumerate(wavs):
        response = client.post("/v1/admin/tracks", headers=AUTH, files={"file": (f"s{k}.wav", wav)},
                               data={"title": f"Span {k}", "artist": f"Band {k}", "genre": "jazz" if k else "folk"})
        assert response.status_code == 201, response.text
        tracks.append(response.json()["track"])
    reindex(client)
    return tracks


BACKENDS = ["sqlite", "postgresql", "milvus"]


def _spans_service(backend: str, tmp_path: Path, bundle_dir: Path,
                   long_wavs: list[bytes]) -> Iterator[tuple[TestClient, list[dict]]]:
    """The service on SQLite and on PostgreSQL with the FAISS index, and on SQLite with the Milvus index, holding
    the long clips, indexed."""
    milvus = backend == "milvus"
    with service(tmp_path, bundle_dir, "sqlite" if milvus else backend,
                 **({"index_kind": "milvus"} if milvus else {})) as client:
        yield client, _fill(client, long_wavs)


@pytest.fixture(scope="module", params=BACKENDS)
def spans_reader(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bundle_dir: Path,
                 long_wavs: list[bytes]) -> Iterator[tuple[TestClient, list[dict]]]:
    """One service per backend for the tests that only ask it (built once: filling and indexing is most of a
    test's time)."""
    yield from _spans_service(request.param, tmp_path_factory.mktemp("spans"), bundle_dir, long_wavs)


@pytest.fixture(params=BACKENDS)
def spans_client(request: pytest.FixtureRequest, tmp_path: Path, bundle_dir: Path,
                 long_wavs: list[bytes]) -> Iterator[tuple[TestClient, list[dict]]]:
    """A service of its own for a test that changes its index or database."""
    yield from _spans_service(request.param, tmp_path, bundle_dir, long_wavs)


def _e2m(client: TestClient, **body) -> dict:
    response = client.post("/v1/emotion-to-music", json={"k": 10, **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_point_held_15_s_returns_a_two_span_stretch_of_each_long_track(spans_reader):
    client, tracks = spans_reader
    body = _e2m(client, point={"valence": 0.4, "arousal": -0.2}, span_seconds=15)
    durations = {t["id"]: t["duration_s"] for t in tracks}
    found = body["results"]
    assert {r["track_id"] for r in found} == {t["id"] for t in tracks[:3]}  # the 3 s track has no 2-span stretch
    for hit in found:
        assert hit["end_s"] - hit["start_s"] == pytest.approx(GRID.width_s + GRID.hop_s, abs=1e-3)
        assert hit["start_s"] >= 0 and hit["end_s"] <= durations[hit["track_id"]] + 1e-6
        assert hit["audio_url"] == f"/v1/tracks/{hit['track_id']}/audio#t={hit['start_s']:g},{hit['end_s']:g}"
    scores = [r["score"] for r in found]
    assert scores == sorted(scores, reverse=True)
    whole = _e2m(client, point={"valence": 0.4, "arousal": -0.2})["results"]
    assert all(r["start_s"] is None and "#" not in r["audio_url"] for r in whole)


def test_a_curve_finds_a_stretch_as_long_as_itself_and_a_named_emotion_one_span(spans_reader):
    client, _ = spans_reader
    curve = [{"t": 0, "valence": -0.5, "arousal": -0.5}, {"t": 20, "valence": 0.6, "arousal": 0.7}]
    found = _e2m(client, curve=curve, span=True)["results"]
    assert found and all(r["end_s"] - r["start_s"] == pytest.approx(GRID.width_s + 2 * GRID.hop_s, abs=1e-3)
                         for r in found)
    one = _e2m(client, emotion="happy", span=True)["results"]
    assert len(one) == 4 and all(r["end_s"] - r["start_s"] <= GRID.width_s + 1e-3 for r in one)


def test_span_search_keeps_to_the_filters(spans_reader):
    client, tracks = spans_reader
    body = _e2m(client, point={"valence": 0.0, "arousal": 0.0}, span=True, filters={"genre": "folk"})
    assert [r["track_id"] for r in body["results"]] == [tracks[0]["id"]]
    empty = _e2m(client, point={"valence": 0.0, "arousal": 0.0}, span=True, filters={"genre": "polka"})
    assert empty["results"] == [] and "passes the filters" in empty["reason"]


def test_a_span_longer_than_every_track_is_an_empty_answer_naming_the_longest(spans_reader):
    client, _ = spans_reader
    body = _e2m(client, point={"valence": 0.0, "arousal": 0.0}, span_seconds=60)
    assert body["results"] == []
    assert "60 s" in body["reason"] and "longest is" in body["reason"]


@pytest.mark.parametrize(("body", "status", "named"), [
    ({"curve": [{"t": 0, "valence": 0, "arousal": 0}, {"t": 20, "valence": 1, "arousal": 1}], "span_seconds": 10},
     422, "span_seconds"),
    ({"point": {"valence": 0, "arousal": 0}, "span_seconds": 0}, 422, "span_seconds"),
    ({"point": {"valence": 0, "arousal": 0}, "span_seconds": -3}, 422, "span_seconds"),
    ({"point": {"valence": 0, "arousal": 0}, "span_seconds": 1e9}, 413, "MOODSPACE_MAX_CURVE_SECONDS"),
    ({"point": {"valence": 0, "arousal": 0}, "span_seconds": 1e308}, 413, "a span of 1e+308 s"),
    ({"point": {"valence": 0, "arousal": 0}, "span": "sometimes"}, 422, "span"),
])
def test_bad_span_requests_are_4xx_naming_the_field(spans_reader, body: dict, status: int, named: str):
    client, _ = spans_reader
    response = client.post("/v1/emotion-to-music", json=body)
    assert response.status_code == status, response.text
    assert named in response.text


def test_an_index_without_spans_is_a_409_that_says_to_reindex(spans_client):
    client, _ = spans_client
    store = client.app.state.services.store  # type: ignore[attr-defined]
    store.swap(replace(store.current, spans=None))
    response = client.post("/v1/emotion-to-music", json={"emotion": "calm", "span": True})
    assert response.status_code == 409 and "reindex" in response.json()["detail"]
    assert client.post("/v1/emotion-to-music", json={"emotion": "calm"}).status_code == 200


def test_tracks_embedded_before_spans_get_them_at_the_next_reindex(spans_client):
    client, tracks = spans_client
    engine = client.app.state.services.engine  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(sa.update(TrackEmbedding).where(TrackEmbedding.track_id == tracks[1]["id"]).values(
            span_times=None, span_E=None, span_mu=None, span_logvar=None))
    job = reindex(client)
    assert job["state"] == "succeeded" and job["result"]["embedded"] == 1
    found = _e2m(client, point={"valence": 0.0, "arousal": 0.0}, span=True)["results"]
    assert tracks[1]["id"] in {r["track_id"] for r in found}


@pytest.fixture
def story_spans(tmp_path: Path, story_bundle_dir: Path, long_wavs: list[bytes]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path, story_bundle_dir))) as client:
        _fill(client, long_wavs)
        yield client


def test_a_story_s_cue_list_of_spans_follows_each_cue_s_length_and_never_repeats_a_track(story_spans):
    body = story_spans.post("/v1/text-to-music", json={"text": STORY, "k": 1, "mode": "arc", "span": True,
                                                       "seconds_per_sentence": 5}).json()
    segments = body["segments"]
    assert len(segments) >= 2
    tracks = [r["track_id"] for s in segments for r in s["results"]]
    assert tracks and len(tracks) == len(set(tracks))
    for segment in segments:
        wanted = GRID.width_s + (GRID.pieces(5 * len(segment["sentences"])) - 1) * GRID.hop_s
        for hit in segment["results"]:
            assert hit["end_s"] - hit["start_s"] == pytest.approx(wanted, abs=1e-3)
    whole = story_spans.post("/v1/text-to-music", json={"text": STORY, "k": 2, "span": True,
                                                        "seconds_per_sentence": 3}).json()
    assert len(whole["results"]) == 2  # six sentences at 3 s: an 18 s stretch, which only the long tracks have
    assert all(r["end_s"] - r["start_s"] == pytest.approx(GRID.width_s + GRID.hop_s, abs=1e-3)
               for r in whole["results"])
