"""Input and option checks shared by the embedders."""

from __future__ import annotations

from collections.abc import Sequence

from engram.errors import ConfigurationError, ValidationError


def as_text_list(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of strings; a bare string or a non-string item is a ValidationError."""
    if isinstance(texts, str | bytes):
        raise ValidationError("expected a sequence of strings, got a single string", field="texts")
    items = list(texts)
    for position, item in enumerate(items):
        if not isinstance(item, str):
            raise ValidationError(f"item {position} is {type(item).__name__}, not str", field="texts")
    return items


def require_number(value: object, field: str, *, minimum: float, integer: bool = True) -> None:
    """Raise a ConfigurationError naming ``field`` unless ``value`` is a number (an int if ``integer``)
    of at least ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
        or value < minimum
    ):
        kind = "an integer" if integer else "a number"
        raise ConfigurationError(f"must be {kind} >= {minimum}, got {value!r}", field=field)
