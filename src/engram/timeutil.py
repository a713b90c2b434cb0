"""Time helpers: every timestamp inside Engram is a timezone-aware UTC datetime, and is
stored as a fixed-width ISO-8601 string so that text order equals time order."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

from engram.errors import ValidationError

_MIN_EPOCH = -62_135_596_800  # 0001-01-01
_MAX_EPOCH = 253_402_300_799  # 9999-12-31 23:59:59


def utcnow() -> datetime:
    """The current time, UTC, timezone-aware."""
    return datetime.now(UTC)


def to_utc(value: object, *, field: str) -> datetime:
    """Parse a datetime, ISO-8601 string, date or epoch seconds into an aware UTC datetime.

    Naive datetimes and strings without an offset are taken as UTC. Anything else raises a
    ``ValidationError`` naming ``field``."""
    if isinstance(value, datetime):
        try:
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:
            raise ValidationError(f"{value.isoformat()} falls outside years 1-9999 in UTC", field=field) from None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool):
        raise ValidationError("expected a datetime, ISO-8601 string or epoch seconds, got a boolean", field=field)
    if isinstance(value, int | float):
        if not math.isfinite(value) or not _MIN_EPOCH <= value <= _MAX_EPOCH:
            raise ValidationError(f"epoch seconds out of range: {value!r}", field=field)
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValidationError("empty timestamp string", field=field)
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise ValidationError(
                f"not an ISO-8601 timestamp: {value[:60]!r}", field=field, hint="use e.g. 2024-05-08T13:56:00Z"
            ) from None
        return to_utc(parsed, field=field)
    raise ValidationError(
        f"expected a datetime, ISO-8601 string or epoch seconds, got {type(value).__name__}", field=field
    )


def to_storage(value: datetime) -> str:
    """The sortable storage form of an aware datetime (fixed width, four-digit year)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_storage(text: str) -> datetime:
    """Inverse of :func:`to_storage`."""
    return datetime.fromisoformat(text)
