"""Write path, step 1: validate what the caller passed to ``add`` and turn it into episodes.

Nothing is stored here; every problem raises a ValidationError naming the field, before any write."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engram.arguments import text_argument, validate_metadata
from engram.config import Limits
from engram.errors import ValidationError
from engram.models import Episode, Scope, content_hash
from engram.textcheck import check_text
from engram.timeutil import to_utc, utcnow
from engram.trust import WRITER_KINDS

MESSAGE_KEYS = frozenset({"role", "content", "name", "timestamp", "occurred_at", "metadata"})
#: The message roles Engram knows: each says how far its words are trusted (``engram.trust``);
#: ``system`` and ``developer`` messages are kept as episodes but are not memories.
ROLES = frozenset({*WRITER_KINDS, "developer"})


def to_episodes(messages: object, *, scope: Scope, metadata: dict[str, Any], timestamp: object,
                limits: Limits) -> list[Episode]:
    """Turn ``messages`` (a string, a message dict or a list of them) into validated episodes."""
    items = _as_message_list(messages, limits)
    default_time = to_utc(timestamp, field="timestamp") if timestamp is not None else utcnow()
    recorded_at = utcnow()
    return [_episode(item, f"messages[{index}]" if isinstance(messages, list) else "messages",
                     scope=scope, metadata=metadata, default_time=default_time, recorded_at=recorded_at, limits=limits)
            for index, item in enumerate(items)]


def _as_message_list(messages: object, limits: Limits) -> list[object]:
    if messages is None:
        raise ValidationError("is required (a string, a message dict or a list of them)", field="messages")
    if isinstance(messages, str | bytes | Mapping):
        return [messages]
    if isinstance(messages, list | tuple):
        if not messages:
            raise ValidationError("is an empty list", field="messages")
        if len(messages) > limits.max_messages_per_add:
            raise ValidationError(f"more than {limits.max_messages_per_add} messages in one add", field="messages",
                                  hint="split the batch")
        return list(messages)
    raise ValidationError(f"must be a string, a message dict or a list, got {type(messages).__name__}",
                          field="messages")


def _episode(item: object, field: str, *, scope: Scope, metadata: dict[str, Any], default_time: datetime,
             recorded_at: datetime, limits: Limits) -> Episode:
    if isinstance(item, str | bytes):
        item = {"role": "user", "content": item}
    if not isinstance(item, Mapping):
        raise ValidationError(f"must be a string or a message dict, got {type(item).__name__}", field=field)
    unknown = set(item) - MESSAGE_KEYS
    if unknown:
        raise ValidationError(f"unknown keys {sorted(map(str, unknown))}", field=field,
                              hint=f"allowed keys: {', '.join(sorted(MESSAGE_KEYS))}")
    content = _content(item.get("content"), f"{field}.content", limits)
    role = item.get("role", "user")
    if not isinstance(role, str) or not role.strip() or len(role) > 64:
        raise ValidationError("must be a non-empty string of at most 64 characters", field=f"{field}.role")
    check_text(role, f"{field}.role")
    if role.strip().lower() not in ROLES:
        raise ValidationError(f"unknown role {role!r}", field=f"{field}.role",
                              hint=f"use one of: {', '.join(sorted(ROLES))}")
    name = item.get("name")
    if name is not None:
        if not isinstance(name, str) or len(name) > limits.max_id_chars:
            raise ValidationError(f"must be a string of at most {limits.max_id_chars} characters",
                                  field=f"{field}.name")
        check_text(name, f"{field}.name")
    raw_time = item.get("timestamp", item.get("occurred_at"))
    occurred_at = to_utc(raw_time, field=f"{field}.timestamp") if raw_time is not None else default_time
    own_metadata = validate_metadata(item.get("metadata"), limits, field=f"{field}.metadata")
    merged = validate_metadata({**metadata, **own_metadata}, limits, field=f"{field}.metadata")
    return Episode(
        user_id=scope.user_id, agent_id=scope.agent_id, run_id=scope.run_id, role=role.strip().lower(),
        name=name or None, content=content, occurred_at=occurred_at, recorded_at=recorded_at, metadata=merged,
        hash=content_hash(content),
    )


def _content(value: object, field: str, limits: Limits) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"not valid UTF-8 (byte {exc.start})", field=field) from None
    if isinstance(value, list):
        value = "\n".join(part["text"] for part in value if isinstance(part, Mapping)
                          and part.get("type") == "text" and isinstance(part.get("text"), str))
    return text_argument(value, field, max_chars=limits.max_content_chars,
                         too_long_hint="split long documents into several messages")
