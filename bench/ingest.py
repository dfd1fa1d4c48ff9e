"""Ingest throughput with song context: the same FLAC files with and without tags and sidecar lyrics.

    python bench/ingest.py [--n 40] [--seconds 30] [--rounds 2] [--json OUT]

Writes ``n`` generated clips twice as FLAC: bare, and with Vorbis comments (title, artist, album, genre, date) and a
``.lrc`` sidecar of about 250 words of made-up lyrics. Each round ingests each folder into a fresh data folder
(SQLite, the default model, the service's decoding workers: ``moodspace ingest`` without the reindex), bare first,
then tagged, and reports files per second and the ratio tagged / bare (best round of each); and the median time of
what a tagged file adds, its tags and sidecar read (``app.cli.Source.song``). The stored lyrics are checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # bench/http.py must not shadow the standard library

import argparse
import json
import os
import tempfile
import time

import mutagen.flac
import numpy as np
import soundfile as sf

from app import catalog
from app.cli import ingest_files, sources
from app.services import Services
from app.settings import Settings
from bench.common import machine
from training.corpus.generate import synth_clip
from training.corpus.synth import SR

LINE = ("morning light across the kitchen floor we laugh and dance like never before the river runs "
        "and the city sleeps I hold your hand the night is deep")


def lyrics(i: int, *, words: int = 250) -> str:
    vocabulary = LINE.split()
    lines = [" ".join(vocabulary[(i + k + j) % len(vocabulary)] for j in range(10)) for k in range(words // 10)]
    return "\n".join(f"[00:{k % 60:02d}.00]{line}" for k, line in enumerate(lines))


def write_clips(folder: Path, *, n: int, seconds: float, tagged: bool) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        _, y = synth_clip(i, seed=77, seconds=seconds)
        path = folder / f"clip{i:04d}.flac"
        sf.write(path, y, SR, format="FLAC")
        if tagged:
            audio = mutagen.flac.FLAC(path)
            audio.update({"title": f"Song {i}", "artist": f"Band {i % 7}", "album": "Bench", "genre": "Pop",
                          "date": "2024"})
            audio.save()
            path.with_suffix(".lrc").write_text(lyrics(i), encoding="utf-8")


def ingest_rate(folder: Path, data_dir: Path) -> tuple[float, int]:
    """Files per second of one ingest of ``folder`` into a fresh ``data_dir``; and the tracks with lyrics."""
    os.environ["MOODSPACE_DATA_DIR"] = str(data_dir)
    services = Services.start(Settings(), text=False, batch=True)
    try:
        items = list(sources(folder))
        start = time.perf_counter()
        counts = ingest_files(services, items)
        elapsed = time.perf_counter() - start
        assert counts.added == len(items), counts
        with services.sessions() as session:
            tracks, _ = catalog.list_tracks(session, limit=len(items), offset=0)
            with_lyrics = sum(1 for t in tracks if t.lyrics)
    finally:
        services.close()
    return len(items) / elapsed, with_lyrics


def context_ms(folder: Path) -> float:
    """Median milliseconds of what ingest adds per tagged file: its tags and its sidecar read."""
    times = []
    for item in sources(folder):
        data = item.file.read_bytes()
        start = time.perf_counter()
        info = item.song(data)
        times.append((time.perf_counter() - start) * 1e3)
        assert info.lyrics and info.artist, item.file
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"bare": [], "tagged": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in results:
            write_clips(root / name, n=args.n, seconds=args.seconds, tagged=name == "tagged")
        for r in range(args.rounds):
            for name in results:
                rate, with_lyrics = ingest_rate(root / name, root / f"data-{name}-{r}")
                assert with_lyrics == (args.n if name == "tagged" else 0), (name, with_lyrics)
                results[name].append(rate)
                print(f"round {r + 1} {name:<6} {rate:6.2f} files/s", flush=True)
        context = context_ms(root / "tagged")
    best = {name: max(rates) for name, rates in results.items()}
    print(f"best of {args.rounds}: bare {best['bare']:.2f} files/s, tagged {best['tagged']:.2f} files/s "
          f"(ratio tagged / bare {best['tagged'] / best['bare']:.3f}); {args.n} clips of {args.seconds:g} s; "
          f"tags + sidecar {context:.2f} ms per file (median); {machine()}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "n": args.n, "seconds": args.seconds,
                                         "files_per_s": results, "context_ms": context}, indent=2))


if __name__ == "__main__":
    main()
