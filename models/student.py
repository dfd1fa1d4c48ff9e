"""A small student of the MSD musicnn: front end ``student-msd-tags``.

The same input as musicnn (3 s windows of 187 log-mel frames, 96 bands, ``models.musicnn.log_mel``) and the same
250 outputs per window (the 200 penultimate features and the 50 MSD tag activations of ``musicnn-msd-tags``), from
four strided 3 x 3 convolutions, mean and max pooling and two dense layers: about 30 times fewer multiply-adds.
It is distilled from musicnn on the audio of the training corpora (``moodspace distil-frontend``,
``training/distil_frontend.py``), so it learns musicnn's hearing of real recordings, not an emotion model's
labels; the weights ship as ``models/student_msd_tags.pt``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from models.config import FrontEndConfig
from models.errors import MoodspaceError
from models.musicnn import N_MELS, keep_freed_memory, log_mel, windows

WEIGHTS = Path(__file__).with_name("student_msd_tags.pt")
CHANNELS = (16, 32, 64, 128)
N_PENULTIMATE, N_TAGS = 200, 50


class MusicnnStudent(nn.Module):
    """(B, 187, 96) log-mel windows -> penultimate (B, 200) in musicnn's scale and tag logits (B, 50)."""

    penultimate_mean: Tensor
    penultimate_std: Tensor

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.BatchNorm2d(1)]
        width = 1
        for channels in CHANNELS:
            layers += [nn.Conv2d(width, channels, 3, stride=2, bias=False), nn.BatchNorm2d(channels), nn.ReLU()]
            width = channels
        self.convs = nn.Sequential(*layers)
        self.dense = nn.Sequential(nn.Linear(2 * width, 256), nn.ReLU())
        self.penultimate = nn.Linear(256, N_PENULTIMATE)  # standardised; scaled back with the teacher's statistics
        self.tags = nn.Linear(256, N_TAGS)
        self.register_buffer("penultimate_mean", torch.zeros(N_PENULTIMATE))
        self.register_buffer("penultimate_std", torch.ones(N_PENULTIMATE))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Standardised penultimate features and tag logits."""
        maps = self.convs(x.unsqueeze(1)).flatten(2)  # (B, C, positions)
        h = self.dense(torch.cat([maps.mean(dim=2), maps.amax(dim=2)], dim=1))
        return self.penultimate(h), self.tags(h)

    def outputs(self, x: Tensor) -> Tensor:
        """(B, 250): penultimate features in musicnn's scale, then tag activations: musicnn-msd-tags' layout."""
        standardised, logits = self(x)
        return torch.cat([standardised * self.penultimate_std + self.penultimate_mean, torch.sigmoid(logits)], dim=1)


@lru_cache(maxsize=1)
def distilled() -> MusicnnStudent:
    """The shipped student, in eval mode (loaded once per process)."""
    if not WEIGHTS.is_file():
        raise MoodspaceError(f"{WEIGHTS} is missing: distil it with `moodspace distil-frontend`")
    model = MusicnnStudent()
    model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    return model.eval()


class StudentFrontEnd:
    """Front end ``student-msd-tags``: per 3 s window, the student's estimate of musicnn's 250 outputs."""

    BATCH = 32

    def __init__(self, config: FrontEndConfig, *, model: MusicnnStudent | None = None) -> None:
        self.config = config
        self.n_features = config.n_features
        self.model = model if model is not None else distilled()
        keep_freed_memory()

    @torch.no_grad()
    def __call__(self, y: np.ndarray) -> np.ndarray:
        batches = windows(log_mel(y, self.config.sr), hop=self.config.hops_per_frame)
        assert batches.shape[2] == N_MELS
        parts = [self.model.outputs(torch.from_numpy(batches[s : s + self.BATCH]))
                 for s in range(0, len(batches), self.BATCH)]
        return torch.cat(parts).numpy().astype(np.float32)
