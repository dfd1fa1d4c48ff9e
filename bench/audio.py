"""Audio speed: front end and encoder real-time factors per core, and music-to-emotion end to end for a 30 s clip.

    python bench/audio.py [--bundle default|PATH] [--clip FILE] [--quick] [--json OUT]

Runs with one torch thread (per-core figures). "front end <name>" times each front end (log-mel, musicnn-msd, its
tags variant, the tags with the chord shares, and the distilled student when its weights are installed) on the
same clip; "tempo, key, mode" the harmony analysis the decoding workers add (a bundle whose front end reads chords
shares its chroma with it: ``models.frontend.hear``); "musicnn-msd, glibc defaults" is musicnn-msd's baseline,
timed first, before the front end tells glibc to keep freed memory (models.musicnn.keep_freed_memory, process-wide);
"musicnn-msd, every filter" computes every filter the original way (before models.musicnn_living); "embed" is
the music encoder on a whole clip; "analyse" is what /v1/music-to-emotion does after decoding: features, whole-clip
embedding, VA reading, windowed VA curve, ranked emotions; "song text" the lyrics and title/artist readings
(``models.songtext``) of made-up lyrics of about 250 words, "song model" the song model's reading of the clip
with them (``models.song_model``: the lyrics segments encoded, the fusion network, the heads; a tri-modal one also
reads the made-up title and artist), and "m2e end to end + lyrics" all of these. The clip defaults to a generated
30 s clip.
"""

from __future__ import annotations

import sys
from pathlib import Path

# As a script (python bench/x.py) the bench folder would come first on the path and bench/http.py would shadow the
# standard library's http package: put the project root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import io
import itertools
import json
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import soundfile as sf
import torch

from app.analysis import analyze_audio, analyze_song, rank_emotions, song_context
from bench.common import machine
from models.bundle import load_bundle
from models.config import FrontEndName
from models.default import resolve_bundle
from models.frontend import frontend_config, load_audio, make_frontend
from models.harmony import tonality
from models.inference import Embedder
from models.musicnn import MusicnnFrontEnd
from models.song_model import SONG_MODEL_PATH, SongModel
from models.songtext import SONG_TEXT_PATH, SongTextModel
from models.student import WEIGHTS as STUDENT_WEIGHTS
from models.text import sentence_encoder
from training.corpus.generate import synth_clip
from training.corpus.synth import SR

# Made-up lyrics of a typical length (about 250 words, 2-3 segments of 128 tokens).
BENCH_LYRICS = "\n".join(["Morning light across the kitchen floor", "we laugh and dance like never before",
                           "the radio hums an old summer song", "and every step says we belong"] * 8)


def _clip_bytes(path: Path | None) -> bytes:
    if path is not None:
        return path.read_bytes()
    _, y = synth_clip(0, seed=123, seconds=30)
    buffer = io.BytesIO()
    sf.write(buffer, y, SR, format="FLAC")
    return buffer.getvalue()


def _timed(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--clip", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = _clip_bytes(args.clip)
    repeats = 5 if args.quick else 30
    y = load_audio(data, sr=16_000)
    baseline = MusicnnFrontEnd(frontend_config("musicnn-msd"), keep_memory=False)
    results = {"musicnn-msd, glibc defaults": _timed(partial(baseline, y), max(3, repeats // 3))}
    every_filter = MusicnnFrontEnd(frontend_config("musicnn-msd"), dense=True)
    results["musicnn-msd, every filter"] = _timed(partial(every_filter, y), max(3, repeats // 3))
    embedder = Embedder.from_bundle(load_bundle(resolve_bundle(args.bundle)))
    sr = embedder.config.frontend.sr
    y = load_audio(data, sr=sr)
    seconds = y.size / sr
    features = embedder.frontend(y)
    stages: dict[str, Callable[[], object]] = {
        "decode": lambda: load_audio(data, sr=sr),
        "front end": lambda: embedder.frontend(y),
        "embed": lambda: embedder.embed_features([features]),
        "analyse": lambda: rank_emotions(embedder, analyze_audio(embedder, y, sr=sr).windows,
                                         lam=embedder.config.score_lam, k=10),
    }
    stages["m2e end to end"] = lambda: (stages["decode"](), stages["analyse"]())
    encoder = sentence_encoder()
    encoder.keep_recent(4096)  # as the service: the lyrics' segments are read once per upload
    verses = itertools.count()

    title, artist = "Kitchen Dance", "The Made-Up Band"
    context = song_context(title, artist)  # read where the song model is tri-modal

    def read_song(lyrics: str) -> object:
        vectors = song_text.vectors(encoder, lyrics=lyrics, title=title, artist=artist)
        return song_text.read(np.zeros(2), vectors)

    if SONG_TEXT_PATH.is_file():  # new lyrics on every call: nothing is remembered from the call before
        song_text = SongTextModel.load(SONG_TEXT_PATH)
        stages["song text (lyrics, title)"] = lambda: read_song(f"{BENCH_LYRICS}\n{next(verses)}")
    if SONG_MODEL_PATH.is_file() and (song := SongModel.load(SONG_MODEL_PATH)).music_model == embedder.version:
        whole = embedder.represent_tracks([features])[0]
        stages["song model (lyrics)"] = lambda: analyze_song(embedder, song, features, whole,
                                                             f"{BENCH_LYRICS}\n{next(verses)}", context=context)
    if SONG_TEXT_PATH.is_file():

        def with_lyrics() -> object:  # what the route does with an upload's lyrics
            lyrics = f"{BENCH_LYRICS}\n{next(verses)}"
            stages["m2e end to end"]()
            read_song(lyrics)
            if "song model (lyrics)" not in stages:
                return None
            return analyze_song(embedder, song, features, whole, lyrics, context=context)

        stages["m2e end to end + lyrics"] = with_lyrics
    stages["tempo, key, mode"] = partial(tonality, y, sr)
    frontends: tuple[FrontEndName, ...] = ("logmel", "musicnn-msd", "musicnn-msd-tags", "musicnn-msd-tags-chords")
    for name in (*frontends, *(("student-msd-tags",) if STUDENT_WEIGHTS.is_file() else ())):
        stages[f"front end {name}"] = partial(make_frontend(frontend_config(name)), y)
    results |= {name: _timed(fn, repeats) for name, fn in stages.items()}
    print(f"clip: {seconds:.1f} s; bundle {embedder.version}; 1 torch thread; {machine()}")
    print(f"{'stage':<28}{'ms':>10}{'RTF/core':>12}")
    for name, secs in results.items():
        print(f"{name:<28}{secs * 1000:>10.1f}{seconds / secs:>12.0f}")
    ratio = results["musicnn-msd, glibc defaults"] / results["front end musicnn-msd"]
    print(f"musicnn-msd with freed memory kept: {ratio:.2f}x faster than with glibc defaults")
    ratio = results["musicnn-msd, every filter"] / results["front end musicnn-msd"]
    print(f"musicnn-msd on its living filters: {ratio:.2f}x faster than with every filter")
    if args.json:
        args.json.write_text(json.dumps({"clip_seconds": seconds, "bundle": embedder.version, "machine": machine(),
                                         "seconds": results, "rtf_per_core": {k: seconds / v for k, v in
                                                                              results.items()}}, indent=2))


if __name__ == "__main__":
    main()
