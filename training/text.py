"""Train the text heads of a bundle (Won et al., "Emotion embedding spaces for matching music to stories",
ISMIR 2021): the valence/arousal bridge on EmoBank, and the three-branch metric-learning bridge.

VA bridge: MSE regression from frozen sentence vectors to EmoBank valence/arousal (train split; early stopping on
dev), optionally with Warriner word norms as extra, down-weighted examples.

Metric bridge (the paper's Eq. 4): tags are the four VA quadrants, shared by text and music. Three triplet losses,
``tag -> text``, ``tag -> music`` and ``text -> music``, each ``max(0, delta + dist(a, p) - dist(a, n))`` with
``dist = -score`` (the composite score, anchor as query), negatives drawn by distance-weighted sampling
(Wu et al., ICCV 2017) on the unit sphere of centred point embeddings. The music encoder stays frozen, so text
queries need no music-side change; the tag branch trains four tag embeddings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from models.config import TextConfig
from models.encoders import CrossModalModel, Embedding, GaussianHeads
from models.scoring_torch import centred_unit, composite_score_matrix
from training.datasets.emopia import quadrant_of
from training.loop import OptimConfig, Validation, descend, fit, seed_everything


@dataclass(frozen=True)
class TextTrainConfig(OptimConfig):
    epochs: int = 60
    batch_size: int = 128
    patience: int = 8
    delta: float = 0.2  # triplet margin on the composite score
    word_weight: float = 0.3  # weight of Warriner word examples in the VA loss


def quadrants(va: np.ndarray) -> np.ndarray:
    """0-based Russell quadrant of each (valence, arousal) row (EMOPIA numbering minus one)."""
    return np.array([quadrant_of(v, a) for v, a in va], dtype=np.int64) - 1


@dataclass(frozen=True)
class TextSet:
    """Sentence vectors (N, 384) with valence/arousal (N, 2) on [-1, 1]."""

    vectors: np.ndarray
    va: np.ndarray

    @property
    def quadrants(self) -> np.ndarray:
        return quadrants(self.va)


@dataclass(frozen=True)
class MusicSet:
    """Frozen music embeddings (N, d) with clip-mean valence/arousal (N, 2)."""

    E: np.ndarray
    mu: np.ndarray
    logvar: np.ndarray
    va: np.ndarray

    @property
    def quadrants(self) -> np.ndarray:
        return quadrants(self.va)


def _tensor(x: np.ndarray) -> Tensor:
    return torch.from_numpy(np.asarray(x, dtype=np.float32))


# The VA bridge --------------------------------------------------------------------------------------------------

def _epoch_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    return np.array_split(rng.permutation(n), max(1, n // batch_size))


def train_va_bridge(model: CrossModalModel, train: TextSet, dev: TextSet, config: TextTrainConfig, *,
                    words: TextSet | None = None) -> VAFit:
    """Fit ``model.text.va`` (MSE); keep the epoch with the lowest dev error. Returns dev metrics."""
    assert model.text is not None
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    x = np.concatenate([train.vectors] + ([words.vectors] if words else []))
    y = np.concatenate([train.va] + ([words.va] if words else []))
    weight = np.concatenate([np.ones(len(train.va))] + ([np.full(len(words.va), config.word_weight)] if words else []))
    head = model.text.va
    optimizer = torch.optim.Adam(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def train_epoch() -> dict[str, float]:
        for batch in _epoch_batches(len(y), config.batch_size, rng):
            loss = (_tensor(weight[batch])[:, None] * (head(_tensor(x[batch])) - _tensor(y[batch])) ** 2).mean()
            descend(optimizer, loss)
        return {}

    def validate() -> Validation[None]:
        return Validation(-float(np.mean((text_va(model, dev.vectors) - dev.va) ** 2)))

    fit(head, epochs=config.epochs, patience=config.patience, train_epoch=train_epoch, validate=validate,
        desc="text VA bridge")
    return va_metrics(text_va(model, dev.vectors), dev.va)


@torch.no_grad()
def text_va(model: CrossModalModel, vectors: np.ndarray) -> np.ndarray:
    assert model.text is not None
    model.text.eval()
    return model.text.va(_tensor(vectors)).numpy().astype(np.float64)


@dataclass(frozen=True)
class VAFit:
    """Pearson r and R^2 of estimated against reference valence and arousal."""

    valence_r: float
    valence_r2: float
    arousal_r: float
    arousal_r2: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _r_and_r2(estimated: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    r = float(np.corrcoef(estimated, reference)[0, 1])
    r2 = 1.0 - float(np.sum((reference - estimated) ** 2) / np.sum((reference - reference.mean()) ** 2))
    return r, r2


def va_metrics(estimated: np.ndarray, reference: np.ndarray) -> VAFit:
    """Pearson r and R^2 for valence (column 0) and arousal (column 1)."""
    return VAFit(*_r_and_r2(estimated[:, 0], reference[:, 0]), *_r_and_r2(estimated[:, 1], reference[:, 1]))


# The metric-learning bridge --------------------------------------------------------------------------------------

class TagEmbeddings(nn.Module):
    """One learnable Gaussian embedding per quadrant tag."""

    def __init__(self, d: int, *, logvar_min: float, logvar_max: float, n_tags: int = 4) -> None:
        super().__init__()
        self.codes = nn.Parameter(torch.randn(n_tags, d) * 0.1)
        self.heads = GaussianHeads(d, d, logvar_min=logvar_min, logvar_max=logvar_max)

    def forward(self, tags: Tensor) -> Embedding:
        return self.heads(self.codes[tags])


def distance_weighted_negatives(anchor_E: Tensor, candidate_E: Tensor, allowed: Tensor,
                                generator: torch.Generator, *, cutoff: float = 0.5) -> Tensor:
    """For each anchor, one candidate index sampled with weight 1 / q(dist) among ``allowed`` ones, where q is
    the density of distances between uniform points on the unit sphere (Wu et al., 2017), distances clipped below
    at ``cutoff``."""
    n = anchor_E.shape[1] - 1  # centred vectors live on a (d - 1)-dimensional sphere
    dist = torch.cdist(centred_unit(anchor_E), centred_unit(candidate_E)).clamp(cutoff, 1.99)
    log_q = (n - 2) * dist.log() + (n - 3) / 2 * torch.log1p(-(dist**2) / 4)
    log_w = (-log_q).masked_fill(~allowed, -math.inf)
    weights = torch.softmax(log_w - log_w.max(dim=1, keepdim=True).values, dim=1)
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)


def _triplet(positive: Tensor, negative: Tensor, delta: float) -> Tensor:
    """max(0, delta + dist(a, p) - dist(a, n)) with dist = -score."""
    return torch.relu(delta - positive + negative).mean()


def _pick_positive(tags: np.ndarray, pool_tags: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    by_tag = {t: np.flatnonzero(pool_tags == t) for t in np.unique(pool_tags)}
    return np.array([rng.choice(by_tag[t]) for t in tags])


def metric_step(model: CrossModalModel, tags_module: TagEmbeddings, batch: np.ndarray, texts: TextSet,
                music: MusicSet, *, rng: np.random.Generator, generator: torch.Generator, delta: float) -> Tensor:
    """The three triplet losses on one batch of text anchors."""
    assert model.text is not None
    lam = model.config.score_lam
    text_tags = texts.quadrants[batch]
    text = model.text.embed(_tensor(texts.vectors[batch]))
    music_all = Embedding(_tensor(music.E), _tensor(music.mu), _tensor(music.logvar))
    music_tags = torch.from_numpy(music.quadrants)
    tags = tags_module(torch.arange(4))
    anchors = torch.from_numpy(text_tags)
    # text -> music
    positive = _pick_positive(text_tags, music.quadrants, rng)
    allowed = anchors[:, None] != music_tags[None, :]
    negative = distance_weighted_negatives(text.E.detach(), music_all.E, allowed, generator)
    scores = composite_score_matrix(text, music_all, lam=lam)
    rows = torch.arange(len(batch))
    loss = _triplet(scores[rows, torch.from_numpy(positive)], scores[rows, negative], delta)
    # tag -> text and tag -> music: each tag anchors the batch's items
    for items, item_tags in ((text, anchors), (music_all, music_tags)):
        tag_scores = composite_score_matrix(tags, items, lam=lam)  # (4, N)
        same = item_tags[None, :] == torch.arange(4)[:, None]
        hinge = torch.relu(delta - tag_scores[:, :, None] + tag_scores[:, None, :])  # positive j, negative k
        mask = same[:, :, None] & ~same[:, None, :]
        loss = loss + hinge[mask].mean()
    return loss


def train_metric_bridge(model: CrossModalModel, train: TextSet, dev: TextSet, music: MusicSet,
                        music_dev: MusicSet, config: TextTrainConfig) -> float:
    """Fit ``model.text`` metric heads (and tag embeddings); keep the epoch with the best dev text->music MRR,
    which it returns."""
    text = model.text
    assert text is not None
    seed_everything(config.seed)
    rng, generator = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)
    tags = TagEmbeddings(model.config.d, logvar_min=model.config.logvar_min, logvar_max=model.config.logvar_max)
    parameters = [*text.metric_trunk.parameters(), *text.metric.parameters(), *tags.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)

    def train_epoch() -> dict[str, float]:
        for batch in _epoch_batches(len(train.va), config.batch_size, rng):
            loss = metric_step(model, tags, batch, train, music, rng=rng, generator=generator, delta=config.delta)
            descend(optimizer, loss)
        return {}

    def validate() -> Validation[None]:
        lam = model.config.score_lam
        return Validation(quadrant_retrieval(embed_text(model, dev.vectors), dev.quadrants, music_dev, lam=lam).mrr)

    fitted = fit(text, epochs=config.epochs, patience=config.patience, train_epoch=train_epoch, validate=validate,
                 desc="text metric bridge")
    assert fitted.best is not None, "no epoch ran"
    return fitted.best.score


@torch.no_grad()
def embed_text(model: CrossModalModel, vectors: np.ndarray) -> Embedding:
    assert model.text is not None
    model.text.eval()
    return model.text.embed(_tensor(vectors))


def quadrant_retrieval(queries: Embedding, query_quadrants: np.ndarray, music: MusicSet, *, lam: float,
                       k: int = 5) -> RelevanceMetrics:
    """Text -> music retrieval where a music item is relevant if it shares the query's quadrant: P@k and MRR
    (rank of the first relevant item), each averaged within a quadrant, then over quadrants (macro)."""
    with torch.no_grad():
        scores = composite_score_matrix(queries, Embedding(_tensor(music.E), _tensor(music.mu), _tensor(music.logvar)),
                             lam=lam).numpy()
    return relevance_metrics(scores, query_quadrants, music.quadrants, k=k)


@dataclass(frozen=True)
class RelevanceMetrics:
    """Macro-averaged precision at ``k`` and MRR of the first relevant item."""

    k: int
    precision: float
    mrr: float

    def to_dict(self) -> dict[str, float]:
        return {f"p@{self.k}": self.precision, "mrr": self.mrr}


def relevance_metrics(scores: np.ndarray, query_classes: np.ndarray, item_classes: np.ndarray, *,
                      k: int = 5) -> RelevanceMetrics:
    """Macro-averaged P@k and MRR of (Nq, Ni) scores with class-match relevance."""
    order = np.argsort(-scores, axis=1, kind="stable")
    relevant = item_classes[order] == query_classes[:, None]
    precision = relevant[:, :k].mean(axis=1)
    first = np.where(relevant.any(axis=1), relevant.argmax(axis=1) + 1, np.inf)
    reciprocal = 1.0 / first
    classes = np.unique(query_classes)
    return RelevanceMetrics(k, float(np.mean([precision[query_classes == c].mean() for c in classes])),
                            float(np.mean([reciprocal[query_classes == c].mean() for c in classes])))


def with_text_heads(model: CrossModalModel, text: TextConfig) -> CrossModalModel:
    """A copy of ``model`` whose config has text heads (new, untrained), other weights kept."""
    grown = CrossModalModel(replace(model.config, text=text))
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(name.startswith("text.") for name in missing), (missing, unexpected)
    return grown.eval()


def without_text_heads(model: CrossModalModel) -> CrossModalModel:
    """A copy of ``model`` without text heads, other weights kept."""
    bare = CrossModalModel(replace(model.config, text=None))
    bare.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("text.")})
    return bare.eval()
