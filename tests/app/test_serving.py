"""How a serving process runs its work: quick queries on the query thread, longer ones in the thread pool, and the
garbage collector's view frozen once a serving process has started."""

import gc
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from app.main import create_app
from app.routers import emotion as emotion_router
from app.routers.schemas import EmotionQuery
from models.errors import QueryError
from tests.app.conftest import add, make_settings, record_threads, reindex


def test_a_point_is_answered_on_the_query_thread_and_a_curve_in_the_thread_pool(client: TestClient, monkeypatch):
    threads = record_threads(monkeypatch, emotion_router, "_emotion_to_music")
    batches = record_threads(monkeypatch, emotion_router, "_answer_points")
    curve = [{"t": t, "valence": 0.1 * t, "arousal": 0.2} for t in range(6)]
    filters = {"tempo_min": 60}
    for body in ({"point": {"valence": 0.3, "arousal": 0.1}}, {"emotion": "sad"},
                 {"point": {"valence": 0.3, "arousal": 0.1}, "filters": filters}, {"curve": curve}):
        assert client.post("/v1/emotion-to-music", json=body).status_code == 200
    assert [name.startswith("query") for name in batches] == [True, True], batches
    assert [name.startswith("query") for name in threads] == [True, False], threads


def test_a_serving_app_freezes_what_it_loaded_and_a_test_app_does_not(tmp_path, bundle_dir):
    gc.unfreeze()
    try:
        with TestClient(create_app(make_settings(tmp_path / "plain", bundle_dir))):
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(make_settings(tmp_path / "serving", bundle_dir), freeze_gc=True)):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_point_queries_answered_in_one_batch_equal_their_answers_one_at_a_time(client: TestClient, wavs):
    for k, wav in enumerate(wavs):
        add(client, wav, f"track {k}")
    assert reindex(client)["state"] == "succeeded"
    services = client.app.state.services  # type: ignore[attr-defined]
    bodies = [{"point": {"valence": 0.3, "arousal": 0.1}}, {"emotion": "sad", "k": 3},
              {"point": {"valence": -0.8, "arousal": 0.9}, "lam": 0.2, "k": 4}, {"emotion": "no-such-feeling"},
              {"point": {"valence": 0.3, "arousal": 0.1}, "lam": 1.0, "k": 6}]
    batch = emotion_router._answer_points([emotion_router.PointRequest(EmotionQuery(**b), services)
                                           for b in bodies])
    assert isinstance(batch[3], QueryError) and "no-such-feeling" in str(batch[3])
    for body, answer in zip(bodies, batch, strict=True):
        if "no-such-feeling" in str(body):
            continue
        alone = client.post("/v1/emotion-to-music", json=body).json()
        assert not isinstance(answer, Exception)
        got = answer.model_dump(mode="json")
        assert [r["track_id"] for r in got["results"]] == [r["track_id"] for r in alone["results"]]
        assert len(got["results"]) == min(body.get("k", 10), len(wavs))
        for mine, theirs in zip(got["results"], alone["results"], strict=True):
            assert abs(mine["score"] - theirs["score"]) < 1e-6
        assert {k: got[k] for k in ("query", "lam", "model_version", "index_generation")} == \
               {k: alone[k] for k in ("query", "lam", "model_version", "index_generation")}


def test_concurrent_point_queries_get_the_answers_they_get_alone(client: TestClient, wavs, monkeypatch):
    for k, wav in enumerate(wavs):
        add(client, wav, f"track {k}")
    assert reindex(client)["state"] == "succeeded"
    bodies = [{"point": {"valence": v, "arousal": -v}, "k": 3} for v in (-0.9, -0.3, 0.2, 0.7)] + \
             [{"emotion": "happy", "k": 2}, {"emotion": "not an emotion"}]
    alone = [client.post("/v1/emotion-to-music", json=b) for b in bodies]
    sizes: list[int] = []
    answer = emotion_router._answer_points
    monkeypatch.setattr(emotion_router, "_answer_points", lambda requests: sizes.append(len(requests)) or
                        answer(requests))
    with ThreadPoolExecutor(len(bodies)) as pool:
        together = list(pool.map(lambda b: client.post("/v1/emotion-to-music", json=b), bodies * 5))
    assert sum(sizes) == len(together), sizes
    for response, expected in zip(together, alone * 5, strict=True):
        assert response.status_code == expected.status_code
        if expected.status_code == 200:
            assert [r["track_id"] for r in response.json()["results"]] == \
                   [r["track_id"] for r in expected.json()["results"]]
        else:
            assert "not an emotion" in response.json()["detail"]
