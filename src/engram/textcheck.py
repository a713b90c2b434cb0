"""The one check every text input passes: valid Unicode (no lone surrogates) and no NUL, which
neither SQLite's JSON paths nor PostgreSQL text can hold."""

from __future__ import annotations

from engram.errors import ValidationError


def check_text(text: str, field: str) -> None:
    """Reject strings that are not valid Unicode text (lone surrogates, NUL)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"not valid UTF-8 text ({exc.reason} at position {exc.start})", field=field) from None
    if "\x00" in text:
        raise ValidationError("contains a NUL character", field=field)
