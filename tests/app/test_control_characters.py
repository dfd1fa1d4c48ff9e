"""Text a person cannot have typed (NUL and other control characters) in a search or a filter: a 422 naming the
field on both databases (PostgreSQL refuses NUL in a text parameter; SQLite cut the pattern short there)."""

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import AUTH


@pytest.mark.parametrize("q", ["\x00", "rain\x00", "\x07"])
def test_a_track_search_with_control_characters_is_a_422_naming_q(any_db_client: TestClient, q: str):
    response = any_db_client.get("/v1/tracks", params={"q": q})
    assert response.status_code == 422, response.text
    assert "q" in response.text and "control characters" in response.text


@pytest.mark.parametrize(("field", "value"), [("genre", "\x00"), ("artists", ["Mira\x00"]),
                                              ("exclude_artists", ["\x1b[2J"]), ("tags", ["calm", "\x00"])])
def test_a_filter_with_control_characters_is_a_422_naming_it(any_db_client: TestClient, field: str, value: object):
    for path, body in (("/v1/emotion-to-music", {"emotion": "calm"}), ("/v1/text-to-music", {"text": "A calm sea."})):
        response = any_db_client.post(path, json={**body, "filters": {field: value}})
        assert response.status_code == 422, response.text
        assert field in response.text and "control characters" in response.text


def test_a_job_id_with_control_characters_is_a_422_naming_it(any_db_client: TestClient):
    response = any_db_client.get("/v1/admin/jobs/%00", headers=AUTH)
    assert response.status_code == 422 and "job_id" in response.text and "control characters" in response.text
    assert any_db_client.get("/v1/admin/jobs/no-such-job", headers=AUTH).status_code == 404


@pytest.mark.parametrize("field", ["title", "artist", "album", "genre", "lyrics"])
def test_an_upload_whose_field_has_a_nul_is_a_422_naming_it_and_adds_nothing(any_db_client: TestClient,
                                                                              wavs: list[bytes], field: str):
    response = any_db_client.post("/v1/admin/tracks", headers=AUTH, files={"file": ("a.wav", wavs[0], "audio/wav")},
                                  data={"title": "Rain", "artist": "Mira", field: "Ra\x00in"})
    assert response.status_code == 422 and field in response.json()["detail"], response.text
    assert any_db_client.get("/v1/tracks").json()["total"] == 0
