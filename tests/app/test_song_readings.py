"""POST /v1/music-to-emotion with the song's title, artist and lyrics: each modality's reading and the fused one."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import warn_of_other_text_encoders
from models.bundle import load_bundle
from models.inference import Embedder
from models.songtext import SongTextModel, TextModality
from models.text import MAX_LYRICS_CHARS, shipped_version
from tests.app.conftest import AUTH, add, make_settings

LYRICS = "Morning light across the kitchen floor\nwe laugh and dance like never before"


def _post(client: TestClient, wav: bytes, **fields: str):
    return client.post("/v1/music-to-emotion", files={"file": ("clip.wav", wav, "audio/wav")}, data=fields)


def _modality(seed: int) -> TextModality:
    rng = np.random.default_rng(seed)
    return TextModality(rng.normal(size=(385, 2)), np.zeros(384), np.full(384, 0.05), np.zeros(2), np.full(2, 5.0),
                        np.array([0.3, 0.3]), np.zeros(2), np.array([0.25, -0.25]))


@pytest.fixture
def fitted_client(tmp_path, bundle_dir):
    """The service with readings whose fusion was fitted for its own music model."""
    with TestClient(create_app(make_settings(tmp_path, bundle_dir))) as probe:
        version = probe.app.state.services.model.embedder.version
    SongTextModel(_modality(0), _modality(1), "song-text-test", version, shipped_version()).save(
        tmp_path / "song_text.npz")
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, song_text=tmp_path / "song_text.npz"))) as client:
        yield client


def test_without_text_the_fused_reading_is_the_audio_reading(fitted_client: TestClient, wavs: list[bytes]):
    body = _post(fitted_client, wavs[0]).json()
    readings = body["readings"]
    assert readings["lyrics"] is None and readings["context"] is None
    assert readings["audio"] == readings["fused"] == {"valence": pytest.approx(body["valence"], abs=1e-4),
                                                      "arousal": pytest.approx(body["arousal"], abs=1e-4)}


def test_lyrics_and_title_each_get_a_reading_and_move_the_fused_one(fitted_client: TestClient, wavs: list[bytes]):
    plain = _post(fitted_client, wavs[0]).json()
    body = _post(fitted_client, wavs[0], title="Kitchen Dance", artist="The Made-Up Band", lyrics=LYRICS).json()
    readings = body["readings"]
    assert readings["lyrics"] is not None and readings["context"] is not None
    assert readings["audio"] == plain["readings"]["audio"]
    assert readings["fused"] != readings["audio"]
    other = _post(fitted_client, wavs[0], lyrics="Cold rain on the grave, the last goodbye").json()["readings"]
    assert other["lyrics"] != readings["lyrics"] and other["context"] is None
    assert readings["model_version"] == "song-text-test" and body["model_version"] != "song-text-test"


def test_readings_from_another_music_model_are_given_but_not_fused(client: TestClient, wavs: list[bytes]):
    """The shipped readings were fitted with the default music model, not the tests' tiny one."""
    readings = _post(client, wavs[0], title="Kitchen Dance", lyrics=LYRICS).json()["readings"]
    assert readings["lyrics"] is not None and readings["context"] is not None
    assert readings["fused"] == readings["audio"]


@pytest.mark.parametrize(("fields", "named"), [
    ({"lyrics": "la\x00la"}, "lyrics"), ({"title": "bad\x07title"}, "title"), ({"artist": "\x1b[31m"}, "artist"),
    ({"lyrics": "x" * (MAX_LYRICS_CHARS + 1)}, "lyrics"),
])
def test_bad_song_text_is_a_422_naming_the_field(client: TestClient, wavs: list[bytes], fields, named):
    response = _post(client, wavs[0], **fields)
    assert response.status_code == 422 and named in response.text


def test_emoji_titles_and_lyrics_in_other_scripts_are_read(client: TestClient, wavs: list[bytes]):
    response = _post(client, wavs[0], title="🌞🌊", lyrics="夏の海で踊ろう。星が輝く！")
    assert response.status_code == 200 and response.json()["readings"]["context"] is not None


def test_without_a_song_text_model_there_are_no_readings(tmp_path, bundle_dir, wavs: list[bytes]):
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, song_text=None))) as client:
        response = _post(client, wavs[0], title="Kitchen Dance", lyrics=LYRICS)
    assert response.status_code == 200 and response.json()["readings"] is None


def test_a_tracks_readings_follow_its_lyrics(fitted_client: TestClient, wavs: list[bytes]):
    track_id = add(fitted_client, wavs[3], "Kitchen Dance")["track"]["id"]
    before = fitted_client.get(f"/v1/tracks/{track_id}").json()["readings"]
    assert before["lyrics"] is None and before["context"] is not None
    put = fitted_client.put(f"/v1/admin/tracks/{track_id}/lyrics", headers=AUTH, json={"lyrics": LYRICS})
    assert put.json()["readings"]["lyrics"] is not None
    after = fitted_client.get(f"/v1/tracks/{track_id}").json()["readings"]
    assert after["lyrics"] == put.json()["readings"]["lyrics"] and after["fused"] != before["fused"]
    assert after["audio"] == before["audio"]
    assert fitted_client.get("/v1/tracks").json()["items"][0]["readings"] is None  # lists stay light


def test_text_readings_fitted_on_another_sentence_encoder_are_named_at_start(story_bundle_dir, caplog):
    model = load_bundle(story_bundle_dir).model
    other = "all-MiniLM-L6-v2+tuned-000000000000"
    song_text = SongTextModel(_modality(0), _modality(1), "song-text-test", "music", other)
    with caplog.at_level("WARNING", logger="app.services"):
        warn_of_other_text_encoders(Embedder(model, text_encoder=shipped_version()),
                                    SongTextModel(_modality(0), _modality(1), "t", "music", shipped_version()),
                                    running=shipped_version())
        assert not caplog.records
        warn_of_other_text_encoders(Embedder(model, text_encoder=other), song_text, running=shipped_version())
    named = [r.getMessage() for r in caplog.records]
    assert len(named) == 2 and all(other in message for message in named)
    assert "text heads" in named[0] and "lyrics and title/artist" in named[1]
