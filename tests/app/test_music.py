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
