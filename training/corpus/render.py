"""Render a MIDI data set to audio and write its manifest; import an audio data set's manifest in place."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import soundfile as sf

from models.atomic import atomic_directory
from models.errors import DatasetLayoutError, OutputExistsError
from models.manifest import Clip, write_manifest
from training.corpus.midi import RENDERERS, check_renderer
from training.corpus.synth import SR
from training.datasets import AUDIO_READERS, MIDI_READERS
from training.parallel import parallel_map


def _render_clip(clip: Clip, *, renderer: str, folder: Path) -> Clip:
    y, _ = RENDERERS[renderer](clip.audio)
    relative = f"audio/{clip.id}.flac"
    sf.write(folder / relative, y, SR, format="FLAC", subtype="PCM_16")
    return replace(clip, audio=relative, extra={**clip.extra, "source": Path(clip.audio).name, "renderer": renderer})


def render_dataset(*, dataset: str, root: str | Path, out: str | Path, renderer: str = "builtin",
                   workers: int | None = None, overwrite: bool = False, progress: bool = True,
                   limit: int | None = None, splits: tuple[str, ...] | None = None) -> Path:
    """Render every clip of a MIDI data set (of ``splits``, if given) into ``out`` (atomically). Returns the
    manifest path.

    Raises before any work starts for an unknown data set, a missing layout, an existing ``out`` or a renderer
    that cannot run here; a corrupt MIDI file stops the run with its name and leaves nothing behind.
    """
    if dataset not in MIDI_READERS:
        raise DatasetLayoutError(f"unknown MIDI data set {dataset!r}; choose one of {sorted(MIDI_READERS)}")
    check_renderer(renderer)
    clips = [c for c in MIDI_READERS[dataset](Path(root)) if splits is None or c.split in splits][:limit]
    with atomic_directory(out, overwrite=overwrite) as folder:
        (folder / "audio").mkdir()
        job = partial(_render_clip, renderer=renderer, folder=folder)
        rendered = parallel_map(job, clips, workers=workers, desc=f"render {dataset}", unit="clip",
                                progress=progress)
        write_manifest(folder / "manifest.jsonl", rendered)
    return Path(out) / "manifest.jsonl"


def import_dataset(*, dataset: str, root: str | Path, out: str | Path, overwrite: bool = False) -> Path:
    """Write a manifest for an audio data set; audio stays where it is, referenced by relative paths."""
    if dataset not in AUDIO_READERS:
        raise DatasetLayoutError(f"unknown audio data set {dataset!r}; choose one of {sorted(AUDIO_READERS)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; choose a new manifest path or pass --overwrite")
    return write_manifest(out, AUDIO_READERS[dataset](Path(root)))
