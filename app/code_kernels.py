"""The sq8 scan's integer kernels: ``acc_i = sum_j w_j c_ij`` over 8-bit codes kept in blocks of 16 rows.

Layout: codes ``(N, D)`` are kept as ``(B, G, 16, 4)`` uint8: block ``b`` holds rows ``16b .. 16b + 15``, group
``g`` dimensions ``4g .. 4g + 3`` of each of them, a row's four bytes side by side (``D`` padded to ``4G`` and ``N``
to a multiple of ``ROWS_PADDED``, with zero codes). One 64-byte line is then four dimensions of sixteen rows, and a
kernel adds each row's products into that row's own 32-bit lane: a block's 16 sums build up in one register, with
no sum across a vector's lanes per row. A row-major kernel spent most of its time on those sums and on widening
bytes (12-14 ms for 1M x 97 codes on one machine, where this layout's VNNI kernel takes 3.6 ms, the speed at which
that core reads memory).

Kernels, chosen once from the host CPU (``KERNEL``); all give the same integers:

- ``avx512-vnni``: each int16 weight as two signed bytes (``w = 256 hi + lo``), one ``vpdpbusd`` per line and
  byte (unsigned codes times signed weights, four products per lane), four blocks at a time;
- ``avx2``: each line widened to 16 bits (``vpmovzxbw``) and multiplied by the group's four weights with
  ``vpmaddwd``, two blocks at a time;
- ``plain``: numba loops, on any CPU.

Every kernel reads the blocks named in ``ids[first:last]`` (a count that is a multiple of ``GROUP_OF_BLOCKS``)
and writes block ``ids[t]``'s sums to ``out[16 t .. 16 t + 15]``.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

ROWS = 16  # rows per block: one 32-bit lane each in a 512-bit register
DIMS = 4  # dimensions per group: the bytes one lane multiplies at a time
LINE = ROWS * DIMS  # bytes of one group of one block
GROUP_OF_BLOCKS = 4  # blocks a kernel call reads together (independent sums hide the multiply's latency)
ROWS_PADDED = ROWS * GROUP_OF_BLOCKS  # the stored rows are a multiple of this
WEIGHT_MAX = 32511  # the largest |weight|: 256 hi + lo with both signed bytes (hi <= 127)

I32, I64 = ir.IntType(32), ir.IntType(64)


def host_kernel() -> str:
    """The fastest kernel this CPU runs: what numba compiles for (the host, unless ``NUMBA_CPU_NAME`` says
    otherwise, in which case only ``plain`` is safe)."""
    target = getattr(numba.config, "CPU_NAME", None)
    if platform.machine().lower() not in ("x86_64", "amd64") or target not in (None, "host"):
        return "plain"
    try:
        from llvmlite import binding

        features = binding.get_host_cpu_features()
    except RuntimeError:
        return "plain"
    if all(features.get(name, False) for name in ("avx512f", "avx512bw", "avx512vnni")):
        return "avx512-vnni"
    return "avx2" if features.get("avx2", False) else "plain"


def available_kernels() -> list[str]:
    """Every kernel this CPU can run, fastest first."""
    return {"avx512-vnni": ["avx512-vnni", "avx2", "plain"], "avx2": ["avx2", "plain"]}.get(host_kernel(), ["plain"])


def groups(dims: int) -> int:
    return -(-dims // DIMS)


def layout(codes: np.ndarray, padded_rows: int | None = None) -> np.ndarray:
    """``(N, D)`` codes in the block layout of the module docstring."""
    n, d = codes.shape
    rows = padded_rows if padded_rows is not None else stored_rows(n)
    padded = np.zeros((rows, groups(d) * DIMS), dtype=np.uint8)
    padded[:n, :d] = codes
    return np.ascontiguousarray(padded.reshape(rows // ROWS, ROWS, groups(d), DIMS).transpose(0, 2, 1, 3))


def stored_rows(n: int) -> int:
    return -(-n // ROWS_PADDED) * ROWS_PADDED


def matrix(blocks: np.ndarray, n: int, d: int) -> np.ndarray:
    """The ``(n, d)`` codes a block layout holds (a copy)."""
    return blocks.transpose(0, 2, 1, 3).reshape(-1, blocks.shape[1] * DIMS)[:n, :d].copy()


def prepared(weights: np.ndarray, kernel: str) -> np.ndarray:
    """The int16 weights ``(D,)`` in the form ``kernel`` reads, one row per group: ``avx512-vnni`` two int32 of
    four signed bytes each (low bytes, high bytes); ``avx2`` the group's four weights four times (16 int16);
    ``plain`` the four weights as int32."""
    w = np.zeros(groups(weights.size) * DIMS, dtype=np.int32)
    w[: weights.size] = weights
    assert np.abs(w).max(initial=0) <= WEIGHT_MAX, "weights past WEIGHT_MAX do not split into two signed bytes"
    if kernel == "avx512-vnni":
        low = ((w + 128) & 255) - 128
        high = (w - low) >> 8
        as_words = [np.ascontiguousarray(part.astype(np.int8)).view(np.int32) for part in (low, high)]
        return np.ascontiguousarray(np.stack(as_words, axis=1))
    if kernel == "avx2":
        return np.ascontiguousarray(np.tile(w.reshape(-1, DIMS).astype(np.int16), (1, 4)))
    return np.ascontiguousarray(w.reshape(-1, DIMS))


# LLVM IR for the two x86 kernels -----------------------------------------------------------------------------------

def _address(builder: ir.IRBuilder, base: ir.Value, index: ir.Value, scale: int) -> ir.Value:
    return builder.add(base, builder.mul(index, ir.Constant(I64, scale)))


def _load(builder: ir.IRBuilder, address: ir.Value, kind: ir.Type, align: int = 1) -> ir.Value:
    return builder.load(builder.inttoptr(address, kind.as_pointer()), align=align)


def _splat(builder: ir.IRBuilder, value: ir.Value, lanes: int) -> ir.Value:
    vector = ir.VectorType(I32, lanes)
    first = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(I32, 0))
    return builder.shuffle_vector(first, ir.Constant(vector, ir.Undefined), ir.Constant(vector, [0] * lanes))


def _block_bases(builder: ir.IRBuilder, args: list[ir.Value], count: int) -> list[ir.Value]:
    """The addresses of the ``count`` blocks ``ids[first .. first + count - 1]`` name."""
    codes, ids, first, n_groups = args[0], args[1], args[2], args[4]
    stride = builder.mul(n_groups, ir.Constant(I64, LINE))
    return [builder.add(codes, builder.mul(_load(builder, _address(builder, ids, builder.add(
        first, ir.Constant(I64, k)), 8), I64, 8), stride)) for k in range(count)]


def _per_query(builder: ir.IRBuilder, base: ir.Value, stride: ir.Value, queries: int) -> list[ir.Value]:
    return [builder.add(base, builder.mul(stride, ir.Constant(I64, q))) for q in range(queries)]


def _vnni(blocks: int, queries: int) -> Callable[..., ir.Value]:
    def codegen(context, builder, signature, args):  # pragma: no cover - runs inside numba's compiler
        """``blocks`` blocks and ``queries`` queries: each group's line of each block times each query's low and
        high weight bytes of the group (``vpdpbusd`` adds a row's four unsigned-by-signed products into its
        lane), the sums in registers; then 256 high + low."""
        _, _, first, weights, n_groups, out, weight_stride, out_stride = args
        v16 = ir.VectorType(I32, 16)
        dot = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v16, [v16, v16, v16]),
                                             "llvm.x86.avx512.vpdpbusd.512")
        bases = _block_bases(builder, args, blocks)
        zero = ir.Constant(v16, [0] * 16)
        low = [[cgutils.alloca_once_value(builder, zero) for _ in bases] for _ in range(queries)]
        high = [[cgutils.alloca_once_value(builder, zero) for _ in bases] for _ in range(queries)]
        with cgutils.for_range(builder, n_groups) as loop:
            offset = builder.mul(loop.index, ir.Constant(I64, LINE))
            lines = [_load(builder, builder.add(base, offset), v16) for base in bases]
            for q, w in enumerate(_per_query(builder, weights, weight_stride, queries)):
                at = _address(builder, w, loop.index, 8)
                w_low = _splat(builder, _load(builder, at, I32, 4), 16)
                w_high = _splat(builder, _load(builder, builder.add(at, ir.Constant(I64, 4)), I32, 4), 16)
                for line, lo, hi in zip(lines, low[q], high[q], strict=True):
                    builder.store(builder.call(dot, [builder.load(lo), line, w_low]), lo)
                    builder.store(builder.call(dot, [builder.load(hi), line, w_high]), hi)
        for q, target_base in enumerate(_per_query(builder, out, out_stride, queries)):
            for k, (lo, hi) in enumerate(zip(low[q], high[q], strict=True)):
                total = builder.add(builder.shl(builder.load(hi), ir.Constant(v16, [8] * 16)), builder.load(lo))
                target = _address(builder, target_base, builder.add(first, ir.Constant(I64, k)), 4 * ROWS)
                builder.store(total, builder.inttoptr(target, v16.as_pointer()), align=4)
        return context.get_dummy_value()

    return codegen


def _avx2(blocks: int, queries: int) -> Callable[..., ir.Value]:
    def codegen(context, builder, signature, args):  # pragma: no cover - runs inside numba's compiler
        """``blocks`` blocks and ``queries`` queries: each group's line in quarters of four rows, widened to 16
        bits and multiplied by each query's four weights of the group (``vpmaddwd``: two pair sums per row), the
        pairs added at the end."""
        _, _, first, weights, n_groups, out, weight_stride, out_stride = args
        v8, v16w, v16b = ir.VectorType(I32, 8), ir.VectorType(ir.IntType(16), 16), ir.VectorType(ir.IntType(8), 16)
        madd = cgutils.get_or_insert_function(builder.module, ir.FunctionType(v8, [v16w, v16w]),
                                              "llvm.x86.avx2.pmadd.wd")
        bases = _block_bases(builder, args, blocks)
        zero = ir.Constant(v8, [0] * 8)
        sums = [[[cgutils.alloca_once_value(builder, zero) for _ in range(4)] for _ in bases] for _ in range(queries)]
        with cgutils.for_range(builder, n_groups) as loop:
            offset = builder.mul(loop.index, ir.Constant(I64, LINE))
            parts = [[builder.zext(_load(builder, builder.add(base, builder.add(offset, ir.Constant(I64, 16 * q))),
                                         v16b), v16w) for q in range(4)] for base in bases]  # rows 4q .. 4q + 3
            for q, w_base in enumerate(_per_query(builder, weights, weight_stride, queries)):
                w = _load(builder, _address(builder, w_base, loop.index, 32), v16w, 2)
                for quarters, totals in zip(parts, sums[q], strict=True):
                    for part, total in zip(quarters, totals, strict=True):
                        builder.store(builder.add(builder.load(total), builder.call(madd, [part, w])), total)
        v4 = ir.VectorType(I32, 4)
        for q, target_base in enumerate(_per_query(builder, out, out_stride, queries)):
            for k, totals in enumerate(sums[q]):
                for quarter, total in enumerate(totals):  # lanes hold each row's two pair sums: add them
                    value = builder.load(total)
                    even = builder.shuffle_vector(value, ir.Constant(v8, ir.Undefined),
                                                  ir.Constant(v4, [0, 2, 4, 6]))
                    odd = builder.shuffle_vector(value, ir.Constant(v8, ir.Undefined), ir.Constant(v4, [1, 3, 5, 7]))
                    row = builder.add(builder.mul(builder.add(first, ir.Constant(I64, k)), ir.Constant(I64, ROWS)),
                                      ir.Constant(I64, 4 * quarter))
                    builder.store(builder.add(even, odd), builder.inttoptr(_address(builder, target_base, row, 4),
                                                                           v4.as_pointer()), align=4)
        return context.get_dummy_value()

    return codegen


_SIGNATURE = types.void(*[types.intp] * 8)


def _kernel(name: str, codegen: Callable[..., ir.Value]) -> Any:
    """A numba intrinsic ``(codes, ids, first, weights, groups, out, weight_stride, out_stride)``, addresses,
    counts and byte strides as integers, whose body ``codegen`` writes in LLVM IR."""
    def typer(typingctx, codes, ids, first, weights, n_groups, out, weight_stride, out_stride):  # pragma: no cover
        return _SIGNATURE, codegen

    typer.__name__ = name
    return intrinsic(typer)


# blocks per call: independent sums hide the multiply's latency; blocks x queries x sums fit the registers
VNNI_ONE, VNNI_MANY = (GROUP_OF_BLOCKS, 1), (1, 4)  # (blocks, queries) per call: 8 of 32 zmm registers for sums
AVX2_ONE, AVX2_MANY = (2, 1), (1, 2)  # 8 of 16 ymm registers for sums
_vnni_one, _vnni_many = _kernel("vnni_one", _vnni(*VNNI_ONE)), _kernel("vnni_many", _vnni(*VNNI_MANY))
_avx2_one, _avx2_many = _kernel("avx2_one", _avx2(*AVX2_ONE)), _kernel("avx2_many", _avx2(*AVX2_MANY))


@njit(cache=True, nogil=True, boundscheck=False)
def _dot_vnni(blocks, ids, first, last, weights, out):  # pragma: no cover - compiled
    for t in range(first, last, VNNI_ONE[0]):
        _vnni_one(blocks.ctypes.data, ids.ctypes.data, t, weights.ctypes.data, blocks.shape[1], out.ctypes.data,
                  0, 0)


@njit(cache=True, nogil=True, boundscheck=False)
def _dot_avx2(blocks, ids, first, last, weights, out):  # pragma: no cover - compiled
    for t in range(first, last, AVX2_ONE[0]):
        _avx2_one(blocks.ctypes.data, ids.ctypes.data, t, weights.ctypes.data, blocks.shape[1], out.ctypes.data,
                  0, 0)


@njit(cache=True, nogil=True, boundscheck=False)
def _dot_vnni_many(blocks, ids, first, last, weights, out):  # pragma: no cover - compiled
    """``_dot_vnni`` for each query: ``weights`` (Q, G, 2) with Q a multiple of VNNI_MANY[1], ``out`` (Q, rows)."""
    for q in range(0, weights.shape[0], VNNI_MANY[1]):
        for t in range(first, last, VNNI_MANY[0]):
            _vnni_many(blocks.ctypes.data, ids.ctypes.data, t, weights[q].ctypes.data, blocks.shape[1],
                       out[q].ctypes.data, weights.strides[0], out.strides[0])


@njit(cache=True, nogil=True, boundscheck=False)
def _dot_avx2_many(blocks, ids, first, last, weights, out):  # pragma: no cover - compiled
    """``_dot_avx2`` for each query: ``weights`` (Q, G, 16) with Q a multiple of AVX2_MANY[1], ``out`` (Q, rows)."""
    for q in range(0, weights.shape[0], AVX2_MANY[1]):
        for t in range(first, last, AVX2_MANY[0]):
            _avx2_many(blocks.ctypes.data, ids.ctypes.data, t, weights[q].ctypes.data, blocks.shape[1],
                       out[q].ctypes.data, weights.strides[0], out.strides[0])


@njit(cache=True, nogil=True, boundscheck=False)
def _dot_plain(blocks, ids, first, last, weights, out):  # pragma: no cover - compiled
    sums = np.zeros(ROWS, dtype=np.int32)
    for t in range(first, last):
        block = blocks[ids[t]]
        sums[:] = 0
        for g in range(block.shape[0]):
            for r in range(ROWS):
                total = sums[r]
                for s in range(DIMS):
                    total += np.int32(block[g, r, s]) * weights[g, s]
                sums[r] = total
        out[t * ROWS : (t + 1) * ROWS] = sums


@njit(cache=True, nogil=True, boundscheck=False)
def _dot_plain_many(blocks, ids, first, last, weights, out):  # pragma: no cover - compiled
    for q in range(weights.shape[0]):
        _dot_plain(blocks, ids, first, last, weights[q], out[q])


KERNELS: dict[str, Callable[..., None]] = {"avx512-vnni": _dot_vnni, "avx2": _dot_avx2, "plain": _dot_plain}
KERNELS_MANY: dict[str, Callable[..., None]] = {"avx512-vnni": _dot_vnni_many, "avx2": _dot_avx2_many,
                                                 "plain": _dot_plain_many}
QUERIES_PER_CALL = {"avx512-vnni": VNNI_MANY[1], "avx2": AVX2_MANY[1], "plain": 1}
KERNEL = host_kernel()
dot_blocks, dot_blocks_many = KERNELS[KERNEL], KERNELS_MANY[KERNEL]


def prepared_many(weights: list[np.ndarray], kernel: str) -> np.ndarray:
    """``prepared`` of each query's weights, stacked, with all-zero queries to fill the kernel's last call."""
    forms = [prepared(w, kernel) for w in weights]
    forms += [np.zeros_like(forms[0])] * (-len(forms) % QUERIES_PER_CALL[kernel])
    return np.ascontiguousarray(np.stack(forms))


@njit(cache=True, nogil=True, boundscheck=False)
def scan(blocks, ids, weights, acc, block_max, block_arg, n, per_leader):  # pragma: no cover - compiled
    """``dot_blocks`` over ``ids``, ``per_leader`` rows at a time (a multiple of ROWS_PADDED), with each such
    stretch's best score among the first ``n`` rows and where it is. Here, beside the kernels, because numba's
    disk cache notices a change to the file a function is in, not to the files of the functions it calls."""
    per = per_leader // ROWS
    for b in range(block_max.size):
        dot_blocks(blocks, ids, b * per, min(ids.size, (b + 1) * per), weights, acc)
        start, stop = b * per_leader, min(n, (b + 1) * per_leader)
        block_arg[b] = start + acc[start:stop].argmax()
        block_max[b] = acc[block_arg[b]]


@njit(cache=True, nogil=True, boundscheck=False)
def scan_many(blocks, ids, weights, acc, block_max, block_arg, n, per_leader):  # pragma: no cover - compiled
    """``scan`` for several queries at once (``weights`` from ``prepared_many``; ``acc``, ``block_max`` and
    ``block_arg`` one row per query): each stretch of codes is read from memory once for all of them."""
    per = per_leader // ROWS
    for b in range(block_max.shape[1]):
        dot_blocks_many(blocks, ids, b * per, min(ids.size, (b + 1) * per), weights, acc)
        start, stop = b * per_leader, min(n, (b + 1) * per_leader)
        for q in range(block_max.shape[0]):
            block_arg[q, b] = start + acc[q, start:stop].argmax()
            block_max[q, b] = acc[q, block_arg[q, b]]
