import io

import numpy as np
import soundfile as sf
from fastapi.testclient import TestClient


def test_music_to_emotion_gives_va_curve_and_ranked_emotions(client: TestClient, wavs: list[bytes]):
    response = client.post("/v1/music-to-emotion", files={"file": ("clip.wav", wavs[0], "audio/wav")},
                           params={"k": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert -1 <= body["valence"] <= 1 and -1 <= body["arousal"] <= 1 and body["valence_std"] >= 0
    assert body["duration_s"] == 3.0 and body["curve"][0]["t"] > 0
    times = [p["t"] for p in body["curve"]]
    assert times == sorted(times) and all(-1 <= p["valence"] <= 1 for p in body["curve"])
    scores = [e["score"] for e in body["emotions"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert {"name", "score", "corr", "neg_kl", "valence", "arousal"} <= set(body["emotions"][0])


def test_any_sample_rate_and_stereo_are_accepted(client: TestClient):
    t = np.arange(22050 * 2) / 22050
    y = np.stack([np.sin(2 * np.pi * 330 * t), np.sin(2 * np.pi * 440 * t)], axis=1) * 0.3
    buffer = io.BytesIO()
    sf.write(buffer, y, 22050, format="FLAC")
    response = client.post("/v1/music-to-emotion", files={"file": ("x.flac", buffer.getvalue(), "audio/flac")})
    assert response.status_code == 200 and response.json()["duration_s"] == 2.0


def test_vocabulary_lists_named_emotions(client: TestClient):
    names = {e["name"] for e in client.get("/v1/emotions").json()}
    assert len(names) >= 24 and {"happy", "sad", "tender", "scary"} <= names


def _cadence_wav(chords: list[tuple[int, bool]], *, bpm: float) -> bytes:
    from tests.models.test_harmony import SR, progression

    buffer = io.BytesIO()
    sf.write(buffer, progression(chords, bpm=bpm), SR, format="WAV")
    return buffer.getvalue()


def test_music_to_emotion_gives_tempo_key_and_mode(client: TestClient):
    from tests.models.test_harmony import A_MINOR

    response = client.post("/v1/music-to-emotion", files={"file": ("a.wav", _cadence_wav(A_MINOR, bpm=100.0),
                                                                   "audio/wav")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["key"], body["mode"]) == ("A", "minor") and 0.6 < body["key_strength"] <= 1
    assert abs(body["tempo_bpm"] - 100.0) < 4


def test_a_track_keeps_its_tempo_key_and_mode(client: TestClient):
    from tests.app.conftest import add
    from tests.models.test_harmony import C_MAJOR

    added = add(client, _cadence_wav([((r + 2) % 12, m) for r, m in C_MAJOR], bpm=120.0), "D cadence")
    track = client.get(f"/v1/tracks/{added['track']['id']}").json()
    assert (track["key"], track["mode"]) == ("D", "major") and abs(track["tempo_bpm"] - 120.0) < 4
    listed = client.get("/v1/tracks", params={"q": "D cadence"}).json()["items"]
    assert [(t["key"], t["mode"]) for t in listed] == [("D", "major")]


def test_silence_is_refused_as_no_music_heard(client: TestClient):
    from tests.app.conftest import AUTH

    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(10 * 16_000, dtype=np.float32), 16_000, format="WAV")
    for path, extra in (("/v1/music-to-emotion", {}), ("/v1/admin/tracks", {"data": {"title": "quiet"}})):
        response = client.post(path, files={"file": ("quiet.wav", buffer.getvalue(), "audio/wav")},
                               headers=AUTH, **extra)
        assert response.status_code == 422, response.text
        assert "no music heard" in response.json()["detail"]
    assert client.get("/v1/tracks").json()["total"] == 0
    faint = np.random.default_rng(0).normal(0, 10 ** (-30 / 20), 10 * 16_000).astype(np.float32)  # -30 dBFS noise
    buffer = io.BytesIO()
    sf.write(buffer, faint, 16_000, format="WAV")
    assert client.post("/v1/music-to-emotion", files={"file": ("faint.wav", buffer.getvalue())}).status_code == 200
