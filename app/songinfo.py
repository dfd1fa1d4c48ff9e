"""What a file says about its song: title, artist, album, year, genre and lyrics from its embedded tags (ID3,
Vorbis comments, FLAC, MP4, through mutagen) and lyrics from a sidecar ``.lrc`` or ``.txt`` beside the audio.

Tags are the uploader's data, not ours: a tag that is binary junk, absurdly long or unreadable is left out and
the reason logged (``SongInfo.skipped``); nothing here raises for a bad tag. Lyrics are capped at
``MAX_LYRICS_CHARS``.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mutagen
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Tags

from app.errors import SongInfoError
from app.tables import MAX_GENRE_CHARS, MAX_TITLE_CHARS
from models.text import MAX_LYRICS_CHARS

log = logging.getLogger(__name__)
SIDECARS = (".lrc", ".txt")
SIDECAR_ENCODINGS = ("utf-8-sig", "utf-16")  # UTF-8 (with or without a BOM); UTF-16 only with its BOM
_LRC_TAG = re.compile(r"\[(\d+:\d+(?:[.:]\d+)?|[a-z]+:[^\]]*)\]", re.IGNORECASE)  # [01:23.45] or [ar: ...]
_YEAR = re.compile(r"\b(1[89]\d\d|2[01]\d\d)\b")
# Where each container keeps each field: ID3 frames (MP3, WAV, AIFF), MP4 atoms, and Vorbis comments (FLAC, OGG).
_ID3 = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "genre": "TCON", "year": "TDRC", "lyrics": "USLT"}
_MP4 = {"title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "genre": "\xa9gen", "year": "\xa9day",
        "lyrics": "\xa9lyr"}
_VORBIS = {"title": "title", "artist": "artist", "album": "album", "genre": "genre", "year": "date",
           "lyrics": "lyrics"}
_LIMITS = {"genre": MAX_GENRE_CHARS}


@dataclass(frozen=True)
class SongInfo:
    """Song context of one file; empty strings and ``None`` where the file says nothing usable."""

    title: str = ""
    artist: str = ""
    album: str = ""
    genre: str = ""
    year: int | None = None
    lyrics: str | None = None
    skipped: tuple[str, ...] = field(default=())  # "tag: reason", for the log

    def overridden_by(self, **given: str | int | None) -> SongInfo:
        """This info with every field the caller gave (not None, not empty) in place of the file's."""
        changes: dict[str, Any] = {k: v for k, v in given.items() if v not in (None, "")}
        return replace(self, **changes)


def clean_text(value: str, *, limit: int) -> str | None:
    """``value`` stripped, or None if it is not text a person wrote (control characters, NUL) or longer than
    ``limit`` characters."""
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if any(ord(c) < 32 and c not in "\n\t" for c in text) or len(text) > limit:
        return None
    return text


def clean_lyrics(value: str) -> str:
    """Lyrics as plain text: LRC time stamps and header tags removed, blank runs collapsed."""
    lines = [_LRC_TAG.sub("", line).strip() for line in value.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def parse_lyrics(value: str) -> tuple[str | None, str | None]:
    """(lyrics as plain text, None), or (None, the reason they cannot be used); empty lyrics are (None, None)."""
    text = clean_text(value, limit=MAX_LYRICS_CHARS)
    if text is None:
        return None, f"lyrics: control characters, or over {MAX_LYRICS_CHARS} characters; send plain text"
    return clean_lyrics(text) or None, None


def request_lyrics(text: str) -> str | None:
    """Lyrics as a request gives them (``parse_lyrics``); None when empty; a ``SongInfoError`` naming the
    problem."""
    lyrics, reason = parse_lyrics(text)
    if reason:
        raise SongInfoError(reason)
    return lyrics


def request_text(value: str, *, field: str) -> str:
    """A title or artist as a request gives it, stripped; a ``SongInfoError`` naming ``field`` for control
    characters."""
    text = clean_text(value, limit=MAX_TITLE_CHARS)
    if text is None:
        raise SongInfoError(f"{field}: control characters, or over {MAX_TITLE_CHARS} characters; send plain text")
    return text


def read_tags(data: bytes, *, name: str) -> SongInfo:
    """The song context in the embedded tags of audio ``data`` (any container mutagen reads)."""
    try:
        audio = mutagen.File(io.BytesIO(data))
    except Exception as error:  # mutagen raises many types for broken tags; the audio may still decode
        log.info("%s: tags unreadable: %s: %s", name, type(error).__name__, error)
        return SongInfo(skipped=(f"tags: unreadable ({type(error).__name__})",))
    if audio is None or audio.tags is None:
        return SongInfo()
    keys = _ID3 if isinstance(audio.tags, ID3) else _MP4 if isinstance(audio.tags, MP4Tags) else _VORBIS
    values: dict[str, Any] = {}
    skipped = []
    for field_name, key in keys.items():
        raw = _first(audio.tags, key)
        if raw is None:
            continue
        if field_name == "lyrics":
            values["lyrics"], reason = parse_lyrics(raw)
            skipped += [reason] if reason else []
            continue
        text = clean_text(raw, limit=_LIMITS.get(field_name, MAX_TITLE_CHARS))
        if text is None:
            skipped.append(f"{field_name}: not readable text, or too long")
        elif field_name == "year":
            found = _YEAR.search(text)
            values["year"] = int(found.group(1)) if found else None
        else:
            values[field_name] = text
    for reason in skipped:
        log.info("%s: %s", name, reason)
    return SongInfo(**values, skipped=tuple(skipped))


def _first(tags: Any, key: str) -> str | None:
    """The first text under ``key`` (an ID3 frame id, an MP4 atom or a Vorbis comment name), or None."""
    if isinstance(tags, ID3):
        frames = tags.getall(key)
        value: Any = frames[0].text if frames else None
    else:
        try:
            value = tags[key]
        except (KeyError, ValueError, TypeError):
            return None
    value = value[0] if isinstance(value, list) and value else value
    return str(value) if isinstance(value, str) or type(value).__name__ == "ID3TimeStamp" else None


def read_sidecar(audio: Path) -> tuple[str | None, str | None]:
    """(lyrics, reason they were left out) from ``audio``'s sidecar: same name, ``.lrc`` or ``.txt``."""
    for suffix in SIDECARS:
        path = audio.with_suffix(suffix)
        if path.is_file():
            return decode_lyrics(path.read_bytes(), name=path.name)
    return None, None


def decode_lyrics(raw: bytes, *, name: str) -> tuple[str | None, str | None]:
    """Lyrics from a sidecar's bytes in UTF-8 or BOM-marked UTF-16; anything else is skipped with the reason."""
    if len(raw) > 4 * MAX_LYRICS_CHARS:
        return None, f"{name}: {len(raw)} bytes, over the {MAX_LYRICS_CHARS}-character lyrics limit"
    encodings = SIDECAR_ENCODINGS if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else SIDECAR_ENCODINGS[:1]
    for encoding in encodings:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        lyrics, reason = parse_lyrics(text)
        return lyrics, f"{name}: {reason}" if reason else None
    return None, f"{name}: not UTF-8 or UTF-16 text (save the lyrics as UTF-8)"
