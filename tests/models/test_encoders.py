import pytest
import torch

from models.config import EncoderConfig, ModelConfig
from models.encoders import CrossModalModel


def _config(kind: str, stats_pool: bool = False) -> ModelConfig:
    return ModelConfig(music=EncoderConfig(kind=kind, hidden=8, layers=(16,), stats_pool=stats_pool),
                       emotion=EncoderConfig(kind="bigru", hidden=8, layers=(16,)), n_features=12, d=6)


@pytest.mark.parametrize(("kind", "stats_pool"), [("mlp", False), ("bigru", False), ("mlp", True), ("bigru", True)])
def test_shapes_and_that_padding_changes_nothing(kind: str, stats_pool: bool):
    torch.manual_seed(0)
    model = CrossModalModel(_config(kind, stats_pool)).eval()
    x = torch.randn(1, 5, 12)
    padded = torch.cat([x, torch.randn(1, 3, 12)], dim=1)
    alone = model.music(x, torch.tensor([5]))
    in_batch = model.music(torch.cat([padded, torch.randn(1, 8, 12)]), torch.tensor([5, 8]))
    assert alone.E.shape == alone.mu.shape == alone.logvar.shape == (1, 6)
    for a, b in zip(alone, in_batch, strict=True):
        torch.testing.assert_close(a[0], b[0], rtol=1e-5, atol=1e-5)


def test_logvar_stays_in_the_configured_range():
    model = CrossModalModel(_config("mlp")).eval()
    out = model.emotion(torch.randn(4, 7, 2) * 1000, torch.tensor([7, 7, 3, 1]))
    assert out.logvar.min() >= model.config.logvar_min and out.logvar.max() <= model.config.logvar_max


def test_alignment_applies_to_the_point_embedding_only():
    model = CrossModalModel(_config("bigru")).eval()
    model.music.align.set(torch.ones(6), 2 * torch.eye(6))
    x, lengths = torch.randn(2, 4, 12), torch.tensor([4, 2])
    raw, aligned = model.music(x, lengths, align=False), model.music(x, lengths)
    torch.testing.assert_close(aligned.E, (raw.E - 1) * 2)
    torch.testing.assert_close(aligned.mu, raw.mu)


def test_unknown_encoder_kind_is_refused():
    with pytest.raises(ValueError, match="unknown encoder kind 'lstm'"):
        CrossModalModel(ModelConfig(music=EncoderConfig(kind="lstm")))


def test_statistics_pooling_summarises_the_frames_mean_and_spread():
    from models.encoders import SequenceTrunk

    trunk = SequenceTrunk(3, EncoderConfig(kind="bigru", hidden=2, layers=(4,), stats_pool=True)).eval()
    seen: list[torch.Tensor] = []
    trunk.fc.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    x = torch.tensor([[[1.0, 0.0, 5.0], [3.0, 0.0, 5.0], [9.0, 9.0, 9.0]]])  # the third frame is padding
    trunk(x, torch.tensor([2]))
    summary = seen[0][0]
    assert summary.shape == (2 * 2 + 2 * 3,)
    torch.testing.assert_close(summary[4:7], torch.tensor([2.0, 0.0, 5.0]))  # mean of the 2 real frames
    torch.testing.assert_close(summary[7:], torch.tensor([1.0, 0.0, 0.0]), atol=2e-3, rtol=0)  # their spread
