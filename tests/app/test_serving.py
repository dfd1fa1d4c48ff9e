"""How a serving process runs its work: quick queries on the query thread, longer ones in the thread pool, and the
garbage collector's view frozen once a serving process has started."""

import gc

from fastapi.testclient import TestClient

from app.main import create_app
from app.routers import emotion as emotion_router
from tests.app.conftest import make_settings, record_threads


def test_a_point_is_answered_on_the_query_thread_and_a_curve_in_the_thread_pool(client: TestClient, monkeypatch):
    threads = record_threads(monkeypatch, emotion_router, "_emotion_to_music")
    curve = [{"t": t, "valence": 0.1 * t, "arousal": 0.2} for t in range(6)]
    for body in ({"point": {"valence": 0.3, "arousal": 0.1}}, {"emotion": "sad"}, {"curve": curve}):
        assert client.post("/v1/emotion-to-music", json=body).status_code == 200
    assert [name.startswith("query") for name in threads] == [True, True, False], threads


def test_a_serving_app_freezes_what_it_loaded_and_a_test_app_does_not(tmp_path, bundle_dir):
    gc.unfreeze()
    try:
        with TestClient(create_app(make_settings(tmp_path / "plain", bundle_dir))):
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(make_settings(tmp_path / "serving", bundle_dir), freeze_gc=True)):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
