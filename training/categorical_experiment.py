"""``moodspace categorical-experiment``: the linear probe, per-set teachers and the multitask student without and
with knowledge distillation on categorical sets (4Q, MIREX), over seeds; results.json and results.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.config import FrontEndName
from models.frontend import frontend_config
from models.manifest import read_manifest
from models.taxonomy import TAXONOMIES
from training.classify import FoldsLogistic, categorical_metrics, summary_features
from training.features import Skipped, clip_feature_sets
from training.multitask import LabelledSet, MultitaskConfig, over_seeds
from training.probe import taxonomy_of

KEYS = ("accuracy", "macro_f1", "valence_auc", "arousal_auc")


def load_sets(manifests: list[Path], *, frontend: FrontEndName, workers: int | None = None
              ) -> tuple[list[LabelledSet], list[Skipped]]:
    sets, skipped = [], []
    for manifest in manifests:
        clips = read_manifest(manifest)
        pairs, missed = clip_feature_sets(manifest, clips, frontend_config(frontend), workers=workers)
        sets.append(LabelledSet.of(manifest.stem, pairs, taxonomy_of(clips, manifest)))
        skipped += missed
    return sets, skipped


def probe_metrics(data: LabelledSet) -> dict[str, dict]:
    """The probe (``FoldsLogistic`` on the mean and spread of the frames) on val and test."""
    x = {s: np.stack([summary_features(f) for f in data.features[s]]) for s in ("train", "val", "test")}
    artists = data.artists.get("train") or [str(i) for i in range(len(data.labels["train"]))]
    model = FoldsLogistic.fit(x["train"], data.labels["train"], artists, classes=len(TAXONOMIES[data.taxonomy]))
    return {s: categorical_metrics(data.taxonomy, data.labels[s], model.probabilities(x[s])).to_dict()
            for s in ("val", "test")}


def summarize(runs: list[dict]) -> dict:
    """method -> set -> split -> {key: [mean, std]} over seeds."""
    out: dict = {}
    for method in runs[0]:
        for name in runs[0][method]:
            for split in runs[0][method][name]:
                cell = {}
                for key in KEYS:
                    values = [run[method][name][split][key] for run in runs]
                    if values[0] is not None:
                        cell[key] = [float(np.mean(values)), float(np.std(values))]
                out.setdefault(method, {}).setdefault(name, {})[split] = cell
    return out


def markdown(summary: dict, *, seeds: int) -> str:
    lines = ["| method | set | split | accuracy | macro-F1 | valence AUC | arousal AUC |",
             "|---|---|---|---|---|---|---|"]
    for method, by_set in summary.items():
        for name, by_split in by_set.items():
            for split, cell in by_split.items():
                values = [f"{cell[k][0]:.3f} ± {cell[k][1]:.3f}" if k in cell else "" for k in KEYS]
                lines.append(f"| {method} | {name} | {split} | " + " | ".join(values) + " |")
    return "\n".join(lines) + f"\n\nmean ± std over {seeds} seeds (the probe is deterministic: std 0).\n"


def categorical_experiment(manifests: list[Path], *, out: Path, frontend: FrontEndName, seeds: int,
                           config: MultitaskConfig, workers: int | None = None) -> dict:
    sets, skipped = load_sets(manifests, frontend=frontend, workers=workers)
    runs = over_seeds(sets, config, seeds)
    probe = {d.name: probe_metrics(d) for d in sets}
    for run in runs:
        run["probe"] = probe
    summary = summarize(runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"summary": summary, "runs": runs, "frontend": frontend,
                                                  "skipped": [s.__dict__ for s in skipped]}, indent=2))
    (out / "results.md").write_text(markdown(summary, seeds=seeds))
    return summary
