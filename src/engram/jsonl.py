"""Reading JSON lines files (imports, replay samples): one JSON object per line, blank lines skipped, and
a ``ValidationError`` naming the file and line of the first bad one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engram.errors import ValidationError


def jsonl_objects(path: str | Path, *, field: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of ``path``; errors name ``field``, the file and
    the line (``field`` is the argument the file came from, e.g. ``replay``)."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise ValidationError(f"cannot read {path}: {error.strerror}", field=field) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValidationError(f"{where} is not JSON: {error.msg}", field=field) from None
            if not isinstance(record, dict):
                raise ValidationError(f"{where} must be a JSON object", field=field)
            yield number, record
