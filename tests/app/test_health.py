from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import make_settings


def test_health_ready_and_metrics(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["model_version"].startswith("moodspace-")
    answer = client.post("/v1/emotion-to-music", json={"emotion": "sad"})
    assert answer.headers["server-timing"].startswith("app;dur=") and float(answer.headers["server-timing"][8:]) > 0
    client.post("/v1/emotion-to-music", json={"emotion": "no such feeling"})
    text = client.get("/metrics").text
    assert 'moodspace_requests_total{method="POST",route="/v1/emotion-to-music",status="200"} 1.0' in text
    assert 'moodspace_requests_total{method="POST",route="/v1/emotion-to-music",status="422"} 1.0' in text
    assert "moodspace_request_seconds_bucket" in text and "moodspace_index_size 0.0" in text
    assert f'moodspace_model_info{{version="{ready["model_version"]}"}} 1.0' in text


def test_without_a_model_the_service_is_alive_but_not_ready(tmp_path, bundle_dir):
    settings = make_settings(tmp_path, bundle_dir, bundle=str(tmp_path / "missing"))
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503 and "bundle folder not found" in response.json()["detail"]
        query = client.post("/v1/emotion-to-music", json={"emotion": "sad"})
        assert query.status_code == 503 and query.json()["error"] == "not_ready"


def test_openapi_declares_va_bounds(client: TestClient):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    valence = schema["VAPoint"]["properties"]["valence"]
    assert valence["minimum"] == -1.0 and valence["maximum"] == 1.0
    assert client.get("/docs").status_code == 200
