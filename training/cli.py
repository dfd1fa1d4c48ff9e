"""The training and data commands of ``moodspace`` (mounted by ``moodspace.cli``): ``corpus ...`` here, the model
commands in ``training.cli_model``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from training import cli_model
from training.corpus.midi import Renderer
from training.datasets import AudioDataset, MidiDataset

cli = typer.Typer()
corpus = typer.Typer(no_args_is_help=True, help="Labelled corpora: generate, render MIDI sets, import audio sets.")
cli.add_typer(corpus, name="corpus")
cli.add_typer(cli_model.cli)

Out = Annotated[Path, typer.Option(help="Output folder (must not exist unless --overwrite).")]
Workers = Annotated[int | None, typer.Option(help="Worker processes (default: all cores).")]
Overwrite = Annotated[bool, typer.Option(help="Replace an existing output atomically.")]


@corpus.command("synth")
def corpus_synth(
    out: Out,
    n: Annotated[int, typer.Option(min=1, help="Number of clips.")] = 500,
    seconds: Annotated[float, typer.Option(min=1, help="Clip length in seconds.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Corpus seed; the same seed gives the same corpus.")] = 0,
    workers: Workers = None,
    overwrite: Overwrite = False,
) -> None:
    """Generate the built-in emotion-conditioned corpus: OUT/audio/*.flac and OUT/manifest.jsonl."""
    from training.corpus.generate import synth_corpus

    manifest = synth_corpus(n=n, seconds=seconds, seed=seed, out=out, workers=workers, overwrite=overwrite)
    typer.echo(f"wrote {n} clips; manifest: {manifest}")


@corpus.command("render")
def corpus_render(
    dataset: Annotated[MidiDataset, typer.Option(help="The MIDI data set.")],
    root: Annotated[Path, typer.Option(exists=True, file_okay=False, help="The data set's folder.")],
    out: Out,
    renderer: Annotated[Renderer, typer.Option(help="builtin (own synthesizer), builtin-varied (a random "
                                                    "production per file), fluidsynth (FluidR3) or "
                                                    "fluidsynth-varied (another soundfont, random programs, "
                                                    "a random production per file).")] = "builtin",
    workers: Workers = None,
    overwrite: Overwrite = False,
    limit: Annotated[int | None, typer.Option(help="Render only the first N clips.")] = None,
) -> None:
    """Render a MIDI data set to 16 kHz FLAC and write OUT/manifest.jsonl."""
    from training.corpus.render import render_dataset

    manifest = render_dataset(dataset=dataset, root=root, out=out, renderer=renderer, workers=workers,
                              overwrite=overwrite, limit=limit)
    typer.echo(f"manifest: {manifest}")


@corpus.command("import")
def corpus_import(
    dataset: Annotated[AudioDataset, typer.Option(help="The audio data set.")],
    root: Annotated[Path, typer.Option(exists=True, file_okay=False,
                                       help="The data set's folder, in its published layout.")],
    out: Annotated[Path, typer.Option(help="Manifest to write (.jsonl).")],
    overwrite: Overwrite = False,
) -> None:
    """Write a manifest for an audio data set; its audio stays in place."""
    from training.corpus.render import import_dataset

    typer.echo(f"manifest: {import_dataset(dataset=dataset, root=root, out=out, overwrite=overwrite)}")


@corpus.command("learnability")
def corpus_learnability(
    data: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Manifest with train and test splits.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON.")] = None,
    workers: Workers = None,
) -> None:
    """Ridge regression from simple descriptors to clip-mean VA: R^2 on the held-apart test split."""
    from training.learnability import learnability

    result = learnability(data, workers=workers)
    typer.echo(f"train {result.n_train}  test {result.n_test}  "
               f"R2 valence {result.valence_r2:.3f}  R2 arousal {result.arousal_r2:.3f}")
    if json_out:
        json_out.write_text(json.dumps(asdict(result), indent=2))


@cli.command("train-chords")
def train_chords(
    shared: Annotated[Path, typer.Option(exists=True, file_okay=False,
                                         help="The shared datasets folder (vgmidi/, emopia/, mirex_mm/midi).")],
    out: Annotated[Path, typer.Option(help="Recognizer weights to write (.npz).")] = Path(
        "models/chord_recognizer.npz"),
    renderers: Annotated[str, typer.Option(help="Renderers to train and test on, separated by commas.")] = (
        "builtin,fluidsynth"),
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the scores as JSON.")] = None,
    workers: Workers = None,
) -> None:
    """Train the chord recognizer on rendered MIDI (chords known from the notes); score it with mir_eval on the
    held-apart val and test pieces of each renderer, beside the template baseline."""
    from training.chords import midi_clips
    from training.chords import train_chords as train
    from training.corpus.midi import RENDERERS

    chosen = tuple(r.strip() for r in renderers.split(","))
    if not chosen or set(chosen) - set(RENDERERS):
        raise typer.BadParameter(f"{renderers!r}: choose from {', '.join(RENDERERS)}", param_hint="--renderers")
    evaluation = train(midi_clips(shared), renderers=chosen, out=out, test_splits=("val", "test"), workers=workers)
    for renderer_name, scores in evaluation.recognizer.items():
        baseline = evaluation.template_baseline[renderer_name]
        typer.echo(f"{renderer_name}: root {scores.root:.3f} majmin {scores.majmin:.3f} ({scores.clips} clips, "
                   f"{scores.seconds / 3600:.1f} h); template baseline root {baseline.root:.3f} "
                   f"majmin {baseline.majmin:.3f}")
    for skipped in evaluation.skipped:
        typer.echo(f"skipped {skipped.id}: {skipped.reason}")
    typer.echo(f"recognizer: {out}")
    if json_out:
        json_out.write_text(json.dumps(evaluation.to_dict(), indent=2))
