"""The song model in the service: an upload with lyrics is read by it, a catalogue track with lyrics is indexed by
its fused embedding, and the embedding follows the lyrics and the song model."""

import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app import catalog
from app.main import create_app
from app.services import load_song_model
from models.bundle import load_bundle
from models.inference import Embedder
from models.text import sentence_encoder
from tests.app.conftest import AUTH, add, make_settings, reindex, song_model_for
from tests.models.test_song_model import tiny_song_model

LYRICS = "Morning light across the kitchen floor\nwe laugh and dance like never before"


@pytest.fixture
def song_client(tmp_path, bundle_dir):
    song = song_model_for(bundle_dir, tmp_path / "song.pt")
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, song_model=tmp_path / "song.pt"))) as client:
        assert client.app.state.services.model.song_model.version == song.version
        yield client


def _post(client: TestClient, wav: bytes, **fields: str):
    response = client.post("/v1/music-to-emotion", files={"file": ("clip.wav", wav, "audio/wav")}, data=fields)
    assert response.status_code == 200, response.text
    return response.json()


def _stored(client: TestClient, track_id: int):
    services = client.app.state.services
    with services.sessions() as session:
        return catalog.embedding_for(session, track_id, services.model.embedder.version)


def test_an_upload_with_lyrics_is_read_by_the_song_model(song_client: TestClient, wavs):
    plain = _post(song_client, wavs[0])["readings"]
    assert plain["fused_by"] == "readings" and plain["song_model"] is None and plain["fused_classes"] is None
    sung = _post(song_client, wavs[0], lyrics=LYRICS)
    readings = sung["readings"]
    assert readings["fused_by"] == "song model"
    assert readings["song_model"] == song_client.app.state.services.model.song_model.version
    assert readings["audio"] == plain["audio"] and readings["fused"] != readings["audio"]
    assert sung["valence"] == pytest.approx(readings["audio"]["valence"], abs=1e-4)  # the curve stays the audio's
    assert _post(song_client, wavs[0], title="Only A Title")["readings"]["fused_by"] == "readings"


def test_a_track_with_lyrics_is_indexed_by_its_fused_embedding_which_follows_its_lyrics(song_client: TestClient,
                                                                                        wavs):
    services = song_client.app.state.services
    embedder, song = services.model.embedder, services.model.song_model
    response = song_client.post("/v1/admin/tracks", headers=AUTH, data={"title": "Kitchen", "lyrics": LYRICS},
                                files={"file": ("k.wav", wavs[1], "audio/wav")})
    track_id = response.json()["track"]["id"]
    row = _stored(song_client, track_id)
    assert row.song_model == song.version and row.fused_valence is not None
    features = services.model.audio.decode(wavs[1], name="k").features
    h = song.represent(embedder.represent_tracks([features])[0], features, sentence_encoder().encode_segments(LYRICS))
    assert np.allclose(np.frombuffer(row.E, np.float32), embedder.read_representations(h[None]).gaussians.E[0],
                       atol=1e-5)
    assert response.json()["track"]["readings"]["fused_by"] == "song model"

    put = song_client.put(f"/v1/admin/tracks/{track_id}/lyrics", headers=AUTH, json={"lyrics": ""})
    assert put.status_code == 200 and put.json()["readings"]["fused_by"] == "readings"
    silent = _stored(song_client, track_id)
    assert silent.song_model is None
    assert np.allclose(np.frombuffer(silent.E, np.float32), embedder.embed_features([features]).E[0], atol=1e-5)

    song_client.put(f"/v1/admin/tracks/{track_id}/lyrics", headers=AUTH, json={"lyrics": "Cold rain, goodbye"})
    again = _stored(song_client, track_id)
    assert again.song_model == song.version
    assert not np.allclose(np.frombuffer(again.E, np.float32), np.frombuffer(row.E, np.float32))
    assert song_client.get(f"/v1/tracks/{track_id}").json()["readings"]["fused"] == {
        "valence": pytest.approx(again.fused_valence), "arousal": pytest.approx(again.fused_arousal)}


def test_a_tri_modal_song_model_reads_the_title_and_artist_beside_the_lyrics(tmp_path, bundle_dir, wavs):
    song = song_model_for(bundle_dir, tmp_path / "song.pt", context=True)
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, song_model=tmp_path / "song.pt"))) as client:
        lyrics_only = _post(client, wavs[0], lyrics=LYRICS)["readings"]["fused"]
        assert _post(client, wavs[0], lyrics=LYRICS, title="Kitchen Dance")["readings"]["fused"] == lyrics_only
        titled = _post(client, wavs[0], lyrics=LYRICS, title="Kitchen Dance", artist="The Made-Up Band")
        assert titled["readings"]["fused_by"] == "song model" and titled["readings"]["fused"] != lyrics_only

        services = client.app.state.services
        embedder = services.model.embedder
        response = client.post("/v1/admin/tracks", headers=AUTH, files={"file": ("k.wav", wavs[1], "audio/wav")},
                               data={"title": "Kitchen Dance", "artist": "The Made-Up Band", "lyrics": LYRICS})
        track_id = response.json()["track"]["id"]
        features = services.model.audio.decode(wavs[1], name="k").features
        h, segments = embedder.represent_tracks([features])[0], sentence_encoder().encode_segments(LYRICS)
        context = sentence_encoder().encode(["Kitchen Dance by The Made-Up Band"])[0]
        expected = embedder.read_representations(song.represent(h, features, segments, context)[None]).gaussians.E[0]
        assert np.allclose(np.frombuffer(_stored(client, track_id).E, np.float32), expected, atol=1e-5)
        without_title = song.represent(h, features, segments)
        assert not np.allclose(expected, embedder.read_representations(without_title[None]).gaussians.E[0])

        client.put(f"/v1/admin/tracks/{track_id}/lyrics", headers=AUTH, json={"lyrics": LYRICS + "\nagain"})
        again = song.represent(h, features, sentence_encoder().encode_segments(LYRICS + "\nagain"), context)
        assert np.allclose(np.frombuffer(_stored(client, track_id).E, np.float32),
                           embedder.read_representations(again[None]).gaussians.E[0], atol=1e-5)


def test_tracks_with_lyrics_are_embedded_again_by_a_new_song_model_at_the_next_reindex(tmp_path, bundle_dir, wavs):
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, song_model=None))) as client:
        sung = add(client, wavs[2], "Sung")["track"]["id"]
        client.put(f"/v1/admin/tracks/{sung}/lyrics", headers=AUTH, json={"lyrics": LYRICS})
        plain = add(client, wavs[3], "Plain")["track"]["id"]
        assert _stored(client, sung).song_model is None
        plain_row = _stored(client, plain)
    song = song_model_for(bundle_dir, tmp_path / "song.pt")
    with TestClient(create_app(make_settings(tmp_path, bundle_dir, song_model=tmp_path / "song.pt"))) as client:
        services = client.app.state.services
        with services.sessions() as session:
            assert [t.id for t in catalog.tracks_to_embed(session, services.model.embedder.version, song.version)
                    ] == [sung]
        assert reindex(client)["state"] == "succeeded"
        assert _stored(client, sung).song_model == song.version
        assert _stored(client, plain).created_at == plain_row.created_at  # not embedded again
        with services.sessions() as session:
            assert catalog.tracks_to_embed(session, services.model.embedder.version, song.version) == []


def test_a_song_model_of_another_music_model_or_a_bad_file_is_not_used(tmp_path, bundle_dir, caplog):
    embedder = Embedder.from_bundle(load_bundle(bundle_dir))
    tiny_song_model(music_model="another-music-model").save(tmp_path / "other.pt")
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with caplog.at_level(logging.WARNING, logger="app.services"):
        assert load_song_model(make_settings(tmp_path, bundle_dir, song_model=tmp_path / "other.pt"), embedder) is None
        assert load_song_model(make_settings(tmp_path, bundle_dir, song_model=tmp_path / "bad.pt"), embedder) is None
        assert load_song_model(make_settings(tmp_path, bundle_dir, song_model=None), embedder) is None
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "another-music-model" in messages and "bad.pt is not a song model" in messages
