"""Train the music and emotion encoders jointly with the composite loss; early stopping on validation MRR."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from models.config import ModelConfig
from models.encoders import CrossModalModel, pad
from models.inference import Embedder
from models.losses import composite_loss, fit_linear_cca
from training.evaluate import RetrievalMetrics, best_lam, categorical_evaluation, evaluate_model
from training.features import Item
from training.loop import OptimConfig, Validation, average_weights, fit, mean_parts, seed_everything
from training.multitask import KD_TEMPERATURE, KD_WEIGHT, distillation_loss
from training.text import quadrants


@dataclass(frozen=True)
class TrainConfig(OptimConfig):
    crop_frames: int = 24  # random windows of up to this many frames per item and step (0: whole items)
    tune_query_lam: bool = True  # composite models: choose the score's default lam on validation
    categorical_weight: float = 3.0  # weight of the categorical heads' cross-entropy (3 chosen on 4Q/MIREX val)
    # The query lam is chosen on validation by mean MRR minus this weight times E2M's top-10 VA distance, so
    # emotion -> music also lands near the asked VA (a distance of 0.2 costs as much as 0.1 of MRR).
    va_agreement_weight: float = 0.5
    dimensional_weight: float = 1.0  # weight of the dimensional head's Gaussian NLL (models with one)
    kd_weight: float = KD_WEIGHT  # share of the teachers' soft targets in the categorical loss, where given
    kd_temperature: float = KD_TEMPERATURE
    # No epoch before this one is kept: the categorical heads' F1 peaks within a few epochs (soon with soft
    # targets), the shared space's retrieval MRR keeps rising for about twenty (docs/experiments.md, "Distillation").
    min_epochs: int = 20
    # Items that share an id are renditions of one piece (a MIDI set's train split through several renderers):
    # with this on, each epoch trains on one rendition per piece, drawn at random, so the timbres vary without the
    # rendered sets' share of an epoch growing; off, every rendition is an item of its own.
    one_rendition: bool = False
    # The CCA term centres each data set's items in a batch on their own mean: a batch's between-set differences
    # (which set, which renderer) then earn the shared space nothing, only what varies within a set does.
    cca_within_sets: bool = False
    # Above 0, validation, early stopping and the model kept read an exponential moving average of the weights,
    # updated after every step with this decay (0.995: about the last 200 steps, four or five epochs of the
    # default's data), instead of the weights of the last step: a flatter minimum, which generalises better to
    # data unlike the training data (SWAD, Cha et al. 2021). Measured, not adopted (docs/experiments.md, "A moving
    # average of the weights").
    ema_decay: float = 0.0
    # The share of feature dimensions each training window loses (set to the training frames' mean, the rest
    # scaled up to keep the spread), the same dimensions over the window: the model cannot lean on a few features,
    # such as the front end's instrument tags, that tell one renderer or timbre from another. Measured, not adopted.
    feature_dropout: float = 0.0
    # With several renditions of a piece (``one_rendition``'s), only its first (the corpus's own render: the
    # recipe lists the varied renders last) teaches the categorical heads; the others train the shared space only,
    # so the heads that give the VA reading of real recordings never learn to ignore timbre. Measured, not adopted.
    heads_from_first_rendition: bool = False
    # Above 0, the weight of a consistency term between renditions: each batch item with other renditions is also
    # read through one of them, drawn at random, over the same window of the piece (renders of one MIDI file keep
    # its timing), and the two music representations are pulled together (their squared distance over the
    # batch's spread, ``rendition_consistency_loss``). Invariance to the renderer taught on the very frames, not
    # only through shared labels. Measured, not adopted.
    rendition_consistency: float = 0.0
    # Above 0, the weight of a term that pulls real recordings and rendered music of one feeling together: in each
    # Russell quadrant a batch holds both kinds of, the squared distance between the recordings' and the renders'
    # mean representation, over the batch's spread (``kind_alignment_loss``). The renders then cannot keep a
    # place of their own in the space, as the built-in synthesizer's timbre would give them; conditioned on the
    # quadrant, so the sets' different shares of feelings are not aligned away. Measured, not adopted.
    kind_alignment: float = 0.0


# Query lams tried on validation for composite models. The KL part's spread across items is much wider than
# the correlation's, so a balanced score sits at a high lam.
QUERY_LAMS = (0.25, 0.5, 0.75, 0.9, 0.95, 0.98)


@dataclass
class TrainResult:
    model: CrossModalModel
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val: RetrievalMetrics | None = None
    query_lam: float | None = None


def crop_bounds(n: int, frames: int, rng: np.random.Generator) -> tuple[int, int]:
    """A random window [start, end) of a sequence of ``n`` frames, between a third of ``frames`` and ``frames``
    long (so the encoders also learn short windows, as the service reads curves over time); all of it where
    ``frames`` is 0 or the sequence is no longer."""
    if frames <= 0:
        return 0, n
    frames = int(rng.integers(max(2, frames // 3), frames + 1))
    if n <= frames:
        return 0, n
    start = int(rng.integers(n - frames + 1))
    return start, start + frames


def crop(item: Item, frames: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same random window (``crop_bounds``) from an item's features and VA sequence."""
    start, end = crop_bounds(item.features.shape[0], frames, rng)
    return item.features[start:end], item.va[start:end]


def drop_features(features: np.ndarray, mean: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """(T, F) ``features`` with a random share ``p`` of its dimensions set to ``mean`` and the others' distance
    from it scaled by 1 / (1 - p) (dropout of whole dimensions, in the space the encoder standardises)."""
    keep = rng.random(features.shape[1]) >= p
    return (mean + (features - mean) * (keep / (1.0 - p))).astype(features.dtype)


def batches(items: Sequence[Item], *, size: int, rng: np.random.Generator, min_size: int = 4) -> list[list[Item]]:
    """Shuffled batches; a last batch smaller than half ``size`` or than ``min_size`` is dropped."""
    order = rng.permutation(len(items))
    groups = [[items[i] for i in order[k : k + size]] for k in range(0, len(items), size)]
    return [g for g in groups if len(g) >= max(min_size, size // 2) or (len(groups) == 1 and len(g) >= min_size)]


def renditions(items: Sequence[Item]) -> list[list[Item]]:
    """Items grouped by id, in first-seen order: the renditions of each piece."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.id, []).append(item)
    return list(groups.values())


def first_renditions_label(items: Sequence[Item]) -> list[Item]:
    """``items`` with the categorical labels of every rendition but each piece's first removed."""
    seen: set[str] = set()
    out = []
    for item in items:
        out.append(item if item.id not in seen else replace(item, labels={}))
        seen.add(item.id)
    return out


def draw_renditions(groups: Sequence[Sequence[Item]], rng: np.random.Generator) -> list[Item]:
    """One rendition of each piece, drawn uniformly."""
    return [group[int(rng.integers(len(group)))] if len(group) > 1 else group[0] for group in groups]


def rendition_partners(items: Sequence[Item], bounds: Sequence[tuple[int, int]], pieces: Mapping[str, Sequence[Item]],
                       rng: np.random.Generator) -> tuple[list[int], list[np.ndarray]]:
    """The batch rows whose piece has other renditions, and for each the same window of one of them, drawn at
    random (cut where that rendition ends sooner)."""
    rows, windows = [], []
    for row, (item, (start, end)) in enumerate(zip(items, bounds, strict=True)):
        others = [other for other in pieces.get(item.id, ()) if other is not item]
        if others:
            other = others[int(rng.integers(len(others)))]
            rows.append(row)
            windows.append(other.features[min(start, other.features.shape[0] - 1) : end])
    return rows, windows


def rendition_consistency_loss(h: torch.Tensor, partner_h: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between each row's representation and its rendition's, over the summed variance of
    the representations (so shrinking them all earns nothing)."""
    both = torch.cat([h, partner_h])
    return ((h - partner_h) ** 2).sum(dim=1).mean() / (2 * both.var(dim=0).sum() + 1e-6)


def kind_alignment_loss(h: torch.Tensor, batch: Sequence[Item]) -> torch.Tensor | None:
    """Mean over the Russell quadrants (of each item's clip-mean VA) that hold both recordings and renders in the
    batch of the squared distance between the two kinds' mean representation, over the batch's summed variance
    (so shrinking the space earns nothing). None where no quadrant holds both kinds."""
    recorded = torch.tensor([item.recorded for item in batch])
    quadrant = torch.from_numpy(quadrants(np.stack([item.va_mean for item in batch])))
    pairs = [(recorded & (quadrant == q), ~recorded & (quadrant == q)) for q in range(4)]
    gaps = [(h[a].mean(dim=0) - h[b].mean(dim=0)).pow(2).sum() for a, b in pairs if a.any() and b.any()]
    if not gaps:
        return None
    return torch.stack(gaps).mean() / (h.var(dim=0).sum() + 1e-6)


def smallest_batch(config: ModelConfig) -> int:
    """Deep CCA needs full-rank covariances: more pairs in a batch than embedding dimensions."""
    return config.d + 1 if config.lam > 0 else 4


def distinct_emotions(sequences: list[np.ndarray]) -> torch.Tensor:
    """(B, B) True where two VA windows differ, so identical emotion inputs are never each other's negatives."""
    means = torch.from_numpy(np.stack([s.mean(axis=0) for s in sequences]))
    spread = torch.from_numpy(np.stack([s.std(axis=0) for s in sequences]))
    same = (torch.cdist(means, means) < 1e-6) & (torch.cdist(spread, spread) < 1e-6)
    return ~same


def feature_stats(items: Sequence[Item]) -> tuple[torch.Tensor, torch.Tensor]:
    frames = np.concatenate([i.features for i in items])
    return torch.from_numpy(frames.mean(axis=0)), torch.from_numpy(frames.std(axis=0))


# Clip id -> logits of its data set's teacher (``training.teachers``): soft targets for the categorical heads.
Teachers = Mapping[str, np.ndarray]


def categorical_loss(model: CrossModalModel, h: torch.Tensor, batch: list[Item], *, teachers: Teachers | None = None,
                     config: TrainConfig | None = None) -> torch.Tensor:
    """Sum over taxonomies of that head's loss on the batch items labelled in it: a head learns only from items
    its labels inform (selective update); the shared trunk from all of them. Where ``teachers`` has every such
    item, the loss mixes the labels with the teachers' soft targets (knowledge distillation)."""
    config = config or TrainConfig()
    total = h.new_zeros(())
    for taxonomy, head in model.music.categorical.items():
        rows = [i for i, item in enumerate(batch) if taxonomy in item.labels]
        if rows:
            target = torch.tensor([batch[i].labels[taxonomy] for i in rows])
            taught = teachers is not None and all(batch[i].id in teachers for i in rows)
            soft = torch.from_numpy(np.stack([teachers[batch[i].id] for i in rows])) if taught else None  # type: ignore[index]
            total = total + distillation_loss(head(h[rows]), target, soft, kd_weight=config.kd_weight,
                                              temperature=config.kd_temperature)
    return total


def dimensional_loss(model: CrossModalModel, h: torch.Tensor, va: list[np.ndarray]) -> torch.Tensor:
    """Gaussian negative log-likelihood of each window's mean VA (a categorical item's is its class's VA) under
    the dimensional head's reading: every item informs it, dynamic, static or categorical."""
    assert model.music.dimensional is not None
    mean, logvar = model.music.dimensional(h)
    target = torch.from_numpy(np.stack([w.mean(axis=0) for w in va]).astype(np.float32))
    return nn.functional.gaussian_nll_loss(mean, target, logvar.exp())


def sources(batch: list[Item]) -> torch.Tensor:
    """(B,) an index per data set of the batch's items."""
    names = sorted({item.source for item in batch})
    return torch.tensor([names.index(item.source) for item in batch])


def _step(model: CrossModalModel, batch: list[Item], optimizer: torch.optim.Optimizer, *,
          config: ModelConfig, train_config: TrainConfig, rng: np.random.Generator,
          teachers: Teachers | None, pieces: Mapping[str, Sequence[Item]] | None = None) -> dict[str, float]:
    bounds = [crop_bounds(item.features.shape[0], train_config.crop_frames, rng) for item in batch]
    windows = [(item.features[a:b], item.va[a:b]) for item, (a, b) in zip(batch, bounds, strict=True)]
    if train_config.feature_dropout > 0:
        mean = model.music.feature_mean.numpy()
        windows = [(drop_features(f, mean, train_config.feature_dropout, rng), va) for f, va in windows]
    h = model.music.represent(*pad([w[0] for w in windows]))
    music = model.music.embed(h, align=False)
    emotion = model.emotion(*pad([w[1] for w in windows]), align=False)
    loss, parts = composite_loss(music, emotion, lam=config.lam, alpha=config.alpha, reg=config.cca_reg,
                                 negatives=distinct_emotions([w[1] for w in windows]),
                                 groups=sources(batch) if train_config.cca_within_sets else None)
    if config.taxonomies:
        ce = categorical_loss(model, h, batch, teachers=teachers, config=train_config)
        loss = loss + train_config.categorical_weight * ce
        parts |= {"ce": ce.item()}
    if model.music.dimensional is not None:
        nll = dimensional_loss(model, h, [w[1] for w in windows])
        loss = loss + train_config.dimensional_weight * nll
        parts |= {"va_nll": nll.item()}
    if train_config.rendition_consistency > 0 and pieces is not None:
        rows, partners = rendition_partners(batch, bounds, pieces, rng)
        if len(rows) > 1:
            consistency = rendition_consistency_loss(h[rows], model.music.represent(*pad(partners)))
            loss = loss + train_config.rendition_consistency * consistency
            parts |= {"consistency": consistency.item()}
    if train_config.kind_alignment > 0 and (gap := kind_alignment_loss(h, batch)) is not None:
        loss = loss + train_config.kind_alignment * gap
        parts |= {"kind_gap": gap.item()}
    parts["loss"] = loss.item()
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    return parts


def _check_batch_size(config: ModelConfig, train_config: TrainConfig, n_train: int) -> int:
    min_size = smallest_batch(config)
    if min(train_config.batch_size, n_train) < min_size:
        raise ValueError(f"the CCA loss needs batches of more than d = {config.d} pairs: batch size "
                         f"{train_config.batch_size}, {n_train} training items; lower d or add data")
    return min_size


def train_model(config: ModelConfig, train_items: Sequence[Item], val_items: Sequence[Item],
                train_config: TrainConfig, *, progress: bool = True, teachers: Teachers | None = None,
                init: CrossModalModel | None = None) -> TrainResult:
    """Seeded training; keeps the weights of the epoch with the best mean validation MRR; ``teachers``: soft
    targets for the categorical heads (``categorical_loss``). With ``train_config.ema_decay`` the weights
    validated and kept are the moving average of the trained ones. ``init``: a trained model of the same config
    to start from (fine-tuning), its feature statistics kept."""
    min_size = _check_batch_size(config, train_config, len(train_items))
    if train_config.heads_from_first_rendition:
        train_items = first_renditions_label(train_items)
    seed_everything(train_config.seed)
    rng = np.random.default_rng(train_config.seed)
    model = CrossModalModel(config)
    if init is None:
        model.music.set_feature_stats(*feature_stats(train_items))
    else:
        model.load_state_dict(init.state_dict())
    kept = copy.deepcopy(model) if train_config.ema_decay > 0 else model
    optimizer = torch.optim.Adam(model.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay)
    lams = QUERY_LAMS if train_config.tune_query_lam and 0 < config.lam < 1 else (config.lam,)
    pieces = renditions(train_items) if train_config.one_rendition else [[item] for item in train_items]
    consistent = train_config.rendition_consistency > 0
    by_id = {group[0].id: group for group in renditions(train_items)} if consistent else None

    def step(batch: list[Item]) -> dict[str, float]:
        parts = _step(model, batch, optimizer, config=config, train_config=train_config, rng=rng, teachers=teachers,
                      pieces=by_id)
        if kept is not model:
            average_weights(kept, model, decay=train_config.ema_decay)
        return parts

    def train_epoch() -> dict[str, float]:
        model.train()
        epoch = draw_renditions(pieces, rng)
        return mean_parts([step(b) for b in batches(epoch, size=train_config.batch_size, rng=rng, min_size=min_size)])

    def validate() -> Validation[tuple[float, RetrievalMetrics]]:
        align_cca(kept, train_items)
        lam, val = best_lam(kept, val_items, lams)
        f1 = {t: m.macro_f1 for t, m in categorical_evaluation(kept, val_items).items()}
        record = {"val_m2e_mrr": val.m2e.mrr, "val_e2m_mrr": val.e2m.mrr, **{f"val_f1_{t}": v for t, v in f1.items()}}
        return Validation(float(np.mean([val.mean_mrr, *f1.values()])), record, (lam, val))

    fitted = fit(kept, epochs=train_config.epochs, patience=train_config.patience, train_epoch=train_epoch,
                 validate=validate, desc="train", progress=progress, min_epochs=train_config.min_epochs)
    assert fitted.best is not None and fitted.best.detail is not None, "no epoch ran"
    best_query_lam, best_val = fitted.best.detail
    if len(lams) > 1:
        best_query_lam = choose_query_lam(kept, val_items, lams, weight=train_config.va_agreement_weight)
    fit_readout_temperature(kept, val_items)
    return TrainResult(kept, fitted.history, fitted.best_epoch, best_val, best_query_lam)


def choose_query_lam(model: CrossModalModel, items: Sequence[Item], lams: Sequence[float], *, weight: float) -> float:
    """The lam among ``lams`` with the best mean MRR minus ``weight`` times E2M's top-10 VA distance on ``items``;
    each candidate reads VA with its own lam and readout temperature, as the service would. Leaves the model's
    config at the chosen lam."""
    base = model.config

    def criterion(lam: float) -> float:
        model.config = replace(base, query_lam=lam)
        fit_readout_temperature(model, items)
        metrics = evaluate_model(model, items, lam=lam)
        assert metrics.va_agreement is not None
        return metrics.mean_mrr - weight * metrics.va_agreement.top_k_distance

    best = max(lams, key=criterion)
    model.config = replace(base, query_lam=best)
    return best


READOUT_TEMPERATURES = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def fit_readout_temperature(model: CrossModalModel, items: Sequence[Item]) -> float:
    """Choose the VA-reading softmax temperature with the lowest mean absolute VA error on ``items``."""
    embedder = Embedder(model)
    music = embedder.embed_features([i.features for i in items])
    reference = np.stack([i.va_mean for i in items])
    errors = [np.abs(embedder.read_va(music, temperature=t).mean - reference).mean() for t in READOUT_TEMPERATURES]
    best = READOUT_TEMPERATURES[int(np.argmin(errors))]
    model.readout_temperature.fill_(best)
    return best


@torch.no_grad()
def align_cca(model: CrossModalModel, items: Sequence[Item]) -> torch.Tensor:
    """Fit the linear CCA alignment of both encoders on ``items`` (whole sequences); returns the correlations."""
    model.eval()
    music, emotion = (torch.cat(parts) for parts in zip(*(
        (model.music(*pad([i.features for i in chunk]), align=False).E,
         model.emotion(*pad([i.va for i in chunk]), align=False).E)
        for chunk in (items[k : k + 128] for k in range(0, len(items), 128))), strict=True))
    (m1, w1), (m2, w2), rho = fit_linear_cca(music, emotion, reg=model.config.cca_reg)
    model.music.align.set(m1, w1)
    model.emotion.align.set(m2, w2)
    return rho
