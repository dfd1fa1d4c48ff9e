"""PNG plots written beside training and experiment outputs (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_history(history: list[dict[str, float]], path: Path) -> Path:
    """Training loss parts and validation MRR per epoch."""
    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key in ("loss", "cca", "kl_rank"):
        left.plot(epochs, [row[key] for row in history], label=key)
    left.set(xlabel="epoch", title="training loss")
    left.legend()
    for key in ("val_m2e_mrr", "val_e2m_mrr"):
        right.plot(epochs, [row[key] for row in history], label=key.removeprefix("val_"))
    right.set(xlabel="epoch", ylabel="MRR", title="validation")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_sweep(values: list[float], summaries: list[dict], *, name: str, path: Path) -> Path:
    """MRR (mean and std over seeds) of the composite method against one hyperparameter, both directions."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for direction in ("m2e", "e2m"):
        means = [s[direction]["mrr"] for s in summaries]
        stds = [s[direction]["mrr_std"] for s in summaries]
        ax.errorbar(values, means, yerr=stds, marker="o", capsize=3, label=direction.upper())
    ax.set(xlabel=name, ylabel="MRR", title=f"MRR against {name}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_va(reference, estimated, path: Path, *, title: str) -> Path:
    """Predicted against true valence and arousal (clip means), one panel each, with r in the title."""
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for k, (ax, name) in enumerate(zip(axes, ("valence", "arousal"), strict=True)):
        x, y = np.asarray(reference)[:, k], np.asarray(estimated)[:, k]
        r = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
        ax.scatter(x, y, s=10, alpha=0.6)
        ax.plot([-1, 1], [-1, 1], color="grey", linewidth=0.8, linestyle="--")
        ax.set(xlim=(-1, 1), ylim=(-1, 1), xlabel=f"true {name}", ylabel=f"predicted {name}",
               title=f"{name}: r = {r:.2f}", aspect="equal")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
