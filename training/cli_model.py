"""``moodspace train``, ``eval``, ``experiment``, the categorical and harmony experiments, ``train-text``,
``eval-text`` and ``retrain-default``. Flags are named like the config fields they set, and take their defaults
from those configs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from models.config import EncoderKind, FrontEndName, ModelConfig
from models.frontend import frontend_config
from models.song_model import SONG_MODEL_PATH
from models.songtext import SONG_TEXT_PATH
from training.default_model import (
    CROP_FRAMES,
    DEFAULT_FRONTEND,
    DEFAULT_SEED,
    DISTIL,
    PRETRAINED_FRONTEND,
    SOUP_ALPHA,
)
from training.song_model import SongModelConfig
from training.splits import Split
from training.text import TextTrainConfig
from training.text_tuning import TuneConfig
from training.train import TrainConfig

cli = typer.Typer()
MODEL, TRAIN, TEXT, TUNE = ModelConfig(), TrainConfig(), TextTrainConfig(), TuneConfig()

MusicEncoderKind = Annotated[EncoderKind, typer.Option(help="Music encoder.")]
EmotionEncoderKind = Annotated[EncoderKind, typer.Option(help="Emotion encoder.")]
D = Annotated[int, typer.Option(min=2, help="Embedding size of both spaces.")]
Lam = Annotated[float, typer.Option(min=0.0, max=1.0, help="Composite weight: lam*CCA + (1-lam)*KL ranking.")]
Alpha = Annotated[float, typer.Option(min=0.0, help="KL ranking margin (per dimension).")]
Lr = Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")]
Epochs = Annotated[int, typer.Option(min=1, help="Most epochs (early stopping on validation).")]
BatchSize = Annotated[int, typer.Option(min=4, help="Pairs per batch (in-batch negatives, CCA covariances).")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
Patience = Annotated[int, typer.Option(min=1, help="Epochs without improvement before stopping.")]
CropFrames = Annotated[int, typer.Option(min=0, help="Random training windows in frames (0: whole clips).")]
Workers = Annotated[int | None, typer.Option(min=1, help="Feature-extraction processes (default: all cores).")]
FrontEnd = Annotated[FrontEndName, typer.Option(help="Music front end.")]
Manifest = Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Manifest (.jsonl).")]
Folder = Annotated[Path, typer.Option(exists=True, file_okay=False, help="A data set's folder.")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Write the metrics as JSON.")]
ResultsFolder = Annotated[Path, typer.Option(help="Folder for results.json and results.md.")]
FrozenFrontEnd = Annotated[FrontEndName, typer.Option(help="Frozen front end.")]
Seeds = Annotated[int, typer.Option(min=1, help="Seeds per method or variant.")]
CategoricalManifests = Annotated[list[Path], typer.Option(
    exists=True, dir_okay=False, help="Manifest(s) with categorical labels (4q, mirex_mm); repeatable.")]


def model_config(*, music_encoder: EncoderKind, emotion_encoder: EncoderKind, d: int, lam: float, alpha: float,
                 frontend: FrontEndName, dimensional: bool = MODEL.dimensional) -> ModelConfig:
    return replace(MODEL.with_frontend(frontend_config(frontend)), music=replace(MODEL.music, kind=music_encoder),
                   emotion=replace(MODEL.emotion, kind=emotion_encoder), d=d, lam=lam, alpha=alpha,
                   dimensional=dimensional)


Dimensional = Annotated[bool, typer.Option(help="Train the dimensional VA head, which then gives the reading "
                                                "(otherwise VA is read by retrieval over the VA grid).")]


def _floats(text: str | None) -> list[float] | None:
    try:
        return [float(x) for x in text.split(",")] if text else None
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give numbers separated by commas, such as 0.5,0.9") from None


@cli.command("train")
def train(
    data: Annotated[list[Path], typer.Option(exists=True, dir_okay=False,
                                             help="Training manifest(s): their 'train' clips; repeatable.")],
    out: Annotated[Path, typer.Option(help="Bundle folder to write.")],
    val: Annotated[list[Path] | None, typer.Option(exists=True, dir_okay=False, help=(
        "Validation manifest(s): their 'val' clips (all if none is marked). Default: the data's."))] = None,
    music_encoder: MusicEncoderKind = MODEL.music.kind, emotion_encoder: EmotionEncoderKind = MODEL.emotion.kind,
    d: D = MODEL.d, lam: Lam = MODEL.lam, alpha: Alpha = MODEL.alpha,
    lr: Lr = TRAIN.lr, epochs: Epochs = TRAIN.epochs, batch_size: BatchSize = TRAIN.batch_size,
    seed: Seed = TRAIN.seed, patience: Patience = TRAIN.patience, crop_frames: CropFrames = TRAIN.crop_frames,
    frontend: FrontEnd = MODEL.frontend.name, workers: Workers = None, dimensional: Dimensional = MODEL.dimensional,
) -> None:
    """Train the music and emotion encoders with the composite loss; write a bundle."""
    from training.run import train_bundle

    model = model_config(music_encoder=music_encoder, emotion_encoder=emotion_encoder, d=d, lam=lam, alpha=alpha,
                         frontend=frontend, dimensional=dimensional)
    train_config = replace(TRAIN, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, patience=patience,
                           crop_frames=crop_frames)
    bundle = train_bundle(data=data, val=val or [], out=out, config=model, train_config=train_config,
                          workers=workers)
    val_metrics = bundle.metrics["val"]
    for skipped in bundle.metrics["skipped"]:
        typer.echo(f"skipped {skipped['id']}: {skipped['reason']}")
    typer.echo(f"bundle {bundle.version} -> {out} (best epoch {bundle.metrics['best_epoch']}, "
               f"val MRR m2e {val_metrics['m2e']['mrr']:.3f} e2m {val_metrics['e2m']['mrr']:.3f}; "
               f"{len(bundle.metrics['skipped'])} clips skipped)")


@cli.command("eval")
def evaluate(
    bundle: Annotated[Path, typer.Option(help="Model bundle folder, or \"default\" for the built-in model.")],
    data: Manifest,
    json_out: JsonOut = None,
    split: Annotated[Split, typer.Option(help="Which clips: auto is 'test' if marked, else all.")] = "auto",
    lam: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Query lam (default: bundle's).")] = None,
    workers: Workers = None,
) -> None:
    """M2E and E2M retrieval: MRR, average rank, top-5% cosine."""
    from training.run import eval_bundle

    result = eval_bundle(bundle=bundle, data=data, split=split, lam=lam, workers=workers)
    for direction in ("m2e", "e2m"):
        m = getattr(result.metrics, direction)
        low, high = m.mrr_interval or (float("nan"), float("nan"))
        typer.echo(f"{direction.upper()}: MRR {m.mrr:.3f} (95% {low:.3f}-{high:.3f} over the queries)  "
                   f"AR {m.ar:.2f}  top-5% cos {m.top5_cosine:.3f}  (n={result.metrics.n_test})")
    if (agreement := result.metrics.va_agreement) is not None:
        typer.echo(f"E2M top-{agreement.k} VA distance {agreement.top_k_distance:.3f} "
                   f"(VA nearest neighbours: {agreement.nearest_distance:.3f})")
    if json_out:
        json_out.write_text(json.dumps(result.to_dict(), indent=2))


@cli.command("experiment")
def experiment(
    train: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Training manifest ('train', 'val').")],
    test: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Test manifest ('test' clips, or all).")],
    out: Annotated[Path, typer.Option(help="Output folder for results.json, results.md, plots.")],
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per method.")] = 5,
    sweep_lam: Annotated[str | None, typer.Option(help="Comma-separated lam values to sweep.")] = None,
    sweep_alpha: Annotated[str | None, typer.Option(help="Comma-separated alpha values to sweep.")] = None,
    music_encoder: MusicEncoderKind = MODEL.music.kind, emotion_encoder: EmotionEncoderKind = MODEL.emotion.kind,
    d: D = MODEL.d, lam: Lam = MODEL.lam, alpha: Alpha = MODEL.alpha,
    lr: Lr = TRAIN.lr, epochs: Epochs = TRAIN.epochs, batch_size: BatchSize = TRAIN.batch_size,
    patience: Patience = TRAIN.patience, crop_frames: CropFrames = TRAIN.crop_frames,
    frontend: FrontEnd = MODEL.frontend.name, workers: Workers = None,
) -> None:
    """Composite vs cca_only, kl_only, RegMLP, RegBiGRU over seeds; optional lam/alpha sweeps with plots."""
    from training.experiment import results_markdown
    from training.run import experiment as run_experiment

    model = model_config(music_encoder=music_encoder, emotion_encoder=emotion_encoder, d=d, lam=lam, alpha=alpha,
                         frontend=frontend)
    train_config = replace(TRAIN, lr=lr, epochs=epochs, batch_size=batch_size, patience=patience,
                           crop_frames=crop_frames)
    results = run_experiment(train=train, test=test, out=out, config=model, train_config=train_config,
                             seeds=seeds, sweep_lam=_floats(sweep_lam), sweep_alpha=_floats(sweep_alpha),
                             workers=workers)
    typer.echo(results_markdown(results, title="results"))


@cli.command("eval-real")
def eval_real(
    bundle: Annotated[Path, typer.Option(help="Model bundle folder, or \"default\" for the built-in model.")],
    data: CategoricalManifests,
    split: Annotated[Split, typer.Option(help="Which split to read.")] = "val",
    json_out: JsonOut = None,
) -> None:
    """Real recordings read as the service reads a track: valence/arousal AUC and quadrant accuracy of the VA
    reading, and the categorical head's accuracy and macro-F1."""
    from training.real_audio import eval_real_audio

    results = [eval_real_audio(bundle=bundle, data=manifest, split=split) for manifest in data]
    for r in results:
        reading = (f"valence AUC {r.valence_auc:.3f}  arousal AUC {r.arousal_auc:.3f}  quadrant acc. "
                   f"{r.reading_accuracy:.3f}  " if r.valence_auc is not None and r.arousal_auc is not None
                   and r.reading_accuracy is not None else "")
        head = f"head acc. {r.head.accuracy:.3f}  macro-F1 {r.head.macro_f1:.3f}" if r.head else "no head"
        typer.echo(f"{Path(r.manifest).name} {split} ({r.n}): {reading}{head}")
    if json_out:
        json_out.write_text(json.dumps([r.to_dict() for r in results], indent=2))


@cli.command("probe")
def probe(
    data: CategoricalManifests,
    frontend: Annotated[FrontEndName, typer.Option(help="Frozen front end whose features are probed.")] =
    PRETRAINED_FRONTEND,
    json_out: JsonOut = None,
    workers: Workers = None,
) -> None:
    """The linear-probe baseline: logistic regression on the mean and spread of frozen front-end features, fitted
    on each manifest's train split; accuracy, macro-F1 and (quadrants) valence/arousal AUC on val and test."""
    from training.probe import probe as run_probe

    results = [run_probe(manifest, frontend=frontend, workers=workers) for manifest in data]
    for result in results:
        for split, m in result.metrics.items():
            auc = (f"  valence AUC {m.valence_auc:.3f}  arousal AUC {m.arousal_auc:.3f}"
                   if m.valence_auc is not None and m.arousal_auc is not None else "")
            typer.echo(f"{Path(result.manifest).name} {split} ({m.n}): {m.taxonomy} accuracy {m.accuracy:.3f}  "
                       f"macro-F1 {m.macro_f1:.3f}{auc}")
        for skipped in result.skipped:
            typer.echo(f"skipped {skipped.id}: {skipped.reason}")
    if json_out:
        json_out.write_text(json.dumps([r.to_dict() for r in results], indent=2))


@cli.command("categorical-experiment")
def categorical_experiment(
    data: CategoricalManifests,
    out: ResultsFolder,
    frontend: FrozenFrontEnd = PRETRAINED_FRONTEND,
    seeds: Seeds = 3,
    workers: Workers = None,
) -> None:
    """Probe, per-set teachers, multitask and multitask + KD on categorical sets (Kang & Herremans, Table II)."""
    from training.categorical_experiment import categorical_experiment as run_categorical
    from training.categorical_experiment import markdown
    from training.multitask import MultitaskConfig

    summary = run_categorical(data, out=out, frontend=frontend, seeds=seeds, config=MultitaskConfig(),
                              workers=workers)
    typer.echo(markdown(summary, seeds=seeds))


@cli.command("recipe-experiment")
def recipe_experiment(
    out: ResultsFolder,
    variant: Annotated[list[str], typer.Option(help="plain, distil, augment, augment-distil, distil-stats, "
                                                    "distil-short, augment-distil-short, "
                                                    "rendition-distil-short, rendition-vgmidi-distil-short, "
                                                    "within-distil-short, ema-distil-short, "
                                                    "rendition-ema-distil-short, fdrop-distil-short, "
                                                    "fdrop-ema-distil-short, rendition-origheads-distil-short, "
                                                    "rendition-origheads-ema-distil-short, "
                                                    "rendition-consist-distil-short, "
                                                    "rendition-origheads-consist-distil-short, "
                                                    "key-distil-short, aligned-distil-short, chords-distil-short "
                                                    "or tags-distil-short; "
                                                    "stem-distil-short and "
                                                    "stem-rendition-origheads-ema-distil-short start from "
                                                    "the seed's shared stem; "
                                                    "repeat the flag for several.")] =
    ["plain", "distil"],  # noqa: B006
    seeds: Seeds = 3,
    shared: Annotated[Path, typer.Option(help="The shared data sets folder.")] = Path("../shared/datasets"),
    work: Annotated[Path, typer.Option(help="Where corpora are rendered (as retrain-default).")] =
    Path("data/default-training"),
) -> None:
    """The default's music model trained several ways over seeds, judged on real recordings (val and test)."""
    from typing import get_args

    from training.recipe_experiment import Variant, markdown
    from training.recipe_experiment import recipe_experiment as run_recipe

    known = get_args(Variant)
    if set(variant) - set(known):
        raise typer.BadParameter(f"{variant!r}: choose from {', '.join(known)}", param_hint="--variant")
    summary = run_recipe(shared=shared, work=work, out=out, variants=variant, seeds=seeds)  # type: ignore[arg-type]
    typer.echo(markdown(summary, seeds=seeds))


@cli.command("soup-experiment")
def soup_experiment(
    runs: Annotated[Path, typer.Option(exists=True, file_okay=False,
                                       help="A recipe-experiment folder holding both variants' bundles.")],
    out: ResultsFolder,
    a: Annotated[str, typer.Option(help="The variant at alpha 0.")] = "distil-short",
    b: Annotated[str, typer.Option(help="The variant at alpha 1.")] = "rendition-origheads-ema-distil-short",
    alpha: Annotated[list[float], typer.Option(min=0.0, max=1.0, help="Weights of b; repeat the flag.")] =
    [0.0, 0.25, 0.5, 0.75, 1.0],  # noqa: B006
    seeds: Seeds = 2,
    shared: Annotated[Path, typer.Option(help="The shared data sets folder.")] = Path("../shared/datasets"),
    work: Annotated[Path, typer.Option(help="Where corpora are rendered (as retrain-default).")] =
    Path("data/default-training"),
    refit: Annotated[bool, typer.Option(help="Judge each soup again with its categorical heads fitted anew on "
                                             "the frozen representation.")] = False,
) -> None:
    """Two variants of one seed, their weights interpolated (WiSE-FT), judged as recipe-experiment judges."""
    from typing import get_args

    from training.recipe_experiment import Variant, markdown
    from training.recipe_experiment import soup_experiment as run_soup

    for name, hint in ((a, "--a"), (b, "--b")):
        if name not in get_args(Variant):
            raise typer.BadParameter(f"{name!r}: choose from {', '.join(get_args(Variant))}", param_hint=hint)
    summary = run_soup(shared=shared, work=work, runs=runs, a=a, b=b, seeds=seeds,  # type: ignore[arg-type]
                       alphas=alpha, out=out, refit=refit)
    typer.echo(markdown(summary, seeds=seeds))


@cli.command("span-experiment")
def span_experiment(
    data: Manifest,
    bundle: Annotated[Path, typer.Option(help="Model bundle folder, or \"default\" for the built-in model.")] =
    Path("default"),
    split: Annotated[Split, typer.Option(help="Which split to read (dynamic labels).")] = "test",
    seconds: Annotated[list[float], typer.Option(help="Query lengths in seconds; repeat the flag.")] =
    [10.0, 20.0, 30.0],  # noqa: B006
    per_piece: Annotated[int, typer.Option(min=1, help="Cuts per piece and length.")] = 5,
    seed: Seed = 0,
    json_out: JsonOut = None,
    workers: Workers = None,
    panel: Annotated[int | None, typer.Option(min=1, help="Annotators behind each label point (VGMIDI: 30): adds "
                                              "the ceiling of a perfect reader, a second panel of that many.")] = None,
) -> None:
    """Span search on held-apart dynamic labels: for curves cut from inside pieces, how often the top span covers
    the cut, and the true piece's MRR by best span against whole-track retrieval."""
    from training.span_experiment import markdown, to_json
    from training.span_experiment import span_experiment as run_spans

    results, whole = run_spans(bundle=bundle, data=data, split=split, seconds=seconds, per_piece=per_piece,
                               seed=seed, workers=workers, panel=panel)
    typer.echo(markdown(f"{data} ({split})", results, whole))
    if json_out:
        json_out.write_text(json.dumps(to_json(results, whole), indent=2))


@cli.command("harmony-experiment")
def harmony_experiment(
    data: CategoricalManifests,
    out: ResultsFolder,
    frontend: FrozenFrontEnd = PRETRAINED_FRONTEND,
    seeds: Seeds = 3,
    workers: Workers = None,
) -> None:
    """Audio, audio + key/mode/tempo, audio + key + chord transformer, harmony alone, on categorical sets."""
    from training.categorical_experiment import markdown
    from training.harmony_experiment import harmony_experiment as run_harmony

    typer.echo(markdown(run_harmony(data, out=out, frontend=frontend, seeds=seeds, workers=workers), seeds=seeds))


@cli.command("fusion-experiment")
def fusion_experiment(
    data: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Manifest of a categorical set whose clips "
                                       "reference lyrics (mirex_mm).")],
    out: ResultsFolder,
    frontend: FrozenFrontEnd = PRETRAINED_FRONTEND,
    seeds: Seeds = 3,
    workers: Workers = None,
    lyrics_sets: Annotated[Path | None, typer.Option(exists=True, file_okay=False, help="Folder holding "
                                                     "moodylyrics4q/, muse_lyrics/ and deezer_msdd/: also run the "
                                                     "variants that read what they teach as a lyrics (and a "
                                                     "context) token.")] = None,
    music: Annotated[Path | None, typer.Option(help="Music bundle (or 'default') whose music representation of "
                                               "each window is the audio input, instead of the front-end "
                                               "frames.")] = None,
) -> None:
    """Audio, lyrics and title/artist by hierarchical cross-modal attention, and the ablations (Zhao et al.)."""
    from training.categorical_experiment import markdown
    from training.fusion_experiment import fusion_experiment as run_fusion

    summary = run_fusion(data, out=out, frontend=frontend, seeds=seeds, workers=workers, lyrics_sets=lyrics_sets,
                         music=music)
    typer.echo(markdown(summary, seeds=seeds))


@cli.command("lyrics-experiment")
def lyrics_experiment(
    datasets: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Folder holding moodylyrics4q/, "
                                           "muse_lyrics/ and deezer_msdd/.")],
    out: Annotated[Path, typer.Option(help="Folder for results.json.")],
) -> None:
    """Emotion from lyrics alone and from title/artist alone, on the lyrics and context sets."""
    from training.lyrics_experiment import lyrics_experiment as run_lyrics

    typer.echo(json.dumps(run_lyrics(datasets, out=out), indent=2))


@cli.command("train-song-text")
def train_song_text(
    datasets: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Folder holding muse_lyrics/, "
                                           "moodylyrics4q/ and deezer_msdd/.")],
    data: CategoricalManifests,
    bundle: Annotated[Path, typer.Option(help="Music bundle whose audio reading the text joins.")] = Path("default"),
    out: Annotated[Path, typer.Option(help="Song-text model to write (.npz).")] = SONG_TEXT_PATH,
    report: Annotated[Path | None, typer.Option(help="Write the report as JSON.")] = None,
    workers: Workers = None,
) -> None:
    """Lyrics and title/artist readings and their fusion with the audio reading (calibrated on val, scored on
    test)."""
    from training.song_text import markdown, write_report
    from training.song_text import train_song_text as run_song_text

    result = run_song_text(datasets=datasets, manifests=data, bundle=bundle, out=out, workers=workers)
    if report:
        write_report(result, report)
    typer.echo(markdown(result) + f"\n{result['version']}: {out}")


@cli.command("train-song-model")
def train_song_model(
    data: CategoricalManifests,
    lyrics_sets: Annotated[Path, typer.Option(exists=True, file_okay=False, help="Folder holding moodylyrics4q/ "
                                              "and muse_lyrics/ (and deezer_msdd/ for --context).")],
    music: Annotated[Path | None, typer.Option(help="Music bundle whose representation the song model replaces "
                                               "(default: the shipped default).")] = None,
    out: Annotated[Path, typer.Option(help="Song model to write (.pt).")] = SONG_MODEL_PATH,
    anchor: Annotated[float, typer.Option(min=0, help="Pull towards the music model's own representation.")] = 0.3,
    context: Annotated[bool, typer.Option(help="Tri-modal: also read the title and artist, after the lyrics.")
                       ] = SongModelConfig.context,
    seeds: Annotated[int, typer.Option(min=1, help="Trainings (seeds 0, 1, ...); the best on val ships.")] = 5,
    report: Annotated[Path | None, typer.Option(help="Folder for song_model.json and song_model.md.")] = None,
    workers: Workers = None,
) -> None:
    """The song model the service ships: the music model's representation replaced, where a song has lyrics, by
    a fusion of its audio and lyrics (measured on val and test through the saved file)."""
    from training.song_model import markdown
    from training.song_model import train_song_model as run_song_model

    result = run_song_model(data, lyrics_sets=lyrics_sets, out=out, music=music, workers=workers, report=report,
                            config=SongModelConfig(anchor=anchor, seeds=seeds, context=context))
    typer.echo(markdown(result) + f"\n{result['version']}: {out}")


@cli.command("readings-experiment")
def readings_experiment(
    data: CategoricalManifests,
    bundle: Annotated[Path, typer.Option(help="Bundle whose weights are read.")] = Path("default"),
    workers: Workers = None,
) -> None:
    """The grid reading against the categorical heads' class placements on real recordings (val, test), and the grid
    reading mixed into the quadrant head's axis by axis over a grid of shares (val chooses `grid_share`)."""
    from training.readings_experiment import markdown
    from training.readings_experiment import readings_experiment as run_readings

    typer.echo(markdown(run_readings(bundle, data, workers=workers)))


@cli.command("like-experiment")
def like_experiment(
    data: CategoricalManifests,
    bundle: Annotated[Path, typer.Option(help="Bundle whose weights are read.")] = Path("default"),
    workers: Workers = None,
) -> None:
    """Which query makes "tracks that feel like this track" agree with listeners' labels (val, test)."""
    from training.like_experiment import like_experiment as run_like
    from training.like_experiment import markdown

    typer.echo(markdown(run_like(bundle, data, workers=workers)))


@cli.command("distil-frontend")
def distil_frontend(
    data: Annotated[list[Path], typer.Option(exists=True, dir_okay=False, help="Manifest(s) whose train clips the "
                                             "student hears (val clips: early stopping); repeatable.")],
    out: Annotated[Path, typer.Option(help="Student weights to write (.pt).")] = Path("models/student_msd_tags.pt"),
    epochs: Annotated[int | None, typer.Option(min=1, help="Most epochs (default: DistilConfig's).")] = None,
    workers: Workers = None,
) -> None:
    """Distil the musicnn-msd-tags front end into the small student-msd-tags front end."""
    from training.distil_frontend import DistilConfig, distil

    config = DistilConfig() if epochs is None else replace(DistilConfig(), epochs=epochs)
    result = distil(data, out=out, config=config, workers=workers)
    typer.echo(f"{result.train_windows} train windows, {result.val_windows} val windows: penultimate R2 "
               f"{result.penultimate_r2:.3f}, tags MAE {result.tags_mae:.4f} (epoch {result.best_epoch}); {out}")


def _music_source(text: str) -> tuple[Path, str]:
    """``manifest.jsonl`` or ``manifest.jsonl:split``."""
    path, _, split = text.partition(":")
    if not Path(path).is_file():
        raise typer.BadParameter(f"{path}: no such manifest", param_hint="--music-test")
    return Path(path), split or "test"


@cli.command("train-text")
def train_text(
    bundle: Annotated[Path, typer.Option(help="Bundle whose music and emotion encoders the text joins.")],
    out: Annotated[Path, typer.Option(help="Bundle folder to write (the input plus text heads).")],
    emobank: Annotated[Path, typer.Option(exists=True, file_okay=False, help="EmoBank folder (emobank.csv).")],
    music: Annotated[list[Path], typer.Option(exists=True, dir_okay=False,
                                              help="Music manifests ('train' and 'val' clips); repeatable.")],
    warriner: Annotated[Path | None, typer.Option(exists=True, file_okay=False,
                                                  help="Warriner norms folder: word-level VA examples.")] = None,
    epochs: Epochs = TEXT.epochs,
    seed: Seed = TEXT.seed,
) -> None:
    """Train the text heads: the valence/arousal bridge and the three-branch metric bridge."""
    from models.config import TextConfig
    from training.run_text import train_text as run_train_text

    result = run_train_text(bundle=bundle, out=out, emobank_root=emobank, music=music, warriner=warriner,
                            config=replace(TEXT, epochs=epochs, seed=seed), text_config=TextConfig())
    text = result.metrics["text"]
    typer.echo(f"bundle {result.version} -> {out}; validation: VA r valence {text['va_val']['valence_r']:.3f} "
               f"arousal {text['va_val']['arousal_r']:.3f}; metric MRR {text['metric_val']['dev_mrr']:.3f}")


@cli.command("tune-text")
def tune_text(
    emobank: Annotated[Path, typer.Option(exists=True, file_okay=False, help="EmoBank folder (emobank.csv).")] =
    Path("../shared/datasets/emobank"),
    warriner: Annotated[Path | None, typer.Option(exists=True, file_okay=False,
                                                  help="Warriner norms folder: word-level VA examples.")] =
    Path("../shared/datasets/warriner2013"),
    out: Annotated[Path, typer.Option(help="Where the tuning goes (the shipped one: models/text_tuning.pt; "
                                           "then retrain the text heads: retrain-default --keep-music).")] =
    Path("models/text_tuning.pt"),
    layers: Annotated[int, typer.Option(min=1, max=6, help="Top transformer layers to tune.")] = TUNE.layers,
    rank: Annotated[int, typer.Option(min=0, help="0: train the layers' weights and ship them whole; r > 0: train "
                                               "and ship rank-r updates of their matrices (LoRA).")] = TUNE.rank,
    epochs: Epochs = TUNE.epochs,
    seed: Seed = TUNE.seed,
    json_out: JsonOut = None,
) -> None:
    """Fine-tune the sentence encoder's top layers on EmoBank train (and Warriner words) to read feelings."""
    from training.text_tuning import tune_text as run_tune_text

    report = run_tune_text(emobank_root=emobank, warriner=warriner, out=out,
                           config=replace(TUNE, layers=layers, rank=rank, epochs=epochs, seed=seed))
    for name, reading in report["emobank_dev"].items():
        typer.echo(f"{name:<7} EmoBank dev (ridge, alpha {reading['alpha']:g}): valence r "
                   f"{reading['valence_r']:.3f}, arousal r {reading['arousal_r']:.3f}")
    typer.echo(f"{report['version']} -> {out}")
    if json_out:
        json_out.write_text(json.dumps(report, indent=2))


@cli.command("eval-text")
def eval_text(
    bundle: Annotated[Path, typer.Option(help="Bundle with text heads.")],
    emobank: Annotated[Path, typer.Option(exists=True, file_okay=False,
                                          help="EmoBank folder; its dev split gives the text queries.")],
    music_test: Annotated[list[str], typer.Option(help="MANIFEST[:SPLIT] of test music (default split: test).")],
    music_train: Annotated[list[Path], typer.Option(exists=True, dir_okay=False,
                                                    help="Music manifests for the classification baseline.")],
    json_out: JsonOut = None,
) -> None:
    """Text -> music retrieval by VA quadrant (P@5, MRR) for both bridges and a baseline; text -> VA r, R^2."""
    from training.run_text import eval_text as run_eval_text

    result = run_eval_text(bundle=bundle, emobank_root=emobank, music_train=music_train,
                           music_test=[_music_source(m) for m in music_test])
    for name in ("va_bridge", "metric_bridge", "classification"):
        metrics = getattr(result, name)
        typer.echo(f"{name:<15} P@{metrics.k} {metrics.precision:.3f}  MRR {metrics.mrr:.3f}")
    va = result.text_va_dev
    typer.echo(f"text -> VA (EmoBank dev): valence r {va.valence_r:.3f} R2 {va.valence_r2:.3f}; "
               f"arousal r {va.arousal_r:.3f} R2 {va.arousal_r2:.3f}")
    if json_out:
        json_out.write_text(json.dumps(result.to_dict(), indent=2))


@cli.command("retrain-default")
def retrain_default(
    shared: Annotated[Path, typer.Option(help="The shared data sets folder (VGMIDI, EMOPIA, EmoBank, ...).")] =
    Path("../shared/datasets"),
    work: Annotated[Path, typer.Option(help="Where corpora and intermediate bundles go.")] =
    Path("data/default-training"),
    card: Annotated[Path, typer.Option(help="Model card to write.")] = Path("docs/MODEL_CARD.md"),
    frontend: FrontEnd = DEFAULT_FRONTEND,
    dimensional: Dimensional = False,
    seed: Seed = DEFAULT_SEED,
    out: Annotated[Path | None, typer.Option(help="Install somewhere else than models/default_bundle (to "
                                                 "compare a candidate before it replaces the default).")] = None,
    augment: Annotated[bool, typer.Option(help="Add the MIDI sets' train pieces again, each with a random "
                                               "production (renderers builtin-varied and fluidsynth-varied)."
                                          )] = False,
    distil: Annotated[bool, typer.Option(help="Train a teacher per categorical data set (4Q, MIREX, EMOPIA) and "
                                              "teach the categorical heads its soft targets too.")] = DISTIL,
    crop_frames: CropFrames = CROP_FRAMES,
    keep_music: Annotated[bool, typer.Option(help="Keep the installed default's music and emotion encoders; "
                                                  "retrain its text heads and song-text readings (after "
                                                  "tune-text).")] = False,
    soup_alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="Join the default's recipe with the "
                                              "renderer-invariant one at this weight of the latter (0: the "
                                              "default's recipe alone).")] = SOUP_ALPHA or 0.0,
) -> None:
    """Retrain the built-in default model from scratch and install it (models/default_bundle)."""
    from models.default import DEFAULT_BUNDLE
    from training.default_model import retrain_default as run_retrain_default

    if not shared.is_dir():
        typer.echo(f"{shared} not found: training on the built-in corpus alone")
    song_text = SONG_TEXT_PATH if out is None else out.with_name(f"{out.name}-song_text.npz")
    song_model = SONG_MODEL_PATH if out is None else out.with_name(f"{out.name}-song_model.pt")
    bundle = run_retrain_default(shared=shared if shared.is_dir() else None, work=work, card=card,
                                 frontend=frontend, dimensional=dimensional, out=out or DEFAULT_BUNDLE,
                                 train_config=replace(TRAIN, seed=seed, crop_frames=crop_frames), song_text=song_text,
                                 augment=augment, distil=distil, song_model=song_model,
                                 music_from=DEFAULT_BUNDLE if keep_music else None, soup_alpha=soup_alpha or None)
    typer.echo(f"installed {bundle.version} at {bundle.path}; model card: {card}")


@cli.command("song-correction-experiment")
def song_correction_experiment(
    data: Annotated[list[Path], typer.Option(exists=True, dir_okay=False, help="Manifests of categorical sets "
                                             "whose heads the music model has (mirex_mm, 4q); repeat.")],
    out: ResultsFolder,
    seeds: Seeds = 3,
    workers: Workers = None,
    lyrics_sets: Annotated[Path | None, typer.Option(exists=True, file_okay=False, help="Folder holding "
                                                     "moodylyrics4q/ and muse_lyrics/: also run the variant that "
                                                     "reads what they teach as a lyrics token.")] = None,
    music: Annotated[Path | None, typer.Option(help="Music bundle to correct (default: the shipped "
                                               "default).")] = None,
    replacement_anchor: Annotated[list[float] | None, typer.Option(
        help="Also run a replacement of the representation by a fusion network of its own, pulled towards the "
             "music model's representation with this weight (needs --lyrics-sets); repeat.")] = None,
    replacement_reading: Annotated[list[str] | None, typer.Option(
        help="The replacements' lyrics token: stack (what the lyrics sets and the set's own train lyrics teach), "
             "vectors (the same from probes on segment vectors only: no word of the lyrics) or none (no token); "
             "repeat. Default: stack.")] = None,
    corrections: Annotated[bool, typer.Option(help="Run the corrections (--no-corrections: the replacements "
                                                   "alone).")] = True,
) -> None:
    """What lyrics and title/artist add to a trained music model's own representation, that model held fixed."""
    from training.categorical_experiment import markdown
    from training.song_correction import song_correction_experiment as run_correction

    summary = run_correction(data, out=out, seeds=seeds, workers=workers, lyrics_sets=lyrics_sets, music=music,
                             replacement_anchors=tuple(replacement_anchor or ()),
                             replacement_readings=tuple(replacement_reading or ("stack",)), corrections=corrections)
    typer.echo(markdown(summary, seeds=seeds))
