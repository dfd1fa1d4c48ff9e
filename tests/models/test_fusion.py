import pytest
import torch

from models.fusion import FusionConfig, FusionNet, Inputs, RoutedFusion, context_text


def _batch(b: int = 3, *, seed: int = 0) -> Inputs:
    g = torch.Generator().manual_seed(seed)
    return Inputs(torch.randn(b, 6, 5, generator=g), torch.tensor([6, 4, 2][:b]),
                  torch.randn(b, 3, 384, generator=g), torch.tensor([3, 1, 2][:b]),
                  torch.randn(b, 1, 384, generator=g), torch.ones(b, dtype=torch.long))


def _net(**config) -> FusionNet:
    torch.manual_seed(0)
    return FusionNet(5, ["mirex_cluster"], FusionConfig(dim=16, heads=8, dropout=0.0, **config)).eval()


def test_a_missing_modality_is_not_read_and_a_present_one_is():
    for order in ("hierarchical", "reversed", "concat"):
        net, batch = _net(order=order), _batch()
        other = Inputs(**batch.__dict__)
        other.lyrics = torch.randn_like(batch.lyrics)
        with torch.no_grad():
            assert not torch.allclose(net.represent(batch), net.represent(other)), order
            assert torch.allclose(net.represent(batch.without("lyrics")), net.represent(other.without("lyrics"))), order


def test_without_lyrics_and_context_the_attention_path_is_the_audio_path():
    net, batch = _net(), _batch()
    with torch.no_grad():
        fused = net.represent(batch.without("lyrics", "context"))
        audio = net.audio_frames(batch.audio, batch.audio_lengths)
        keep = (torch.arange(6)[None, :] < batch.audio_lengths[:, None]).float()[..., None]
        assert torch.allclose(fused, (audio * keep).sum(1) / batch.audio_lengths[:, None].float(), atol=1e-6)


def test_padding_frames_do_not_change_a_track():
    net, batch = _net(), _batch(1)
    longer = Inputs(torch.cat([batch.audio, torch.randn(1, 4, 5)], dim=1), batch.audio_lengths,
                    torch.cat([batch.lyrics, torch.randn(1, 2, 384)], dim=1), batch.lyrics_lengths,
                    batch.context, batch.context_lengths)
    with torch.no_grad():
        assert torch.allclose(net.represent(batch), net.represent(longer), atol=1e-5)


@pytest.mark.parametrize(("modality", "width", "lengths"), [("lyrics", 6, [3, 0, 2]), ("context", 2, [1, 0, 1])])
def test_a_reading_is_read_where_its_modality_is_present_and_nowhere_else(modality, width, lengths):
    for order in ("hierarchical", "concat"):
        net, batch = _net(order=order, **{f"{modality}_reading": width}), _batch()
        setattr(batch, f"{modality}_reading", torch.randn(3, width))
        setattr(batch, f"{modality}_lengths", torch.tensor(lengths))  # the second track lacks the modality
        other = Inputs(**batch.__dict__)
        setattr(other, f"{modality}_reading", torch.randn(3, width))
        with torch.no_grad():
            changed = (net.represent(batch) - net.represent(other)).abs().amax(dim=1)
        assert changed[0] > 1e-4 and changed[2] > 1e-4, order
        assert changed[1] == 0.0, order
    with pytest.raises(ValueError, match=f"{modality} reading"):
        _net(**{f"{modality}_reading": width}).represent(_batch())


def test_a_model_voiced_by_lyrics_calls_a_track_with_only_a_title_and_artist_silent():
    batch = _batch()
    batch.lyrics_lengths = torch.tensor([3, 0, 0])
    batch.context_lengths = torch.tensor([1, 1, 0])
    assert _net().voiced(batch).tolist() == [True, True, False]
    assert _net(voiced_by="lyrics").voiced(batch).tolist() == [True, False, False]


def test_a_routed_model_reads_voiced_tracks_with_the_fused_model_and_silent_ones_with_the_audio_model():
    fused = _net()
    torch.manual_seed(1)
    audio = FusionNet(5, ["mirex_cluster"], FusionConfig(dim=16, heads=8, dropout=0.0, modalities=("audio",))).eval()
    net, batch = RoutedFusion(audio, fused), _batch()
    batch.lyrics_lengths, batch.context_lengths = torch.tensor([3, 0, 0]), torch.tensor([1, 1, 0])
    with torch.no_grad():
        out, by_fused, by_audio = (m(batch, "mirex_cluster") for m in (net, fused, audio))
    assert torch.equal(out[:2], by_fused[:2])  # lyrics and context; context only
    assert torch.equal(out[2], by_audio[2]) and not torch.equal(by_fused[2], by_audio[2])  # no text
    with pytest.raises(ValueError, match="reads text"):
        RoutedFusion(fused, fused)


def test_the_order_decides_which_text_the_audio_attends_to_first():
    assert _net().order() == ["lyrics", "context"]
    assert _net(order="reversed").order() == ["context", "lyrics"]
    assert _net(modalities=("audio",)).order() == []


def test_context_text_reads_title_and_artist():
    assert context_text(" Hello ", "Adele") == "Hello by Adele"
    assert context_text("Hello", "") == "Hello" and context_text("", "Adele") == "Adele"
