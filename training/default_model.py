"""Retrain the built-in default model (`make model`, `moodspace retrain-default`).

Music and emotion encoders, over the pretrained musicnn front end with its tag activations and the key-relative
chord shares (``DEFAULT_FRONTEND``; ``--frontend musicnn-msd-tags`` drops the chords, ``musicnn-msd-tags-key`` has
the local key and tempo features instead); the categorical teachers read ``PRETRAINED_FRONTEND``; the VA reading
by retrieval over the VA grid (``--dimensional`` trains a dimensional head that reads it instead, which read real
valence worse: docs/experiments.md), or, where the quadrant head is trained, from that head (``CLASS_READING``: the
expected VA placement of its class probabilities per window, chosen on 4Q and MIREX val over the grid reading).
Data: the built-in corpus (1000 clips of 30 s, seed 0) plus, when ../shared/datasets is
present, rendered VGMIDI (train split, by game series) and EMOPIA (train split), and the real recordings of 4Q
(quadrants) and MIREX (clusters), whose train splits (by artist) also train the categorical heads; validation on
the val splits of the built-in corpus, VGMIDI, 4Q and MIREX (EMOPIA's val split is kept for the text evaluation).
Text heads: EmoBank train (with Warriner word norms). Without ../shared the model is trained on the built-in
corpus alone, and says so. Corpora are generated, rendered or imported once into the work folder and reused.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from models.bundle import Bundle, load_bundle, save_bundle
from models.config import FrontEndName, ModelConfig, TextConfig
from models.default import DEFAULT_BUNDLE
from models.encoders import CrossModalModel
from models.frontend import frontend_config
from models.song_model import SONG_MODEL_PATH
from models.songtext import SONG_TEXT_PATH
from training.corpus.generate import synth_corpus
from training.corpus.midi import Renderer
from training.corpus.render import import_dataset, render_dataset
from training.datasets import AudioDataset
from training.model_card import write_model_card
from training.real_audio import eval_real_audio, probe_baseline
from training.run import eval_bundle, train_bundle, train_val_items
from training.run_text import eval_text, train_text
from training.song_model import SONG_MODEL_LYRICS, SONG_MODEL_SETS, train_song_model
from training.song_text import SONG_TEXT_SETS, train_song_text
from training.soup import soup
from training.teachers import teacher_logits
from training.text import TextTrainConfig, without_text_heads
from training.train import Teachers, TrainConfig

log = logging.getLogger(__name__)
SYNTH: dict[str, float] = {"n": 1000, "seconds": 30.0, "seed": 0}
# The default model's: musicnn's features and tag activations (it hears real recordings) with the key-relative chord
# shares beside each frame, which lifted every real-set val sum over four seeds (docs/experiments.md, "Key-relative
# chords beside each frame"; the key features gained too little: "Key features in the default").
DEFAULT_FRONTEND: FrontEndName = "musicnn-msd-tags-chords"
# The pretrained musicnn's features and tag activations, nothing the project computes beside them: what the teachers
# read whatever the student's front end (teachers reading the chord shares too taught a model that rose on val and
# not on test: docs/experiments.md, "Key-relative chords beside each frame"), and the linear probe the model card
# sets beside the model (issue 14's baseline; the card adds the probe over the model's own front end).
PRETRAINED_FRONTEND: FrontEndName = "musicnn-msd-tags"
# The default's training seed, chosen on val among the four measured (docs/experiments.md, "The chords in the
# default"): of the seeds whose model beats the probe on every real-set val figure, the one with the largest sum of
# them; `make model` trains it.
DEFAULT_SEED = 2
CLASS_READING = "quadrant"  # the head whose class placements give the VA reading where it is trained
# The grid reading's share in that reading, (valence, arousal): chosen on 4Q and MIREX val by
# `moodspace readings-experiment` (the largest sum of the val figures among shares that beat the probe on every 4Q
# val figure; docs/experiments.md, "The grid reading in the valence").
GRID_SHARE = (0.6, 0.0)
DISTIL = True  # a teacher per categorical set, its soft targets for the heads (docs/experiments.md, "Distillation")
# The moving average of the weights tried in recipe-experiment's ema variants (``TrainConfig.ema_decay``).
EMA_DECAY = 0.995
FEATURE_DROPOUT = 0.25  # the share of feature dimensions recipe-experiment's fdrop variants drop
RENDITION_CONSISTENCY = 1.0  # the weight of the consist variants' term between renditions
KIND_ALIGNMENT = 1.0  # the weight of the aligned variants' term between recordings and renders
CROP_FRAMES = 9  # the default's random training crops: 3 to 9 frames, 9-27 s (docs/experiments.md, "Shorter crops")
# Warriner's words teach the sentence encoder's tuning (tune-text), not the VA head: on the tuned encoder the head
# reads EmoBank val with r 0.746 / 0.608 without them, 0.734 / 0.559 with (docs/experiments.md, "Tuning ...").
HEAD_WORDS = False
# ``--soup-alpha``: the default as a soup (``training.soup``) of the default's recipe (``recipe``) and the
# renderer-invariant one (``invariant``: the MIDI sets' pieces through the varied renderers too), trained from one
# seed and joined at this weight of the invariant one. None, as shipped: the default's recipe alone (a soup trades
# 4Q quadrant readings for renderer-invariance: docs/experiments.md, "Soups on a second machine").
SOUP_ALPHA: float | None = None


@dataclass(frozen=True)
class Sources:
    synth: Path
    vgmidi: Path | None
    emopia: Path | None
    emobank: Path | None
    warriner: Path | None
    fourq: Path | None = None
    mirex: Path | None = None
    varied: tuple[Path, ...] = ()  # train splits of VGMIDI and EMOPIA again, by the varied renderers
    vgmidi_fluidsynth: Path | None = None  # VGMIDI's val and test series rendered by FluidSynth: never trained on

    @property
    def real(self) -> list[Path]:
        """Manifests of real recordings with categorical labels."""
        return [m for m in (self.fourq, self.mirex) if m is not None]


def _shared(shared: Path | None, name: str) -> Path | None:
    path = shared / name if shared else None
    return path if path is not None and path.is_dir() else None


def prepare(*, shared: Path | None, work: Path, synth_size: dict[str, float] = SYNTH,
            augment: bool = False) -> Sources:
    """Generate and render the training corpora into ``work`` (reused when already there); with ``augment``, the
    MIDI sets' train splits again through each varied renderer (``_varied_renderers``): a random production per
    piece."""
    synth = work / "synth" / "manifest.jsonl"
    if not synth.is_file():
        synth_corpus(out=synth.parent, overwrite=True, n=int(synth_size["n"]), seconds=synth_size["seconds"],
                     seed=int(synth_size["seed"]))
    rendered = {}
    for name in ("vgmidi", "emopia"):
        root, manifest = _shared(shared, name), work / name / "manifest.jsonl"
        if root is not None and not manifest.is_file():
            render_dataset(dataset=name, root=root, out=manifest.parent, renderer="builtin", overwrite=True)
        rendered[name] = manifest if root is not None else None
    imported = {name: _imported(shared, work, name) for name in ("4q", "mirex_mm")}
    varied = tuple(_varied(shared, work, name, renderer) for renderer in _varied_renderers(augment)
                   for name in ("vgmidi", "emopia") if rendered[name])
    sources = Sources(synth, rendered["vgmidi"], rendered["emopia"], _shared(shared, "emobank"),
                      _shared(shared, "warriner2013"), imported["4q"], imported["mirex_mm"], varied,
                      _other_renderer(shared, work))
    if sources.vgmidi is None:
        log.warning("%s not found: training on the built-in corpus alone", shared)
    return sources


def _varied_renderers(augment: bool) -> tuple[Renderer, ...]:
    """The varied renderers ``--augment`` adds: the built-in one, and FluidSynth's where it is installed."""
    if not augment:
        return ()
    return ("builtin-varied", *(("fluidsynth-varied",) if shutil.which("fluidsynth") else ()))


def _varied(shared: Path | None, work: Path, name: str, renderer: Renderer) -> Path:
    """The train split of a MIDI set rendered with a production per piece, written once into ``work``."""
    suffix = "varied" if renderer == "builtin-varied" else renderer
    root, manifest = _shared(shared, name), work / f"{name}-{suffix}" / "manifest.jsonl"
    if root is not None and not manifest.is_file():
        render_dataset(dataset=name, root=root, out=manifest.parent, renderer=renderer, overwrite=True,
                       splits=("train",))
    return manifest


def _other_renderer(shared: Path | None, work: Path) -> Path | None:
    """VGMIDI's val and test pieces rendered by FluidSynth, written once into ``work`` (None without FluidSynth):
    the val series choose between recipes across renderers, the test series report."""
    root, manifest = _shared(shared, "vgmidi"), work / "vgmidi-fluidsynth" / "manifest.jsonl"
    if root is None or shutil.which("fluidsynth") is None:
        return None
    if not manifest.is_file():
        render_dataset(dataset="vgmidi", root=root, out=manifest.parent, renderer="fluidsynth", overwrite=True,
                       splits=("val", "test"))
    return manifest


def _imported(shared: Path | None, work: Path, name: AudioDataset) -> Path | None:
    """The manifest of a real-audio set, written once into ``work`` (its audio stays in ../shared)."""
    root, manifest = _shared(shared, name), work / f"{name}.jsonl"
    if root is not None and not manifest.is_file():
        import_dataset(dataset=name, root=root, out=manifest, overwrite=True)
    return manifest if root is not None else None


@dataclass(frozen=True)
class Recipe:
    """What the default's music model trains on, validates on, and how it is configured."""

    music: list[Path]  # train splits of these
    validation: list[Path]  # val splits of these
    categorical: list[Path]  # the sets a teacher is trained for (``distil``)
    config: ModelConfig


def recipe(sources: Sources, *, frontend: FrontEndName = DEFAULT_FRONTEND, dimensional: bool = False) -> Recipe:
    music = [m for m in (sources.synth, sources.vgmidi, sources.emopia, *sources.real, *sources.varied)
             if m is not None]
    validation = [m for m in (sources.synth, sources.vgmidi, *sources.real) if m is not None]
    taxonomies = tuple(t for t, present in (("quadrant", sources.fourq or sources.emopia),
                                            ("mirex_cluster", sources.mirex)) if present)
    config = replace(ModelConfig().with_frontend(frontend_config(frontend)), taxonomies=taxonomies,
                     dimensional=dimensional, **_reading(taxonomies))
    categorical = [m for m in (*sources.real, sources.emopia) if m is not None]
    return Recipe(music, validation, categorical, config)


def teachers_of(chosen: Recipe) -> Teachers | None:
    """Soft targets of a teacher per categorical set (``training.teachers``) over ``PRETRAINED_FRONTEND``'s features,
    or None without such sets."""
    return (teacher_logits(chosen.categorical, frontend=frontend_config(PRETRAINED_FRONTEND))
            if chosen.categorical else None)


def train_music(chosen: Recipe, *, out: Path, train_config: TrainConfig, teachers: Teachers | None,
                workers: int | None = None, init: CrossModalModel | None = None) -> Bundle:
    return train_bundle(data=chosen.music, val=chosen.validation, out=out, config=chosen.config,
                        train_config=train_config, name="moodspace-default", teachers=teachers, workers=workers,
                        init=init)


def invariant(train_config: TrainConfig) -> TrainConfig:
    """The renderer-invariant recipe's training (recipe-experiment's ``rendition-origheads-ema-distil-short``): each
    epoch one rendition of each MIDI piece, only a piece's own render teaches the categorical heads, and the model
    kept is a moving average of the weights."""
    return replace(train_config, one_rendition=True, heads_from_first_rendition=True, ema_decay=EMA_DECAY)


def train_soup(plain: Sources, varied: Sources, *, work: Path, out: Path, train_config: TrainConfig, alpha: float,
               distil: bool, frontend: FrontEndName = DEFAULT_FRONTEND, workers: int | None = None) -> Bundle:
    """The default's recipe on ``plain`` and the invariant one on ``varied`` (the same sources plus the varied
    renders), trained from one seed, joined at ``alpha`` (``training.soup.soup``: alignment, lam and readout
    fitted again on the varied recipe's items)."""
    chosen, wide = recipe(plain, frontend=frontend), recipe(varied, frontend=frontend)
    teachers = teachers_of(chosen) if distil else None  # both recipes' categorical sets are the same
    ends = [train_music(chosen, out=work / "bundle-default-recipe", train_config=train_config, teachers=teachers,
                        workers=workers),
            train_music(wide, out=work / "bundle-invariant-recipe", train_config=invariant(train_config),
                        teachers=teachers, workers=workers)]
    found = train_val_items(wide.music, wide.validation, wide.config, workers=workers)
    model = soup(ends[0].model, ends[1].model, alpha=alpha, train_items=found.train, val_items=found.val,
                 train_config=train_config)
    soup_metrics = {"alpha": alpha, "ends": [{"version": e.version, **{k: e.metrics[k] for k in SOUP_END_METRICS}}
                                             for e in ends]}
    return save_bundle(model, out, name="moodspace-default",
                       metrics={**ends[0].metrics, "history": [], "soup": soup_metrics})


SOUP_END_METRICS = ("train_seconds", "best_epoch", "n_train", "val", "train_config")


def music_of(bundle: Path, out: Path) -> Bundle:
    """The music and emotion encoders of ``bundle``, its text heads and evaluation dropped, saved at ``out``."""
    loaded = load_bundle(bundle)
    metrics = {k: v for k, v in loaded.metrics.items() if k not in ("text", "evaluation", "sources")}
    return save_bundle(without_text_heads(loaded.model), out, name="moodspace-default", metrics=metrics)


def _reading(taxonomies: tuple[str, ...]) -> dict:
    """How the default reads VA: ``CLASS_READING``'s placements with ``GRID_SHARE`` of the grid reading, where
    that head is trained; otherwise the grid reading."""
    return {"class_reading": CLASS_READING, "grid_share": GRID_SHARE} if CLASS_READING in taxonomies else {}


def retrain_default(*, shared: Path | None, work: Path, out: Path = DEFAULT_BUNDLE, card: Path | None = None,
                    synth_size: dict[str, float] = SYNTH, train_config: TrainConfig | None = None,
                    frontend: FrontEndName = DEFAULT_FRONTEND, dimensional: bool = False,
                    song_text: Path | None = SONG_TEXT_PATH, augment: bool = False,
                    distil: bool = DISTIL, music_from: Path | None = None,
                    song_model: Path | None = SONG_MODEL_PATH, soup_alpha: float | None = SOUP_ALPHA) -> Bundle:
    """Train, evaluate and install the default bundle; write its model card; refit the lyrics and title/artist
    readings on the new audio reading (``song_text``, where the shared folder has ``SONG_TEXT_SETS``) and the
    song model on the new music model (``song_model``, where it has ``SONG_MODEL_SETS``).
    ``augment`` adds the MIDI sets' train pieces with a random production each (``prepare``); ``distil`` trains a
    teacher per categorical data set first and teaches the categorical heads with its soft targets too.
    ``music_from`` gives a bundle whose music and emotion encoders are kept instead of trained (after a new text
    tuning: only the text heads, the evaluation and the song-text readings are redone). ``soup_alpha`` trains the
    default as a soup of two recipes (``train_soup``) where the varied renders exist (they need ../shared); without
    them, or with None, the default's recipe alone (with ``augment``, on the varied renders too)."""
    sources = prepare(shared=shared, work=work, synth_size=synth_size, augment=augment)
    souped = bool(soup_alpha) and music_from is None  # a kept music model needs no varied renders
    varied = prepare(shared=shared, work=work, synth_size=synth_size, augment=True) if souped else sources
    if music_from is not None:
        bundle = music_of(music_from, work / "bundle-music")
    elif soup_alpha and varied.varied:
        bundle = train_soup(sources, varied, work=work, out=work / "bundle-music", alpha=soup_alpha, distil=distil,
                            train_config=train_config or TrainConfig(), frontend=frontend)
    else:
        chosen = recipe(sources, frontend=frontend, dimensional=dimensional)
        bundle = train_music(chosen, out=work / "bundle-music", train_config=train_config or TrainConfig(),
                             teachers=teachers_of(chosen) if distil else None)
    if sources.emobank is not None:
        bundle = train_text(bundle=work / "bundle-music", out=work / "bundle-text", emobank_root=sources.emobank,
                            music=[m for m in (sources.synth, sources.vgmidi) if m is not None],
                            warriner=sources.warriner if HEAD_WORDS else None, config=TextTrainConfig(),
                            text_config=TextConfig())
    trained = work / ("bundle-text" if sources.emobank is not None else "bundle-music")
    evaluation = evaluate(trained, sources)
    save_bundle(load_bundle(trained).model, work / "bundle-final", name="moodspace-default",
                metrics={**bundle.metrics, "evaluation": evaluation, "sources": _describe(sources)})
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(work / "bundle-final", out)
    if song_text is not None and shared is not None and sources.real and all(
            (shared / name).is_dir() for name in SONG_TEXT_SETS):
        report = train_song_text(datasets=shared, manifests=sources.real, bundle=out, out=song_text)
        (work / "song_text.json").write_text(json.dumps(report, indent=2))
    if song_model is not None and shared is not None and SONG_MODEL_LYRICS in {m.stem for m in sources.real} and all(
            (shared / name).is_dir() for name in SONG_MODEL_SETS):
        train_song_model(sources.real, lyrics_sets=shared, out=song_model, music=out, report=work / "song_model")
    if card is not None:
        write_model_card(card, load_bundle(out), song_model)
    return load_bundle(out)


def evaluate(bundle: Path, sources: Sources) -> dict:
    """Held-apart metrics: real recordings; retrieval on the test splits (VGMIDI's val and test series also as
    FluidSynth renders);
    EMOPIA val quadrants; text retrieval and text -> VA on EmoBank dev."""
    results: dict = {}
    if sources.real:  # real recordings first
        results["real_audio"] = [eval_real_audio(bundle=bundle, data=m, split=s).to_dict()
                                 for m in sources.real for s in ("val", "test")]
        results |= probes(load_bundle(bundle).config.frontend.name, sources.real)
    results["synth_test"] = eval_bundle(bundle=bundle, data=sources.synth, split="test").to_dict()
    if sources.vgmidi is not None:
        results["vgmidi_test"] = eval_bundle(bundle=bundle, data=sources.vgmidi, split="test").to_dict()
    if sources.vgmidi_fluidsynth is not None:
        for split in ("val", "test"):
            results[f"vgmidi_{split}_fluidsynth"] = eval_bundle(bundle=bundle, data=sources.vgmidi_fluidsynth,
                                                                split=split).to_dict()
    if sources.emopia is not None:  # its val songs are never trained on nor used for a choice
        results["emopia_val"] = eval_real_audio(bundle=bundle, data=sources.emopia, split="val").to_dict()
    if sources.emobank is not None and sources.emopia is not None and sources.vgmidi is not None:
        results["text"] = eval_text(bundle=bundle, emobank_root=sources.emobank,
                                    music_train=[sources.synth, sources.vgmidi],
                                    music_test=[(sources.emopia, "val"), (sources.vgmidi, "test")]).to_dict()
    return results


def probes(frontend: FrontEndName, real: list[Path]) -> dict:
    """The linear probe on ``PRETRAINED_FRONTEND`` per real set ("probe"), and over the model's own ``frontend``
    where that reads more ("probe_own_frontend": what the probe makes of the same inputs)."""
    results: dict = {"probe": {m.stem: probe_baseline(m, frontend=PRETRAINED_FRONTEND) for m in real}}
    if frontend != PRETRAINED_FRONTEND:
        results["probe_own_frontend"] = {"frontend": frontend,
                                         "sets": {m.stem: probe_baseline(m, frontend=frontend) for m in real}}
    return results


def _describe(sources: Sources) -> dict[str, str | None]:
    return {name: (", ".join(map(str, path)) if isinstance(path, tuple) else str(path)) if path else None
            for name, path in sources.__dict__.items()}
