from fastapi.testclient import TestClient

from tests.app.conftest import add


def test_audio_answers_head_and_304_for_its_etag(client: TestClient, wavs: list[bytes]):
    track = add(client, wavs[0], "one")["track"]
    url = track["audio_url"]
    full = client.get(url)
    assert full.status_code == 200 and full.content == wavs[0]
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(wavs[0])) and head.headers["etag"] == full.headers["etag"]
    again = client.get(url, headers={"If-None-Match": full.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == full.headers["etag"]
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    ranged = client.get(url, headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.content == wavs[0][:10]


def test_the_page_has_a_favicon(client: TestClient):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in response.content and 'rel="icon"' in client.get("/").text
