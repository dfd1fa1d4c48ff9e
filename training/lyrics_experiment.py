"""``moodspace lyrics-experiment``: how much emotion the frozen sentence encoder reads from lyrics alone and from
title/artist alone, on the lyrics and context sets (``training.datasets.lyrics``).

Each song's lyrics become the mean of their segment vectors (``SentenceEncoder.encode_segments``); its context the
vector of "title by artist". Models are fitted on each set's train split and scored on val and test (by artist;
Deezer keeps its own split): a logistic probe for MoodyLyrics4Q's quadrants (accuracy, macro-F1, valence and
arousal AUC), and the probes of ``training.lyrics_probe`` (sentence vectors and word n-grams with their L2 chosen
by artist folds of train, and their stack); ridge regression for MuSe's and Deezer's valence and arousal (Pearson
r, R^2); and MuSe's lyrics valence/arousal model applied to MoodyLyrics4Q (a reading trained on one set, judged on
another's labels).
Vectors are cached under the feature cache, keyed by the texts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.taxonomy import class_index
from training.classify import Logistic, auc, categorical_metrics, vector_probe
from training.datasets.lyrics import TextRow, TextSet, read_deezer, read_moodylyrics4q, read_muse
from training.learnability import ridge_fit, ridge_predict
from training.lyrics_probe import fit_stack, ngram_probe
from training.song_text import RIDGE_ALPHA, context_vectors, lyrics_vectors
from training.text import va_metrics

SPLITS = ("train", "val", "test")


def _by_split(rows: list[TextRow], x: np.ndarray) -> dict[str, tuple[list[TextRow], np.ndarray]]:
    return {s: ([r for r in rows if r.split == s], x[[i for i, r in enumerate(rows) if r.split == s]])
            for s in SPLITS}


def regression(data: TextSet, x: np.ndarray) -> tuple[dict[str, dict], tuple]:
    """Ridge from vectors to (valence, arousal): r and R^2 on val and test, and the fitted model."""
    parts = _by_split(data.rows, x)
    y = {s: np.array([r.va for r in rows]) for s, (rows, _) in parts.items()}
    model = ridge_fit(parts["train"][1], y["train"], alpha=RIDGE_ALPHA)
    return {s: va_metrics(ridge_predict(model, parts[s][1]), y[s]).to_dict() for s in ("val", "test")}, model


def quadrants(data: TextSet, x: np.ndarray) -> dict[str, dict]:
    parts = _by_split(data.rows, x)
    y = {s: np.array([class_index("quadrant", r.quadrant or "") for r in rows]) for s, (rows, _) in parts.items()}
    model = Logistic.fit(parts["train"][1], y["train"], classes=4)
    return {s: categorical_metrics("quadrant", y[s], model.probabilities(parts[s][1])).to_dict()
            for s in ("val", "test")}


def quadrant_probes(data: TextSet, x: np.ndarray) -> dict[str, dict]:
    """The probes of ``training.lyrics_probe`` on the sentence vectors ``x`` and the texts: for each, its val and
    test metrics, its chosen C and its accuracy over the train split's artist folds."""
    train = [i for i, r in enumerate(data.rows) if r.split == "train"]
    y = np.array([class_index("quadrant", r.quadrant or "") for r in data.rows])
    texts = np.array([r.text for r in data.rows], dtype=object)
    stack = fit_stack([vector_probe, ngram_probe], [x[train], texts[train]], y[train],
                      [data.rows[i].artist for i in train], classes=4)
    out: dict[str, dict] = {"sentence vectors": {**stack.chosen[0]}, "word n-grams": {**stack.chosen[1]},
                            "stack of both": {"folds_accuracy": stack.folds_accuracy}}
    for split in ("val", "test"):
        rows = [i for i, r in enumerate(data.rows) if r.split == split]
        inputs = [x[rows], texts[rows]]
        readings = [*stack.base_probabilities(inputs), stack.probabilities(inputs)]
        for name, p in zip(out, readings, strict=True):
            out[name][split] = categorical_metrics("quadrant", y[rows], p).to_dict()
    return out


def transfer(model: tuple, data: TextSet, x: np.ndarray) -> dict[str, dict]:
    """A valence/arousal model read on quadrant labels: AUC of its valence for Q1 + Q4, of its arousal for Q1 + Q2,
    and the quadrant its reading falls in (signs, centred on the train split's mean reading)."""
    parts = _by_split(data.rows, x)
    centre = ridge_predict(model, parts["train"][1]).mean(axis=0)
    out = {}
    for split in ("val", "test"):
        rows, vectors = parts[split]
        va = ridge_predict(model, vectors) - centre
        q = np.array([r.quadrant for r in rows])
        reading = np.where(va[:, 0] >= 0, np.where(va[:, 1] >= 0, "Q1", "Q4"), np.where(va[:, 1] >= 0, "Q2", "Q3"))
        out[split] = {"valence_auc": auc(va[:, 0], np.isin(q, ("Q1", "Q4"))),
                      "arousal_auc": auc(va[:, 1], np.isin(q, ("Q1", "Q2"))),
                      "accuracy": float(np.mean(reading == q))}
    return out


def lyrics_experiment(datasets: Path, *, out: Path) -> dict:
    """``datasets``: the folder holding moodylyrics4q/, muse_lyrics/ and deezer_msdd/."""
    moody, muse, deezer = (read_moodylyrics4q(datasets / "moodylyrics4q"), read_muse(datasets / "muse_lyrics"),
                           read_deezer(datasets / "deezer_msdd"))
    x_moody, x_muse = lyrics_vectors([r.text for r in moody.rows]), lyrics_vectors([r.text for r in muse.rows])
    x_deezer = context_vectors([r.text for r in deezer.rows])
    muse_fit, muse_model = regression(muse, x_muse)
    results = {
        "moodylyrics4q, lyrics, logistic probe": quadrants(moody, x_moody),
        "moodylyrics4q, lyrics, probes with L2 by artist folds": quadrant_probes(moody, x_moody),
        "muse_lyrics, lyrics, ridge": muse_fit,
        "moodylyrics4q, lyrics, MuSe's ridge": transfer(muse_model, moody, x_moody),
        "deezer_msdd, title/artist, ridge": regression(deezer, x_deezer)[0],
        "counts": {name: {s: sum(r.split == s for r in d.rows) for s in SPLITS} | {"skipped": d.skipped}
                   for name, d in (("moodylyrics4q", moody), ("muse_lyrics", muse), ("deezer_msdd", deezer))},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results
