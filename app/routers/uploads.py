"""Reading uploads with a size limit, and the form fields that come with them."""

from __future__ import annotations

from fastapi import Request, UploadFile
from fastapi.exceptions import RequestValidationError

from app.errors import PayloadTooLargeError
from app.routers.errors import request_model
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


async def known_form_fields(request: Request) -> None:
    """A route dependency: a form field the route does not take is refused by name (422 with the field probably
    meant), as a JSON body's is; otherwise a misspelt ``lyric`` would be dropped unread and the answer would lack
    what the user sent."""
    model = request_model(request)
    if model is None:
        return
    unknown = [name for name in dict.fromkeys((await request.form()).keys()) if name not in model.model_fields]
    if unknown:
        raise RequestValidationError([{"type": "extra_forbidden", "loc": ("body", name),
                                       "msg": "Extra inputs are not permitted", "input": None} for name in unknown])
