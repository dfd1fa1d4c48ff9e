"""The built-in labelled corpus: VA trajectory -> composed, synthesized audio + simulated annotations.

``synth_corpus`` writes ``OUT/audio/*.flac`` (16 kHz mono) and ``OUT/manifest.jsonl``; the same seed gives the
same corpus, clip by clip, whatever the number of workers; no two clips of a corpus share a title.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf

from models.atomic import atomic_directory
from models.manifest import Clip, write_manifest
from models.vocabulary import mood_tags
from training.corpus import metadata
from training.corpus.annotators import simulate_ratings
from training.corpus.compose import compose, sample_style
from training.corpus.synth import SR, master, render_notes, reverb
from training.corpus.trajectory import FRAME_RATE, frame_times, sample_trajectory
from training.parallel import parallel_map

MASTER_GAIN = 0.9


def split_of(index: int) -> str:
    """20 % test, 10 % val, 70 % train, interleaved so that any prefix of the corpus is balanced."""
    return {0: "test", 1: "test", 2: "val"}.get(index % 10, "train")


def synth_audio(*, trajectory: np.ndarray, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Audio (float32, SR) whose cues follow ``trajectory``, and the style that was drawn."""
    style_rng, note_rng, noise_rng = rng.spawn(3)
    style = sample_style(style_rng)
    notes = compose(trajectory=trajectory, frame_rate=FRAME_RATE, seconds=seconds, style=style, rng=note_rng)
    noise_seed = int(noise_rng.integers(2**31))
    y = render_notes(notes, seconds=seconds, seed=noise_seed)
    y = reverb(y, wet=style.reverb, seed=noise_seed)
    return master(y, gain=MASTER_GAIN * 10.0 ** (style.gain_db / 20.0)), asdict(style)


def synth_clip(index: int, *, seed: int, seconds: float, n_raters: int = 8) -> tuple[Clip, np.ndarray]:
    """One labelled clip and its audio; deterministic in (seed, index)."""
    trajectory_rng, audio_rng, rater_rng, name_rng = np.random.default_rng([seed, index]).spawn(4)
    truth = sample_trajectory(rng=trajectory_rng, seconds=seconds)
    y, style = synth_audio(trajectory=truth, seconds=seconds, rng=audio_rng)
    mean, std = simulate_ratings(rng=rater_rng, truth=truth, n_raters=n_raters)
    t = frame_times(seconds)[:, None]
    tags = mood_tags(*mean.mean(axis=0))
    clip = Clip(
        id=f"synth-{index:05d}", audio=f"audio/synth-{index:05d}.flac",
        curve=np.hstack([t, mean]), curve_std=np.hstack([t, std]), tags=tuple(tags),
        title=metadata.title(name_rng, tags[0]), artist=metadata.artist(name_rng), split=split_of(index),
        label_type="dynamic", extra={"synth": {"seed": seed, "index": index, "style": style}},
    )
    return clip, y


def _write_clip(index: int, *, seed: int, seconds: float, folder: Path) -> Clip:
    clip, y = synth_clip(index, seed=seed, seconds=seconds)
    sf.write(folder / clip.audio, y, SR, format="FLAC", subtype="PCM_16")
    return clip


def synth_corpus(*, n: int, seconds: float, seed: int, out: str | Path, workers: int | None = None,
                 overwrite: bool = False, progress: bool = True) -> Path:
    """Generate ``n`` clips of ``seconds`` into ``out`` (atomically). Returns the manifest path."""
    if n < 1 or seconds < 1:
        raise ValueError("need n >= 1 clips of at least 1 second")
    with atomic_directory(out, overwrite=overwrite) as folder:
        (folder / "audio").mkdir()
        job = partial(_write_clip, seed=seed, seconds=seconds, folder=folder)
        clips = parallel_map(job, list(range(n)), workers=workers, desc="synth", unit="clip", progress=progress)
        titles = metadata.unique_titles([clip.title for clip in clips])
        clips = [replace(clip, title=name) for clip, name in zip(clips, titles, strict=True)]
        write_manifest(folder / "manifest.jsonl", clips)
    return Path(out) / "manifest.jsonl"
