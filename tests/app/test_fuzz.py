"""Try to break the service with malformed input: a corpus of broken audio, random JSON for the query
endpoints, and schemathesis over the whole OpenAPI schema (slow marker). A user's mistake never gets a 5xx.
The numbers of cases tried are written to artifacts/fuzz.json."""

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
    path.write_text(json.dumps({**existing, **COUNTS}, indent=2))


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


@pytest.mark.slow
def test_schemathesis_over_the_whole_api(tmp_path: Path, story_bundle_dir: Path, wavs):
    import schemathesis

    services = Services.start(make_settings(tmp_path, story_bundle_dir, max_audio_seconds=120))
    app = create_app(services=services)
    app.state.services = services  # no lifespan: schemathesis calls the app directly, with these services
    client = TestClient(app)
    for i, wav in enumerate(wavs[:3]):
        add(client, wav, f"t{i}")
    reindex(client)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    tried, server_errors = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            nonlocal tried
            tried += 1
            response = case.call(headers=AUTH, timeout=120)
            if response.status_code >= 500:
                server_errors.append((case.method, case.path, response.status_code, response.text[:200]))

        check()
    services.close()
    _record("schemathesis", tried)
    assert tried > 500 and not server_errors, server_errors
