"""Chords from MIDI notes, the recognizer trained on renders of them, and the chord-sequence transformer."""

from pathlib import Path

import numpy as np
import pytest
import torch

from models.config import ChordConfig
from models.encoders import ChordTransformer
from models.harmony import CHORDS, N_TOKENS, ChordRecognizer
from models.manifest import Clip
from tests.conftest import write_midi
from training.chords import midi_chords, train_chords
from training.harmony_experiment import VARIANTS, HarmonyNet, HarmonyTrainConfig

TRIADS = {"C:maj": (48, 60, 64, 67), "A:min": (45, 57, 60, 64), "F:maj": (41, 57, 60, 65), "G:maj": (43, 59, 62, 67),
          "D:min": (38, 57, 62, 65), "E:min": (40, 59, 64, 67)}


def progression_midi(path: Path, chords: list[str], *, melody: bool = True) -> Path:
    """Two beats (1 s at 120 BPM) per chord, with a passing melody note on the off-beat."""
    notes = []
    for i, name in enumerate(chords):
        notes += [(2.0 * i, 2.0, pitch) for pitch in TRIADS[name]]
        if melody:
            notes.append((2.0 * i + 1.0, 0.5, TRIADS[name][1] + 14))  # a ninth above the root, half a beat
    return write_midi(path, notes)


def test_chords_are_read_off_the_notes(tmp_path: Path):
    midi = progression_midi(tmp_path / "p.mid", ["C:maj", "A:min", "F:maj", "G:maj"], melody=False)
    assert [CHORDS[i] for i in midi_chords(midi, 8)] == ["C:maj"] * 2 + ["A:min"] * 2 + ["F:maj"] * 2 + ["G:maj"] * 2
    silent_tail = midi_chords(midi, 10)
    assert list(silent_tail[8:]) == [0, 0]  # no notes: "N"


def test_a_recognizer_trained_on_renders_reads_pieces_it_never_heard(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MOODSPACE_CACHE", str(tmp_path / "cache"))
    orders = [["C:maj", "A:min", "F:maj", "G:maj"], ["D:min", "G:maj", "C:maj", "E:min"],
              ["F:maj", "D:min", "A:min", "C:maj"], ["E:min", "C:maj", "G:maj", "D:min"]]
    clips = []
    for i in range(12):
        order = orders[i % 4] * 2
        midi = progression_midi(tmp_path / f"{i}.mid", order[i % 3 :] + order[: i % 3])
        clips.append(Clip(id=f"p{i}", audio=str(midi), curve=None, labels={"quadrant": "Q1"},
                          split="test" if i >= 10 else "train"))
    out = tmp_path / "recognizer.npz"
    evaluation = train_chords(clips, renderers=("builtin",), out=out, test_splits=("test",), workers=1,
                              progress=False)
    scores, baseline = evaluation.recognizer["builtin"], evaluation.template_baseline["builtin"]
    assert scores.clips == 2 and scores.majmin > 0.6 and scores.majmin >= baseline.majmin
    assert ChordRecognizer.load(out).weights.shape == (60, len(CHORDS))


def test_the_chord_transformer_ignores_padding():
    torch.manual_seed(0)
    model = ChordTransformer(N_TOKENS, ChordConfig(d=16, layers=1, heads=2, max_chords=12)).eval()
    tokens = torch.tensor([[3, 5, 5, 9, 1, 0, 0, 0]])
    with torch.no_grad():
        short, padded = model(tokens[:, :5]), model(tokens)
    assert short.shape == (1, 16) and torch.allclose(short, padded, atol=1e-5)
    with torch.no_grad():
        other = model(torch.tensor([[3, 5, 7, 9, 1]]))
    assert not torch.allclose(short, other, atol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_harmony_variant_gives_class_logits(variant: str):
    config = HarmonyTrainConfig(chords=ChordConfig(d=8, layers=1, heads=2, max_chords=6))
    net = HarmonyNet(variant, n_audio=10, n_classes=4, config=config)
    logits = net(torch.randn(3, 10), torch.rand(3, 3), torch.from_numpy(np.array([[2, 3, 0, 0, 0, 0]] * 3)))
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
