"""Read TensorFlow checkpoints (the TensorBundle format: ``<prefix>.index`` + ``<prefix>.data-*``) without
TensorFlow.

The index is a LevelDB-style table (data blocks of prefix-compressed key/value entries, an index block, a
48-byte footer ending in a magic number). Each value is a ``BundleEntryProto`` (protobuf): dtype, shape, shard,
offset and size of the tensor's raw little-endian bytes in the data shard. Only what checkpoints of plain
float/int tensors need is implemented; compressed blocks and sliced tensors are refused with a clear error.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from models.errors import MoodspaceError

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 9: np.int64, 10: np.bool_, 19: np.float16}


class CheckpointError(MoodspaceError):
    """A checkpoint file is missing or not in a format this reader understands."""


def _varint(buffer: bytes, at: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buffer[at]
        result |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return result, at
        shift += 7


def _block(table: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Key/value entries of one table block (keys are prefix-compressed against the previous key)."""
    if table[offset + size] != 0:
        raise CheckpointError("compressed checkpoint index blocks are not supported")
    block = table[offset : offset + size]
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 * (restarts + 1)
    entries, key, at = [], b"", 0
    while at < end:
        shared, at = _varint(block, at)
        unshared, at = _varint(block, at)
        length, at = _varint(block, at)
        key = key[:shared] + block[at : at + unshared]
        at += unshared
        entries.append((key, block[at : at + length]))
        at += length
    return entries


def _fields(message: bytes) -> dict[int, list[int | bytes]]:
    """Protobuf wire-format fields: number -> values (varints as int, length-delimited as bytes)."""
    fields: dict[int, list[int | bytes]] = {}
    at = 0
    while at < len(message):
        tag, at = _varint(message, at)
        number, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, at = _varint(message, at)
        elif wire == 2:
            length, at = _varint(message, at)
            value, at = message[at : at + length], at + length
        elif wire == 5:
            value, at = struct.unpack_from("<I", message, at)[0], at + 4
        elif wire == 1:
            value, at = struct.unpack_from("<Q", message, at)[0], at + 8
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def _shape(message: bytes) -> tuple[int, ...]:
    dims = _fields(message).get(2, [])
    return tuple(int(_fields(dim).get(1, [0])[0]) for dim in dims if isinstance(dim, bytes))


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of the checkpoint at ``prefix`` (the path without ``.index``; a folder for checkpoints saved
    with an empty name, as musicnn's are), by variable name."""
    prefix = Path(prefix)
    folder, name = (prefix, "") if prefix.is_dir() else (prefix.parent, prefix.name)
    index_path = folder / f"{name}.index"
    if not index_path.is_file():
        raise CheckpointError(f"{index_path}: checkpoint index not found")
    table = index_path.read_bytes()
    if len(table) < FOOTER_SIZE or struct.unpack("<Q", table[-8:])[0] != TABLE_MAGIC:
        raise CheckpointError(f"{index_path}: not a TensorFlow checkpoint index")
    footer = table[-FOOTER_SIZE:]
    _, at = _varint(footer, 0)
    _, at = _varint(footer, at)
    index_offset, at = _varint(footer, at)
    index_size, _ = _varint(footer, at)
    tensors: dict[str, np.ndarray] = {}
    shards: dict[int, bytes] = {}
    for _, handle in _block(table, index_offset, index_size):
        offset, at = _varint(handle, 0)
        size, _ = _varint(handle, at)
        for key, value in _block(table, offset, size):
            if key:  # the empty key holds the bundle header
                tensors[key.decode()] = _tensor(folder, name, _fields(value), shards)
    return tensors


def _tensor(folder: Path, name: str, entry: dict[int, list[int | bytes]], shards: dict[int, bytes]) -> np.ndarray:
    if 7 in entry:
        raise CheckpointError("sliced (partitioned) tensors are not supported")
    dtype = DTYPES.get(int(entry.get(1, [0])[0]))
    if dtype is None:
        raise CheckpointError(f"unsupported tensor dtype {entry.get(1)}")
    shape = _shape(entry[2][0]) if 2 in entry else ()  # type: ignore[arg-type]
    shard, offset, size = (int(entry.get(k, [0])[0]) for k in (3, 4, 5))
    if shard not in shards:
        files = sorted(folder.glob(f"{name}.data-{shard:05d}-of-*"))
        if not files:
            raise CheckpointError(f"{folder / name}: data shard {shard} not found")
        shards[shard] = files[0].read_bytes()
    raw = shards[shard][offset : offset + size]
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()
