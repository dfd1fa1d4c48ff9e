"""The web page in a real browser: Debian's Chromium driven by Playwright (no browser download), against the app
served by uvicorn on loopback. Screenshots go to artifacts/screenshots/ (not committed)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from app.main import create_app
from tests.app.conftest import AUTH, make_settings, song_model_for
from tests.app.test_text import STORY

CHROMIUM = os.environ.get("MOODSPACE_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, story_bundle_dir: Path, wavs: list[bytes]) -> Iterator[str]:
    """The app with six tracks, served on a free loopback port."""
    folder = tmp_path_factory.mktemp("web")
    song_model_for(story_bundle_dir, folder / "song.pt")
    settings = make_settings(folder, story_bundle_dir, song_model=folder / "song.pt")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    with httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:
        for i, wav in enumerate(wavs):
            client.post("/v1/admin/tracks", files={"file": (f"{i}.wav", wav)}, data={"title": f"Track {i}"})
        job = client.post("/v1/admin/reindex").json()
        while client.get(f"/v1/admin/jobs/{job['job_id']}").json()["state"] not in ("succeeded", "failed"):
            time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/system-deps (Debian package chromium) "
                    "or set MOODSPACE_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    expect(page.locator("#model-version")).to_contain_text("6 tracks")
    yield page
    context.close()
    assert not errors, errors


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_draw_a_curve_get_tracks_and_play_one(page: Page):
    plane = page.locator("#e2m-plane")
    box = plane.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.8)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.2 + 0.06 * step), box["y"] + box["height"] * (0.8 - 0.06 * step))
    page.mouse.up()
    expect(page.locator("#e2m-caption")).to_contain_text("Curve of")
    with page.expect_response("**/v1/emotion-to-music") as answer:
        page.get_by_role("button", name="Find music").click()
    tracks = page.locator("#e2m-results li.track")
    expect(tracks).to_have_count(6)
    expect(tracks.first).to_contain_text("score")
    shown = re.search(r"· ([0-9.]+) from the request", tracks.first.inner_text())
    assert shown and float(shown[1]) == pytest.approx(answer.value.json()["results"][0]["va_distance"], abs=0.0051)
    playing = page.evaluate("""async () => {
        const audio = document.querySelector('#e2m-results audio');
        await audio.play();
        await new Promise((done) => setTimeout(done, 400));
        return {paused: audio.paused, time: audio.currentTime, duration: audio.duration};
    }""")
    assert not playing["paused"] and playing["time"] > 0 and playing["duration"] == pytest.approx(3.0, abs=0.05)
    shot(page, "emotion-to-music")


def test_filters_narrow_the_tracks_and_say_when_none_pass(page: Page):
    page.get_by_label("…or pick a named emotion").select_option("happy")
    page.get_by_label("Longest track (s)").fill("1")  # every clip here lasts 3 s
    page.get_by_role("button", name="Find music").click()
    expect(page.locator("#status")).to_contain_text("No tracks: no track in the catalogue passes the filters")
    expect(page.locator("#e2m-results li.track")).to_have_count(0)
    page.get_by_label("Longest track (s)").fill("10")
    page.get_by_label("Mode", exact=True).select_option("major")
    page.get_by_role("button", name="Find music").click()
    expect(page.locator("#status")).to_contain_text("tracks (lam")


def test_keyboard_only_curve_and_named_emotion(page: Page):
    page.locator("#e2m-plane").focus()
    for key in ["ArrowRight"] * 6 + ["Enter"] + ["ArrowUp"] * 5 + ["Enter"]:
        page.keyboard.press(key)
    expect(page.locator("#e2m-caption")).to_contain_text("Curve of 2 points")
    page.locator("#e2m-search").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#e2m-results li.track")).to_have_count(6)
    page.get_by_label("…or pick a named emotion").select_option("sad")
    page.get_by_label("Number of tracks").fill("2")
    page.get_by_role("button", name="Find music").click()
    expect(page.locator("#e2m-results li.track")).to_have_count(2)
    expect(page.locator("#status")).to_contain_text("2 tracks")


def test_upload_a_clip_and_see_its_emotions(page: Page, tmp_path: Path, wavs: list[bytes]):
    clip = tmp_path / "my clip.wav"
    clip.write_bytes(wavs[2])
    page.get_by_role("tab", name="Music → emotion").click()
    page.get_by_label("Audio file").set_input_files(str(clip))
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator("#m2e-emotions li")).to_have_count(8)
    expect(page.locator("#m2e-summary")).to_contain_text("my clip.wav: 3.0 s; valence")
    assert page.locator("#m2e-plane ellipse.spread").count() == 1
    expect(page.locator("#m2e-readings tbody tr")).to_have_count(2)  # the sound, and all together
    expect(page.locator("#m2e-readings tbody tr").nth(1).locator("td").first).to_have_text("All together")
    like = page.locator("#m2e-tracks li.track")  # the clip is Track 2's audio: the other five feel like it
    expect(like).to_have_count(5)
    assert "Track 2" not in like.locator("strong").all_inner_texts()
    shot(page, "music-to-emotion")


def test_title_and_lyrics_add_their_own_readings(page: Page, tmp_path: Path, wavs: list[bytes]):
    clip = tmp_path / "song.wav"
    clip.write_bytes(wavs[1])
    page.get_by_role("tab", name="Music → emotion").click()
    page.get_by_label("Audio file").set_input_files(str(clip))
    page.get_by_label("Title (optional)").fill("Kitchen Dance")
    page.get_by_label("Lyrics (optional)").fill("Morning light across the floor\nwe laugh and dance")
    page.get_by_role("button", name="Analyse").click()
    rows = page.locator("#m2e-readings tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(1)).to_contain_text("Lyrics")
    expect(rows.nth(2)).to_contain_text("Title and artist")
    expect(rows.nth(3)).to_contain_text("Sound and lyrics together (song model)")


def test_story_gives_a_cue_list(page: Page):
    page.get_by_role("tab", name="Story → music").click()
    page.get_by_label("Story text").fill(STORY)
    page.get_by_role("button", name="Find music for the story").click()
    cues = page.locator("#t2m-results section.cue")
    expect(cues.first).to_contain_text("Cue 1: sentences 1–")
    assert cues.count() >= 2
    assert page.locator("#t2m-plane circle").count() == 6
    shot(page, "story-to-music")


def test_more_like_a_story_s_track_lists_the_other_tracks_on_the_emotion_tab(page: Page):
    page.get_by_role("tab", name="Story → music").click()
    page.get_by_label("Story text").fill(STORY)
    page.get_by_role("button", name="Find music for the story").click()
    first = page.locator("#t2m-results li.track").first
    title = first.locator("strong").inner_text()
    with page.expect_response("**/v1/emotion-to-music") as response:
        first.get_by_role("button", name=f"Tracks that feel like {title}").click()
    assert "like_track" in response.value.request.post_data_json
    answer = response.value.json()["results"]
    expect(page.get_by_role("tab", name="Emotion → music")).to_have_attribute("aria-selected", "true")
    tracks = page.locator("#e2m-results li.track")
    expect(tracks).to_have_count(5)  # every track of six but the one asked about
    assert title not in tracks.locator("strong").all_inner_texts()
    shown = [text.split(" · ")[0] for text in tracks.locator("p.parts").all_inner_texts()]
    assert shown == [f"{100 * r['likeness']:.1f}% alike" for r in answer]  # how alike, as the answer ranks them
    expect(page.locator("#e2m-caption")).to_contain_text(f"Tracks that feel like “{title}”")
    expect(page.locator("#e2m-plane .emotion-marker")).to_have_count(1)
    shot(page, "more-like-this")


def test_errors_are_shown_not_thrown(page: Page, tmp_path: Path):
    page.get_by_role("button", name="Find music").click()
    expect(page.locator("#status")).to_contain_text("Draw a curve, click a point or pick an emotion first")
    notes = tmp_path / "notes.wav"
    notes.write_text("these are not sounds")
    page.get_by_role("tab", name="Music → emotion").click()
    page.get_by_label("Audio file").set_input_files(str(notes))
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator("#status")).to_contain_text("Error: notes.wav: cannot decode audio")


def test_readable_at_375_px_wide(browser: Browser, server: str):
    context = browser.new_context(viewport={"width": 375, "height": 800}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server)
    expect(page.locator("#model-version")).to_contain_text("tracks")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.locator("#e2m-plane").bounding_box()["width"] <= 375
    shot(page, "mobile-375")
    context.close()


def test_api_docs_list_every_operation_with_the_network_cut(browser: Browser, server: str):
    context = browser.new_context()
    outside: list[str] = []

    def only_loopback(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.goto(f"{server}/docs")
    operations = httpx.get(f"{server}/openapi.json").json()["paths"]
    expected = sum(len(methods) for methods in operations.values())
    expect(page.locator(".opblock")).to_have_count(expected, timeout=20_000)
    expect(page.locator(".opblock-summary-path", has_text="/v1/music-to-emotion")).to_be_visible()
    shot(page, "api-docs-offline")
    context.close()
    assert not outside, outside


def test_a_failed_upload_clears_the_previous_results(page: Page, tmp_path: Path, wavs: list[bytes]):
    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    good.write_bytes(wavs[1])
    bad.write_text("not audio at all")
    page.get_by_role("tab", name="Music → emotion").click()
    page.get_by_label("Audio file").set_input_files(str(good))
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator("#m2e-emotions li")).to_have_count(8)
    expect(page.locator("#m2e-summary")).to_contain_text(" BPM")  # tempo, key and mode are shown too
    page.get_by_label("Audio file").set_input_files(str(bad))
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator("#status")).to_contain_text("Error: bad.wav")
    expect(page.locator("#m2e-emotions li")).to_have_count(0)
    expect(page.locator("#m2e-tracks li")).to_have_count(0)
    expect(page.locator("#m2e-summary")).to_have_text("")
    assert page.locator("#m2e-plane ellipse.spread").count() == 0


def test_a_named_emotion_replaces_the_drawn_point_and_gets_a_marker(page: Page):
    box = page.locator("#e2m-plane").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.2)
    expect(page.locator("#e2m-caption")).to_contain_text("Curve of 1 point")
    page.get_by_label("…or pick a named emotion").select_option("sad")
    expect(page.locator("#e2m-caption")).to_contain_text("Emotion “sad”")
    expect(page.locator("#e2m-plane .emotion-marker")).to_have_count(1)
    assert page.locator("#e2m-plane path.curve").count() == 0  # the old point is gone
    page.get_by_role("button", name="Find music").click()
    expect(page.locator("#e2m-results li.track")).to_have_count(6)
    expect(page.locator("#e2m-plane .emotion-marker")).to_have_count(1)


def test_the_reading_ring_is_not_drawn_past_the_plane(page: Page, tmp_path: Path, wavs: list[bytes]):
    clip = tmp_path / "c.wav"
    clip.write_bytes(wavs[3])
    page.get_by_role("tab", name="Music → emotion").click()
    page.get_by_label("Audio file").set_input_files(str(clip))
    page.get_by_role("button", name="Analyse").click()
    expect(page.locator("#m2e-plane ellipse.spread")).to_have_count(1)
    # Draw a ring far past the edge with the page's own drawing code: what shows must stay inside the frame.
    inside = page.evaluate("""async () => {
        const {drawAxes, drawReading} = await import('/static/plane.js');
        const svg = document.getElementById('m2e-plane');
        const layer = drawAxes(svg);
        drawReading(layer, 0.95, 0.95, 1.5, 1.5);
        const frame = svg.querySelector('rect.frame').getBoundingClientRect();
        const ring = svg.querySelector('ellipse.spread').getBoundingClientRect();
        const visible = (x, y) => document.elementsFromPoint(x, y).some((n) => n.classList.contains('spread'));
        return {outside: visible(frame.right + 3, frame.top + 5), inside: visible(frame.right - 3, frame.top + 5),
                ringPastEdge: ring.right > frame.right};
    }""")
    assert inside == {"outside": False, "inside": True, "ringPastEdge": True}


def test_the_best_moment_of_each_track_is_shown_and_played_from_its_start(page: Page):
    page.get_by_label("…or pick a named emotion").select_option("calm")
    page.get_by_label("Curve length in seconds").fill("5")
    page.locator("#e2m-span").check()
    page.get_by_role("button", name="Find music").click()
    tracks = page.locator("#e2m-results li.track")
    expect(tracks).to_have_count(6)
    expect(tracks.first.locator(".moment")).to_have_text("best moment 0:00–0:03")  # 3 s clips: one span each
    assert "#t=0," in (tracks.first.locator("audio").get_attribute("src") or "")
    page.get_by_label("Curve length in seconds").fill("60")
    page.get_by_role("button", name="Find music").click()
    expect(page.locator("#status")).to_contain_text("No tracks: no track has a stretch as long as the 60 s")
    shot(page, "best-moment")


@pytest.mark.parametrize(("label", "value"), [("Released from (year)", "2999"),
                                              ("With all these tags (comma-separated)", "no-such-tag"),
                                              ("Only by (artists, comma-separated)", "Nobody Here")])
def test_year_tag_and_artist_controls_filter(page: Page, label: str, value: str):
    page.get_by_label("…or pick a named emotion").select_option("happy")
    page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Find music").click()
    expect(page.locator("#status")).to_contain_text("No tracks: no track in the catalogue passes the filters")
    page.get_by_label(label).fill("")
    page.get_by_label("Key").select_option("C")
    page.get_by_role("button", name="Find music").click()
    expect(page.locator("#status")).not_to_contain_text("Error")


def test_a_story_s_cues_get_best_moments(page: Page):
    page.get_by_role("tab", name="Story → music").click()
    page.get_by_label("Story text").fill(STORY)
    page.get_by_label("find the best moment in each track, at").check()
    page.get_by_label("seconds per sentence").fill("1")
    page.get_by_role("button", name="Find music for the story").click()
    expect(page.locator("#t2m-results .cue").first.locator(".moment").first).to_contain_text("best moment 0:00")
