"""What the lyrics sets teach, read on other songs' lyrics: MoodyLyrics4Q's quadrant probabilities (the stack of
``training.lyrics_probe``) and the joined valence/arousal reading of ``training.song_text``, each fitted on its
set's train split only (by artist).

A few hundred songs of a categorical set with lyrics (``mirex_mm``) cannot teach a model what lyrics feel; these
readings carry what thousands of other songs' lyrics did, as one more lyrics token of the fusion model
(``models.fusion.FusionConfig.lyrics_reading``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.songtext import TextModality
from models.taxonomy import class_index
from training.classify import vector_probe
from training.datasets.lyrics import read_deezer, read_moodylyrics4q, read_muse
from training.lyrics_probe import StackedProbe, fit_stack, ngram_probe
from training.song_text import context_vectors, fit_lyrics, fit_ridge, lyrics_vectors

READING_WIDTH = 6  # four quadrant log-probabilities, standardised valence and arousal


@dataclass
class LyricsReader:
    quadrants: StackedProbe
    va: TextModality

    def read(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """(N, READING_WIDTH) for N lyrics and their mean segment vectors (N, 384)."""
        inputs = [vectors, np.array(texts, dtype=object)][: len(self.quadrants.bases)]
        log_p = np.log(np.clip(self.quadrants.probabilities(inputs), 1e-9, 1.0))
        return np.hstack([log_p, self.va.standardised(vectors)]).astype(np.float32)


def fit_reader(datasets: Path, *, words: bool = True) -> LyricsReader:
    """``datasets``: the folder holding moodylyrics4q/ and muse_lyrics/; ``words`` False: the quadrant probe on the
    segment vectors alone, without the word n-gram probe (a reader that keeps no word of the lyrics)."""
    moody, muse = read_moodylyrics4q(datasets / "moodylyrics4q"), read_muse(datasets / "muse_lyrics")
    x_moody, x_muse = lyrics_vectors([r.text for r in moody.rows]), lyrics_vectors([r.text for r in muse.rows])
    train = [i for i, r in enumerate(moody.rows) if r.split == "train"]
    texts = np.array([moody.rows[i].text for i in train], dtype=object)
    labels = np.array([class_index("quadrant", moody.rows[i].quadrant or "") for i in train])
    bases = 2 if words else 1  # the vector probe, then the word n-gram probe
    stack = fit_stack([vector_probe, ngram_probe][:bases], [x_moody[train], texts][:bases], labels,
                      [moody.rows[i].artist for i in train], classes=4)
    return LyricsReader(stack, fit_lyrics(muse, x_muse, moody, x_moody))


def fit_context_reader(datasets: Path) -> TextModality:
    """What other songs' titles and artists teach: Deezer's (MSDD, 13,000 songs) valence/arousal ridge on the
    title/artist vector, fitted on its train split (``datasets``: the folder holding deezer_msdd/); its
    ``standardised`` output is the context reading (``models.fusion.FusionConfig.context_reading``)."""
    deezer = read_deezer(datasets / "deezer_msdd")
    return fit_ridge(deezer, context_vectors([r.text for r in deezer.rows]))
