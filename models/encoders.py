"""Encoders into the shared emotion space. Each ends in three linear heads: a point embedding E (correlation
space), and the mean and log-variance of a diagonal Gaussian (distribution space).

- ``MusicEncoder``: (B, T, F) frame features -> mean frame + MLP (``mlp``) or a bidirectional GRU (``bigru``).
- ``EmotionEncoder``: (B, T, 2) valence/arousal sequences -> bidirectional GRU.

Deep CCA makes each embedding dimension correlate across samples, but leaves the two sides free up to a linear
map; the point score compares one music vector with one emotion vector dimension by dimension, so after training
a linear CCA (``models.losses.fit_linear_cca``) is fitted on the training embeddings and stored in each encoder's
``CCAAlignment``: E is mapped to canonical variates weighted by the square root of their correlation.

The BiGRU trunk concatenates the forward direction's last hidden state and the backward direction's last one
(which has read the sequence back to its first frame), then a fully connected stack with softplus and dropout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from models.config import ChordConfig, EncoderConfig, ModelConfig, TextConfig
from models.scoring import Gaussians
from models.taxonomy import TAXONOMIES

TEXT_DIM = 384  # all-MiniLM-L6-v2 sentence vectors (models/text.py)


class Embedding(NamedTuple):
    """Point embedding and diagonal Gaussian, each (B, d)."""

    E: Tensor
    mu: Tensor
    logvar: Tensor

    def numpy(self) -> Gaussians:
        """The same embeddings as float64 arrays (detached, on the CPU)."""
        return Gaussians(*(t.detach().cpu().numpy().astype(np.float64) for t in self))


def pad(sequences: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """(B, T_max, C) zero-padded float32 tensor and (B,) lengths from (T_i, C) arrays."""
    lengths = torch.tensor([s.shape[0] for s in sequences])
    out = torch.zeros(len(sequences), int(lengths.max()), sequences[0].shape[1])
    for i, s in enumerate(sequences):
        out[i, : s.shape[0]] = torch.from_numpy(np.asarray(s, dtype=np.float32))
    return out, lengths


def fc_stack(in_dim: int, layers: tuple[int, ...], dropout: float) -> tuple[nn.Sequential, int]:
    modules: list[nn.Module] = []
    for width in layers:
        modules += [nn.Linear(in_dim, width), nn.Softplus(), nn.Dropout(dropout)]
        in_dim = width
    return nn.Sequential(*modules), in_dim


class GaussianHeads(nn.Module):
    """Three linear heads; the log-variance is squashed smoothly into [logvar_min, logvar_max]."""

    def __init__(self, in_dim: int, d: int, *, logvar_min: float, logvar_max: float) -> None:
        super().__init__()
        self.E, self.mu, self.logvar = nn.Linear(in_dim, d), nn.Linear(in_dim, d), nn.Linear(in_dim, d)
        self.centre, self.half_range = (logvar_max + logvar_min) / 2, (logvar_max - logvar_min) / 2

    def forward(self, h: Tensor) -> Embedding:
        logvar = self.centre + self.half_range * torch.tanh(self.logvar(h) / self.half_range)
        return Embedding(self.E(h), self.mu(h), logvar)


class CCAAlignment(nn.Module):
    """E -> (E - mean) @ weight, with buffers fitted after training (identity until then)."""

    mean: Tensor
    weight: Tensor

    def __init__(self, d: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("weight", torch.eye(d))

    def set(self, mean: Tensor, weight: Tensor) -> None:
        self.mean.copy_(mean)
        self.weight.copy_(weight)

    def forward(self, E: Tensor) -> Tensor:
        return (E - self.mean) @ self.weight


class ChordTransformer(nn.Module):
    """Key-relative chord tokens (B, L), 0 = padding (``models.harmony.relative_tokens``) -> (B, d): a CLS token
    before the chords, learned positions, a transformer encoder, and the CLS token's output (after Kang &
    Herremans, whose chord transformer's CLS output joins the music representation)."""

    def __init__(self, n_tokens: int, config: ChordConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(n_tokens + 1, config.d, padding_idx=0)  # the last id is CLS
        self.positions = nn.Embedding(config.max_chords + 1, config.d)
        layer = nn.TransformerEncoderLayer(config.d, config.heads, dim_feedforward=2 * config.d,
                                           dropout=config.dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.out_dim = config.d
        self.cls_id = n_tokens

    def forward(self, tokens: Tensor) -> Tensor:
        tokens = tokens[:, : self.config.max_chords]
        cls = torch.full((tokens.shape[0], 1), self.cls_id, dtype=tokens.dtype, device=tokens.device)
        x = torch.cat([cls, tokens], dim=1)
        h = self.tokens(x) + self.positions(torch.arange(x.shape[1], device=x.device))[None]
        return self.encoder(h, src_key_padding_mask=x == 0)[:, 0]


class SequenceTrunk(nn.Module):
    """(B, T, C) padded sequences with their lengths -> (B, H) summaries."""

    def __init__(self, in_dim: int, config: EncoderConfig) -> None:
        super().__init__()
        self.kind, self.stats_pool = config.kind, config.stats_pool
        summary = 2 * in_dim if config.stats_pool else 0
        if config.kind == "bigru":
            self.gru: nn.GRU | None = nn.GRU(in_dim, config.hidden, batch_first=True, bidirectional=True)
            summary += 2 * config.hidden
        elif config.kind == "mlp":
            self.gru = None
            summary = summary or in_dim
        else:
            raise ValueError(f"unknown encoder kind {config.kind!r}; choose mlp or bigru")
        self.fc, self.out_dim = fc_stack(summary, config.layers, config.dropout)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        parts = []
        if self.gru is None or self.stats_pool:
            mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype)[..., None]
            count = lengths[:, None].to(x.dtype)
            mean = (x * mask).sum(dim=1) / count  # (B, C)
            parts.append(mean)
            if self.stats_pool:
                var = (((x - mean[:, None, :]) * mask) ** 2).sum(dim=1) / count
                parts.append(torch.sqrt(var + 1e-6))
        if self.gru is not None:
            # Sequences that fill the batch need no packing (the same states, a quarter less time: VA points)
            full = bool((lengths == x.shape[1]).all())
            packed = x if full else pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, h_n = self.gru(packed)  # (2, B, H): forward's last state, backward's state after frame 0
            parts = [h_n[0], h_n[1], *parts]
        return self.fc(torch.cat(parts, dim=1))


class DimensionalHead(nn.Module):
    """The shared music representation (B, H) -> valence/arousal means on [-1, 1] and log-variances, each (B, 2)
    (a Gaussian reading, trained with the Gaussian negative log-likelihood)."""

    def __init__(self, in_dim: int, *, logvar_min: float, logvar_max: float) -> None:
        super().__init__()
        self.mean, self.logvar = nn.Linear(in_dim, 2), nn.Linear(in_dim, 2)
        self.logvar_min, self.logvar_max = logvar_min, logvar_max

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return torch.tanh(self.mean(h)), self.logvar(h).clamp(self.logvar_min, self.logvar_max)


class MusicEncoder(nn.Module):
    """Frame features, standardised with statistics of the training set (stored as buffers), -> Embedding."""

    feature_mean: Tensor
    feature_std: Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(config.feature_size))
        self.register_buffer("feature_std", torch.ones(config.feature_size))
        self.trunk = SequenceTrunk(config.feature_size, config.music)
        self.heads = GaussianHeads(self.trunk.out_dim, config.d, logvar_min=config.logvar_min,
                                   logvar_max=config.logvar_max)
        self.align = CCAAlignment(config.d)
        self.categorical = nn.ModuleDict({t: nn.Linear(self.trunk.out_dim, len(TAXONOMIES[t]))
                                          for t in config.taxonomies})
        # log-variance of VA on [-1, 1]: from a spread of 0.02 to one of 1
        self.dimensional = (DimensionalHead(self.trunk.out_dim, logvar_min=-8.0, logvar_max=0.0)
                            if config.dimensional else None)

    def set_feature_stats(self, mean: Tensor, std: Tensor) -> None:
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std.clamp_min(1e-4))

    def represent(self, x: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, F) frame features -> (B, H) the shared music representation every head reads."""
        return self.trunk((x - self.feature_mean) / self.feature_std, lengths)

    def embed(self, h: Tensor, *, align: bool = True) -> Embedding:
        out = self.heads(h)
        return out._replace(E=self.align(out.E)) if align else out

    def forward(self, x: Tensor, lengths: Tensor, *, align: bool = True) -> Embedding:
        """x (B, T, F) frame features, lengths (B,) -> Embedding of (B, d) tensors; ``align=False`` gives the raw E
        that the CCA loss reads."""
        return self.embed(self.represent(x, lengths), align=align)

    def valence_arousal(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """The dimensional head's VA means and log-variances, each (B, 2)."""
        assert self.dimensional is not None, "the model has no dimensional head"
        return self.dimensional(self.represent(x, lengths))

    def class_logits(self, x: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        """Logits (B, C_t) of each categorical head."""
        h = self.represent(x, lengths)
        return {t: head(h) for t, head in self.categorical.items()}


class EmotionEncoder(nn.Module):
    """Valence/arousal sequences (B, T, 2) on [-1, 1] -> Embedding."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.trunk = SequenceTrunk(2, config.emotion)
        self.heads = GaussianHeads(self.trunk.out_dim, config.d, logvar_min=config.logvar_min,
                                   logvar_max=config.logvar_max)
        self.align = CCAAlignment(config.d)

    def forward(self, va: Tensor, lengths: Tensor, *, align: bool = True) -> Embedding:
        out = self.heads(self.trunk(va, lengths))
        return out._replace(E=self.align(out.E)) if align else out


class TextHeads(nn.Module):
    """Trainable heads on frozen sentence vectors (B, 384): ``va`` (the valence/arousal bridge, with an affine
    calibration from text VA to the spread music curves use) and ``metric`` (straight into the shared space)."""

    va_shift: Tensor
    va_scale: Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.register_buffer("va_shift", torch.zeros(2))
        self.register_buffer("va_scale", torch.ones(2))
        text = config.text or TextConfig()
        trunk, width = fc_stack(TEXT_DIM, text.layers, text.dropout)
        self.va = nn.Sequential(trunk, nn.Linear(width, 2), nn.Tanh())
        metric_trunk, metric_width = fc_stack(TEXT_DIM, text.layers, text.dropout)
        self.metric_trunk = metric_trunk
        self.metric = GaussianHeads(metric_width, config.d, logvar_min=config.logvar_min,
                                    logvar_max=config.logvar_max)

    def valence_arousal(self, x: Tensor) -> Tensor:
        """Calibrated valence/arousal on [-1, 1] of (B, 384) sentence vectors."""
        return ((self.va(x) - self.va_shift) * self.va_scale).clamp(-1.0, 1.0)

    def embed(self, x: Tensor) -> Embedding:
        return self.metric(self.metric_trunk(x))


class CrossModalModel(nn.Module):
    """The music and emotion encoders of one shared space, and the softmax temperature of the VA reading
    (``models.inference``), fitted after training."""

    readout_temperature: Tensor

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.music = MusicEncoder(config)
        self.emotion = EmotionEncoder(config)
        self.text = TextHeads(config) if config.text is not None else None
        self.register_buffer("readout_temperature", torch.tensor(0.05))
