from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.routers import text as text_router
from tests.app.conftest import add, make_settings, record_threads, reindex

STORY = ("The sun was shining and the children laughed in the park. Everyone cheered at the birthday party. "
         "It was the happiest afternoon of the summer. Then the phone rang with terrible news. "
         "Their grandfather had died that morning. The house fell silent and everyone wept.")


@pytest.fixture(scope="module")
def story_client(tmp_path_factory, story_bundle_dir, wavs) -> Iterator[TestClient]:
    """Six tracks indexed under a model with text heads; built once, as the tests here only ask it."""
    with TestClient(create_app(make_settings(tmp_path_factory.mktemp("story"), story_bundle_dir))) as client:
        for i, wav in enumerate(wavs):
            add(client, wav, f"t{i}")
        reindex(client)
        yield client


def test_whole_mode_ranks_tracks_and_reads_each_sentence(story_client: TestClient):
    body = story_client.post("/v1/text-to-music", json={"text": STORY, "k": 3}).json()
    assert len(body["sentences"]) == 6 and len(body["results"]) == 3 and body["segments"] is None
    first, last = body["sentences"][0], body["sentences"][-1]
    assert first["valence"] > 0 > last["valence"]
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    metric = story_client.post("/v1/text-to-music", json={"text": STORY, "k": 3, "bridge": "metric"})
    assert metric.status_code == 200 and len(metric.json()["results"]) == 3


def test_arc_mode_follows_the_turn_without_repeating_tracks(story_client: TestClient):
    body = story_client.post("/v1/text-to-music", json={"text": STORY, "k": 2, "mode": "arc"}).json()
    segments = body["segments"]
    assert len(segments) >= 2 and segments[0]["start"] == 0 and segments[-1]["end"] == 6
    assert segments[0]["valence"] > segments[-1]["valence"]
    assert segments[0]["sentences"][0].startswith("The sun was shining")
    tracks = [r["track_id"] for s in segments for r in s["results"]]
    assert len(tracks) == len(set(tracks)) and len(tracks) == 2 * len(segments)


def test_same_story_same_answer(story_client: TestClient):
    request = {"text": STORY, "k": 4, "mode": "arc"}
    assert story_client.post("/v1/text-to-music", json=request).json() == \
        story_client.post("/v1/text-to-music", json=request).json()


def test_a_long_text_goes_to_the_thread_pool_and_gets_the_query_threads_answer(story_client: TestClient,
                                                                                monkeypatch):
    threads = record_threads(monkeypatch, text_router, "_text_to_music")
    request = {"text": STORY, "k": 3, "mode": "arc"}
    quick = story_client.post("/v1/text-to-music", json=request).json()
    monkeypatch.setattr(text_router, "QUICK_TEXT_CHARS", len(STORY) - 1)
    assert story_client.post("/v1/text-to-music", json=request).json() == quick
    assert threads[0].startswith("query") and not threads[1].startswith("query"), threads


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"text": ""}, 422, "empty"),
        ({"text": "   \n  "}, 422, "empty"),
        ({"text": "\u200b\u200b\ufeff"}, 422, "empty"),
        ({"text": "x" * 20_001}, 413, "MOODSPACE_MAX_TEXT_CHARS"),
        ({"text": "Hello.", "mode": "trailer"}, 422, "whole"),
        ({"text": "Hello.", "bridge": "telepathy"}, 422, "metric"),
        ({"text": "Hello.", "k": 0}, 422, "greater than or equal to 1"),
        ({}, 422, "text"),
    ],
)
def test_bad_text_requests(story_client: TestClient, body: dict, status: int, message: str):
    response = story_client.post("/v1/text-to-music", json=body)
    assert response.status_code == status, response.text
    assert message in str(response.json()["detail"])


def test_a_model_without_text_heads_says_so(client: TestClient):
    response = client.post("/v1/text-to-music", json={"text": "A quiet night."})
    assert response.status_code == 503 and "train-text" in response.json()["detail"]


def test_stories_keep_to_the_filters_in_both_modes(story_client: TestClient):
    """Every track here is by "A" (``add``) and has no year: a year condition passes none of them."""
    whole = story_client.post("/v1/text-to-music", json={"text": STORY, "k": 3, "filters": {"artists": ["a"]}})
    assert len(whole.json()["results"]) == 3 and whole.json()["reason"] is None
    arc = story_client.post("/v1/text-to-music", json={"text": STORY, "k": 1, "mode": "arc",
                                                       "filters": {"artists": ["A"]}}).json()
    assert arc["reason"] is None and all(len(s["results"]) == 1 for s in arc["segments"])
    for mode in ("whole", "arc"):
        for filters in ({"exclude_artists": ["a"]}, {"year_max": 2999}):
            body = story_client.post("/v1/text-to-music", json={"text": STORY, "k": 2, "mode": mode,
                                                                "filters": filters}).json()
            assert body["reason"] == "no track in the catalogue passes the filters", (mode, filters)


def test_stories_answered_in_one_batch_equal_their_answers_one_at_a_time(story_client: TestClient, monkeypatch):
    from app.routers.schemas import TextQuery

    services = story_client.app.state.services  # type: ignore[attr-defined]
    settings = services.settings
    bodies = [{"text": STORY, "k": 3}, {"text": "A quiet morning. Rain on the window.", "k": 2, "lam": 0.3},
              {"text": STORY, "k": 4, "bridge": "metric"}, {"text": "Everyone cheered!", "k": 6}]
    requests = [text_router.StoryRequest(TextQuery(**b), text_router._sentences(TextQuery(**b), settings), services)
                for b in bodies]
    batch = text_router._answer_stories(requests)
    threads = record_threads(monkeypatch, text_router, "_text_to_music")
    monkeypatch.setattr(text_router, "QUICK_TEXT_CHARS", 0)  # every text alone, in the thread pool
    for body, answer in zip(bodies, batch, strict=True):
        alone = story_client.post("/v1/text-to-music", json=body).json()
        assert not isinstance(answer, Exception)
        got = answer.model_dump(mode="json")
        assert [r["track_id"] for r in got["results"]] == [r["track_id"] for r in alone["results"]]
        assert len(got["results"]) == min(body["k"], 6)
        for mine, theirs in zip(got["results"], alone["results"], strict=True):
            assert abs(mine["score"] - theirs["score"]) < 1e-6
        for mine, theirs in zip(got["sentences"], alone["sentences"], strict=True):
            assert mine["text"] == theirs["text"] and abs(mine["valence"] - theirs["valence"]) < 1e-6
        assert {k: got[k] for k in ("mode", "bridge", "lam", "model_version", "index_generation")} == \
               {k: alone[k] for k in ("mode", "bridge", "lam", "model_version", "index_generation")}
    assert len(threads) == len(bodies) and not any(t.startswith("query") for t in threads)


def test_a_whole_story_is_answered_on_the_query_thread_in_a_batch_and_an_arc_alone(story_client: TestClient,
                                                                                   monkeypatch):
    batches = record_threads(monkeypatch, text_router, "_answer_stories")
    alone = record_threads(monkeypatch, text_router, "_text_to_music")
    for body in ({"text": STORY}, {"text": STORY, "mode": "arc"}, {"text": STORY, "filters": {"genre": "jazz"}}):
        assert story_client.post("/v1/text-to-music", json=body).status_code == 200
    assert len(batches) == 1 and batches[0].startswith("query")
    assert len(alone) == 2 and all(t.startswith("query") for t in alone)
    empty = story_client.post("/v1/text-to-music", json={"text": "  "})
    assert empty.status_code == 422 and "empty" in empty.text and len(batches) == 1  # refused before queueing
