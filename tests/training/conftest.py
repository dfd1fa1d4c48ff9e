"""Tiny corpora and configs shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.config import EncoderConfig, ModelConfig
from training.corpus.generate import synth_corpus
from training.train import TrainConfig

TINY_MODEL = ModelConfig(music=EncoderConfig(kind="bigru", hidden=8, layers=(16,)),
                         emotion=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), d=4)
TINY_TRAIN = TrainConfig(epochs=2, batch_size=8, crop_frames=3, patience=2)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 clips of 4 s (21 train, 3 val, 6 test), made once per session."""
    out = tmp_path_factory.mktemp("corpus") / "tiny"
    return synth_corpus(n=30, seconds=4, seed=0, out=out, workers=1, progress=False)
