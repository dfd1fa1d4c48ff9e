"""musicnn (Pons & Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging", ISMIR
2019 late-breaking demo), the model trained on the Million Song Dataset, ported to PyTorch.

The weights are read from the TensorFlow checkpoint shipped inside the PyPI package ``musicnn`` (ISC licence;
install it with ``pip install --no-deps musicnn==0.1.0``, its own pins do not install on Python 3.11) by
``models.tfcheckpoint``; nothing converted is stored. The layers mirror ``musicnn/models.py``: batch-normalised
log-mel input; timbral convolutions (7 x 38 and 7 x 67) and temporal ones (128, 64, 32 x 1), each max-pooled over
frequency; a dense mid-end of three 7-frame convolutions with residual connections; max and mean pooling over time;
a 200-unit dense layer (the "penultimate" features) and 50 tag logits. TensorFlow's layer defaults are kept:
batch-norm epsilon 1e-3, "same" padding that puts the extra frame after.

Most of the published front-end filters are dead (weight decay took them to about 1e-30): ``prune`` finds the
living ones and the forward pass computes only those (``models.musicnn_living``), to float32 rounding the outputs
of the full network (``frontend_dense``, ``midend_dense``) at a tenth of the work.

``MusicnnFrontEnd`` makes it a front end: one feature vector per 3 s window (187 frames of 16 ms).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import cast

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.config import FrontEndConfig
from models.errors import MoodspaceError
from models.musicnn_living import (
    N_MELS,
    BatchNorm,
    FrequencyPooledConv,
    TimeConv,
    fixed_features,
    largest_input,
    pad_time,
)
from models.tfcheckpoint import read_checkpoint

WINDOW_FRAMES, BN_EPS = 187, 1e-3
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt options (malloc.h)
TEMPORAL = (128, 64, 32)  # kernel lengths (frames) of the temporal convolutions
MSD_TAGS = ("rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
            "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul",
            "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies",
            "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop",
            "70s", "party", "country", "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
            "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy")


def checkpoint_dir() -> Path:
    """The MSD_musicnn checkpoint folder of the installed ``musicnn`` package."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or spec.origin is None:
        raise MoodspaceError("the musicnn front end needs the musicnn package's weights: "
                             "pip install --no-deps musicnn==0.1.0")
    return Path(spec.origin).parent / "MSD_musicnn"


def log_mel(y: np.ndarray, sr: int = 16_000) -> np.ndarray:
    """(frames, 96) input representation as musicnn computes it: power mel rounded to float16, then
    log10(10^4 x + 1). musicnn multiplies in float16, which overflows to inf for x > 6.55 (loud low bands);
    here the product is taken in float32, which is identical wherever musicnn's is finite."""
    mel = librosa.feature.melspectrogram(y=y, sr=sr, hop_length=256, n_fft=512, n_mels=N_MELS).T
    return np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)


def _same(kernel: int) -> tuple[int, int]:
    return (kernel - 1) // 2, kernel // 2


class MusicnnMSD(nn.Module):
    """(B, 187, 96) log-mel windows -> logits (B, 50), penultimate (B, 200), mean and max pools (B, 753)."""

    def __init__(self) -> None:
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList([nn.Conv2d(1, 204, (7, 38)), nn.Conv2d(1, 204, (7, 67))])
        self.temporal = nn.ModuleList([nn.Conv2d(1, 51, (k, 1)) for k in TEMPORAL])
        self.front_bn = nn.ModuleList([nn.BatchNorm2d(c, eps=BN_EPS) for c in (204, 204, 51, 51, 51)])
        self.mid = nn.ModuleList([nn.Conv2d(1, 64, (7, 561)), nn.Conv2d(1, 64, (7, 64)), nn.Conv2d(1, 64, (7, 64))])
        self.mid_bn = nn.ModuleList([nn.BatchNorm2d(64, eps=BN_EPS) for _ in range(3)])
        self.pool_bn = nn.BatchNorm1d(1506, eps=BN_EPS)
        self.dense = nn.Linear(1506, 200)
        self.dense_bn = nn.BatchNorm1d(200, eps=BN_EPS)
        self.tags = nn.Linear(200, 50)
        self.pooled: list[FrequencyPooledConv] = []  # prune() builds these once the weights are loaded
        self.mid_time: list[TimeConv] = []

    def frontend(self, x: Tensor) -> Tensor:
        """(B, T, 96) -> (B, T, 561): the five convolutions, each pooled over frequency, on their living filters."""
        assert self.pooled, "prune() the loaded model first"
        x = self.input_bn(x.unsqueeze(1))  # (B, 1, T, 96)
        return torch.cat([branch(x) for branch in self.pooled], dim=1).transpose(1, 2)

    def midend(self, front: Tensor) -> Tensor:
        """(B, T, 561) -> (B, T, 753): the front end and three residual convolutions, densely concatenated."""
        layers, x = [front], front.transpose(1, 2)  # (B, 561, T)
        for i, (conv, bn) in enumerate(zip(self.mid_time, self.mid_bn, strict=True)):
            out = bn(F.relu(conv(x)).unsqueeze(3)).squeeze(3)  # (B, 64, T)
            x = out if i == 0 else out + x
            layers.append(x.transpose(1, 2))
        return torch.cat(layers, dim=2)

    def frontend_dense(self, x: Tensor) -> Tensor:
        """``frontend`` as the original computes it: every filter, pooled after ReLU and batch norm."""
        x = self.input_bn(x.unsqueeze(1))
        padded = pad_time(x, 3, 3)
        maps = [conv(padded) for conv in self.timbral]
        maps += [conv(pad_time(x, *_same(kernel))) for conv, kernel in zip(self.temporal, TEMPORAL, strict=True)]
        pooled = [bn(F.relu(m)).amax(dim=3) for bn, m in zip(self.front_bn, maps, strict=True)]  # (B, C, T)
        return torch.cat(pooled, dim=1).transpose(1, 2)

    def midend_dense(self, front: Tensor) -> Tensor:
        """``midend`` as the original computes it: 2-D convolutions over every feature."""
        layers = [front]
        x = front
        for i, (conv, bn) in enumerate(zip(self.mid, self.mid_bn, strict=True)):
            out = bn(F.relu(conv(pad_time(x.unsqueeze(1), 3, 3)))).squeeze(3).transpose(1, 2)  # (B, T, 64)
            x = out if i == 0 else out + x
            layers.append(x)
        return torch.cat(layers, dim=2)

    @torch.no_grad()
    def prune(self) -> None:
        """Build the living-filter computation from the loaded weights (``models.musicnn_living``); eval mode."""
        assert not self.training, "batch norm must use its running statistics"
        largest = largest_input(self.input_bn)
        pads = [(3, 3), (3, 3), *(_same(kernel) for kernel in TEMPORAL)]
        convs = cast(list[nn.Conv2d], [*self.timbral, *self.temporal])
        norms = cast(list[BatchNorm], list(self.front_bn))
        self.pooled = [FrequencyPooledConv.build(conv, bn, pad=pad, largest=largest)
                       for conv, bn, pad in zip(convs, norms, pads, strict=True)]
        mid = cast(list[nn.Conv2d], list(self.mid))
        self.mid_time = [TimeConv.build(mid[0], constant=fixed_features(self.pooled)),
                         *(TimeConv.build(conv) for conv in mid[1:])]

    def forward(self, x: Tensor, *, dense: bool = False) -> dict[str, Tensor]:
        """``dense``: every filter, computed the original way (to compare with; same outputs, ten times the work)."""
        mid = self.midend_dense(self.frontend_dense(x)) if dense else self.midend(self.frontend(x))
        max_pool, mean_pool = mid.amax(dim=1), mid.mean(dim=1)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TF order: (max, mean) per feature
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return {"logits": self.tags(penultimate), "penultimate": penultimate, "mean_pool": mean_pool,
                "max_pool": max_pool}

    def load_tensorflow(self, tensors: dict[str, np.ndarray]) -> None:
        """Copy weights from the checkpoint's variables (TF creation order names them)."""
        def conv(module: nn.Conv2d, name: str) -> None:
            module.weight.data = torch.from_numpy(tensors[f"{name}/kernel"]).permute(3, 2, 0, 1).contiguous()
            module.bias.data = torch.from_numpy(tensors[f"{name}/bias"])  # type: ignore[union-attr]

        def bn(module: nn.modules.batchnorm._BatchNorm, name: str) -> None:
            module.weight.data = torch.from_numpy(tensors[f"{name}/gamma"])
            module.bias.data = torch.from_numpy(tensors[f"{name}/beta"])
            module.running_mean.data = torch.from_numpy(tensors[f"{name}/moving_mean"])  # type: ignore[union-attr]
            module.running_var.data = torch.from_numpy(tensors[f"{name}/moving_variance"])  # type: ignore[union-attr]

        def dense(module: nn.Linear, name: str) -> None:
            module.weight.data = torch.from_numpy(tensors[f"{name}/kernel"]).T.contiguous()
            module.bias.data = torch.from_numpy(tensors[f"{name}/bias"])

        bn(self.input_bn, "batch_normalization")
        convs = [*self.timbral, *self.temporal, *self.mid]
        bns = [*self.front_bn, *self.mid_bn]
        for i, (c, b) in enumerate(zip(convs, bns, strict=True)):
            conv(c, "conv2d" if i == 0 else f"conv2d_{i}")
            bn(b, f"batch_normalization_{i + 1}")
        bn(self.pool_bn, "batch_normalization_9")
        dense(self.dense, "dense")
        bn(self.dense_bn, "batch_normalization_10")
        dense(self.tags, "dense_1")


@lru_cache(maxsize=1)
def pretrained() -> MusicnnMSD:
    """The MSD musicnn with its published weights, in eval mode (loaded once per process)."""
    model = MusicnnMSD()
    model.load_tensorflow(read_checkpoint(checkpoint_dir()))
    model.eval()
    model.prune()
    return model


def windows(spectrogram: np.ndarray, *, hop: int = WINDOW_FRAMES) -> np.ndarray:
    """(T, 96) -> (W, 187, 96) windows; a spectrogram shorter than a window is repeated to fill one."""
    if spectrogram.shape[0] < WINDOW_FRAMES:
        repeats = int(np.ceil(WINDOW_FRAMES / max(1, spectrogram.shape[0])))
        spectrogram = np.tile(spectrogram, (repeats, 1))[:WINDOW_FRAMES]
    starts = range(0, spectrogram.shape[0] - WINDOW_FRAMES + 1, hop)
    return np.stack([spectrogram[s : s + WINDOW_FRAMES] for s in starts])


def keep_freed_memory() -> None:
    """Let glibc keep freed memory for reuse instead of returning it to the kernel (process-wide).

    Each 3 s window allocates tens of MB of activations; by default glibc maps such blocks fresh and unmaps them
    on free, so every call pays for zeroed pages again: on a 30 s clip that was 240,000 page faults and more
    system time than compute (0.82 s system against 0.68 s user on one core). No-op where libc has no mallopt.
    """
    path = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(path), "mallopt", None) if path else None
    if mallopt is not None:
        for option, value in ((M_MMAP_THRESHOLD, 1 << 30), (M_TRIM_THRESHOLD, 1 << 31), (M_TOP_PAD, 64 << 20)):
            mallopt(option, value)


# What each musicnn front end returns per 3 s window, concatenated in this order.
OUTPUTS: dict[str, tuple[str, ...]] = {
    "musicnn-msd": ("penultimate",),
    "musicnn-msd-pool": ("penultimate", "mean_pool"),
    "musicnn-msd-tags": ("penultimate", "tags"),
}


class MusicnnFrontEnd:
    """Front end ``musicnn-msd``: the 200-d penultimate features of each 3 s window; ``musicnn-msd-pool`` adds
    the 753-d mean pool of the mid-end, ``musicnn-msd-tags`` the 50 MSD tag activations (sigmoid of the logits)."""

    BATCH = 16

    def __init__(self, config: FrontEndConfig, *, keep_memory: bool = True, dense: bool = False) -> None:
        self.config = config
        self.outputs = OUTPUTS[config.name]
        self.n_features = config.n_features
        self.model = pretrained()
        self.dense = dense  # on only to measure the difference (bench/audio.py)
        if keep_memory:  # off only to measure the difference (bench/audio.py)
            keep_freed_memory()

    @torch.no_grad()
    def __call__(self, y: np.ndarray) -> np.ndarray:
        batches = windows(log_mel(y, self.config.sr), hop=self.config.hops_per_frame)
        parts = []
        for start in range(0, len(batches), self.BATCH):
            out = self.model(torch.from_numpy(batches[start : start + self.BATCH]), dense=self.dense)
            out["tags"] = torch.sigmoid(out["logits"])
            parts.append(torch.cat([out[name] for name in self.outputs], dim=1))
        return torch.cat(parts).numpy().astype(np.float32)
