"""Audio, lyrics and song context fused by hierarchical cross-modal attention (after Zhao et al., "Multimodal music
emotion recognition with hierarchical cross-modal attention network").

One track's inputs: the audio as front-end frames (T, F); the lyrics as segment vectors (S, 384), each segment at
most 128 tokens encoded by the frozen sentence encoder (``SentenceEncoder.encode_segments``); the context, title
and artist, as one vector (1, 384). Each modality is projected to ``dim``; the audio frames (after a BiGRU, so
each frame knows its neighbours) are the queries of an 8-head cross-modal attention over the lyrics segments,
with a residual connection and layer norm, and the result attends in the same way to the context ("hierarchical":
audio with lyrics first, then with context). The fused frames are mean-pooled into the track's representation,
which feeds one classification head per taxonomy.

A missing modality is a length of 0: its attention block passes the frames through unchanged, so a track without
lyrics or context takes the audio path. Training drops each of lyrics and context per track with probability
``modality_dropout``, so the audio path is trained as much as the fused one.

One network trained with modality dropout still reads a track without text a little worse than an audio-only
model trained alone (the shared layers serve the fused reading first). A routed model (``RoutedFusion``,
``FusionConfig.routed``) keeps both: the fused model reads every track that has lyrics or context, and an
audio-only model trained apart reads the rest, so a track without text reads exactly as the audio model alone.

The ablations of the paper's Table 3 are settings of the same module: ``order`` "reversed" (context first, then
lyrics) or "concat" (the pooled audio, the mean lyrics segment and the context concatenated, no attention), and
``modalities`` without lyrics or context.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.encoders import TEXT_DIM
from models.taxonomy import TAXONOMIES

Order = Literal["hierarchical", "reversed", "concat"]
Modality = Literal["audio", "lyrics", "context"]
MODALITIES: tuple[Modality, ...] = ("audio", "lyrics", "context")


@dataclass(frozen=True)
class FusionConfig:
    dim: int = 128
    heads: int = 8
    dropout: float = 0.2
    order: Order = "hierarchical"
    modalities: tuple[Modality, ...] = MODALITIES
    modality_dropout: float = 0.3  # chance that training hides a track's lyrics, and (apart) its context
    text_dropout: float = 0.0  # chance that training hides all of a track's text at once (the audio path's share)
    lyrics_reading: int = 0  # width of a reading of the lyrics learnt elsewhere, one more lyrics token; 0: none
    context_reading: int = 0  # width of a reading of the title/artist learnt elsewhere, one more context token
    routed: bool = False  # a track without text is read by an audio-only model trained apart (``RoutedFusion``)
    voiced_by: Literal["any", "lyrics"] = "any"  # the text that makes a track the fusion's ("any": lyrics or context)


def audio_path(config: FusionConfig) -> FusionConfig:
    """The audio-only model of a routed ``config``: the same sizes, no text, nothing dropped."""
    return replace(config, modalities=("audio",), modality_dropout=0.0, text_dropout=0.0, lyrics_reading=0,
                   context_reading=0, routed=False)


def context_text(title: str, artist: str) -> str:
    """The context modality's text: what the sentence encoder reads for a track's title and artist."""
    title, artist = title.strip(), artist.strip()
    return f"{title} by {artist}" if title and artist else title or artist


def padding_mask(lengths: Tensor, width: int) -> Tensor:
    """(B, width) True where a position is padding."""
    return torch.arange(width, device=lengths.device)[None, :] >= lengths[:, None]


def masked_mean(x: Tensor, lengths: Tensor) -> Tensor:
    """(B, T, D) -> (B, D) mean over each row's first ``lengths`` positions (zeros where the length is 0)."""
    keep = (~padding_mask(lengths, x.shape[1])).to(x.dtype)[..., None]
    return (x * keep).sum(1) / lengths.clamp_min(1)[:, None].to(x.dtype)


class CrossModalAttention(nn.Module):
    """Queries of one modality attend to another's sequence: multi-head attention, a residual connection and layer
    norm, then a feed-forward sublayer the same way. A row whose other modality is absent (length 0) is returned
    unchanged."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, other: Tensor, other_lengths: Tensor) -> Tensor:
        present = other_lengths > 0
        mask = padding_mask(other_lengths.clamp_min(1), other.shape[1])  # an absent row attends to a zero slot
        attended, _ = self.attention(query, other, other, key_padding_mask=mask, need_weights=False)
        out = self.norm(query + self.dropout(attended))
        out = self.norm_ff(out + self.dropout(self.ff(out)))
        return torch.where(present[:, None, None], out, query)


@dataclass
class Inputs:
    """A batch: padded sequences and their lengths per modality (a length of 0 is a missing modality)."""

    audio: Tensor  # (B, T, F)
    audio_lengths: Tensor
    lyrics: Tensor  # (B, S, 384)
    lyrics_lengths: Tensor
    context: Tensor  # (B, 1, 384)
    context_lengths: Tensor
    lyrics_reading: Tensor | None = None  # (B, FusionConfig.lyrics_reading), read where lyrics are present
    context_reading: Tensor | None = None  # (B, FusionConfig.context_reading), read where the context is present

    def without(self, *modalities: Modality) -> Inputs:
        """The same batch with ``modalities`` missing."""
        out = Inputs(**self.__dict__)
        for modality in modalities:
            setattr(out, f"{modality}_lengths", torch.zeros_like(getattr(self, f"{modality}_lengths")))
        return out


class FusionNet(nn.Module):
    """Audio frames, lyrics segments and context -> logits per taxonomy (see the module's docstring)."""

    feature_mean: Tensor
    feature_std: Tensor

    def __init__(self, n_features: int, taxonomies: list[str], config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.audio_in = nn.Sequential(nn.Linear(n_features, dim), nn.GELU(), nn.Dropout(config.dropout))
        self.audio_gru = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)
        self.text_in = nn.ModuleDict({m: nn.Sequential(nn.Linear(TEXT_DIM, dim), nn.GELU(),
                                                       nn.Dropout(config.dropout))
                                      for m in ("lyrics", "context") if m in config.modalities})
        self.reading_in = self._reading_in("lyrics", config.lyrics_reading)
        self.context_reading_in = self._reading_in("context", config.context_reading)
        if config.order == "concat":
            self.blocks = nn.ModuleDict()
            self.merge = nn.Sequential(nn.Linear(dim * (1 + len(self.text_in)), dim), nn.GELU(),
                                       nn.Dropout(config.dropout))
        else:
            self.blocks = nn.ModuleDict({m: CrossModalAttention(dim, config.heads, config.dropout)
                                         for m in self.text_in})
        self.heads = nn.ModuleDict({t: nn.Linear(dim, len(TAXONOMIES[t])) for t in taxonomies})

    def _reading_in(self, modality: str, width: int) -> nn.Module | None:
        """The projection of a reading of ``modality`` learnt elsewhere to one token; None without one."""
        if not width or modality not in self.text_in:
            return None
        return nn.Sequential(nn.Linear(width, self.config.dim), nn.GELU(), nn.Dropout(self.config.dropout))

    def order(self) -> list[str]:
        """The text modalities in the order the audio attends to them."""
        names = [m for m in ("lyrics", "context") if m in self.text_in]
        return names[::-1] if self.config.order == "reversed" else names

    def audio_frames(self, audio: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, dim): each frame in the context of its track's others (padding frames are not read)."""
        x = self.audio_in((audio - self.feature_mean) / self.feature_std)
        packed = pack_padded_sequence(x, lengths.cpu().clamp_min(1), batch_first=True, enforce_sorted=False)
        out, _ = self.audio_gru(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]

    def text_tokens(self, batch: Inputs, name: str) -> tuple[Tensor, Tensor]:
        """(B, S, dim) tokens of one text modality and their lengths; with a reading of the modality (lyrics or
        context), the reading is its first token (where the modality is present)."""
        tokens, lengths = self.text_in[name](getattr(batch, name)), getattr(batch, f"{name}_lengths")
        project = self.reading_in if name == "lyrics" else self.context_reading_in
        if project is None:
            return tokens, lengths
        values = getattr(batch, f"{name}_reading")
        if values is None:
            raise ValueError(f"this model reads a {name} reading: the batch has none")
        reading = project(values)[:, None]
        return torch.cat([reading, tokens], dim=1), torch.where(lengths > 0, lengths + 1, lengths)

    def represent(self, batch: Inputs) -> Tensor:
        """(B, dim): the fused track representation."""
        audio = self.audio_frames(batch.audio, batch.audio_lengths)
        if self.config.order == "concat":
            parts = [masked_mean(audio, batch.audio_lengths)]
            parts += [masked_mean(*self.text_tokens(batch, name)) for name in self.order()]
            return self.merge(torch.cat(parts, dim=1))
        for name in self.order():
            audio = self.blocks[name](audio, *self.text_tokens(batch, name))
        return masked_mean(audio, batch.audio_lengths)

    def voiced(self, batch: Inputs) -> Tensor:
        """(B,) True where a track has any text modality this model reads (with ``voiced_by`` "lyrics": lyrics)."""
        names = ["lyrics"] if self.config.voiced_by == "lyrics" else list(self.text_in)
        lengths = [getattr(batch, f"{name}_lengths") for name in names if name in self.text_in]
        return torch.stack(lengths).gt(0).any(0) if lengths else torch.zeros_like(batch.audio_lengths, dtype=torch.bool)

    def forward(self, batch: Inputs, taxonomy: str) -> Tensor:
        return self.heads[taxonomy](self.represent(batch))


class RoutedFusion(nn.Module):
    """Two trained models read by what a track has: the fused one where it has any text, the audio-only one where
    it has none (see the module's docstring)."""

    def __init__(self, audio: FusionNet, fused: FusionNet) -> None:
        super().__init__()
        if audio.text_in:
            raise ValueError(f"the audio path reads text: {list(audio.text_in)}")
        self.audio, self.fused = audio, fused

    def forward(self, batch: Inputs, taxonomy: str) -> Tensor:
        voiced = self.fused.voiced(batch)[:, None]
        return torch.where(voiced, self.fused(batch, taxonomy), self.audio(batch, taxonomy))


class RepresentationCorrection(nn.Module):
    """What a song's words add to a trained music model's representation, that model held fixed (tried in
    ``training.song_correction``; not in the service). The audio input is the music model's representation of
    each window (B, T, width), fused with the lyrics and the context as in ``FusionNet``; the pooled result,
    through a layer started at zero, is added to the music model's representation of the whole track (B, width)
    where the track has any text. Every head of the music model (the point and Gaussian embedding, the
    categorical heads, the VA reading) then reads the corrected representation; a track without lyrics or context
    keeps its own, exactly."""

    def __init__(self, width: int, config: FusionConfig) -> None:
        super().__init__()
        self.fusion = FusionNet(width, [], config)
        self.out = zero_linear(config.dim, width)

    def forward(self, h: Tensor, batch: Inputs) -> Tensor:
        delta = self.out(self.fusion.represent(batch))
        return h + torch.where(self.fusion.voiced(batch)[:, None], delta, torch.zeros_like(delta))


class RepresentationReplacement(nn.Module):
    """A song's fused representation in place of a trained music model's own where the song has text (tried in
    ``training.song_correction``; not in the service). A ``FusionNet`` reads the front-end frames, lyrics and
    context with its own audio layers; a linear layer maps its pooled representation into the music model's
    representation space (B, width), which every head of the music model then reads (the point and Gaussian
    embedding, the categorical heads, the VA reading). A track without lyrics or context keeps the music model's
    representation exactly, as ``RoutedFusion``'s audio path."""

    def __init__(self, n_features: int, width: int, config: FusionConfig) -> None:
        super().__init__()
        self.fusion = FusionNet(n_features, [], config)
        self.out = nn.Linear(config.dim, width)

    def forward(self, h: Tensor, batch: Inputs) -> Tensor:
        fused = self.out(self.fusion.represent(batch))
        return torch.where(self.fusion.voiced(batch)[:, None], fused, h)


RepresentationChange = RepresentationCorrection | RepresentationReplacement  # read as ``model(h, batch)``


def zero_linear(dim: int, out: int) -> nn.Linear:
    """A linear layer that starts at zero output (a correction starts as no correction)."""
    layer = nn.Linear(dim, out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


FusionModel = FusionNet | RoutedFusion  # what the fusion trainer returns: anything read as ``model(batch, taxonomy)``
