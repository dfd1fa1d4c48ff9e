import math

from fastapi.testclient import TestClient

from tests.app.conftest import add, reindex


def test_each_result_says_how_far_its_reading_is_from_the_query(client: TestClient, wavs: list[bytes]):
    for k, wav in enumerate(wavs):
        add(client, wav, f"track {k}")
    assert reindex(client)["state"] == "succeeded"
    body = client.post("/v1/emotion-to-music", json={"point": {"valence": 0.6, "arousal": -0.2}, "k": 6}).json()
    assert len(body["results"]) == 6
    for hit in body["results"]:
        expected = math.hypot(hit["valence"] - 0.6, hit["arousal"] + 0.2)
        assert abs(hit["va_distance"] - expected) < 1e-3
