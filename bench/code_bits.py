"""How few bytes can an exact certificate read? Candidates left by narrower item codes, at one catalogue size.

    python bench/code_bits.py [--bundle default] [--n 1000000] [--queries 20]

A certified scan (``app/codes.py``) reads every item's code and rescores exactly each item whose code score plus
its worst-case coding error can still reach the k-th exact score. Its bytes per item fall with the code's width,
its rescoring grows with the error. For each scheme the table gives the median share of the catalogue that must
be rescored, counted with the exact k-th score already known (an oracle: a real search rescores at least as many):

  b-bit       each dimension of the augmented vectors in 2^b - 1 even steps over its range (sq8 is b = 8); the
              error bound is sum_j |q_j| max_i |x_ij - decoded_ij|, the one ``app.codes`` uses
  pca-m       the vectors rotated onto their m leading principal axes, coded in 8 bits, with each item's norm off
              those axes (Cauchy-Schwarz bounds the part of the score the code does not hold)

Queries are emotion points in [-1, 1]^2, as in bench/query.py; catalogues are drawn around real embeddings.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project root, as in bench/query.py

import argparse
from collections.abc import Callable
from functools import partial

import numpy as np

from app.codes import encode
from bench.common import embedder, machine, real_embeddings, synthetic_catalogue
from models.scoring import Gaussians, augment_items, augment_query

K = 10
LAMS = (0.5, 0.75, 0.9, 0.98)
BITS = (4, 5, 6, 8)
PCA_AXES = (16, 32, 64)
Upper = Callable[[np.ndarray], np.ndarray]  # augmented query -> each item's upper bound on its score


def kth_scores(x: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The exact k-th best score of each query (rows of ``queries``)."""
    return np.array([np.partition(x @ q, -K)[-K] for q in queries])


def bit_bound(x: np.ndarray, bits: int) -> Upper:
    """Each item's upper bound on its score from a b-bit code with per-dimension error bounds."""
    levels = 2**bits - 1
    low = x.min(axis=0)
    step = np.maximum((x.max(axis=0) - low) / levels, np.finfo(np.float64).tiny)
    decoded = low + step * np.clip(np.rint((x - low) / step), 0, levels)
    error = np.abs(x - decoded).max(axis=0)
    return lambda q: decoded @ q + np.abs(q) @ error


def principal_axes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vectors' mean and their principal axes as columns, leading axis first."""
    centre = x.mean(axis=0)
    sample = x[:: max(1, x.shape[0] // 200_000)] - centre
    return centre, np.linalg.eigh(sample.T @ sample)[1][:, ::-1]


def pca_bound(x: np.ndarray, centre: np.ndarray, rotation: np.ndarray, axes: int) -> Upper:
    """Each item's upper bound from 8-bit codes of its leading ``axes`` principal components, plus Cauchy-Schwarz on
    its norm off them."""
    rotated = (x - centre) @ rotation
    codes = encode(rotated[:, :axes])
    decoded = codes.low + codes.step * codes.matrix()
    rest = np.linalg.norm(rotated[:, axes:], axis=1)

    def upper(q: np.ndarray) -> np.ndarray:
        r = rotation.T @ q
        return centre @ q + decoded @ r[:axes] + np.abs(r[:axes]) @ codes.max_error + np.linalg.norm(r[axes:]) * rest

    return upper


def candidates(upper: Upper, queries: np.ndarray, kth: np.ndarray) -> list[int]:
    """Per query, the items whose upper bound reaches the exact k-th score: those the code cannot rule out."""
    return [int(np.sum(upper(q) >= t)) for q, t in zip(queries, kth, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="default")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    model = embedder(args.bundle)
    items = synthetic_catalogue(real_embeddings(model, corpus=None, n=200), args.n)
    points = model.embed_points(np.random.default_rng(1).uniform(-1, 1, size=(args.queries, 2)))
    centre = items.mu.astype(np.float64).mean(axis=0)
    x = augment_items(items, centre=centre)
    mean, rotation = principal_axes(x)
    schemes: dict[str, tuple[float, Callable[[], Upper]]] = {
        f"{b}-bit": (b / 8 * x.shape[1], partial(bit_bound, x, b)) for b in BITS}
    schemes |= {f"pca-{m}": (m + 4, partial(pca_bound, x, mean, rotation, m)) for m in PCA_AXES}
    print(f"{machine()}; N {args.n:,}, {x.shape[1]} dimensions ({x.shape[1] * 4} bytes per item in float32); "
          f"median share of the catalogue rescored, oracle k-th score, top-{K}")
    print(f"{'scheme':<8}{'bytes':>7}" + "".join(f"{'lam ' + str(lam):>12}" for lam in LAMS))
    queries = {lam: augment_query(Gaussians(*(np.asarray(p, dtype=np.float64) for p in points)), lam=lam,
                                  centre=centre)[0] for lam in LAMS}
    kth = {lam: kth_scores(x, q) for lam, q in queries.items()}
    for name, (width, build) in schemes.items():
        upper = build()  # one code per scheme, every lam's queries against it
        shares = [float(np.median(candidates(upper, queries[lam], kth[lam]))) / args.n for lam in LAMS]
        print(f"{name:<8}{width:>7.1f}" + "".join(f"{share:>12.4%}" for share in shares), flush=True)


if __name__ == "__main__":
    main()
