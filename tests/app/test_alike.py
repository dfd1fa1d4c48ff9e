"""Tracks that feel alike (``app.alike``): with a model that has categorical heads, ``like_track`` and an upload's
``tracks`` rank the catalogue by the likeness of stored class probabilities, each result keeping its embedding's
score parts; without class probabilities (a model without heads, embeddings stored before they were kept) the
embedding ranks, and a reindex fills them in."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from app import catalog
from app.alike import build_table, most_alike
from app.db import make_engine
from app.tables import TrackEmbedding
from models.bundle import save_bundle
from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel
from models.scoring import composite_scores
from models.taxonomy import likeness_vector
from tests.app.conftest import AUTH, genre_catalogue, reindex, service


def test_a_likeness_vector_weighs_each_taxonomy_alike_whatever_the_order_given():
    vector = likeness_vector({"quadrant": [0.7, 0.1, 0.1, 0.1], "mirex_cluster": [0.0, 0.0, 3.0, 0.0, 4.0]})
    assert np.linalg.norm(vector) == pytest.approx(1.0)
    np.testing.assert_allclose(vector[:5], np.array([0, 0, 0.6, 0, 0.8]) / np.sqrt(2))  # sorted: mirex first
    same = likeness_vector({"mirex_cluster": [0.0, 0.0, 0.3, 0.0, 0.4], "quadrant": [7, 1, 1, 1]})
    np.testing.assert_allclose(same, vector)  # scale and order do not matter


def test_the_table_is_incomplete_when_any_embedding_has_no_class_probabilities():
    rows = [{"quadrant": [1.0, 0, 0, 0]}, {"quadrant": [0, 1.0, 0, 0]}]
    assert build_table(np.array([3, 5]), rows).complete
    assert not build_table(np.array([3, 5, 8]), [*rows, None]).complete
    assert not build_table(np.array([3, 5]), [rows[0], {"quadrant": [1.0, 0]}]).complete  # another shape
    assert not build_table(np.array([3]), [{}]).complete  # a model without heads


def test_most_alike_ranks_by_cosine_skips_the_excluded_and_keeps_the_allowed():
    vectors = [[1.0, 0, 0, 0], [0.9, 0.1, 0, 0], [0, 1.0, 0, 0], [0.9, 0.1, 0, 0], [0.5, 0.5, 0, 0]]
    table = build_table(np.array([10, 11, 12, 13, 14]), [{"quadrant": v} for v in vectors])
    query = likeness_vector({"quadrant": [1.0, 0, 0, 0]})
    found = most_alike(table, query, k=5, exclude=(10,))
    assert [i for i, _ in found] == [11, 13, 14, 12]  # the tie (11, 13) by track id
    assert found[0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1)) and found[-1][1] == pytest.approx(0.0)
    assert [i for i, _ in most_alike(table, query, k=2, allowed=np.array([12, 14]))] == [14, 12]
    assert most_alike(table, query, k=3, allowed=np.array([], dtype=np.int64)) == []


@pytest.fixture(scope="module")
def headed_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained model with both categorical heads (its class probabilities differ from track to track)."""
    torch.manual_seed(3)
    config = ModelConfig(music=EncoderConfig(kind="bigru", hidden=8, layers=(16,)),
                         emotion=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), d=4,
                         taxonomies=("quadrant", "mirex_cluster"))
    return save_bundle(CrossModalModel(config).eval(), tmp_path_factory.mktemp("headed") / "b").path  # type: ignore


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory, headed_bundle: Path,
              wavs: list[bytes]) -> Iterator[tuple[TestClient, list[dict], Path]]:
    with genre_catalogue(tmp_path_factory.mktemp("alike"), headed_bundle, wavs) as found:
        yield found


def _stored(database: Path, version: str) -> tuple[catalog.VersionEmbeddings, dict[int, dict]]:
    engine = make_engine(f"sqlite:///{database}")
    with sessionmaker(engine)() as session:
        embeddings = catalog.embeddings_for_version(session, version)
        ids, classes = catalog.classes_for_version(session, version)
    engine.dispose()
    return embeddings, dict(zip(ids.tolist(), classes, strict=True))


def _like(client: TestClient, track_id: int, **extra: object) -> dict:
    response = client.post("/v1/emotion-to-music", json={"like_track": track_id, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_like_track_ranks_by_the_likeness_of_stored_class_probabilities(catalogue):
    client, tracks, database = catalogue
    asked = tracks[2]["id"]
    body = _like(client, asked, k=10)
    embeddings, classes = _stored(database, body["model_version"])
    assert all(set(c) == {"quadrant", "mirex_cluster"} for c in classes.values())  # kept at ingest
    query = likeness_vector(classes[asked])
    likeness = {i: float(likeness_vector(c) @ query) for i, c in classes.items() if i != asked}
    expected = sorted(likeness, key=lambda i: (-likeness[i], i))
    assert [r["track_id"] for r in body["results"]] == expected
    np.testing.assert_allclose([r["likeness"] for r in body["results"]], [likeness[i] for i in expected], atol=1e-4)
    by_score = [r["track_id"] for r in sorted(body["results"], key=lambda r: -r["score"])]
    assert by_score != expected  # this catalogue tells the two rankings apart, so the order above is the likeness's
    row = {int(t): n for n, t in enumerate(embeddings.track_ids)}
    own = type(embeddings.gaussians)(*(part[row[asked] : row[asked] + 1] for part in embeddings.gaussians))
    parts = composite_scores(own, embeddings.gaussians, lam=body["lam"])
    for result in body["results"]:  # the score parts stay the embeddings'
        assert result["score"] == pytest.approx(parts.score[0, row[result["track_id"]]], abs=1e-5)
        assert result["corr"] == pytest.approx(parts.corr[0, row[result["track_id"]]], abs=1e-5)


def test_likeness_answers_keep_filters_and_k_and_spans_keep_the_embedding(catalogue):
    client, tracks, _ = catalogue
    jazz = [t["id"] for t in tracks if t["genre"] == "jazz"]
    body = _like(client, jazz[0], filters={"genre": "jazz"})
    assert sorted(r["track_id"] for r in body["results"]) == sorted(jazz[1:])
    assert all(r["likeness"] is not None for r in body["results"])
    assert [r["track_id"] for r in _like(client, jazz[0], k=2)["results"]] == [
        r["track_id"] for r in _like(client, jazz[0], k=10)["results"]][:2]
    spans = _like(client, jazz[0], span=True)["results"]
    assert spans and all(r["likeness"] is None and r["start_s"] is not None for r in spans)
    nothing = _like(client, jazz[0], filters={"genre": "polka"})
    assert nothing["results"] == [] and nothing["reason"] == "no track in the catalogue passes the filters"


def test_an_upload_of_a_catalogue_track_finds_what_like_track_finds(catalogue, wavs: list[bytes]):
    client, tracks, _ = catalogue
    upload = client.post("/v1/music-to-emotion?k=2&tracks=10", files={"file": ("ref.wav", wavs[4])})
    assert upload.status_code == 200, upload.text
    found, liked = upload.json()["tracks"], _like(client, tracks[4]["id"], k=10)["results"]
    assert [r["track_id"] for r in found] == [r["track_id"] for r in liked]
    np.testing.assert_allclose([r["likeness"] for r in found], [r["likeness"] for r in liked], atol=2e-4)
    stored = client.get(f"/v1/tracks/{tracks[4]['id']}").json()["classes"]  # what the track's page shows
    assert stored == upload.json()["classes"] and set(stored["quadrant"]) == {"Q1", "Q2", "Q3", "Q4"}
    assert client.get("/v1/tracks").json()["items"][0]["classes"] is None  # lists leave them out


def test_an_embedding_stored_before_classes_were_kept_ranks_by_its_embedding_until_a_reindex(
        tmp_path: Path, headed_bundle: Path, wavs: list[bytes]):
    with service(tmp_path, headed_bundle) as client:
        ids = [client.post("/v1/admin/tracks", headers=AUTH, files={"file": (f"t{k}.wav", wavs[k])},
                           data={"title": f"T{k}"}).json()["track"]["id"] for k in range(4)]
        reindex(client)
        engine = make_engine(f"sqlite:///{tmp_path / 'catalogue.db'}")
        with sessionmaker(engine)() as session:  # as the migration leaves an older row
            session.execute(update(TrackEmbedding).where(TrackEmbedding.track_id == ids[0]).values(classes=None))
            session.commit()
        older = _like(client, ids[0])
        assert older["results"] and all(r["likeness"] is None for r in older["results"])
        scores = [r["score"] for r in older["results"]]
        assert scores == sorted(scores, reverse=True)
        reindex(client)  # embeds the track again, class probabilities and all
        with sessionmaker(engine)() as session:
            assert catalog.embedding_for(session, ids[0], older["model_version"]).classes is not None
        engine.dispose()
        assert all(r["likeness"] is not None for r in _like(client, ids[0])["results"])


@pytest.mark.parametrize("backend", ["postgresql", "milvus"])
def test_likeness_answers_alike_on_postgresql_and_on_the_milvus_index(tmp_path: Path, headed_bundle: Path,
                                                                      wavs: list[bytes], catalogue, backend: str):
    """The likeness table comes from the catalogue, whatever database holds it and whatever index serves: the same
    tracks in the same order of addition answer as the SQLite catalogue above does."""
    reference, tracks, _ = catalogue
    expected = [r["track_id"] - tracks[0]["id"] for r in _like(reference, tracks[1]["id"])["results"]]
    milvus = backend == "milvus"
    with service(tmp_path, headed_bundle, "sqlite" if milvus else backend,
                 **({"index_kind": "milvus"} if milvus else {})) as client:
        ids = [client.post("/v1/admin/tracks", headers=AUTH, files={"file": (f"t{k}.wav", wav)},
                           data={"title": f"Track {k}"}).json()["track"]["id"] for k, wav in enumerate(wavs)]
        reindex(client)
        found = _like(client, ids[1])["results"]
    assert [r["track_id"] - ids[0] for r in found] == expected and all(r["likeness"] is not None for r in found)
