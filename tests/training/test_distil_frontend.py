"""Distilling musicnn into the small student front end (a tiny run on generated clips)."""

from pathlib import Path

import numpy as np
import torch

from models.config import FEATURE_SIZES, FrontEndConfig
from models.frontend import frontend_config, load_audio
from models.manifest import audio_path, read_manifest
from models.student import MusicnnStudent, StudentFrontEnd
from training.corpus.generate import synth_corpus
from training.distil_frontend import DistilConfig, distil, window_sets


def test_a_distilled_student_is_closer_to_musicnn_than_an_untrained_one(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MOODSPACE_CACHE", str(tmp_path / "cache"))
    manifest = synth_corpus(n=10, seconds=7, seed=2, out=tmp_path / "c", workers=1, progress=False)
    weights = tmp_path / "student.pt"
    result = distil([manifest], out=weights, config=DistilConfig(epochs=4, patience=4, batch_size=4), workers=1)
    assert result.train_windows == 7 * 2 and result.val_windows == 2 and np.isfinite(result.penultimate_r2)

    trained = MusicnnStudent()
    trained.load_state_dict(torch.load(weights, weights_only=True))
    torch.manual_seed(0)
    fresh = MusicnnStudent()
    fresh.penultimate_mean.copy_(trained.penultimate_mean)
    fresh.penultimate_std.copy_(trained.penultimate_std)
    inputs, teacher = window_sets([manifest], "train", workers=1)
    errors = []
    for model in (trained.eval(), fresh.eval()):
        with torch.no_grad():
            out = model.outputs(torch.from_numpy(inputs).float()).numpy()
        errors.append(float(np.mean(((out - teacher) / teacher.std(axis=0).clip(1e-3)) ** 2)))
    assert errors[0] < errors[1]

    config: FrontEndConfig = frontend_config("student-msd-tags")
    clip = read_manifest(manifest)[0]
    features = StudentFrontEnd(config, model=trained.eval())(load_audio(audio_path(manifest, clip), sr=16_000))
    assert features.shape == (2, FEATURE_SIZES["student-msd-tags"](config))
    assert ((features[:, 200:] >= 0) & (features[:, 200:] <= 1)).all()
