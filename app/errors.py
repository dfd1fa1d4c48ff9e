"""Service-side domain errors (input problems the user can fix). ``app.routers.errors`` maps each to a status."""

from __future__ import annotations

from models.errors import AudioError, MoodspaceError


class NotFoundError(MoodspaceError):
    """An id names nothing."""


class PayloadTooLargeError(MoodspaceError):
    """An upload or a query is larger than the configured limit."""


class AuthError(MoodspaceError):
    """A missing or wrong admin token."""


class AdminDisabledError(MoodspaceError):
    """No admin token is configured, so admin endpoints are off."""


class NotReadyError(MoodspaceError):
    """The model or the index is not loaded yet."""


class SpansUnavailableError(MoodspaceError):
    """Span search was asked of an index without spans (the Milvus backend, or a snapshot built before spans)."""


class SongInfoError(MoodspaceError):
    """A track's title, artist, album, genre, year or lyrics cannot be used as given."""


class SilentAudioError(AudioError):
    """The upload decodes but holds no audible sound: no music was heard."""
