"""One byte per dimension: 8-bit codes of the augmented item vectors, scanned first, exact by a certificate.

Each dimension ``j`` of the augmented vectors (``models.scoring.augment_items``) is cut into 255 even steps between
its catalogue minimum and maximum, ``x_ij ~ low_j + step_j * c_ij`` with ``c_ij`` one byte: a quarter of the bytes
of float32, which a scan on one core cannot read faster than memory delivers. A query ``q`` becomes integer weights
``w_j = round(q_j * step_j / unit)`` (int16), so one pass of integer dot products ``acc_i = sum_j w_j c_ij`` gives
every item's approximate score ``base + unit * acc_i``, off its exact ``q . x_i`` by at most

    slack(q) = sum_j |q_j| err_j + 255 * sum_j |q_j step_j - unit * w_j| + rounding

(``err_j``: dimension j's largest coding error over the catalogue, measured when encoding).

The scan keeps each block's best item. The best items of the k best blocks are scored exactly; the lowest of
those scores, ``F``, is reached by k items, so an item whose approximate score plus the slack stays below ``F``
cannot enter the top k. Every other item is a candidate (blocks whose best item falls short are skipped whole):
scored exactly, their top k is the exact top k, by construction and in one scan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from numba import njit

from models.scoring import Gaussians

BLOCK = 1024  # rows per block maximum
ROUNDING = 1e-9  # per unit of sum_j |q_j| max_j |x_ij|: float64 rounding of the exact and approximate scores
ENCODE_CHUNK = 100_000  # rows encoded at a time


@dataclass(frozen=True)
class ScalarCodes:
    """8-bit codes of ``(N, D)`` augmented vectors and what decodes them."""

    codes: np.ndarray  # (N, D) uint8, memory-mapped when loaded
    low: np.ndarray  # (D,) float64: code 0
    step: np.ndarray  # (D,) float64: one code step
    max_error: np.ndarray  # (D,) float64: largest |x_ij - (low_j + step_j c_ij)| over the catalogue
    abs_max: np.ndarray  # (D,) float64: largest |x_ij|, for the rounding term

    @property
    def size(self) -> int:
        return int(self.codes.shape[0])

    def certified(self, q: np.ndarray, k: int, exact: Callable[[np.ndarray], np.ndarray],
                  rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows (of ``rows``, or of the whole catalogue) that hold the exact top ``k`` for the augmented query ``q``
        ((D,) float64), and their exact scores ``exact(rows)`` (``q . x`` in float64): the candidates of the
        module docstring; all rows where there are at most ``k``."""
        n = self.size if rows is None else int(rows.size)
        if n <= k:
            found = np.arange(n)
        else:
            weights, unit, slack = self.query_weights(q)
            acc, block_max, block_arg, positions = _buffers(n)
            if rows is None:
                _scan(self.codes, weights, acc, block_max, block_arg)
            else:
                _scan_rows(self.codes, np.ascontiguousarray(rows, dtype=np.int64), weights, acc, block_max,
                           block_arg)
            leaders = (block_arg[np.argpartition(block_max, -k)[-k:]] if block_max.size >= k
                       else np.argpartition(acc, -k)[-k:])
            floor = float(exact(leaders if rows is None else rows[leaders]).min())
            cut = np.floor((floor - slack - float(self.low @ q)) / unit)
            if abs(cut) < 2**31:  # an int32 score, as the codes' are
                found = positions[: _at_least(acc, block_max, int(cut), positions)].copy()
            else:  # the codes cannot order these items (they are all the same): every row is a candidate
                found = np.arange(n)
        found = found if rows is None else rows[found]
        return found, exact(found)

    @staticmethod
    def scorer(gaussians: Gaussians, centre: np.ndarray, q: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """The ``exact`` of ``certified`` for a catalogue's float32 Gaussians and the augmented query ``q``."""
        return partial(augmented_scores, **gaussians._asdict(), centre=centre, q=q)

    def query_weights(self, q: np.ndarray) -> tuple[np.ndarray, float, float]:
        """The query's int16 weights, the score of one weight unit, and the slack of the module docstring."""
        scaled = np.asarray(q, dtype=np.float64) * self.step
        unit = max(float(np.abs(scaled).max()), 1e-300) / WEIGHT_MAX
        weights = np.rint(scaled / unit).astype(np.int16)
        slack = (float(np.abs(q) @ self.max_error) + CODE_MAX * float(np.abs(scaled - unit * weights).sum())
                 + ROUNDING * float(np.abs(q) @ self.abs_max))
        return np.ascontiguousarray(weights), unit, slack

    def save(self, folder: Path) -> None:
        np.save(folder / "codes.npy", np.ascontiguousarray(self.codes))
        np.savez(folder / "codes_scale.npz", low=self.low, step=self.step, max_error=self.max_error,
                 abs_max=self.abs_max)

    @staticmethod
    def load(folder: Path) -> ScalarCodes:
        """Saved codes, memory-mapped (every process serving the folder shares one copy), the kernels warmed."""
        with np.load(folder / "codes_scale.npz") as scale:
            parts = {name: scale[name] for name in ("low", "step", "max_error", "abs_max")}
        codes = ScalarCodes(np.load(folder / "codes.npy", mmap_mode="r"), **parts)
        codes.warm()
        return codes

    def warm(self) -> None:
        """Compile the scans for this array type now (numba caches them on disk), not in the first request."""
        if self.size:
            q = np.ones(self.codes.shape[1])
            self.certified(q, 1, np.zeros_like, rows=np.zeros(2, dtype=np.int64))
            self.certified(q, 1, np.zeros_like)


CODE_MAX = 255  # the largest code
WEIGHT_MAX = 32767  # the largest |weight|: 255 * 32767 * D stays inside int32 for D up to 257
MAX_DIMENSIONS = (2**31 - 1) // (CODE_MAX * WEIGHT_MAX)


def encode(xb: np.ndarray) -> ScalarCodes:
    """8-bit codes of ``xb`` ((N, D) float64 augmented vectors) with each dimension's largest coding error."""
    n, d = xb.shape
    assert d <= MAX_DIMENSIONS, f"{d} dimensions overflow the int32 scan"
    low = xb.min(axis=0) if n else np.zeros(d)
    step = np.maximum((xb.max(axis=0) - low) / CODE_MAX, np.finfo(np.float64).tiny) if n else np.ones(d)
    codes = np.empty((n, d), dtype=np.uint8)
    max_error, abs_max = np.zeros(d), np.zeros(d)
    for start in range(0, n, ENCODE_CHUNK):
        x = xb[start : start + ENCODE_CHUNK]
        c = np.clip(np.rint((x - low) / step), 0, CODE_MAX)
        codes[start : start + ENCODE_CHUNK] = c
        max_error = np.maximum(max_error, np.abs(x - (low + step * c)).max(axis=0))
        abs_max = np.maximum(abs_max, np.abs(x).max(axis=0))
    return ScalarCodes(codes, low, step, max_error, abs_max)


@njit(cache=True, nogil=True, boundscheck=False)
def _dot_rows(codes, weights, acc):  # pragma: no cover - compiled
    """``acc[i] = sum_j weights[j] * codes[i, j]`` for every row, ``weights`` int32. Four rows at a time, each
    with its own sum: the loop over j vectorises and the four sums keep the core busy (one row at a time spent
    most of its time summing each row's vector lanes: 21.7 ms against 12.1 ms at 1M x 104 on one machine;
    int16 weights widened inside the loop, 17.7 ms)."""
    n, d = codes.shape
    full = n - n % 4
    for i in range(0, full, 4):
        t0, t1, t2, t3 = np.int32(0), np.int32(0), np.int32(0), np.int32(0)
        r0, r1, r2, r3 = codes[i], codes[i + 1], codes[i + 2], codes[i + 3]
        for j in range(d):
            w = weights[j]
            t0 += np.int32(r0[j]) * w
            t1 += np.int32(r1[j]) * w
            t2 += np.int32(r2[j]) * w
            t3 += np.int32(r3[j]) * w
        acc[i], acc[i + 1], acc[i + 2], acc[i + 3] = t0, t1, t2, t3
    for i in range(full, n):
        total = np.int32(0)
        for j in range(d):
            total += np.int32(codes[i, j]) * weights[j]
        acc[i] = total


@njit(cache=True, nogil=True, boundscheck=False)
def _scan(codes, weights, acc, block_max, block_arg):  # pragma: no cover - compiled
    """``_dot_rows`` over every row, block by block, with each block's best score and where it is (checking
    rows one by one inside the product loop kept it from vectorising: 11 ms instead of 7 at 1M)."""
    n = codes.shape[0]
    wide = weights.astype(np.int32)
    for b in range(block_max.size):
        start, stop = b * BLOCK, min(n, (b + 1) * BLOCK)
        _dot_rows(codes[start:stop], wide, acc[start:stop])
        block_arg[b] = start + acc[start:stop].argmax()
        block_max[b] = acc[block_arg[b]]


@njit(cache=True, nogil=True, boundscheck=False)
def _scan_rows(codes, rows, weights, acc, block_max, block_arg):  # pragma: no cover - compiled
    """``_scan`` of the given rows only (a filter's pass): ``acc[t]`` is row ``rows[t]``'s score."""
    for b in range(block_max.size):
        start, stop = b * BLOCK, min(rows.size, (b + 1) * BLOCK)
        for t in range(start, stop):
            total = np.int32(0)
            row = codes[rows[t]]
            for j in range(codes.shape[1]):
                total += np.int32(row[j]) * np.int32(weights[j])
            acc[t] = total
        block_arg[b] = start + acc[start:stop].argmax()
        block_max[b] = acc[block_arg[b]]


@njit(cache=True, nogil=True, boundscheck=False)
def _at_least(acc, block_max, cut, positions):  # pragma: no cover - compiled
    """Write the positions whose score is at least ``cut`` into ``positions``, in order, and return how many;
    blocks whose best score is below it are skipped."""
    kept = 0
    for b in range(block_max.size):
        if block_max[b] >= cut:
            for i in range(b * BLOCK, min(acc.size, (b + 1) * BLOCK)):
                if acc[i] >= cut:
                    positions[kept] = i
                    kept += 1
    return kept


_local = threading.local()


def _buffers(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """This thread's score, block maximum, block leader and candidate position arrays for ``n`` rows, reused
    across queries (a fresh 4 MB array costs a page fault per 4 kB on every query)."""
    blocks = -(-n // BLOCK)
    if getattr(_local, "acc", np.empty(0)).size < n:
        _local.acc = np.empty(n, dtype=np.int32)
        _local.block_max = np.empty(blocks, dtype=np.int32)
        _local.block_arg = np.empty(blocks, dtype=np.int64)
        _local.positions = np.empty(n, dtype=np.int64)
    return _local.acc[:n], _local.block_max[:blocks], _local.block_arg[:blocks], _local.positions[:n]


def augmented_scores(rows: np.ndarray, *, E: np.ndarray, mu: np.ndarray, logvar: np.ndarray, centre: np.ndarray,
                     q: np.ndarray) -> np.ndarray:
    """``augment_items(items[rows], centre=centre) @ q`` in float64 (``models.scoring``), without building the
    (len(rows), D) vectors: a few hundred candidates are scored in microseconds, not a millisecond."""
    out = np.empty(rows.size)
    _augmented_dot(E, mu, logvar, np.ascontiguousarray(rows, dtype=np.int64),
                   np.ascontiguousarray(centre, dtype=np.float64), np.ascontiguousarray(q, dtype=np.float64), out)
    return out


@njit(cache=True, nogil=True, boundscheck=False)
def _augmented_dot(E, mu, logvar, rows, centre, q, out):  # pragma: no cover - compiled
    """Each row's ``[c(E), 1/v, mu/v, sum(mu^2/v + log v)] . q`` with ``mu`` less ``centre`` and ``c`` the
    centred unit vector (Pearson correlation as an inner product)."""
    d = E.shape[1]
    for t in range(rows.size):
        i = rows[t]
        mean = 0.0
        for j in range(d):
            mean += np.float64(E[i, j])
        mean /= d
        norm = 0.0
        for j in range(d):
            norm += (np.float64(E[i, j]) - mean) ** 2
        norm = np.sqrt(norm)
        if norm == 0.0:
            norm = 1.0
        total, scalar = 0.0, 0.0
        for j in range(d):
            x = np.float64(mu[i, j]) - centre[j]
            lv = np.float64(logvar[i, j])
            inv_var = np.exp(-lv)
            total += q[j] * ((np.float64(E[i, j]) - mean) / norm) + q[d + j] * inv_var + q[2 * d + j] * x * inv_var
            scalar += x * x * inv_var + lv
        out[t] = total + q[3 * d] * scalar
