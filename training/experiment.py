"""The paper's tables on any manifests: the composite loss against its single-loss ablations (cca_only: lam = 1,
kl_only: lam = 0) and the one-way regression baselines (RegMLP, RegBiGRU), over several seeds, plus optional
sweeps of lam or alpha."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.config import EncoderKind, ModelConfig
from models.inference import Embedder
from training.baselines import regress_va, regression_metrics, train_regressor
from training.evaluate import RetrievalMetrics, evaluate_model
from training.features import Item
from training.plots import plot_sweep, plot_va
from training.train import TrainConfig, train_model

EMBEDDING_LAM = {"composite": None, "cca_only": 1.0, "kl_only": 0.0}
REGRESSION_KIND: dict[str, EncoderKind] = {"reg_mlp": "mlp", "reg_bigru": "bigru"}
METHODS = (*EMBEDDING_LAM, *REGRESSION_KIND)
SWEEPABLE: dict[str, Callable[[ModelConfig, float], ModelConfig]] = {
    "lam": lambda config, value: replace(config, lam=value),
    "alpha": lambda config, value: replace(config, alpha=value),
}


@dataclass(frozen=True)
class Splits:
    train: list[Item]
    val: list[Item]
    test: list[Item]


@dataclass(frozen=True)
class MethodRun:
    metrics: RetrievalMetrics
    va: np.ndarray  # (N_test, 2) the method's VA estimate of each test clip's music


def run_method(method: str, splits: Splits, config: ModelConfig, train_config: TrainConfig) -> MethodRun:
    """Train one method with one seed; its test metrics and VA estimates."""
    if method in REGRESSION_KIND:
        encoder = replace(config.music, kind=REGRESSION_KIND[method])
        regressor = train_regressor(encoder, splits.train, splits.val, train_config, n_features=config.feature_size)
        predicted = regress_va(regressor, splits.test)
        return MethodRun(regression_metrics(predicted, np.stack([i.va_mean for i in splits.test])), predicted)
    lam = EMBEDDING_LAM[method]
    config = config if lam is None else replace(config, lam=lam)
    model = train_model(config, splits.train, splits.val, train_config, progress=False).model
    embedder = Embedder(model)
    reading = embedder.read_features([i.features for i in splits.test]).mean
    return MethodRun(evaluate_model(model, splits.test, lam=model.config.score_lam), reading)


def summarize(metrics: Sequence[RetrievalMetrics]) -> dict:
    """Mean and std over seeds, with eval's keys: {"n_test", "m2e": {"mrr", "mrr_std", ...}, "e2m": ...}."""
    runs = [m.to_dict() for m in metrics]
    summary: dict = {"n_test": runs[0]["n_test"], "seeds": len(runs)}
    for direction in ("m2e", "e2m"):
        summary[direction] = {}
        for key in runs[0][direction]:
            values = np.array([run[direction][key] for run in runs])
            summary[direction] |= {key: float(values.mean()), f"{key}_std": float(values.std())}
    return summary


def run_experiment(splits: Splits, config: ModelConfig, train_config: TrainConfig, *, seeds: int,
                   methods: Sequence[str] = METHODS, progress: bool = True, plots: Path | None = None) -> dict:
    """Mean and std per method; with ``plots``, predicted-against-true VA of each method's first seed there."""
    jobs = [(m, s) for m in methods for s in range(seeds)]
    runs: dict[str, list[MethodRun]] = {m: [] for m in methods}
    for method, seed in tqdm(jobs, desc="experiment", unit="run", disable=not progress):
        runs[method].append(run_method(method, splits, config, replace(train_config, seed=seed)))
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
        truth = np.stack([i.va_mean for i in splits.test])
        for method, method_runs in runs.items():
            plot_va(truth, method_runs[0].va, plots / f"va_{method}.png", title=f"{method}: VA of test music")
    return {method: summarize([run.metrics for run in method_runs]) for method, method_runs in runs.items()}


def results_markdown(results: dict, *, title: str) -> str:
    lines = [f"# {title}", "", "| method | M2E MRR | M2E AR | E2M MRR | E2M AR | M2E top-5% cos | E2M top-5% cos |",
             "|---|---|---|---|---|---|---|"]
    for method, r in results.items():
        cells = [f"{r[d][k]:.3f} ± {r[d][k + '_std']:.3f}" if k == "mrr" else f"{r[d][k]:.2f} ± {r[d][k + '_std']:.2f}"
                 for d in ("m2e", "e2m") for k in ("mrr", "ar")]
        cosines = [f"{r[d]['top5_cosine']:.3f}" for d in ("m2e", "e2m")]
        lines.append(f"| {method} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} | {cosines[0]} | {cosines[1]} |")
    n = next(iter(results.values()))
    lines += ["", f"{n['n_test']} test items, {n['seeds']} seeds; mean ± std over seeds. MRR: higher is better; "
              "AR (average rank of the true partner): lower is better."]
    return "\n".join(lines) + "\n"


def sweep(splits: Splits, config: ModelConfig, train_config: TrainConfig, *, name: str, values: Sequence[float],
          seeds: int, out: Path, progress: bool = True) -> dict:
    """Composite-method results for each value of ``name`` ("lam" or "alpha"); plot MRR against it."""
    summaries = []
    for value in tqdm(values, desc=f"sweep {name}", disable=not progress):
        swept = SWEEPABLE[name](config, float(value))
        runs = [run_method("composite", splits, swept, replace(train_config, seed=s)).metrics for s in range(seeds)]
        summaries.append(summarize(runs))
    plot_sweep(list(values), summaries, name=name, path=out / f"sweep_{name}.png")
    result = {str(v): s for v, s in zip(values, summaries, strict=True)}
    (out / f"sweep_{name}.json").write_text(json.dumps(result, indent=2))
    return result


def write_results(results: dict, out: Path, *, title: str, settings: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "settings.json").write_text(json.dumps(settings, indent=2))
    (out / "results.md").write_text(results_markdown(results, title=title))
