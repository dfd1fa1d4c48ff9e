"""The Milvus backend (milvus-lite, embedded): the same answers as the FAISS exact index on the same vectors, a
reindex that switches an alias atomically, a serving process that follows the alias, and a Milvus that cannot
answer is a 503 naming it."""

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.index import build_snapshot
from app.main import create_app
from app.milvus import MilvusDownError, MilvusStore
from models.scoring import Gaussians
from tests.app.conftest import add, make_settings, reindex


def _gaussians(n: int, d: int = 8, seed: int = 0) -> Gaussians:
    rng = np.random.default_rng(seed)
    return Gaussians(rng.normal(size=(n, d)), rng.normal(size=(n, d)), rng.uniform(-3, 2, size=(n, d)))


def _query(seed: int, d: int = 8) -> Gaussians:
    return Gaussians(*(p[:1] for p in _gaussians(1, d, seed=seed)))


@pytest.fixture
def store(tmp_path: Path):
    milvus = MilvusStore(str(tmp_path / "milvus.db"), alias="parity")
    yield milvus
    milvus.close()


def test_milvus_ranks_as_the_faiss_exact_index_on_the_same_vectors(store: MilvusStore):
    items, ids = _gaussians(2000), np.arange(2000) * 3 + 7  # track ids are not rows
    faiss_flat = build_snapshot(model_version="v", track_ids=ids, gaussians=items)
    milvus = store.build(model_version="v", track_ids=ids, gaussians=items)
    assert milvus.size == 2000
    allowed_ids = ids[::5]
    for lam in (0.5, 0.9, 0.98):
        for seed in range(4):
            query = _query(100 + seed)
            expected = faiss_flat.search(query, lam=lam, k=10, rescore_head=64)
            got = milvus.search(query, lam=lam, k=10, rescore_head=64)
            assert [h.track_id for h in got] == [h.track_id for h in expected]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in expected], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose([h.neg_kl for h in got], [h.neg_kl for h in expected], rtol=1e-9)
            only = milvus.search(query, lam=lam, k=10, rescore_head=64, allowed=milvus.rows_of(allowed_ids))
            faiss_only = faiss_flat.search(query, lam=lam, k=10, rescore_head=64,
                                           allowed=faiss_flat.rows_of(allowed_ids))
            assert [h.track_id for h in only] == [h.track_id for h in faiss_only]
            assert set(h.track_id for h in only) <= set(allowed_ids.tolist())
    queries = Gaussians(*(np.vstack(parts) for parts in zip(*(_query(s) for s in range(3)), strict=True)))
    many = milvus.search_many(queries, lams=[0.5, 0.9, 0.98], ks=[5, 10, 20], rescore_head=64)
    alone = [faiss_flat.search(_query(s), lam=lam, k=k, rescore_head=64)
             for s, lam, k in zip(range(3), [0.5, 0.9, 0.98], [5, 10, 20], strict=True)]
    assert [[h.track_id for h in hits] for hits in many] == [[h.track_id for h in hits] for hits in alone]
    assert milvus.holds(7) and not milvus.holds(8)


def test_a_reindex_switches_the_alias_and_the_old_collection_serves_until_then(store: MilvusStore, tmp_path: Path):
    first = store.build(model_version="v", track_ids=np.arange(50), gaussians=_gaussians(50, seed=1))
    store.publish(first)
    follower = MilvusStore(str(tmp_path / "milvus.db"), alias="parity")  # another reader of the same Milvus
    assert follower.load_current("v").generation == first.generation
    assert follower.load_current("other version") is None
    second = store.build(model_version="v", track_ids=np.arange(80), gaussians=_gaussians(80, seed=2))
    assert store.current is first and store.client.describe_alias("parity")["collection_name"] == first.collection
    assert len(first.search(_query(3), lam=0.5, k=100, rescore_head=64)) == 50  # still answers while 2 is built
    store.publish(second)
    assert store.client.describe_alias("parity")["collection_name"] == second.collection
    assert first.collection not in store.client.list_collections()  # replaced: dropped
    follower._checked_at = 0.0
    follower.refresh("v")
    assert follower.current is not None and follower.current.generation == second.generation
    assert len(follower.current.search(_query(3), lam=0.5, k=100, rescore_head=64)) == 80
    follower.close()


def test_an_unpublished_build_is_dropped_by_the_next_publish(store: MilvusStore):
    abandoned = store.build(model_version="v", track_ids=np.arange(5), gaussians=_gaussians(5))
    kept = store.build(model_version="v", track_ids=np.arange(6), gaussians=_gaussians(6))
    store.publish(kept)
    assert store.client.list_collections() == [kept.collection]
    assert abandoned.collection not in store.client.list_collections()


def test_a_milvus_that_cannot_answer_is_a_503_naming_it_and_readyz_says_why(tmp_path: Path, bundle_dir: Path,
                                                                            wavs: list[bytes]):
    settings = make_settings(tmp_path, bundle_dir, index_kind="milvus")
    with TestClient(create_app(settings)) as client:
        add(client, wavs[0], "one")
        assert reindex(client)["state"] == "succeeded"
        ready = client.get("/readyz").json()
        assert ready["index_kind"] == "milvus" and ready["index_size"] == 1
        query = {"point": {"valence": 0.3, "arousal": 0.2}, "k": 5}
        found = client.post("/v1/emotion-to-music", json=query)
        assert found.status_code == 200 and [r["title"] for r in found.json()["results"]] == ["one"]
        services = client.app.state.services  # type: ignore[attr-defined]
        services.store.client.close()  # Milvus goes away under the running service
        services.store._checked_at = 0.0
        down = client.post("/v1/emotion-to-music", json=query)
        assert down.status_code == 503 and "Milvus" in down.json()["detail"]
        assert "Milvus" in client.get("/readyz").json().get("problem", "")


def test_milvus_lite_refuses_a_second_process_with_a_message_that_says_what_to_do(tmp_path: Path):
    import subprocess
    import sys

    store = MilvusStore(str(tmp_path / "held.db"))
    try:
        other = subprocess.run([sys.executable, "-c", "import sys\nfrom app.milvus import MilvusStore\n"
                                f"MilvusStore({str(tmp_path / 'held.db')!r})"], capture_output=True, text=True,
                               timeout=120)
        assert other.returncode != 0
        assert "milvus-lite serves one process at a time" in other.stderr
    finally:
        store.close()
    with pytest.raises(MilvusDownError, match="cannot connect to Milvus at http://127.0.0.1:9"):
        MilvusStore("http://127.0.0.1:9", timeout_s=2)


def test_a_command_line_ingest_publishes_a_collection_the_service_then_serves(tmp_path: Path, bundle_dir: Path):
    from typer.testing import CliRunner

    from moodspace import cli
    from training.corpus.generate import synth_corpus

    manifest = synth_corpus(n=3, seconds=2, seed=3, out=tmp_path / "clips", workers=1, progress=False)
    env = {"MOODSPACE_DATA_DIR": str(tmp_path / "data"), "MOODSPACE_BUNDLE": str(bundle_dir),
           "MOODSPACE_INDEX_KIND": "milvus", "MOODSPACE_DECODE_PROCESSES": "1"}
    ingested = CliRunner().invoke(cli.cli, ["ingest", str(manifest)], env=env)
    assert ingested.exit_code == 0, ingested.output
    published = MilvusStore(str(tmp_path / "data" / "milvus.db"))
    collections = published.client.list_collections()
    published.close()
    assert len(collections) == 2  # the tracks' and their spans'
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, index_kind="milvus"))) as client:
        ready = client.get("/readyz").json()
        assert ready["index_kind"] == "milvus" and ready["index_size"] == 3
        served = f"moodspace_{ready['generation'].replace('-', '_')}"
        assert sorted(collections) == [served, f"{served}_spans"]  # served, not rebuilt


FILTER_CASES = [
    {"genre": "JAZZ"}, {"year_min": 1995, "year_max": 2010}, {"exclude_artists": ['BAND "0"']},
    {"artists": ["Bänd 1", 'band "0"'], "genre": "rock"}, {"mode": "major"}, {"tags": ["Calm"]},
    {"tags": ["calm", "piano"], "year_max": 2020}, {"tempo_min": 1, "tempo_max": 400}, {"duration_max": 2.5},
]


def test_filters_are_milvus_expressions_with_the_databases_meaning(tmp_path: Path, bundle_dir: Path,
                                                                   wavs: list[bytes]):
    from app import catalog
    from app.ingest import ingest_audio
    from app.search import allowed_rows
    from app.songinfo import SongInfo

    settings = make_settings(tmp_path, bundle_dir, index_kind="milvus")
    genres, tags = ("jazz", "Rock", "jazz", "folk", "rock", "jazz"), (["calm"], ["Calm", "Piano"], [], ["loud"],
                                                                     ["piano"], ["calm", "piano"])
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        with services.sessions() as session:
            for k, wav in enumerate(wavs):
                info = SongInfo(title=f"Track {k}", artist=["Band \"0\"", "Bänd 1", "band 2"][k % 3],
                                genre=genres[k], year=None if k == 5 else 1990 + 5 * k)
                ingest_audio(session, services.model, data_dir=settings.data_dir, data=wav, info=info,
                             tags=tuple(tags[k]))
            session.commit()
        assert reindex(client)["state"] == "succeeded"
        snapshot = services.require_index()
        for filters in FILTER_CASES:
            body = {"point": {"valence": 0.3, "arousal": 0.2}, "k": 10, "filters": filters}
            found = client.post("/v1/emotion-to-music", json=body)
            assert found.status_code == 200, found.text
            with services.sessions() as session:
                parsed = catalog.TrackFilters(**{k: tuple(v) if isinstance(v, list) else v
                                                 for k, v in filters.items()})
                passing = set(catalog.filtered_track_ids(session, parsed).tolist())
                expression = allowed_rows(session, snapshot, parsed)
            assert isinstance(expression, str)  # Milvus evaluated the filter, not a list of ids
            everything = client.post("/v1/emotion-to-music", json={**body, "filters": None}).json()["results"]
            expected = [r["track_id"] for r in everything if r["track_id"] in passing]
            assert [r["track_id"] for r in found.json()["results"]] == expected, (filters, expression)


@pytest.mark.parametrize(("first_spans", "max_top_k"), [(64, 16_384), (1, 16_384), (1, 40)])
def test_milvus_span_search_is_the_exact_best_run_of_every_track(store: MilvusStore, monkeypatch,
                                                                  first_spans: int, max_top_k: int):
    """The same answers as scoring every run of every track, from the first limit, after the limit grows, and
    past Milvus's largest limit (every span read back)."""
    from app import milvus as milvus_module
    from app import spans as spans_module
    from models.spans import SpanTable
    from tests.app.test_spans import _brute_force, _catalogue, _pieces

    monkeypatch.setattr(milvus_module, "FIRST_SPANS", first_spans)
    monkeypatch.setattr(milvus_module, "MAX_TOP_K", max_top_k)
    monkeypatch.setattr(milvus_module, "FIRST_TRACKS", 1)
    monkeypatch.setattr(spans_module, "FIRST_TRACKS", 1)
    owners, starts, ends, gaussians = _catalogue(seed=5)
    table = SpanTable(owners, starts, ends, gaussians)
    ids = np.unique(owners)
    snapshot = store.build(model_version="v", track_ids=ids, gaussians=_gaussians(ids.size, d=4), spans=table)
    spans = snapshot.spans
    assert spans is not None and spans.size == owners.size
    for lam in (0.5, 0.9, 0.98):
        for n in (1, 3):
            pieces = _pieces(seed=10 * n, n=n)
            found = spans.search(pieces, lam=lam, k=5)
            expected = _brute_force(owners, starts, ends, Gaussians(*(p.astype(np.float32) for p in gaussians)),
                                    pieces, lam)[:5]
            assert [(h.track_id, h.start_s, h.end_s) for h in found] == [e[:3] for e in expected]
            np.testing.assert_allclose([h.score for h in found], [e[3] for e in expected], rtol=1e-9, atol=1e-9)
    passing = ids[::3]
    exclude = {int(passing[0])}
    pieces = _pieces(seed=8, n=2)
    found = spans.search(pieces, lam=0.9, k=4, allowed=spans.rows_of(passing), exclude=exclude)
    f32 = Gaussians(*(p.astype(np.float32) for p in gaussians))
    expected = _brute_force(owners, starts, ends, f32, pieces, 0.9, allowed=np.flatnonzero(np.isin(owners, passing)),
                            exclude=exclude)
    assert [h.track_id for h in found] == [e[0] for e in expected[:4]]
    assert spans.longest_s() == pytest.approx(table.longest_s())
    assert spans.longest_s(spans.rows_of(passing)) == pytest.approx(table.longest_s(table.rows_of(passing)))
    assert spans.search(pieces, lam=0.9, k=4, allowed=spans.rows_of(np.array([], dtype=np.int64))) == []


def test_a_published_generation_keeps_its_spans_and_a_reader_opens_them(store: MilvusStore, tmp_path: Path):
    from models.spans import SpanTable
    from tests.app.test_spans import _catalogue, _pieces

    owners, starts, ends, gaussians = _catalogue(seed=2, tracks=20)
    ids = np.unique(owners)
    first = store.build(model_version="v", track_ids=ids, gaussians=_gaussians(ids.size, d=4),
                        spans=SpanTable(owners, starts, ends, gaussians))
    store.publish(first)
    assert first.collection + "_spans" in store.client.list_collections()
    reader = MilvusStore(str(tmp_path / "milvus.db"), alias="parity")
    opened = reader.load_current("v")
    assert opened is not None and opened.spans is not None
    pieces = _pieces(seed=1, n=2)
    assert opened.spans.search(pieces, lam=0.9, k=3) == first.spans.search(pieces, lam=0.9, k=3)  # type: ignore
    second = store.build(model_version="v", track_ids=ids, gaussians=_gaussians(ids.size, d=4))
    store.publish(second)
    assert second.spans is None
    left = store.client.list_collections()
    assert first.collection not in left and first.collection + "_spans" not in left  # replaced: both dropped
    reader.close()


@pytest.mark.parametrize("lam", [0.5, 0.98])
def test_milvus_span_search_stays_exact_among_near_copies(store: MilvusStore, monkeypatch, lam: float):
    """Four near copies of each track: close calls at the top, where a bound that is too low stops too early."""
    from app import milvus as milvus_module
    from models.spans import SpanTable
    from tests.app.test_spans import _brute_force, _catalogue, _pieces

    monkeypatch.setattr(milvus_module, "FIRST_SPANS", 1)
    monkeypatch.setattr(milvus_module, "FIRST_TRACKS", 1)
    owners, starts, ends, gaussians = _catalogue(seed=6, tracks=20)
    rng = np.random.default_rng(0)
    copies = [Gaussians(*(part + rng.normal(scale=2e-4, size=part.shape) for part in gaussians)) for _ in range(4)]
    owners = np.concatenate([owners + 1000 * c for c in range(4)])
    starts, ends = np.tile(starts, 4), np.tile(ends, 4)
    stacked = Gaussians(*(np.vstack(p).astype(np.float32) for p in zip(*copies, strict=True)))
    ids = np.unique(owners)
    snapshot = store.build(model_version="v", track_ids=ids, gaussians=_gaussians(ids.size, d=4),
                           spans=SpanTable(owners, starts, ends, stacked))
    assert snapshot.spans is not None
    for seed in range(12):
        pieces = _pieces(seed=seed, n=1 + seed % 3)
        found = snapshot.spans.search(pieces, lam=lam, k=5)
        expected = _brute_force(owners, starts, ends, stacked, pieces, lam)[:5]
        assert [h.track_id for h in found] == [e[0] for e in expected], seed
