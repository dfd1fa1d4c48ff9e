"""Knowledge distillation into the default model: the soft-target loss, per-set teachers, the categorical loss."""

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel, pad
from models.frontend import frontend_config
from models.manifest import clip_from_json, write_manifest
from training.features import Item
from training.multitask import MultitaskConfig, distillation_loss
from training.teachers import teacher_logits
from training.train import TrainConfig, categorical_loss


def test_soft_targets_pull_the_student_toward_the_teacher():
    teacher = torch.tensor([[3.0, 0.5, -1.0, 0.0], [0.0, 2.0, 1.0, -2.0]])
    target = torch.tensor([0, 1])
    soft_only = {"kd_weight": 1.0, "temperature": 2.0}
    assert distillation_loss(teacher, target, teacher, **soft_only) < 1e-6  # KL of a distribution with itself
    assert distillation_loss(teacher.flip(1), target, teacher, **soft_only) > 0.5
    hard = nn.functional.cross_entropy(teacher.flip(1), target)
    assert torch.isclose(distillation_loss(teacher.flip(1), target, None, **soft_only), hard)
    assert torch.isclose(distillation_loss(teacher.flip(1), target, teacher, kd_weight=0.0, temperature=2.0), hard)


def _tones(folder: Path, n: int = 40) -> Path:
    """Quadrant k is a tone at its own pitch, so a teacher can learn it from log-mel frames."""
    clips = []
    for k in range(n):
        path = folder / "audio" / f"{k}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(48000) / 16000
        noise = np.random.default_rng(k).standard_normal(t.size)
        sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * 2 ** (k % 4) * t) + 0.01 * noise, 16000)
        split = "train" if k < 28 else "val" if k < 36 else "test"
        clips.append(clip_from_json({"id": f"{folder.name}{k}", "audio": f"audio/{k}.wav", "split": split,
                                     "labels": {"quadrant": f"Q{k % 4 + 1}"}, "label_type": "categorical"}))
    return write_manifest(folder / "manifest.jsonl", clips)


def test_a_teacher_per_set_gives_logits_for_its_train_clips(tmp_path: Path):
    manifests = [_tones(tmp_path / "a"), _tones(tmp_path / "b")]
    config = MultitaskConfig(epochs=40, patience=40, lr=3e-3,
                             trunk=EncoderConfig(kind="mlp", hidden=16, layers=(16,), dropout=0.0))
    logits = teacher_logits(manifests, frontend=frontend_config("logmel"), config=config, workers=1)
    assert sorted(logits) == sorted(f"{s}{k}" for s in "ab" for k in range(28))  # train clips only, both sets
    taught = np.mean([np.argmax(logits[f"a{k}"]) == k % 4 for k in range(28)])
    assert taught >= 0.75  # chance 0.25


def _item(k: int, label: int) -> Item:
    rng = np.random.default_rng(k)
    return Item(f"c{k}", rng.standard_normal((4, 6)).astype(np.float32), np.zeros((4, 2), np.float32),
                np.zeros(2, np.float32), "categorical", "train", {"quadrant": label})


def test_the_categorical_heads_learn_from_teachers_only_where_every_item_has_one():
    torch.manual_seed(0)
    config = ModelConfig(music=EncoderConfig(kind="mlp", hidden=8, layers=(8,)), d=4, n_features=6,
                         taxonomies=("quadrant",))
    model = CrossModalModel(config).eval()
    batch = [_item(k, k % 4) for k in range(6)]
    h = model.music.represent(*pad([item.features for item in batch]))
    confident = {item.id: np.eye(4, dtype=np.float32)[(item.labels["quadrant"] + 1) % 4] * 10 for item in batch}
    plain = categorical_loss(model, h, batch)
    assert categorical_loss(model, h, batch, teachers={}) == plain
    assert categorical_loss(model, h, batch, teachers=dict(list(confident.items())[:3])) == plain  # not all taught
    taught = categorical_loss(model, h, batch, teachers=confident, config=TrainConfig(kd_weight=1.0))
    assert taught != plain
    none = categorical_loss(model, h, batch, teachers=confident, config=TrainConfig(kd_weight=0.0))
    assert torch.isclose(none, plain)

