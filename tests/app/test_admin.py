import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import AUTH, add, make_settings

ADMIN_CALLS = [("post", "/v1/admin/reindex"), ("get", "/v1/admin/jobs/x"), ("delete", "/v1/admin/tracks/1")]


@pytest.mark.parametrize(("method", "path"), ADMIN_CALLS)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
def test_admin_rejects_missing_and_wrong_tokens(client: TestClient, method: str, path: str, headers: dict):
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_admin_upload_needs_a_token_too(client: TestClient, wavs: list[bytes]):
    response = client.post("/v1/admin/tracks", files={"file": ("a.wav", wavs[0])}, data={"title": "x"})
    assert response.status_code == 401
    assert client.get("/v1/tracks").json()["total"] == 0


def test_no_token_configured_turns_admin_off(tmp_path, bundle_dir):
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, admin_token=None))) as closed:
        response = closed.post("/v1/admin/reindex", headers=AUTH)
        assert response.status_code == 403 and "MOODSPACE_ADMIN_TOKEN" in response.json()["detail"]


def test_unknown_job_and_track_ids_get_404(client: TestClient):
    assert client.get("/v1/admin/jobs/nope", headers=AUTH).status_code == 404
    assert client.delete("/v1/admin/tracks/12345", headers=AUTH).status_code == 404


def test_upload_needs_a_title_and_audio(client: TestClient, wavs: list[bytes]):
    response = client.post("/v1/admin/tracks", headers=AUTH, files={"file": ("a.wav", wavs[0])})
    assert response.status_code == 422 and "title" in str(response.json()["detail"])
    response = client.post("/v1/admin/tracks", headers=AUTH, files={"file": ("a.txt", b"hello world" * 100)},
                           data={"title": "text"})
    assert response.status_code == 415
    assert client.get("/v1/tracks").json()["total"] == 0


def test_a_misspelt_form_field_is_refused_and_adds_nothing(client: TestClient, wavs: list[bytes]):
    response = client.post("/v1/admin/tracks", headers=AUTH, files={"file": ("a.wav", wavs[0])},
                           data={"title": "Tide", "artsit": "Mira Novak"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"].startswith("unknown field 'artsit' (did you mean artist?)")
    assert client.get("/v1/tracks").json()["total"] == 0
    response = client.post("/v1/admin/tracks", data={"title": "Tide", "artsit": "Mira Novak"},
                           files={"file": ("a.wav", wavs[0])})
    assert response.status_code == 401  # the token is checked before the fields


def test_client_file_names_never_become_paths(client: TestClient, settings, wavs: list[bytes]):
    response = client.post("/v1/admin/tracks", headers=AUTH, data={"title": "t"},
                           files={"file": ("../../../etc/evil.wav", wavs[3], "audio/wav")})
    assert response.status_code == 201
    stored = [p for p in (settings.data_dir / "audio").rglob("*") if p.is_file()]
    assert len(stored) == 1 and "evil" not in stored[0].name and stored[0].suffix == ".wav"
    assert not (settings.data_dir.parent / "etc").exists()


def test_the_same_audio_as_flac_and_as_wav_is_one_track(client: TestClient, wavs: list[bytes]):
    import io

    import soundfile as sf

    y, sr = sf.read(io.BytesIO(wavs[4]), dtype="int16")
    flac, other = io.BytesIO(), io.BytesIO()
    sf.write(flac, y, sr, format="FLAC")
    sf.write(other, y[::-1].copy(), sr, format="FLAC")  # other audio, same container
    first = add(client, wavs[4], "as wav")
    second = client.post("/v1/admin/tracks", headers=AUTH, files={"file": ("x.flac", flac.getvalue())},
                         data={"title": "as flac"})
    assert second.status_code == 201 and second.json()["created"] is False
    assert second.json()["track"]["id"] == first["track"]["id"]
    third = client.post("/v1/admin/tracks", headers=AUTH, files={"file": ("y.flac", other.getvalue())},
                        data={"title": "reversed"})
    assert third.status_code == 201 and third.json()["created"] is True
    assert client.get("/v1/tracks").json()["total"] == 2
