"""``moodspace tune-text``: fine-tune the top layers of the sentence encoder to read feelings.

The frozen all-MiniLM-L6-v2 vectors place a sentence by topic more than by feeling (a ridge reads EmoBank dev
valence with r 0.58). Here its top ``layers`` transformer layers train, with a linear valence/arousal head on the
pooled unit vector, on EmoBank's train part (weight 1) and Warriner et al.'s word norms (``word_weight``); each
set's targets are z-scored on its own, since EmoBank's ratings crowd near neutral. The layers below are run once and
their states kept, so an epoch costs the top layers only. Early stopping on the held-apart tenth of EmoBank train
(``training.run_text.emobank_split``); EmoBank dev is never used for a choice, and is measured by a ridge fitted on
the tuned train vectors (the same kind of reading the frozen baseline gets).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from models.text import SentenceEncoder, TextTuning, mean_pool, top_layer_names
from training.datasets import emobank
from training.learnability import ridge_fit, ridge_predict
from training.loop import descend, seed_everything
from training.run_text import emobank_part, warriner_words

HEAD_RIDGE = 1.0  # the head starts from this ridge on the frozen vectors
RIDGE_ALPHAS = (1.0, 10.0, 100.0, 1000.0, 10_000.0)  # for the ridge readings that compare encoders


@dataclass(frozen=True)
class TuneConfig:
    layers: int = 3
    epochs: int = 5
    patience: int = 2
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    word_weight: float = 0.3
    seed: int = 0
    rank: int = 0  # 0: the layers' weights train and are shipped whole; r > 0: rank-r updates of their matrices
    low_rank_lr: float = 1e-3


@dataclass(frozen=True)
class Rated:
    """Texts with valence/arousal (N, 2), and the weight of each in the loss."""

    name: str
    texts: list[str]
    va: np.ndarray
    weight: float = 1.0


@dataclass
class LowerBatch:
    """The frozen layers' output for one batch: states (B, L, 384), mask (B, L), targets (B, 2), weights (B,)."""

    hidden: Tensor
    mask: Tensor
    target: Tensor
    weight: Tensor


class LowRankLinear(nn.Module):
    """A frozen linear layer plus a trained rank-r update ``b @ a`` of its weight (``b`` starts at zero)."""

    def __init__(self, base: nn.Linear, rank: int) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.a = nn.Parameter(torch.randn(rank, base.in_features) / base.in_features**0.5)
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + (x @ self.a.T) @ self.b.T


class Upper(nn.Module):
    """The top layers of the encoder and the VA head: frozen-layer states -> pooled unit vectors -> (B, 2). With
    ``rank`` > 0 the layers stay frozen and each of their linear maps learns a rank-``rank`` update."""

    def __init__(self, encoder: SentenceEncoder, layers: int, rank: int = 0) -> None:
        super().__init__()
        base = encoder.model
        self.config = base.config
        self.layers = nn.ModuleList(copy.deepcopy(base.encoder.layer[-layers:]))
        self.layers.requires_grad_(rank == 0)
        if rank > 0:
            for layer in self.layers:
                for name, module in list(layer.named_modules()):
                    if isinstance(module, nn.Linear):
                        parent, _, child = name.rpartition(".")
                        setattr(layer.get_submodule(parent), child, LowRankLinear(module, rank))
        self.head = nn.Linear(base.config.hidden_size, 2)

    def low_rank(self) -> dict[str, LowRankLinear]:
        """Each low-rank linear map under its weight's name in the layers, ``0.attention.self.query``."""
        return {name: module for name, module in self.layers.named_modules() if isinstance(module, LowRankLinear)}

    def pooled(self, hidden: Tensor, mask: Tensor) -> Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        attention = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in self.layers:
            out = layer(hidden, attention_mask=attention)
            hidden = out[0] if isinstance(out, tuple) else out
        return mean_pool(hidden, mask)

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        return self.head(self.pooled(hidden, mask))


def _standardised(sets: list[Rated]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """All sets' texts, targets (N, 2) z-scored within each set, and weights (N,)."""
    texts = [text for rated in sets for text in rated.texts]
    target = np.concatenate([(r.va - r.va.mean(axis=0)) / r.va.std(axis=0) for r in sets]).astype(np.float32)
    weight = np.concatenate([np.full(len(r.va), r.weight) for r in sets]).astype(np.float32)
    return texts, target, weight


@torch.no_grad()
def lower_batches(encoder: SentenceEncoder, sets: list[Rated], *, layers: int, batch_size: int,
                  progress: bool = True) -> list[LowerBatch]:
    """Batches of texts of like length (little padding), run through the frozen layers once."""
    texts, target, weight = _standardised(sets)
    ids = encoder.tokenizer(texts, truncation=True, max_length=128)["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")
    depth = len(encoder.model.encoder.layer)
    out = []
    for start in tqdm(range(0, len(order), batch_size), desc="frozen layers", disable=not progress, leave=False):
        rows = order[start : start + batch_size]
        batch = encoder.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
        states = encoder.model(**batch, output_hidden_states=True).hidden_states[depth - layers]
        out.append(LowerBatch(states, batch["attention_mask"], torch.from_numpy(target[rows]),
                              torch.from_numpy(weight[rows])))
    return out


@torch.no_grad()
def upper_vectors(upper: Upper, batches: list[LowerBatch]) -> np.ndarray:
    """Pooled unit vectors of every text, in batch order."""
    upper.eval()
    return np.concatenate([upper.pooled(b.hidden, b.mask).numpy() for b in batches])


def _targets(batches: list[LowerBatch]) -> np.ndarray:
    return np.concatenate([b.target.numpy() for b in batches])


def _mean_r(estimated: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean([np.corrcoef(estimated[:, j], reference[:, j])[0, 1] for j in range(2)]))


def _initial_head(upper: Upper, batches: list[LowerBatch]) -> None:
    """Start the head from a ridge on the frozen vectors, so the first steps tune the layers, not the head."""
    x, y = upper_vectors(upper, batches), _targets(batches)
    x1 = np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)])
    coef = np.linalg.solve(x1.T @ x1 + HEAD_RIDGE * np.eye(x1.shape[1]), x1.T @ y)
    with torch.no_grad():
        upper.head.weight.copy_(torch.from_numpy(coef[:-1].T.astype(np.float32)))
        upper.head.bias.copy_(torch.from_numpy(coef[-1].astype(np.float32)))


def _train_epoch(upper: Upper, batches: list[LowerBatch], optimizer: torch.optim.Optimizer,
                 rng: np.random.Generator, *, progress: bool) -> float:
    upper.train()
    losses = []
    for k in tqdm(rng.permutation(len(batches)), desc="tuning", disable=not progress, leave=False):
        b = batches[k]
        loss = (b.weight[:, None] * (upper(b.hidden, b.mask) - b.target) ** 2).mean()
        losses.append(descend(optimizer, loss))
    return float(np.mean(losses))


def _validate(upper: Upper, batches: list[LowerBatch]) -> float:
    with torch.no_grad():
        estimated = upper.head(torch.from_numpy(upper_vectors(upper, batches))).numpy()
    return _mean_r(estimated, _targets(batches))


def tune(encoder: SentenceEncoder, train: list[Rated], val: Rated, config: TuneConfig, *,
         progress: bool = True) -> tuple[TextTuning, list[dict[str, float]]]:
    """Train the top layers; keep the epoch with the best mean val r (valence, arousal). Returns the tuning and
    each epoch's training loss and val r."""
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    train_batches = lower_batches(encoder, train, layers=config.layers, batch_size=config.batch_size,
                                  progress=progress)
    val_batches = lower_batches(encoder, [val], layers=config.layers, batch_size=128, progress=progress)
    upper = Upper(encoder, config.layers, config.rank)
    _initial_head(upper, train_batches)
    trained = [p for p in upper.layers.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": trained, "lr": config.low_rank_lr if config.rank else config.lr},
                                   {"params": upper.head.parameters(), "lr": config.head_lr}],
                                  weight_decay=config.weight_decay)
    best, best_state, history, waited = _validate(upper, val_batches), copy.deepcopy(upper.state_dict()), [], 0
    history.append({"epoch": 0, "val_r": best})
    for epoch in range(1, config.epochs + 1):
        loss = _train_epoch(upper, train_batches, optimizer, rng, progress=progress)
        score = _validate(upper, val_batches)
        history.append({"epoch": epoch, "loss": loss, "val_r": score})
        if score > best:
            best, best_state, waited = score, copy.deepcopy(upper.state_dict()), 0
        elif (waited := waited + 1) >= config.patience:
            break
    upper.load_state_dict(best_state)
    return _as_tuning(encoder, upper, config, [r.name for r in train]), history


def _as_tuning(encoder: SentenceEncoder, upper: Upper, config: TuneConfig, names: list[str]) -> TextTuning:
    """The trained layers (or their low-rank updates) under the base model's parameter names."""
    if config.rank:
        first = len(encoder.model.encoder.layer) - config.layers
        low_rank = {}
        for name, module in upper.low_rank().items():
            index, _, path = name.partition(".")
            low_rank[f"encoder.layer.{first + int(index)}.{path}.weight"] = (module.b.detach().clone(),
                                                                             module.a.detach().clone())
        return TextTuning(config.layers, {}, tuple(names), low_rank)
    names_in_base = top_layer_names(encoder.model, config.layers)
    trained = [p.detach().clone() for p in upper.layers.parameters()]
    assert len(trained) == len(names_in_base)
    return TextTuning(config.layers, dict(zip(names_in_base, trained, strict=True)), tuple(names))


def ridge_reading(encoder: SentenceEncoder, parts: dict[str, Rated]) -> dict[str, float]:
    """Pearson r on EmoBank dev of a ridge on ``encoder``'s vectors fitted on train, its alpha chosen on val."""
    x = {name: encoder.encode(rated.texts) for name, rated in parts.items()}
    best = max(RIDGE_ALPHAS, key=lambda alpha: _mean_r(
        ridge_predict(ridge_fit(x["train"], parts["train"].va, alpha=alpha), x["val"]), parts["val"].va))
    estimated = ridge_predict(ridge_fit(x["train"], parts["train"].va, alpha=best), x["dev"])
    r = [float(np.corrcoef(estimated[:, j], parts["dev"].va[:, j])[0, 1]) for j in range(2)]
    return {"valence_r": r[0], "arousal_r": r[1], "alpha": best}


def emobank_parts(root: Path) -> dict[str, Rated]:
    """EmoBank's train, val and dev parts (``training.run_text.emobank_part``)."""
    sentences = emobank.read(root)
    parts = {}
    for name in ("train", "val", "dev"):
        chosen = [s for s in sentences if emobank_part(s) == name]
        parts[name] = Rated("emobank", [s.text for s in chosen], np.array([[s.valence, s.arousal] for s in chosen]))
    return parts


def tune_text(*, emobank_root: Path, warriner: Path | None, out: Path, config: TuneConfig) -> dict:
    """Tune, save to ``out`` and compare with the frozen encoder by a ridge reading of EmoBank dev."""
    parts = emobank_parts(emobank_root)
    train = [parts["train"]]
    if warriner is not None:
        train.append(Rated("warriner", *warriner_words(warriner), weight=config.word_weight))
    frozen = SentenceEncoder()
    tuning, history = tune(frozen, train, parts["val"], config)
    tuning.save(out)
    tuned = SentenceEncoder(tuning=TextTuning.load(out))  # as shipped: float16 weights
    return {"version": tuned.version, "config": asdict(config), "history": history,
            "emobank_dev": {"frozen": ridge_reading(frozen, parts), "tuned": ridge_reading(tuned, parts)}}
