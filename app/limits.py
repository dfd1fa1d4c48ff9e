"""The service's size limits on queries, checked in one place (``Settings`` holds their values). Each check raises
``PayloadTooLargeError`` (413) naming the limit and the variable that sets it."""

from __future__ import annotations

from app.errors import PayloadTooLargeError
from app.settings import Settings


def check_k(settings: Settings, k: int, *, name: str = "k") -> None:
    """A number of results asked for (``name`` as the request spells it) within MOODSPACE_MAX_K."""
    if k > settings.max_k:
        raise PayloadTooLargeError(f"{name}={k} is above the limit of {settings.max_k} (MOODSPACE_MAX_K)")


def check_curve(settings: Settings, times: list[float]) -> None:
    """A query curve's point count and time span, given its times in seconds."""
    if len(times) > settings.max_curve_points:
        raise PayloadTooLargeError(f"the curve has {len(times)} points; the limit is "
                                   f"{settings.max_curve_points} (MOODSPACE_MAX_CURVE_POINTS)")
    if times and times[-1] - times[0] > settings.max_curve_seconds:
        raise PayloadTooLargeError(f"the curve spans more than {settings.max_curve_seconds:.0f} s "
                                   "(MOODSPACE_MAX_CURVE_SECONDS)")


def check_span(settings: Settings, seconds: float) -> None:
    """A span's asked length (the curve limit: a span is a stretch of curve)."""
    if seconds > settings.max_curve_seconds:
        raise PayloadTooLargeError(f"a span of {seconds:.6g} s is longer than {settings.max_curve_seconds:.0f} s "
                                   "(MOODSPACE_MAX_CURVE_SECONDS)")


def check_text(settings: Settings, text: str) -> None:
    if len(text) > settings.max_text_chars:
        raise PayloadTooLargeError(f"the text has {len(text)} characters; the limit is "
                                   f"{settings.max_text_chars} (MOODSPACE_MAX_TEXT_CHARS)")
