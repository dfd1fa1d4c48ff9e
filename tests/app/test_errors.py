"""A user's mistake gets a clear 4xx naming the problem, never a 500."""

import io

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import make_settings


def _wav(y: np.ndarray, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, 16000, format="WAV", subtype=subtype)
    return buffer.getvalue()


BAD_AUDIO = {
    "empty": (b"", 422, "empty"),
    "random bytes": (np.random.default_rng(0).bytes(4000), 415, "cannot decode"),
    "truncated": (None, 415, "cannot decode"),
    "nan samples": (_wav(np.full(32000, np.nan, dtype=np.float32), "FLOAT"), 422, "NaN"),
    "too short": (_wav(np.zeros(4000)), 422, "at least"),
}


@pytest.mark.parametrize("case", sorted(BAD_AUDIO))
def test_bad_audio(client: TestClient, wavs: list[bytes], case: str):
    data, status, message = BAD_AUDIO[case]
    if data is None:
        data = wavs[0][:30]
    response = client.post("/v1/music-to-emotion", files={"file": ("clip.wav", data, "audio/wav")})
    assert response.status_code == status, response.text
    assert response.json()["error"] and message in response.json()["detail"]


def test_uploads_over_the_limit_get_413(tmp_path, bundle_dir, wavs):
    settings = make_settings(tmp_path, bundle_dir, max_upload_mb=0.05)
    with TestClient(create_app(settings)) as small:
        response = small.post("/v1/music-to-emotion", files={"file": ("big.wav", wavs[0], "audio/wav")})
        assert response.status_code == 413 and "MOODSPACE_MAX_UPLOAD_MB" in response.json()["detail"]
        assert small.get("/healthz").status_code == 200


def test_audio_over_the_duration_limit_gets_413(tmp_path, bundle_dir, wavs):
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, max_audio_seconds=2))) as short:
        response = short.post("/v1/music-to-emotion", files={"file": ("long.wav", wavs[0], "audio/wav")})
        assert response.status_code == 413 and "MOODSPACE_MAX_AUDIO_SECONDS" in response.json()["detail"]


BAD_QUERIES = {
    "nothing": ({}, "exactly one"),
    "two kinds": ({"point": {"valence": 0, "arousal": 0}, "emotion": "sad"}, "exactly one"),
    "empty curve": ({"curve": []}, "empty"),
    "valence out of range": ({"point": {"valence": 1.5, "arousal": 0}}, "less than or equal to 1"),
    "curve out of range": ({"curve": [{"t": 0, "valence": 0, "arousal": -3}]}, "greater than or equal to -1"),
    "negative time": ({"curve": [{"t": -1, "valence": 0, "arousal": 0}]}, "greater than or equal to 0"),
    "time goes back": ({"curve": [{"t": 2, "valence": 0, "arousal": 0}, {"t": 1, "valence": 0, "arousal": 0}]},
                       "non-decreasing"),
    "unknown emotion": ({"emotion": "hungry"}, "unknown emotion 'hungry'"),
    "k zero": ({"emotion": "sad", "k": 0}, "greater than or equal to 1"),
    "lam above one": ({"emotion": "sad", "lam": 2}, "less than or equal to 1"),
    "misspelt emotion": ({"emotion": "hapy"}, "unknown emotion 'hapy' (did you mean 'happy'?)"),
    "extra field": ({"emotion": "sad", "colour": "blue"},
                    "unknown field 'colour'; this object takes curve, point, emotion, like_track, k, lam, filters"),
    "a filter at the top": ({"emotion": "sad", "tempo": 120},
                            "unknown field 'tempo' (did you mean filters.tempo_min or filters.tempo_max?)"),
    "a range's name": ({"emotion": "sad", "filters": {"tempo": 120}}, "did you mean tempo_min or tempo_max?"),
    "a misspelt filter": ({"emotion": "sad", "filters": {"artist": "Mira"}}, "did you mean artists?"),
    "extra in a curve point": ({"curve": [{"t": 0, "valence": 0, "arousal": 0, "x": 1}]},
                               "unknown field 'x'; this object takes t, valence, arousal"),
}


@pytest.mark.parametrize("case", sorted(BAD_QUERIES))
def test_bad_emotion_queries_get_422(client: TestClient, case: str):
    body, message = BAD_QUERIES[case]
    response = client.post("/v1/emotion-to-music", json=body)
    assert response.status_code == 422, response.text
    assert message in str(response.json()["detail"])


def test_unknown_fields_of_a_story_query_are_named_with_what_was_meant(client: TestClient):
    response = client.post("/v1/text-to-music", json={"text": "A calm sea.", "moode": "arc"})
    assert response.status_code == 422
    assert response.json()["detail"] == [{"loc": ["body", "moode"], "msg": (
        "unknown field 'moode' (did you mean mode?); this object takes text, k, mode, bridge, lam, filters, span, "
        "seconds_per_sentence")}]


def test_a_misspelt_form_field_is_refused_by_name_not_dropped(client: TestClient, wavs: list[bytes]):
    upload = {"file": ("a.wav", wavs[0], "audio/wav")}
    response = client.post("/v1/music-to-emotion", files=upload, data={"lyric": "rain on the window"})
    assert response.status_code == 422
    assert response.json()["detail"] == [{"loc": ["body", "lyric"], "msg": (
        "unknown field 'lyric' (did you mean lyrics?); this object takes file, title, artist, lyrics")}]
    assert client.post("/v1/music-to-emotion", files=upload, data={"lyrics": "rain on the window"}).status_code == 200


def test_nan_in_json_is_refused(client: TestClient):
    response = client.post("/v1/emotion-to-music", content='{"point": {"valence": NaN, "arousal": 0}}',
                           headers={"content-type": "application/json"})
    assert response.status_code == 422 and "valence" in str(response.json()["detail"])


def test_curve_and_k_limits_give_413(tmp_path, bundle_dir):
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, max_curve_points=10, max_k=5))) as limited:
        curve = [{"t": t, "valence": 0, "arousal": 0} for t in range(11)]
        response = limited.post("/v1/emotion-to-music", json={"curve": curve, "k": 3})
        assert response.status_code == 413 and "MOODSPACE_MAX_CURVE_POINTS" in response.json()["detail"]
        response = limited.post("/v1/emotion-to-music", json={"emotion": "sad", "k": 6})
        assert response.status_code == 413 and "MOODSPACE_MAX_K" in response.json()["detail"]


def test_unknown_ids_get_404(client: TestClient):
    for path in ("/v1/tracks/999", "/v1/tracks/999/audio"):
        response = client.get(path)
        assert response.status_code == 404 and response.json() == {"error": "not_found",
                                                                    "detail": "no track with id 999"}
    assert client.get("/v1/tracks/abc").status_code == 422
    assert client.get("/v1/nowhere").status_code == 404


WRONG_ROUTES = {
    ("POST", "/emotion-to-music"): (404, "POST /emotion-to-music (did you mean POST /v1/emotion-to-music?)"),
    ("GET", "/v1/track/3"): (404, "no endpoint GET /v1/track/3 (did you mean GET /v1/tracks/{track_id}?)"),
    ("PUT", "/v1/tracks/3/lyrics"): (404, "(did you mean PUT /v1/admin/tracks/{track_id}/lyrics?)"),
    ("GET", "/v1/emotion"): (404, "(did you mean GET /v1/emotions?)"),
    ("GET", "/nowhere/at/all"): (404, "no endpoint GET /nowhere/at/all; the endpoints are listed at /docs"),
    ("GET", "/v1/emotion-to-music"): (405, "/v1/emotion-to-music does not take GET; it takes POST"),
    ("DELETE", "/v1/tracks/3"): (405, "it takes GET (did you mean DELETE /v1/admin/tracks/{track_id}?)"),
}


@pytest.mark.parametrize("route", sorted(WRONG_ROUTES))
def test_a_wrong_path_or_method_names_the_endpoint_meant(client: TestClient, route: tuple[str, str]):
    status, message = WRONG_ROUTES[route]
    response = client.request(*route)
    assert response.status_code == status and response.json()["error"] == "http_error"
    assert message in response.json()["detail"]


def test_a_missing_static_file_keeps_its_own_404(client: TestClient):
    response = client.get("/static/no-such-file.js")
    assert response.status_code == 404 and response.json()["detail"] == "Not Found"


def test_malformed_json_and_wrong_content_type(client: TestClient):
    response = client.post("/v1/emotion-to-music", content="{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"] == "invalid_request"
    response = client.post("/v1/music-to-emotion", data={"file": "not a file"})
    assert response.status_code == 422


def test_undecodable_audio_is_described_in_the_users_terms(client: TestClient):
    junk = ("notes.wav", b"not audio at all" * 100, "audio/wav")
    response = client.post("/v1/music-to-emotion", files={"file": junk})
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert "not a WAV, FLAC, OGG, MP3 or AIFF file" in detail and "Error" not in detail  # no decoder class names


def test_lam_nan_is_refused_as_not_a_number(client: TestClient, wavs: list[bytes]):
    response = client.post("/v1/music-to-emotion?lam=nan", files={"file": ("a.wav", wavs[0], "audio/wav")})
    assert response.status_code == 422 and "finite number" in str(response.json()["detail"])


def test_a_chunked_upload_over_the_limit_gets_413_not_a_parse_error(tmp_path, bundle_dir, wavs: list[bytes]):
    settings = make_settings(tmp_path, bundle_dir, max_upload_mb=0.05)
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n" + wavs[0] * 3 + b"\r\n--b--\r\n")

    def chunks():
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    with TestClient(create_app(settings)) as small:
        response = small.post("/v1/music-to-emotion", content=chunks(),
                              headers={"content-type": "multipart/form-data; boundary=b"})
        assert response.status_code == 413 and "MOODSPACE_MAX_UPLOAD_MB" in response.json()["detail"]
        fine = small.post("/v1/music-to-emotion", content=iter([body[:20000]]),
                          headers={"content-type": "multipart/form-data; boundary=b"})
        assert fine.status_code != 413
