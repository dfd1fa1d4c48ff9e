"""Reading uploads with a size limit."""

from __future__ import annotations

from fastapi import UploadFile

from app.errors import PayloadTooLargeError
from models.errors import AudioError

CHUNK = 1 << 20


def read_upload(file: UploadFile, *, limit: int) -> bytes:
    """All bytes of an upload; 413 past ``limit``, 422 when empty."""
    chunks, total = [], 0
    while chunk := file.file.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(f"upload larger than the limit of {limit / 2**20:.0f} MiB "
                                       "(MOODSPACE_MAX_UPLOAD_MB)")
        chunks.append(chunk)
    if total == 0:
        raise AudioError(f"{file.filename or 'upload'}: the file is empty")
    return b"".join(chunks)
