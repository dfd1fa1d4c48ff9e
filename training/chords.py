"""Train and evaluate the chord recognizer (``models.harmony.ChordRecognizer``) on rendered MIDI.

In a MIDI file the chords are known from the notes: each ``CHORD_SECONDS`` frame's sounding pitch classes
(weighted by overlap and velocity, the lowest note counted twice) are matched against the 24 major/minor triad
templates by cosine similarity; a frame with no notes, or no triad that fits (similarity below
``MIN_SIMILARITY``), is "N". The same MIDI rendered to audio gives the chroma. Renders come from the built-in
synthesizer and FluidSynth; each clip keeps its data set's split (VGMIDI by game series, EMOPIA by song, MIREX
by artist), so the scores are on pieces the recognizer never heard. Scores are mir_eval's ``root`` and ``majmin``
weighted chord symbol recall, with a training-free baseline beside them: the best triad template on the chroma.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import mir_eval
import numpy as np

from models.atomic import atomic_file
from models.errors import MidiError
from models.harmony import CHORD_SECONDS, CHORDS, ChordRecognizer, chord_chroma, chord_features
from models.manifest import Clip
from training.classify import Logistic
from training.corpus.midi import DRUM_CHANNEL, RENDERERS, MidiNote, read_midi
from training.corpus.synth import SR
from training.features import Skipped, cache_dir
from training.parallel import parallel_map

MIN_SIMILARITY = 0.6  # cosine of a frame's pitch classes with its best triad below which the frame is "N"
BASS_WEIGHT = 1.0  # extra weight of the lowest sounding note of a frame


def triad_templates() -> np.ndarray:
    """(24, 12) unit-norm major then minor triads, root C first (the order of ``CHORDS[1:]``)."""
    templates = np.zeros((24, 12))
    for quality, third in enumerate((4, 3)):
        for root in range(12):
            templates[12 * quality + root, [root, (root + third) % 12, (root + 7) % 12]] = 1.0
    return templates / np.sqrt(3.0)


def pitch_class_weights(notes: list[MidiNote], n_frames: int) -> np.ndarray:
    """(n_frames, 12) sounding weight of each pitch class per chord frame."""
    weights = np.zeros((n_frames, 12))
    lowest = np.full((n_frames, 2), np.inf)  # (pitch, weight) of the lowest note per frame
    for note in notes:
        if note.channel == DRUM_CHANNEL:
            continue
        first, last = int(note.start / CHORD_SECONDS), min(n_frames - 1, int(note.end / CHORD_SECONDS))
        for frame in range(first, last + 1):
            overlap = min(note.end, (frame + 1) * CHORD_SECONDS) - max(note.start, frame * CHORD_SECONDS)
            if overlap <= 0:
                continue
            weight = overlap * note.velocity / 127
            weights[frame, note.pitch % 12] += weight
            if note.pitch < lowest[frame, 0]:
                lowest[frame] = (note.pitch, weight)
    has_bass = np.isfinite(lowest[:, 0])
    weights[has_bass, lowest[has_bass, 0].astype(int) % 12] += BASS_WEIGHT * lowest[has_bass, 1]
    return weights


def template_chords(weights: np.ndarray, *, min_similarity: float = MIN_SIMILARITY) -> np.ndarray:
    """(frames,) indices into ``CHORDS`` of the best triad per frame of pitch-class weights (or chroma)."""
    norms = np.linalg.norm(weights, axis=1)
    similarity = weights @ triad_templates().T / np.maximum(norms, 1e-9)[:, None]
    best = similarity.argmax(axis=1)
    fits = (norms > 1e-9) & (similarity.max(axis=1) >= min_similarity)
    return np.where(fits, 1 + best, 0)


def midi_chords(path: str | Path, n_frames: int) -> np.ndarray:
    """The symbolic chord of each frame of a MIDI file."""
    notes, _ = read_midi(path)
    return template_chords(pitch_class_weights(notes, n_frames))


@dataclass(frozen=True)
class ChordClip:
    id: str
    split: str
    renderer: str
    chroma: np.ndarray  # (frames, 12)
    chords: np.ndarray  # (frames,) reference indices into CHORDS


def _cache_path(midi: Path, renderer: str) -> Path:
    stat = midi.stat()
    raw = json.dumps([str(midi), stat.st_size, stat.st_mtime_ns, renderer, CHORD_SECONDS, "chroma-v1"])
    return cache_dir() / "chroma" / f"{hashlib.sha1(raw.encode()).hexdigest()}.npy"


def rendered_chroma(midi: Path, renderer: str) -> np.ndarray:
    """Chroma of one MIDI file as ``renderer`` plays it (cached on disk; the audio itself is not kept)."""
    cached = _cache_path(midi, renderer)
    if cached.is_file():
        return np.load(cached)
    y, _ = RENDERERS[renderer](midi)
    chroma = chord_chroma(y, SR)
    with atomic_file(cached) as out:
        np.save(out, chroma)
    return chroma


def _chord_clip(clip: Clip, *, renderer: str) -> ChordClip | Skipped:
    midi = Path(clip.extra.get("midi", clip.audio))
    try:
        chroma = rendered_chroma(midi, renderer)
        chords = midi_chords(midi, chroma.shape[0])
    except MidiError as error:
        return Skipped(f"{clip.id}@{renderer}", str(error))
    return ChordClip(f"{clip.id}@{renderer}", clip.split, renderer, chroma, chords)


def chord_clips(clips: list[Clip], renderers: tuple[str, ...], *, workers: int | None = None,
                progress: bool = True) -> tuple[list[ChordClip], list[Skipped]]:
    """Every clip (its ``audio``, or ``extra["midi"]``, a MIDI file) rendered by every renderer; a MIDI file that
    does not read is skipped and listed with its reason."""
    out: list[ChordClip | Skipped] = []
    for renderer in renderers:
        job = partial(_chord_clip, renderer=renderer)
        out += parallel_map(job, clips, workers=workers, desc=f"chroma ({renderer})", unit="clip", progress=progress)
    return [c for c in out if isinstance(c, ChordClip)], [c for c in out if isinstance(c, Skipped)]


def fit_recognizer(clips: list[ChordClip], *, epochs: int = 300, seed: int = 0) -> ChordRecognizer:
    x = np.vstack([chord_features(c.chroma) for c in clips])
    y = np.concatenate([c.chords for c in clips])
    model = Logistic.fit(x, y, classes=len(CHORDS), epochs=epochs, seed=seed)
    weights = model.layer.weight.detach().numpy().T.astype(np.float32)
    bias = model.layer.bias.detach().numpy().astype(np.float32)
    return ChordRecognizer(weights, bias, model.mean.astype(np.float32), model.std.astype(np.float32))


def _intervals(n: int) -> np.ndarray:
    starts = np.arange(n) * CHORD_SECONDS
    return np.column_stack([starts, starts + CHORD_SECONDS])


@dataclass(frozen=True)
class ChordScores:
    """mir_eval weighted chord symbol recall over a set of clips (duration-weighted)."""

    root: float
    majmin: float
    clips: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def score(clips: list[ChordClip], estimate: list[np.ndarray]) -> ChordScores:
    comparisons: dict[str, list[np.ndarray]] = {"root": [], "majmin": []}
    durations = []
    for clip, est in zip(clips, estimate, strict=True):
        intervals = _intervals(len(clip.chords))
        reference, estimated = [CHORDS[i] for i in clip.chords], [CHORDS[i] for i in est]
        durations.append(mir_eval.util.intervals_to_durations(intervals))
        comparisons["root"].append(mir_eval.chord.root(reference, estimated))
        comparisons["majmin"].append(mir_eval.chord.majmin(reference, estimated))
    weights = np.concatenate(durations)
    root, majmin = (mir_eval.chord.weighted_accuracy(np.concatenate(comparisons[k]), weights)
                    for k in ("root", "majmin"))
    return ChordScores(float(root), float(majmin), len(clips), float(weights.sum()))


@dataclass(frozen=True)
class ChordEvaluation:
    """Scores per test renderer: the trained recognizer and the template baseline on chroma."""

    recognizer: dict[str, ChordScores]
    template_baseline: dict[str, ChordScores]
    train_frames: int
    skipped: list[Skipped] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"recognizer": {k: v.to_dict() for k, v in self.recognizer.items()},
                "template_baseline": {k: v.to_dict() for k, v in self.template_baseline.items()},
                "train_frames": self.train_frames, "skipped": [s.__dict__ for s in self.skipped]}


def evaluate(recognizer: ChordRecognizer, clips: list[ChordClip], *, train_frames: int = 0,
             skipped: list[Skipped] | None = None) -> ChordEvaluation:
    trained, baseline = {}, {}
    for renderer in sorted({c.renderer for c in clips}):
        subset = [c for c in clips if c.renderer == renderer]
        trained[renderer] = score(subset, [recognizer.chords(c.chroma) for c in subset])
        baseline[renderer] = score(subset, [template_chords(c.chroma, min_similarity=0.0) for c in subset])
    return ChordEvaluation(trained, baseline, train_frames, skipped or [])


def train_chords(clips: list[Clip], *, renderers: tuple[str, ...], out: Path, test_splits: tuple[str, ...],
                 workers: int | None = None, progress: bool = True) -> ChordEvaluation:
    """Render, label, fit on the train split, score on ``test_splits``; write the recognizer to ``out``."""
    data, skipped = chord_clips(clips, renderers, workers=workers, progress=progress)
    train = [c for c in data if c.split == "train"]
    test = [c for c in data if c.split in test_splits]
    if not train or not test:
        raise ValueError(f"need clips in the train split and in {test_splits}: got {len(train)} and {len(test)}")
    recognizer = fit_recognizer(train)
    recognizer.save(out)
    return evaluate(recognizer, test, train_frames=sum(len(c.chords) for c in train), skipped=skipped)


def midi_clips(shared: Path) -> list[Clip]:
    """The MIDI pieces of VGMIDI, EMOPIA and MIREX (``mirex_mm/midi``) with their data sets' splits; sets missing
    from ``shared`` are left out."""
    from training.datasets import AUDIO_READERS, MIDI_READERS

    clips: list[Clip] = []
    for name in ("vgmidi", "emopia"):
        if (shared / name).is_dir():
            clips += MIDI_READERS[name](shared / name)
    if (shared / "mirex_mm").is_dir():
        clips += [c for c in AUDIO_READERS["mirex_mm"](shared / "mirex_mm") if "midi" in c.extra]
    if not clips:
        raise ValueError(f"{shared}: no vgmidi/, emopia/ or mirex_mm/ with MIDI files")
    return clips
