"""Try to break the service with malformed input: a corpus of broken audio, random JSON for the query
endpoints, schemathesis over the whole OpenAPI schema and stateful sequences of admin flows checked against a model
of the catalogue (slow marker). A user's mistake never gets a 5xx, and no track is lost or duplicated. The numbers
of cases tried (and their total) are written to artifacts/fuzz.json."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app
from app.services import Services
from tests.app.conftest import AUTH, add, make_settings, reindex
from tests.app.test_decoding import lying_flac

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
COUNTS: dict[str, int] = {}


def _record(name: str, n: int) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + n
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "fuzz.json"
    existing = json.loads(path.read_text()) if path.is_file() else {}
    counts = {k: v for k, v in {**existing, **COUNTS}.items() if k != "total"}
    path.write_text(json.dumps({**counts, "total": sum(counts.values())}, indent=2))


def _encode(y: np.ndarray, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, 16000, format=fmt, subtype=subtype)
    return buffer.getvalue()


def malformed_audio() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    y = (rng.normal(size=32000) * 0.1).astype(np.float32)
    wav, flac, ogg = _encode(y, "WAV"), _encode(y, "FLAC"), _encode(y, "OGG")
    lying_wav = bytearray(wav)
    at = lying_wav.find(b"data")
    lying_wav[at + 4 : at + 8] = struct.pack("<I", 0x7FFFFFF0)
    corpus = {
        "zero length": b"", "one byte": b"\x00", "random bytes": rng.bytes(20000), "text": b"hello " * 1000,
        "json": b'{"valence": 1}', "nan samples": _encode(np.full(32000, np.nan, np.float32), "WAV", "FLOAT"),
        "inf samples": _encode(np.full(32000, np.inf, np.float32), "WAV", "FLOAT"),
        "silence too short": _encode(np.zeros(100, np.float32), "WAV"), "lying wav header": bytes(lying_wav),
        "lying flac header": lying_flac(), "riff only": b"RIFF\x24\x00\x00\x00WAVE", "flac magic only": b"fLaC",
        "ogg magic only": b"OggS" + bytes(40), "mp3 garbage": b"\xff\xfb\x90\x00" + rng.bytes(5000),
        "id3 only": b"ID3\x04\x00\x00\x00\x00\x00\x00", "zeros": bytes(50000),
    }
    for name, data in (("wav", wav), ("flac", flac), ("ogg", ogg)):
        for cut in (12, 44, 200, len(data) // 2):
            corpus[f"{name} truncated at {cut}"] = data[:cut]
        flipped = bytearray(data)
        for i in rng.integers(64, len(data), size=50):
            flipped[i] ^= 0xFF
        corpus[f"{name} bit flips"] = bytes(flipped)
    return corpus


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory, story_bundle_dir: Path, wavs) -> Iterator[TestClient]:
    settings_ = make_settings(tmp_path_factory.mktemp("fuzz"), story_bundle_dir, max_audio_seconds=120)
    with TestClient(create_app(settings_)) as client:
        for i, wav in enumerate(wavs[:3]):
            add(client, wav, f"t{i}")
        reindex(client)
        yield client


CORPUS = malformed_audio()


@pytest.mark.parametrize("name", sorted(CORPUS))
@pytest.mark.parametrize("extension", [".wav", ".mp3"])
def test_malformed_audio_never_gets_a_server_error(fuzz_client: TestClient, name: str, extension: str):
    files = {"file": (f"clip{extension}", CORPUS[name], "audio/wav")}
    for response in (fuzz_client.post("/v1/music-to-emotion", files=files),
                     fuzz_client.post("/v1/admin/tracks", headers=AUTH, files=files, data={"title": name})):
        assert 400 <= response.status_code < 500 or response.status_code in (200, 201), response.text
        assert "error" in response.json() or response.status_code < 300
    _record("malformed_audio", 2)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
curve_points = st.fixed_dictionaries({"t": st.floats(allow_nan=True), "valence": st.floats(allow_nan=True),
                                      "arousal": st.floats(allow_nan=True)})
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"curve": st.lists(curve_points, max_size=30)},
                          optional={"k": st.integers(-5, 500), "lam": st.floats(allow_nan=True)}),
    st.fixed_dictionaries({"point": st.fixed_dictionaries({"valence": st.floats(), "arousal": st.floats()})}),
    st.fixed_dictionaries({"emotion": st.text(max_size=30)}, optional={"k": st.integers(-5, 500)}),
    st.fixed_dictionaries({"text": st.text(max_size=400)},
                          optional={"mode": st.text(max_size=8) | st.sampled_from(["whole", "arc"]),
                                    "bridge": st.sampled_from(["va", "metric", "x"]), "k": st.integers(-2, 300)}),
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, path=st.sampled_from(["/v1/emotion-to-music", "/v1/text-to-music"]))
def test_random_json_never_gets_a_server_error(fuzz_client: TestClient, body, path: str):
    content = json.dumps(body, allow_nan=True)
    response = fuzz_client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code < 500, (body, response.text)
    _record("random_json", 1)


STATELESS_PER_OPERATION = 700  # schemathesis cases per operation (14 operations; those without inputs need few)
STATEFUL_SCENARIOS = 200  # sequences of up to 10 linked steps (add a track, read, reindex, query, delete)


def _fuzzed_services(tmp_path: Path, bundle: Path, wavs: list[bytes]) -> tuple[Services, TestClient]:
    services = Services.start(make_settings(tmp_path, bundle, max_audio_seconds=120))
    app = create_app(services=services)
    app.state.services = services  # no lifespan: schemathesis calls the app directly, with these services
    client = TestClient(app)
    for i, wav in enumerate(wavs[:3]):
        add(client, wav, f"t{i}")
    reindex(client)
    return services, client


def assert_catalogue_is_whole(services: Services, client: TestClient) -> None:
    """No track lost or duplicated: one row per audio content, each with its stored file and an embedding, and
    after a reindex the index holds exactly the catalogue's tracks."""
    from sqlalchemy import func, select

    from app.tables import Track, TrackEmbedding

    with services.sessions() as session:
        tracks = session.scalars(select(Track)).all()
        embedded = set(session.scalars(select(TrackEmbedding.track_id)))
        assert len({t.content_hash for t in tracks}) == len(tracks)
        assert len({t.audio_fingerprint for t in tracks}) == len(tracks)
        assert all((services.settings.data_dir / t.audio_path).is_file() for t in tracks)
        assert {t.id for t in tracks} <= embedded
        assert session.scalar(select(func.count()).select_from(Track)) == client.get("/v1/tracks").json()["total"]
    assert reindex(client)["state"] == "succeeded"
    assert set(services.require_index().track_ids.tolist()) == {t.id for t in tracks}


@pytest.mark.slow
def test_schemathesis_over_the_whole_api(tmp_path: Path, story_bundle_dir: Path, wavs):
    import schemathesis

    services, client = _fuzzed_services(tmp_path, story_bundle_dir, wavs)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    tried, server_errors = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=STATELESS_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)
        def check(case) -> None:
            nonlocal tried
            tried += 1
            response = case.call(headers=AUTH, timeout=120)
            if response.status_code >= 500:
                server_errors.append((case.method, case.path, response.status_code, response.text[:200]))

        check()
    assert_catalogue_is_whole(services, client)
    services.close()
    _record("schemathesis", tried)
    assert tried > 5_000 and not server_errors, server_errors


def _tone(seconds: float, hz: float, fmt: str) -> bytes:
    t = np.arange(int(seconds * 16000)) / 16000
    return _encode((0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), fmt)


def _mutated(data: bytes, positions: list[int]) -> bytes:
    out = bytearray(data)
    for p in positions:
        out[p % len(out)] ^= 0xA5
    return bytes(out)


audio_uploads = st.one_of(
    st.builds(_tone, st.floats(1.0, 4.0), st.sampled_from([220.0, 330.0, 440.0, 550.0]),
              st.sampled_from(["WAV", "FLAC"])),  # few distinct recordings in two containers: duplicates on purpose
    st.builds(_mutated, st.builds(_tone, st.just(2.0), st.just(440.0), st.just("WAV")),
              st.lists(st.integers(0, 70_000), min_size=1, max_size=30)),
    st.binary(max_size=3000),
)


@pytest.mark.slow
def test_stateful_admin_flows_never_fail_and_keep_the_catalogue_whole(tmp_path: Path, story_bundle_dir: Path,
                                                                      wavs):
    """Sequences of add (new, duplicate, mutated and junk audio), read, delete, reindex and query, checked against
    a model of the catalogue after every step: no 5xx, no track lost, none duplicated."""
    from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule, run_state_machine_as_test

    services, client = _fuzzed_services(tmp_path, story_bundle_dir, wavs)
    calls = [0]

    def call(method: str, path: str, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        response = client.request(method, path, headers=AUTH, **kwargs)
        assert response.status_code < 500, (method, path, response.status_code, response.text[:300])
        return response

    class CatalogueFlows(RuleBasedStateMachine):
        tracks = Bundle("tracks")

        def __init__(self) -> None:
            super().__init__()
            page = call("GET", "/v1/tracks", params={"limit": 500}).json()
            self.known = {t["id"] for t in page["items"]}

        @rule(target=tracks, audio=audio_uploads, title=st.text(max_size=40))
        def add(self, audio: bytes, title: str):  # type: ignore[no-untyped-def]
            response = call("POST", "/v1/admin/tracks", files={"file": ("clip.wav", audio)},
                            data={"title": title or "untitled"})
            if response.status_code != 201:
                return -1
            body = response.json()
            assert body["created"] == (body["track"]["id"] not in self.known)
            self.known.add(body["track"]["id"])
            return body["track"]["id"]

        @rule(track=tracks)
        def read(self, track: int) -> None:
            if track > 0:
                assert call("GET", f"/v1/tracks/{track}").status_code == (200 if track in self.known else 404)

        @rule(track=consumes(tracks))
        def delete(self, track: int) -> None:
            if track <= 0:
                return
            status = call("DELETE", f"/v1/admin/tracks/{track}").status_code
            assert status == (204 if track in self.known else 404)
            self.known.discard(track)

        @rule()
        def reindex(self) -> None:
            calls[0] += 1
            assert reindex(client)["state"] == "succeeded"
            assert set(services.require_index().track_ids.tolist()) == self.known

        @rule(valence=st.floats(-1, 1), arousal=st.floats(-1, 1), k=st.integers(1, 50))
        def query(self, valence: float, arousal: float, k: int) -> None:
            body = {"point": {"valence": valence, "arousal": arousal}, "k": k}
            results = call("POST", "/v1/emotion-to-music", json=body).json()["results"]
            ids = [r["track_id"] for r in results]
            assert len(set(ids)) == len(ids) and set(ids) <= self.known  # none twice, none deleted

        @invariant()
        def catalogue_matches(self) -> None:
            assert call("GET", "/v1/tracks", params={"limit": 500}).json()["total"] == len(self.known)

    run_state_machine_as_test(CatalogueFlows, settings=settings(
        max_examples=STATEFUL_SCENARIOS, stateful_step_count=10, deadline=None,
        suppress_health_check=list(HealthCheck), database=None))
    assert_catalogue_is_whole(services, client)
    services.close()
    _record("stateful_flows", calls[0])
