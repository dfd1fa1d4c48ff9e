"""One byte per dimension: 8-bit codes of the augmented item vectors, scanned first, exact by a certificate.

Each dimension ``j`` of the augmented vectors (``models.scoring.augment_items``) is cut into 255 even steps between
its catalogue minimum and maximum, ``x_ij ~ low_j + step_j * c_ij`` with ``c_ij`` one byte: a quarter of the bytes
of float32, which a scan on one core cannot read faster than memory delivers. A query ``q`` becomes integer weights
``w_j = round(q_j * step_j / unit)`` (int16), so one pass of integer dot products ``acc_i = sum_j w_j c_ij`` gives
every item's approximate score ``base + unit * acc_i``, off its exact ``q . x_i`` by at most

    slack(q) = sum_j |q_j| err_j + 255 * sum_j |q_j step_j - unit * w_j| + rounding

(``err_j``: dimension j's largest coding error over the catalogue, measured when encoding).

The codes are kept in blocks of 16 rows by 4 dimensions and scanned by the fastest integer kernel the CPU has
(``app.code_kernels``: AVX-512 VNNI, AVX2 or plain loops, the same integers from each).

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

from app.code_kernels import (
    GROUP_OF_BLOCKS,
    KERNEL,
    ROWS,
    ROWS_PADDED,
    WEIGHT_MAX,
    dot_blocks,
    groups,
    layout,
    matrix,
    prepared,
    prepared_many,
    scan,
    scan_many,
    stored_rows,
)
from models.scoring import Gaussians

BLOCK = 1024  # rows per block maximum (a multiple of the kernels' ROWS_PADDED)
ROUNDING = 1e-9  # per unit of sum_j |q_j| max_j |x_ij|: float64 rounding of the exact and approximate scores
ENCODE_CHUNK = 1024 * ROWS_PADDED  # rows encoded at a time


@dataclass(frozen=True)
class ScalarCodes:
    """8-bit codes of ``(N, D)`` augmented vectors and what decodes them."""

    codes: np.ndarray  # (B, G, 16, 4) uint8 in app.code_kernels' block layout, memory-mapped when loaded
    rows: int  # N: the layout pads the rows with zero codes
    low: np.ndarray  # (D,) float64: code 0
    step: np.ndarray  # (D,) float64: one code step
    max_error: np.ndarray  # (D,) float64: largest |x_ij - (low_j + step_j c_ij)| over the catalogue
    abs_max: np.ndarray  # (D,) float64: largest |x_ij|, for the rounding term

    @property
    def size(self) -> int:
        return self.rows

    def matrix(self) -> np.ndarray:
        """The ``(N, D)`` codes (a copy)."""
        return matrix(self.codes, self.rows, self.low.size)

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
            acc, block_max, block_arg = self._scores(prepared(weights, KERNEL), rows)
            found = self._candidates(q, k, exact, (unit, slack), (acc, block_max, block_arg), rows)
        found = found if rows is None else rows[found]
        return found, exact(found)

    def certified_many(self, qs: np.ndarray, ks: list[int],
                       exacts: list[Callable[[np.ndarray], np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``certified`` for each augmented query of ``qs`` ((Q, D)) over the whole catalogue, the codes read
        once for all of them (``app.code_kernels.scan_many``)."""
        if len(ks) == 1 or self.size <= max(ks):
            return [self.certified(q, k, exact) for q, k, exact in zip(qs, ks, exacts, strict=True)]
        parts = [self.query_weights(q) for q in qs]
        weights = prepared_many([w for w, _, _ in parts], KERNEL)
        acc = _buffer("acc_many", weights.shape[0] * stored_rows(self.rows), np.int32).reshape(weights.shape[0], -1)
        leaders = -(-self.rows // BLOCK)
        block_max = _buffer("max_many", weights.shape[0] * leaders, np.int32).reshape(weights.shape[0], -1)
        block_arg = _buffer("arg_many", weights.shape[0] * leaders, np.int64).reshape(weights.shape[0], -1)
        scan_many(self.codes, _all_blocks(self.codes.shape[0]), weights, acc, block_max, block_arg, self.rows, BLOCK)
        answers = []
        for i, (q, k, exact) in enumerate(zip(qs, ks, exacts, strict=True)):
            found = self._candidates(q, k, exact, parts[i][1:], (acc[i, : self.rows], block_max[i], block_arg[i]))
            answers.append((found, exact(found)))
        return answers

    def _candidates(self, q: np.ndarray, k: int, exact: Callable[[np.ndarray], np.ndarray],
                    scale: tuple[float, float], scores: tuple[np.ndarray, np.ndarray, np.ndarray],
                    rows: np.ndarray | None = None) -> np.ndarray:
        """The positions the certificate keeps, from the integer scores, each block's best and where it is:
        every one whose score plus the slack reaches the lowest exact score of the k best blocks' leaders."""
        (unit, slack), (acc, block_max, block_arg) = scale, scores
        leaders = (block_arg[np.argpartition(block_max, -k)[-k:]] if block_max.size >= k
                   else np.argpartition(acc, -k)[-k:])
        floor = float(exact(leaders if rows is None else rows[leaders]).min())
        cut = np.floor((floor - slack - float(self.low @ q)) / unit)
        if abs(cut) >= 2**31:  # the codes cannot order these items (they are all the same): every row is one
            return np.arange(acc.size)
        positions = _buffer("positions", acc.size, np.int64)
        return positions[: _at_least(acc, block_max, int(cut), positions)].copy()

    def _scores(self, weights: np.ndarray, rows: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """Every row's (or each of ``rows``'s) integer score, and each block's best and where it is."""
        if rows is None:
            acc, block_max, block_arg = _buffer("acc", stored_rows(self.rows), np.int32), *_leader_buffers(self.rows)
            scan(self.codes, _all_blocks(self.codes.shape[0]), weights, acc, block_max, block_arg, self.rows, BLOCK)
            acc = acc[: self.rows]
        else:
            rows, blocks = np.ascontiguousarray(rows, dtype=np.int64), self.codes.shape[0]
            block_ids, where = _buffer("ids", blocks + GROUP_OF_BLOCKS, np.int64), _buffer("where", rows.size, np.int64)
            count = _blocks_of(rows, _buffer("place", blocks, np.int64), block_ids, where)
            sums = _buffer("sums", count * ROWS, np.int32)
            dot_blocks(self.codes, block_ids, 0, count, weights, sums)
            acc, (block_max, block_arg) = _buffer("acc", rows.size, np.int32), _leader_buffers(rows.size)
            _gather(sums, where, rows, acc, block_max, block_arg)
        return acc, block_max, block_arg

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
                 abs_max=self.abs_max, rows=np.int64(self.rows))

    @staticmethod
    def load(folder: Path) -> ScalarCodes:
        """Saved codes, memory-mapped (every process serving the folder shares one copy), the kernels warmed.
        Codes saved row by row (``(N, D)``, before the block layout) are laid out in blocks in memory."""
        with np.load(folder / "codes_scale.npz") as scale:
            parts = {name: scale[name] for name in ("low", "step", "max_error", "abs_max")}
            saved_rows = int(scale["rows"]) if "rows" in scale else None
        stored = np.load(folder / "codes.npy", mmap_mode="r")
        if stored.ndim == 2:
            codes = ScalarCodes(layout(np.asarray(stored)), stored.shape[0], **parts)
        else:
            assert saved_rows is not None, "block-layout codes without their row count"
            codes = ScalarCodes(stored, saved_rows, **parts)
        codes.warm()
        return codes

    def warm(self) -> None:
        """Compile the scans for this array type now (numba caches them on disk), not in the first request."""
        if self.size:
            q = np.ones(self.low.size)
            self.certified(q, 1, np.zeros_like, rows=np.zeros(2, dtype=np.int64))
            self.certified(q, 1, np.zeros_like)


CODE_MAX = 255  # the largest code
MAX_DIMENSIONS = (2**31 - 1) // (CODE_MAX * WEIGHT_MAX)


def encode(xb: np.ndarray) -> ScalarCodes:
    """8-bit codes of ``xb`` ((N, D) float64 augmented vectors) with each dimension's largest coding error, in the
    block layout of ``app.code_kernels``."""
    n, d = xb.shape
    assert d <= MAX_DIMENSIONS, f"{d} dimensions overflow the int32 scan"
    low = xb.min(axis=0) if n else np.zeros(d)
    step = np.maximum((xb.max(axis=0) - low) / CODE_MAX, np.finfo(np.float64).tiny) if n else np.ones(d)
    blocks = np.zeros((stored_rows(n) // ROWS, groups(d), ROWS, 4), dtype=np.uint8)
    max_error, abs_max = np.zeros(d), np.zeros(d)
    for start in range(0, n, ENCODE_CHUNK):
        x = xb[start : start + ENCODE_CHUNK]
        c = np.clip(np.rint((x - low) / step), 0, CODE_MAX).astype(np.uint8)
        laid = layout(c)
        blocks[start // ROWS : start // ROWS + laid.shape[0]] = laid
        max_error = np.maximum(max_error, np.abs(x - (low + step * c)).max(axis=0))
        abs_max = np.maximum(abs_max, np.abs(x).max(axis=0))
    return ScalarCodes(blocks, n, low, step, max_error, abs_max)


DENSE_BLOCKS = 0.5  # a filter's pass touching more of the blocks than this reads them all, in order


@njit(cache=True, nogil=True, boundscheck=False)
def _blocks_of(rows, place, ids, where):  # pragma: no cover - compiled
    """The blocks that hold ``rows`` into ``ids`` (ascending; every block where they are more than DENSE_BLOCKS
    of them: a scan in order reads faster than one that skips), padded to the kernels' group of blocks by
    repeating the last, and each row's block's place among them into ``where``; returns how many ids.
    ``place`` is scratch, one entry per block."""
    place[:] = -1
    for t in range(rows.size):
        place[rows[t] // ROWS] = 0
    count = 0
    for b in range(place.size):
        count += place[b] == 0
    dense = count > DENSE_BLOCKS * place.size
    count = 0
    for b in range(place.size):
        if dense or place[b] == 0:
            place[b] = count
            ids[count] = b
            count += 1
    while count % GROUP_OF_BLOCKS:
        ids[count] = ids[count - 1]
        count += 1
    for t in range(rows.size):
        where[t] = place[rows[t] // ROWS]
    return count


@njit(cache=True, nogil=True, boundscheck=False)
def _gather(sums, where, rows, acc, block_max, block_arg):  # pragma: no cover - compiled
    """``acc[t]``: row ``rows[t]``'s score from its block's sums (a filter's pass), with each BLOCK of ``acc``'s
    best score and where it is."""
    for t in range(rows.size):
        acc[t] = sums[where[t] * ROWS + rows[t] % ROWS]
    for b in range(block_max.size):
        start, stop = b * BLOCK, min(rows.size, (b + 1) * BLOCK)
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


def _buffer(name: str, size: int, dtype: type) -> np.ndarray:
    """This thread's array ``name`` of at least ``size`` items, reused across queries (a fresh 4 MB array costs
    a page fault per 4 kB on every query)."""
    held = getattr(_local, name, None)
    if held is None or held.size < size:
        held = np.empty(size, dtype=dtype)
        setattr(_local, name, held)
    return held[:size]


def _leader_buffers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each BLOCK's best score and where it is, for ``n`` scores."""
    blocks = -(-n // BLOCK)
    return _buffer("block_max", blocks, np.int32), _buffer("block_arg", blocks, np.int64)


def _all_blocks(blocks: int) -> np.ndarray:
    """``arange(blocks)``, kept: the full scan's list of blocks."""
    held = getattr(_local, "all_blocks", None)
    if held is None or held.size != blocks:
        held = np.arange(blocks, dtype=np.int64)
        _local.all_blocks = held
    return held


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
