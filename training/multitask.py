"""One music representation for several categorical data sets (after Kang & Herremans, "Towards unified music
emotion recognition across dimensional and categorical models"): a shared trunk over frozen front-end frames, one
classification head per taxonomy, selective updates (a batch of one data set trains the trunk and only the head
its labels inform), a teacher per data set, and knowledge distillation of the teachers into one student (soft
targets: KL between temperature-softened teacher and student distributions, as Hinton et al.).

The experiment compares, on each set's artist-held-apart val and test splits: the linear probe, a teacher per
data set (single-task), the multitask student without KD and with KD. Validation decides early stopping only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor, nn

from models.config import EncoderConfig
from models.encoders import SequenceTrunk, pad
from models.manifest import Clip
from models.taxonomy import TAXONOMIES, class_index
from training.classify import CategoricalMetrics, categorical_metrics
from training.loop import OptimConfig, Validation, descend, fit, mean_parts, seed_everything

KD_WEIGHT = 0.5  # share of the soft-target loss where a teacher exists
KD_TEMPERATURE = 2.0


@dataclass(frozen=True)
class MultitaskConfig(OptimConfig):
    epochs: int = 120
    batch_size: int = 32
    patience: int = 15
    weight_decay: float = 1e-3
    trunk: EncoderConfig = field(default_factory=lambda: EncoderConfig(kind="bigru", hidden=64, layers=(128,),
                                                                       dropout=0.3))
    kd_weight: float = KD_WEIGHT
    temperature: float = KD_TEMPERATURE


@dataclass(frozen=True)
class LabelledSet:
    """One data set's clips in one taxonomy: (T, F) frames and class indices, by split."""

    name: str
    taxonomy: str
    features: dict[str, list[np.ndarray]]
    labels: dict[str, np.ndarray]
    artists: dict[str, list[str]] = field(default_factory=dict)  # per clip; its id where it names no artist

    @classmethod
    def of(cls, name: str, pairs: list[tuple[Clip, np.ndarray]], taxonomy: str) -> LabelledSet:
        splits = ("train", "val", "test")
        return cls(name, taxonomy,
                   {s: [f for c, f in pairs if c.split == s] for s in splits},
                   {s: np.array([class_index(taxonomy, c.labels[taxonomy]) for c, _ in pairs if c.split == s],
                                dtype=np.int64) for s in splits},
                   {s: [c.group for c, _ in pairs if c.split == s] for s in splits})


class MultitaskNet(nn.Module):
    """(B, T, F) frames, standardised -> shared trunk -> logits per taxonomy."""

    feature_mean: Tensor
    feature_std: Tensor

    def __init__(self, n_features: int, taxonomies: list[str], config: EncoderConfig) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.trunk = SequenceTrunk(n_features, config)
        self.heads = nn.ModuleDict({t: nn.Linear(self.trunk.out_dim, len(TAXONOMIES[t])) for t in taxonomies})

    def forward(self, x: Tensor, lengths: Tensor, taxonomy: str) -> Tensor:
        return self.heads[taxonomy](self.trunk((x - self.feature_mean) / self.feature_std, lengths))


@torch.no_grad()
def logits(model: MultitaskNet, features: list[np.ndarray], taxonomy: str, *, batch_size: int = 64) -> np.ndarray:
    model.eval()
    parts = [model(*pad(features[k : k + batch_size]), taxonomy).numpy() for k in range(0, len(features), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, len(TAXONOMIES[taxonomy])))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def evaluate(model: MultitaskNet, data: LabelledSet, split: str) -> CategoricalMetrics:
    return categorical_metrics(data.taxonomy, data.labels[split],
                               _softmax(logits(model, data.features[split], data.taxonomy)))


def distillation_loss(student: Tensor, target: Tensor, soft: Tensor | None, *, kd_weight: float,
                      temperature: float) -> Tensor:
    """Cross-entropy with the labels, mixed with Hinton et al.'s soft-target loss where teacher logits ``soft``
    exist: KL between temperature-softened teacher and student distributions, times the temperature squared."""
    hard = nn.functional.cross_entropy(student, target)
    if soft is None:
        return hard
    t = temperature
    distill = nn.functional.kl_div(nn.functional.log_softmax(student / t, dim=1),
                                   nn.functional.softmax(soft / t, dim=1), reduction="batchmean") * t * t
    return (1 - kd_weight) * hard + kd_weight * distill


def _batches(sets: list[LabelledSet], size: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray]]:
    """(set index, clip indices) batches of every set, shuffled together: each batch holds one set's clips."""
    out = []
    for s, data in enumerate(sets):
        order = rng.permutation(len(data.labels["train"]))
        out += [(s, order[k : k + size]) for k in range(0, len(order), size) if len(order[k : k + size]) >= 2]
    return [out[i] for i in rng.permutation(len(out))]


def train_multitask(sets: list[LabelledSet], config: MultitaskConfig, *,
                    teachers: dict[str, np.ndarray] | None = None) -> MultitaskNet:
    """Train one net on every set with selective updates; ``teachers`` maps a set's name to teacher logits of
    its training clips (soft targets). Early stopping on the mean validation macro-F1 over sets."""
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    frames = np.concatenate([f for data in sets for f in data.features["train"]])
    model = MultitaskNet(frames.shape[1], sorted({d.taxonomy for d in sets}), config.trunk)
    model.feature_mean.copy_(torch.from_numpy(frames.mean(axis=0)))
    model.feature_std.copy_(torch.from_numpy(np.maximum(frames.std(axis=0), 1e-4)))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def train_epoch() -> dict[str, float]:
        parts = []
        for s, batch in _batches(sets, config.batch_size, rng):
            data = sets[s]
            student = model(*pad([data.features["train"][i] for i in batch]), data.taxonomy)
            soft = torch.from_numpy(teachers[data.name][batch]) if teachers and data.name in teachers else None
            loss = distillation_loss(student, torch.from_numpy(data.labels["train"][batch]), soft,
                                     kd_weight=config.kd_weight, temperature=config.temperature)
            descend(optimizer, loss)  # only this set's head (and the trunk) receive gradients: the selective update
            parts.append({"loss": loss.item()})
        return mean_parts(parts)

    def validate() -> Validation[None]:
        scores = {d.name: evaluate(model, d, "val").macro_f1 for d in sets}
        return Validation(float(np.mean(list(scores.values()))), {f"val_f1_{k}": v for k, v in scores.items()})

    fit(model, epochs=config.epochs, patience=config.patience, train_epoch=train_epoch, validate=validate,
        desc="multitask", progress=False)
    return model


METHODS = ("teacher", "multitask", "multitask_kd")


def run_methods(sets: list[LabelledSet], config: MultitaskConfig) -> dict[str, dict[str, dict[str, dict]]]:
    """method -> set -> split -> metrics, for one seed."""
    teachers = {d.name: train_multitask([d], config) for d in sets}
    soft = {d.name: logits(teachers[d.name], d.features["train"], d.taxonomy) for d in sets}
    students = {"multitask": train_multitask(sets, config), "multitask_kd": train_multitask(sets, config,
                                                                                            teachers=soft)}
    out: dict[str, dict[str, dict[str, dict]]] = {"teacher": {}, "multitask": {}, "multitask_kd": {}}
    for d in sets:
        for split in ("val", "test"):
            out["teacher"].setdefault(d.name, {})[split] = evaluate(teachers[d.name], d, split).to_dict()
            for name, student in students.items():
                out[name].setdefault(d.name, {})[split] = evaluate(student, d, split).to_dict()
    return out


def over_seeds(sets: list[LabelledSet], config: MultitaskConfig, seeds: int) -> list[dict]:
    return [run_methods(sets, replace(config, seed=seed)) for seed in range(seeds)]
