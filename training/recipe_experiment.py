"""``moodspace recipe-experiment``: the default's music model trained several ways over several seeds, judged on
the real recordings' artist-held-apart splits and EMOPIA val, as the model card reads them, and by retrieval on
VGMIDI's test series (the built-in renders and FluidSynth's, a renderer never trained on).

Variants: ``plain`` (the recipe as it is), ``distil`` (soft targets of a teacher per categorical set,
``training.teachers``), ``augment`` (the MIDI train pieces again through the varied renderers),
``augment-distil``, ``distil-stats`` (distil, with the frames' mean and spread beside the GRU's summary:
``EncoderConfig.stats_pool``) and ``distil-short`` (distil on the default's shorter random crops,
``default_model.CROP_FRAMES``; ``augment-distil-short`` both; the other variants crop as ``TrainConfig`` does,
8-24 frames); ``rendition-distil-short`` (distil-short with the augmented data, but each epoch trains on one
rendition of each MIDI piece, drawn at random: ``TrainConfig.one_rendition``; ``rendition-vgmidi-distil-short``
the same with VGMIDI's varied renders only); ``within-distil-short`` (distil-short with the CCA term centred on
each data set's own mean in a batch: ``TrainConfig.cca_within_sets``); ``ema-distil-short`` (distil-short,
validated and kept as a moving average of the weights, ``default_model.EMA_DECAY``: ``TrainConfig.ema_decay``) and
``rendition-ema-distil-short`` (the same on rendition-distil-short); ``fdrop-distil-short`` (distil-short, each
training window with a share of its feature dimensions dropped, ``default_model.FEATURE_DROPOUT``:
``TrainConfig.feature_dropout``; ``fdrop-ema-distil-short`` with the moving average too);
``rendition-origheads-distil-short`` and ``rendition-origheads-ema-distil-short`` (only a piece's own render
teaches the categorical heads, its other renditions the shared space: ``TrainConfig.heads_from_first_rendition``);
``rendition-consist-distil-short`` and ``rendition-origheads-consist-distil-short`` (the same window of two
renditions of a piece pulled together, ``default_model.RENDITION_CONSISTENCY``:
``TrainConfig.rendition_consistency``); ``key-distil-short`` (distil-short over the ``musicnn-msd-tags-key``
front end: local mode, key strength and tempo beside each frame);
``aligned-distil-short`` (distil-short with real recordings and rendered music of one quadrant pulled
together in the music representation, ``default_model.KIND_ALIGNMENT``: ``TrainConfig.kind_alignment``; no
varied renders); ``chords-distil-short`` (distil-short over the ``musicnn-msd-tags-chords`` front end: the chord
recognizer's key-relative chord shares beside each frame; the teachers read ``PRETRAINED_FRONTEND``: the
default's recipe since stop 49); ``tags-distil-short`` (distil-short over ``PRETRAINED_FRONTEND`` alone, the
default's front end before stop 49).
A ``stem-`` before a variant's name trains it from the seed's stem (the default's recipe, ``distil-short``, for
``STEM_EPOCHS`` epochs, trained once per seed and kept in the output folder) instead of fresh weights: two such
variants of a seed share their start, so their soup joins branches of one run.
One seed's variants share their data and differ only in what the variant names; val figures decide, test figures
are reported.

``soup_experiment`` reads two variants' bundles of each seed from such a run and judges models on the line between
their weights (``training.soup``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from models.bundle import load_bundle, save_bundle
from models.config import FrontEndName
from models.encoders import CrossModalModel
from training.default_model import (
    CROP_FRAMES,
    DEFAULT_FRONTEND,
    EMA_DECAY,
    FEATURE_DROPOUT,
    KIND_ALIGNMENT,
    PRETRAINED_FRONTEND,
    RENDITION_CONSISTENCY,
    Sources,
    prepare,
    recipe,
    teachers_of,
    train_music,
)
from training.real_audio import eval_real_audio
from training.run import eval_bundle, train_val_items
from training.soup import refit_heads, soup
from training.splits import Split
from training.train import Teachers, TrainConfig

Variant = Literal["plain", "distil", "augment", "augment-distil", "distil-stats", "distil-short",
                  "augment-distil-short", "rendition-distil-short", "rendition-vgmidi-distil-short",
                  "within-distil-short", "ema-distil-short", "rendition-ema-distil-short",
                  "fdrop-distil-short", "fdrop-ema-distil-short",
                  "rendition-origheads-distil-short", "rendition-origheads-ema-distil-short",
                  "rendition-consist-distil-short", "rendition-origheads-consist-distil-short",
                  "key-distil-short", "stem-distil-short", "stem-rendition-origheads-ema-distil-short",
                  "aligned-distil-short", "chords-distil-short", "tags-distil-short"]
STEM_EPOCHS = 5  # the stem- variants' shared start: epochs of the default's recipe before the branches part
KEY_FRONTEND: FrontEndName = "musicnn-msd-tags-key"  # the key variant's front end
CHORD_FRONTEND: FrontEndName = "musicnn-msd-tags-chords"  # the chords variant's front end
HELD_APART: tuple[Split, ...] = ("val", "test")  # val chooses between variants, test reports
SCORES = ("valence_auc", "arousal_auc", "reading_accuracy", "head_accuracy", "head_macro_f1", "m2e_mrr", "e2m_mrr")


def _scores(bundle: Path, manifest: Path, split: str) -> dict[str, float]:
    metrics = eval_real_audio(bundle=bundle, data=manifest, split=split)
    head = metrics.head
    values = {"valence_auc": metrics.valence_auc, "arousal_auc": metrics.arousal_auc,
              "reading_accuracy": metrics.reading_accuracy, "head_accuracy": head.accuracy if head else None,
              "head_macro_f1": head.macro_f1 if head else None}
    return {k: v for k, v in values.items() if v is not None}


def _retrieval(bundle: Path, manifest: Path, split: Split) -> dict[str, float]:
    metrics = eval_bundle(bundle=bundle, data=manifest, split=split).metrics
    return {"m2e_mrr": metrics.m2e.mrr, "e2m_mrr": metrics.e2m.mrr}


def judge(bundle: Path, sources: Sources) -> dict[str, dict[str, float]]:
    """'set split' -> score -> value on the real sets' val and test splits and EMOPIA val; retrieval MRR on
    VGMIDI's val and test series, as rendered for training and by FluidSynth (a renderer never trained on): val
    chooses, across renderers too, test reports."""
    out = {f"{m.stem} {split}": _scores(bundle, m, split) for m in sources.real for split in HELD_APART}
    if sources.emopia is not None:
        out["emopia val"] = _scores(bundle, sources.emopia, "val")
    for name, manifest in (("vgmidi", sources.vgmidi), ("vgmidi-fluidsynth", sources.vgmidi_fluidsynth)):
        for split in HELD_APART:
            if manifest is not None:
                out[f"{name} {split}"] = _retrieval(bundle, manifest, split)
    return out


def run_variant(variant: Variant, *, sources: dict[bool, Sources], teachers: dict[bool, Teachers | None],
                seed: int, out: Path) -> dict[str, dict[str, float]]:
    name = variant.removeprefix("stem-")  # the recipe; a stem- variant only starts elsewhere
    augment = _augmented(name)
    data = sources[augment]
    if "-vgmidi-" in name:
        data = replace(data, varied=tuple(m for m in data.varied if m.parent.name.startswith("vgmidi")))
    frontend = {"key": KEY_FRONTEND, "chords": CHORD_FRONTEND, "tags": PRETRAINED_FRONTEND}.get(
        name.split("-", 1)[0], DEFAULT_FRONTEND)
    chosen = recipe(data, frontend=frontend)
    if name.endswith("-stats"):
        chosen = replace(chosen, config=replace(chosen.config, music=replace(chosen.config.music, stats_pool=True)))
    bundle = out / f"{variant}-seed{seed}"
    train_config = TrainConfig(seed=seed)
    if name.endswith("-short"):
        train_config = replace(train_config, crop_frames=CROP_FRAMES)
    if name.startswith("rendition"):
        train_config = replace(train_config, one_rendition=True)
    if name.startswith("within"):
        train_config = replace(train_config, cca_within_sets=True)
    if "ema-" in name:
        train_config = replace(train_config, ema_decay=EMA_DECAY)
    if "-origheads-" in name:
        train_config = replace(train_config, heads_from_first_rendition=True)
    if "-consist-" in name:
        train_config = replace(train_config, rendition_consistency=RENDITION_CONSISTENCY)
    if name.startswith("fdrop"):
        train_config = replace(train_config, feature_dropout=FEATURE_DROPOUT)
    if name.startswith("aligned"):
        train_config = replace(train_config, kind_alignment=KIND_ALIGNMENT)
    train_music(chosen, out=bundle, train_config=train_config,
                teachers=teachers[augment] if "distil" in name else None,
                init=stem(sources=sources, teachers=teachers, seed=seed, out=out) if name != variant else None)
    return judge(bundle, data)


def stem(*, sources: dict[bool, Sources], teachers: dict[bool, Teachers | None], seed: int,
         out: Path) -> CrossModalModel:
    """The seed's shared start of the ``stem-`` variants: the default's recipe on the plain sources for
    ``STEM_EPOCHS`` epochs, trained at the first call and read back from ``out`` after."""
    bundle = out / f"stem-seed{seed}"
    if not (bundle / "config.json").exists():
        train_music(recipe(sources[False]), out=bundle, teachers=teachers[False],
                    train_config=TrainConfig(seed=seed, crop_frames=CROP_FRAMES, epochs=STEM_EPOCHS))
    return load_bundle(bundle).model


def _augmented(variant: str) -> bool:
    """Whether the variant trains on the MIDI sets' varied renders too."""
    return variant.removeprefix("stem-").startswith(("augment", "rendition"))


def summarize(runs: dict[str, list[dict[str, dict[str, float]]]]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """variant -> 'set split' -> score -> [mean, sd] over seeds."""
    return {variant: {where: {score: [float(np.mean(v)), float(np.std(v))] for score in seeds[0][where]
                              for v in [[s[where][score] for s in seeds]]} for where in seeds[0]}
            for variant, seeds in runs.items()}


def markdown(summary: dict, *, seeds: int) -> str:
    lines = [f"Mean (sd) over {seeds} seeds.", "",
             "| variant | set, split | valence AUC | arousal AUC | quadrant acc. (reading) | head acc. "
             "| head macro-F1 | M2E MRR | E2M MRR |",
             "|---|---|---|---|---|---|---|---|---|"]
    for variant, places in summary.items():
        for where, scores in places.items():
            cells = [f"{scores[s][0]:.3f} ({scores[s][1]:.3f})" if s in scores else "" for s in SCORES]
            lines.append(f"| {variant} | {where} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def recipe_experiment(*, shared: Path, work: Path, out: Path, variants: list[Variant], seeds: int) -> dict:
    stemmed = any(v.startswith("stem-") for v in variants)  # the stem trains on the plain sources, distilled
    augments = sorted({_augmented(v) for v in variants} | ({False} if stemmed else set()))
    sources = {a: prepare(shared=shared, work=work, augment=a) for a in augments}
    distils = {_augmented(v) for v in variants if "distil" in v} | ({False} if stemmed else set())
    teachers = {a: teachers_of(recipe(sources[a])) if a in distils else None for a in augments}
    runs: dict[str, list[dict[str, dict[str, float]]]] = {}
    summary: dict = {}
    for v in variants:
        for seed in range(seeds):
            runs.setdefault(v, []).append(run_variant(v, sources=sources, teachers=teachers, seed=seed, out=out))
            summary = _write(runs, out, seeds=seeds)  # after every run: an hour's experiment stopped keeps its part
    return summary


def _write(runs: dict[str, list[dict[str, dict[str, float]]]], out: Path, *, seeds: int) -> dict:
    summary = summarize(runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))
    (out / "results.md").write_text(markdown(summary, seeds=seeds))
    return summary


def soup_experiment(*, shared: Path, work: Path, runs: Path, a: Variant, b: Variant, seeds: int,
                    alphas: list[float], out: Path, refit: bool = False) -> dict:
    """For each seed, ``a``'s and ``b``'s bundles in ``runs`` (a ``recipe_experiment`` folder) joined at each
    weight ``alpha`` of ``b`` (``training.soup.soup``: the alignment fitted on the augmented recipe's training
    items, lam and readout on its validation items), saved in ``out`` and judged as the variants are; with
    ``refit``, each soup is judged again with its categorical heads fitted anew (``training.soup.refit_heads``,
    with the recipe's teachers)."""
    pairs = [tuple(load_bundle(runs / f"{v}-seed{seed}").model for v in (a, b)) for seed in range(seeds)]
    sources = prepare(shared=shared, work=work, augment=True)  # after the bundles: a missing one fails at once
    chosen = recipe(sources)
    teachers = teachers_of(chosen) if refit else None
    results: dict[str, list[dict[str, dict[str, float]]]] = {}
    for seed, (model_a, model_b) in enumerate(pairs):
        found = train_val_items(chosen.music, chosen.validation, model_a.config)
        for alpha in alphas:
            model = soup(model_a, model_b, alpha=alpha, train_items=found.train, val_items=found.val)
            results.setdefault(f"soup {alpha:g}", []).append(
                judge(_save_soup(model, out / f"soup-{alpha:g}-seed{seed}", a, b, alpha), sources))
            if refit:
                refit_heads(model, found.train, found.val, teachers=teachers,
                            train_config=TrainConfig(seed=seed, crop_frames=CROP_FRAMES))
                results.setdefault(f"soup {alpha:g} refit", []).append(
                    judge(_save_soup(model, out / f"soup-{alpha:g}-refit-seed{seed}", a, b, alpha), sources))
    summary = summarize(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"runs": results, "summary": summary}, indent=2))
    (out / "results.md").write_text(markdown(summary, seeds=seeds))
    return summary


def _save_soup(model: CrossModalModel, bundle: Path, a: str, b: str, alpha: float) -> Path:
    save_bundle(model, bundle, name="moodspace-default", metrics={"soup": {"a": a, "b": b, "alpha": alpha}})
    return bundle
