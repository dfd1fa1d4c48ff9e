"""Tracks that feel like a catalogue track (``like_track``) with a model without categorical heads (the tests' tiny
bundle): the track's stored embedding is the query, ranked by the same composite score as every emotion -> music
query; the track itself never comes back; filters and spans apply; a track that is not there is a 404 naming the
field. With categorical heads the ranking is by likeness (tests/app/test_alike.py)."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import sessionmaker

from app import catalog
from app.db import make_engine
from models.scoring import composite_scores
from tests.app.conftest import AUTH, genre_catalogue, reindex, service


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory, bundle_dir: Path,
              wavs: list[bytes]) -> Iterator[tuple[TestClient, list[dict], Path]]:
    with genre_catalogue(tmp_path_factory.mktemp("like"), bundle_dir, wavs) as found:
        yield found


def _like(client: TestClient, track_id: int, **extra: object):
    return client.post("/v1/emotion-to-music", json={"like_track": track_id, **extra})


def _stored(database: Path, version: str) -> catalog.VersionEmbeddings:
    engine = make_engine(f"sqlite:///{database}")
    with sessionmaker(engine)() as session:
        stored = catalog.embeddings_for_version(session, version)
    engine.dispose()
    return stored


def test_a_track_query_ranks_the_other_tracks_by_the_tracks_own_stored_embedding(catalogue):
    client, tracks, database = catalogue
    asked = tracks[2]["id"]
    body = _like(client, asked, k=10).json()
    stored = _stored(database, body["model_version"])
    row = int(np.flatnonzero(stored.track_ids == asked)[0])
    query = type(stored.gaussians)(*(part[row : row + 1] for part in stored.gaussians))
    scores = composite_scores(query, stored.gaussians, lam=body["lam"]).score[0]
    expected = [int(stored.track_ids[i]) for i in np.argsort(-scores, kind="stable") if stored.track_ids[i] != asked]
    assert [r["track_id"] for r in body["results"]] == expected  # every other track, never the one asked about
    got = {r["track_id"]: r["score"] for r in body["results"]}
    np.testing.assert_allclose([got[i] for i in expected],
                               [scores[int(np.flatnonzero(stored.track_ids == i)[0])] for i in expected], atol=1e-4)
    reading = client.get(f"/v1/tracks/{asked}").json()
    assert body["query"] == pytest.approx({"valence": reading["valence"], "arousal": reading["arousal"]})


def test_a_track_query_takes_filters_k_and_spans(catalogue):
    client, tracks, _ = catalogue
    jazz = [t["id"] for t in tracks if t["genre"] == "jazz"]
    body = _like(client, jazz[0], filters={"genre": "jazz"}).json()
    assert sorted(r["track_id"] for r in body["results"]) == sorted(jazz[1:])
    assert len(_like(client, jazz[0], k=2).json()["results"]) == 2
    spans = _like(client, jazz[0], span=True, k=10).json()["results"]
    assert spans and jazz[0] not in [r["track_id"] for r in spans]
    assert all(r["start_s"] is not None and r["end_s"] > r["start_s"] for r in spans)


def test_a_track_query_for_a_track_not_there_is_a_404_naming_the_field(catalogue):
    client, tracks, _ = catalogue
    missing = _like(client, 999_999)
    assert missing.status_code == 404 and "like_track" in missing.json()["detail"]
    both = client.post("/v1/emotion-to-music", json={"like_track": tracks[0]["id"], "emotion": "happy"})
    assert both.status_code == 422 and "exactly one of" in both.text
    assert _like(client, 0).status_code == 422


def test_a_deleted_track_is_not_a_query_and_the_only_track_has_no_likes(tmp_path: Path, bundle_dir: Path,
                                                                         wavs: list[bytes]):
    with service(tmp_path, bundle_dir) as client:
        ids = [client.post("/v1/admin/tracks", headers=AUTH, files={"file": (f"t{k}.wav", wavs[k])},
                           data={"title": f"T{k}"}).json()["track"]["id"] for k in range(2)]
        reindex(client)
        assert client.delete(f"/v1/admin/tracks/{ids[0]}", headers=AUTH).status_code == 204
        assert _like(client, ids[0]).status_code == 404
        reindex(client)
        alone = _like(client, ids[1]).json()
        assert alone["results"] == [] and "no track but the one asked about" in alone["reason"]


def test_an_upload_asks_for_the_tracks_that_feel_like_it_as_a_catalogue_track_does(catalogue, wavs: list[bytes]):
    """A reference track: the upload's embedding is the query; the same audio in the catalogue is left out, so
    uploading a catalogue track's audio gives what like_track gives for that track."""
    client, tracks, _ = catalogue
    asked = tracks[3]["id"]
    upload = client.post("/v1/music-to-emotion?k=2&tracks=10", files={"file": ("ref.wav", wavs[3])})
    assert upload.status_code == 200, upload.text
    found = upload.json()["tracks"]
    liked = _like(client, asked, k=10).json()["results"]
    assert [r["track_id"] for r in found] == [r["track_id"] for r in liked] and asked not in [r["track_id"]
                                                                                              for r in found]
    np.testing.assert_allclose([r["score"] for r in found], [r["score"] for r in liked], atol=1e-5)
    assert client.post("/v1/music-to-emotion?k=2", files={"file": ("ref.wav", wavs[3])}).json()["tracks"] is None


def test_an_upload_s_track_count_is_checked_like_k(catalogue, wavs: list[bytes]):
    client, _, _ = catalogue
    response = client.post("/v1/music-to-emotion?tracks=100000", files={"file": ("ref.wav", wavs[0])})
    assert response.status_code == 413 and "tracks=100000 is above the limit" in response.text
    assert client.post("/v1/music-to-emotion?tracks=-1", files={"file": ("ref.wav", wavs[0])}).status_code == 422


def test_a_track_without_a_reading_by_the_loaded_model_is_a_503_that_says_so(tmp_path: Path, bundle_dir: Path,
                                                                               wavs: list[bytes]):
    """A track the catalogue holds but the loaded model has not read yet (its embedding is another model's) is
    not a query until a reindex reads it; the track and its other model's embedding are kept."""
    from sqlalchemy import update

    from app.tables import TrackEmbedding

    with service(tmp_path, bundle_dir) as client:
        ids = [client.post("/v1/admin/tracks", headers=AUTH, files={"file": (f"t{k}.wav", wavs[k])},
                           data={"title": f"T{k}"}).json()["track"]["id"] for k in range(2)]
        reindex(client)
        engine = make_engine(f"sqlite:///{tmp_path / 'catalogue.db'}")
        with sessionmaker(engine)() as session:
            session.execute(update(TrackEmbedding).where(TrackEmbedding.track_id == ids[0])
                            .values(model_version="an-older-model"))
            session.commit()
        engine.dispose()
        response = _like(client, ids[0])
        assert response.status_code == 503 and f"track {ids[0]} has no reading by model" in response.text
        assert client.get(f"/v1/tracks/{ids[0]}").status_code == 200
