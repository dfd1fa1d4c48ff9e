"""The main path on SQLite and PostgreSQL: add tracks, reindex, query both ways, delete."""

from fastapi.testclient import TestClient

from tests.app.conftest import AUTH, add, reindex


def test_add_reindex_query_and_delete(any_db_client: TestClient, wavs: list[bytes]):
    client = any_db_client
    assert client.get("/readyz").json()["index_size"] == 0
    ids = [add(client, wav, f"track {i}")["track"]["id"] for i, wav in enumerate(wavs)]
    again = add(client, wavs[0], "same audio, other title")
    assert again["created"] is False and again["track"]["id"] == ids[0]
    job = reindex(client)
    assert job["state"] == "succeeded" and job["result"]["size"] == 6 and job["progress"] == 1.0

    body = client.post("/v1/emotion-to-music", json={"point": {"valence": 0.5, "arousal": -0.2}, "k": 4}).json()
    assert len(body["results"]) == 4 and body["query"] == {"valence": 0.5, "arousal": -0.2}
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert {r["track_id"] for r in body["results"]} <= set(ids)
    first = body["results"][0]
    lam = body["lam"]
    assert abs(first["score"] - (lam * first["corr"] + (1 - lam) * first["neg_kl"] / 4)) < 1e-9

    curve = [{"t": t, "valence": -0.5 + 0.1 * t, "arousal": 0.3} for t in range(10)]
    assert len(client.post("/v1/emotion-to-music", json={"curve": curve, "k": 6}).json()["results"]) == 6
    assert client.post("/v1/emotion-to-music", json={"emotion": "tender", "k": 2}).status_code == 200

    page = client.get("/v1/tracks", params={"limit": 4}).json()
    assert page["total"] == 6 and len(page["items"]) == 4 and page["items"][0]["valence"] is not None
    track = client.get(f"/v1/tracks/{ids[2]}").json()
    assert track["title"] == "track 2" and len(track["curve"]) >= 1
    audio = client.get(f"/v1/tracks/{ids[2]}/audio")
    assert audio.status_code == 200 and audio.content == wavs[2]

    assert client.delete(f"/v1/admin/tracks/{ids[1]}", headers=AUTH).status_code == 204
    assert client.get(f"/v1/tracks/{ids[1]}").status_code == 404
    remaining = client.post("/v1/emotion-to-music", json={"point": {"valence": 0, "arousal": 0}, "k": 10}).json()
    assert ids[1] not in {r["track_id"] for r in remaining["results"]} and len(remaining["results"]) == 5
    assert reindex(client)["result"]["size"] == 5
