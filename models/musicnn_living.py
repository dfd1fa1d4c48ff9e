"""musicnn computed on its living filters: the same outputs, to float32 rounding, at a tenth of the work.

Weight decay drove most of the published network's front-end filters to about 1e-30: 180 of the 204 filters of the
first timbral convolution, 190 of the second and 124 of the 153 temporal ones answer their bias whatever they hear.
Their pooled outputs are constants, and so is their share of the mid-end's first convolution. Here:

- ``FrequencyPooledConv``: one front-end convolution on its living filters, with the max over frequency taken
  before the ReLU and batch norm (both monotone per filter, so the max commutes with them);
- ``TimeConv``: a mid-end convolution (7 frames across all features) as the 1-D convolution it is; the first one
  convolves only the features that vary and adds the constant ones' share, computed once per call.

``models.musicnn.MusicnnMSD.prune`` builds them from the loaded weights; ``frontend_dense`` and ``midend_dense``
there compute the original way, and the tests hold the two together.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

N_MELS = 96
# A front-end filter whose largest possible answer to any audio, after its batch norm, moves by less than this from
# its bias's answer is dead (the published weights' dead ones move by under 4e-9, the living by more than 1e-2).
DEAD_RESPONSE = 1e-6
BatchNorm = nn.modules.batchnorm._BatchNorm


def pad_time(x: Tensor, before: int, after: int) -> Tensor:
    return F.pad(x, (0, 0, before, after))  # x: (B, C, T, F)


def largest_input(input_bn: BatchNorm, *, sr: int = 16_000, n_fft: int = 512) -> float:
    """Bound on |x| after musicnn's input batch norm over every clip in [-1, 1]: a mel band's power is at most
    (sum of the Hann window)^2 times its filter's weight sum, so the log-mel lies in [0, log10(10^4 p + 1)]."""
    mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=N_MELS)
    top = float(np.log10(1e4 * (n_fft / 2) ** 2 * mel.sum(axis=1).max() + 1))
    ends = input_bn(torch.tensor([0.0, top]).view(2, 1, 1, 1)).flatten()
    return float(ends.detach().abs().max())


def _bn_scale(bn: BatchNorm) -> Tensor:
    variance: Tensor = bn.running_var  # type: ignore[assignment]
    return bn.weight / torch.sqrt(variance + bn.eps)


@dataclass(frozen=True)
class FrequencyPooledConv:
    """``bn(relu(conv(x))).amax(frequency)`` of one front-end convolution, on its living filters.

    Where a filter's batch-norm scale is positive, ReLU and batch norm increase with their input, so the max over
    frequency is taken first; where it is negative they decrease and the max is that of the minimum: such a
    filter is negated (exact in floating point) so that one max serves both, and the sign restored after.
    """

    weight: Tensor  # (A, 1, kt, kf) the A living filters, each times its sign
    bias: Tensor  # (A,)
    sign: Tensor  # (A, 1) +1 or -1: the sign of each living filter's batch-norm scale
    alive: Tensor  # (A,) their indices among the C filters
    bn: BatchNorm
    constant: Tensor  # (C, 1) each filter's answer to its bias alone: what a dead one gives everywhere
    pad: tuple[int, int]  # frames of zeros before and after, in time

    @classmethod
    def build(cls, conv: nn.Conv2d, bn: BatchNorm, *, pad: tuple[int, int], largest: float) -> FrequencyPooledConv:
        scale = _bn_scale(bn)
        response = scale.abs() * conv.weight.abs().sum(dim=(1, 2, 3)) * largest
        alive = torch.nonzero(response >= DEAD_RESPONSE).flatten()
        sign = torch.where(scale[alive] < 0, -1.0, 1.0)
        bias: Tensor = conv.bias  # type: ignore[assignment]
        constant = bn(F.relu(bias.view(1, -1, 1, 1))).view(-1, 1)
        return cls(weight=conv.weight[alive] * sign.view(-1, 1, 1, 1), bias=bias[alive] * sign,
                   sign=sign.view(-1, 1), alive=alive, bn=bn, constant=constant, pad=pad)

    def __call__(self, x: Tensor) -> Tensor:
        """(B, 1, T, F) batch-normalised log-mel -> (B, C, T) pooled over frequency."""
        extreme = F.conv2d(pad_time(x, *self.pad), self.weight, self.bias).amax(dim=3) * self.sign  # (B, A, T)
        bn, alive = self.bn, self.alive
        living = F.batch_norm(F.relu(extreme), bn.running_mean[alive], bn.running_var[alive],  # type: ignore[index]
                              bn.weight[alive], bn.bias[alive], training=False, eps=bn.eps)
        out = self.constant.expand(x.shape[0], -1, x.shape[2]).clone()
        out[:, alive] = living
        return out


def fixed_features(branches: list[FrequencyPooledConv]) -> Tensor:
    """(sum of C,) each feature of the branches' concatenated output: its constant value, or NaN where it varies."""
    parts = []
    for branch in branches:
        value = branch.constant.flatten().clone()
        value[branch.alive] = float("nan")
        parts.append(value)
    return torch.cat(parts)


@dataclass(frozen=True)
class TimeConv:
    """A mid-end convolution ``Conv2d(1, C_out, (7, C_in))`` over (B, 1, T, C_in) as ``conv1d`` over (B, C_in, T),
    zero-padded by 3 frames each side, on the input features in ``varying`` only; the others hold ``constant``
    in every frame, and their share (the same for every window) is convolved once per call."""

    weight: Tensor  # (C_out, V, 7)
    bias: Tensor  # (C_out,)
    varying: Tensor  # (V,) indices of the input features that vary
    constant_weight: Tensor  # (C_out, C_in - V, 7)
    constant: Tensor  # (C_in - V, 1)

    @classmethod
    def build(cls, conv: nn.Conv2d, *, constant: Tensor | None = None) -> TimeConv:
        """``constant``: (C_in,) each input feature's fixed value, NaN where it varies (None: all vary)."""
        weight = conv.weight.squeeze(1).permute(0, 2, 1).contiguous()  # (C_out, C_in, 7)
        fixed = torch.zeros(weight.shape[1], dtype=torch.bool) if constant is None else ~torch.isnan(constant)
        values = torch.zeros(0) if constant is None else constant[fixed]
        return cls(weight=weight[:, ~fixed].contiguous(), bias=conv.bias, varying=torch.nonzero(~fixed).flatten(),  # type: ignore[arg-type]
                   constant_weight=weight[:, fixed].contiguous(), constant=values.view(-1, 1))

    def __call__(self, x: Tensor) -> Tensor:
        """(B, C_in, T) -> (B, C_out, T)."""
        varying = x if self.varying.numel() == x.shape[1] else x[:, self.varying]
        out = F.conv1d(F.pad(varying, (3, 3)), self.weight, self.bias)
        if not self.constant.numel():
            return out
        fixed = self.constant.expand(-1, x.shape[2]).unsqueeze(0)  # (1, C_in - V, T)
        return out + F.conv1d(F.pad(fixed, (3, 3)), self.constant_weight)
