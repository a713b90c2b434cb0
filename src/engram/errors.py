"""Typed errors raised by Engram. Every error carries a stable ``code`` and, where it
applies, the ``field`` that was wrong, so callers (and the REST layer) can react precisely."""

from __future__ import annotations


class EngramError(Exception):
    """Base class of every error Engram raises on purpose."""

    code = "engram_error"
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        self.message = _printable(message)
        self.field = _printable(field) if field is not None else None
        self.hint = _printable(hint) if hint is not None else None
        text = f"{self.field}: {self.message}" if self.field else self.message
        if self.hint:
            text = f"{text} ({self.hint})"
        super().__init__(text)

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-ready description: ``{"error", "message", "field", "hint"}``."""
        return {"error": type(self).__name__, "message": self.message, "field": self.field, "hint": self.hint}


def _printable(text: str) -> str:
    """``text`` safe to encode anywhere: characters that are not valid Unicode text (lone surrogates,
    which bad input can carry into a message or a field path) become ``\\udXXX`` escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class ValidationError(EngramError, ValueError):
    """Input was malformed: wrong type, empty, too large, not UTF-8, bad filter..."""

    code = "validation_error"
    http_status = 422


class ScopeMissingError(ValidationError):
    """An operation that must be scoped was called without user_id, agent_id or run_id."""

    code = "scope_missing"
    http_status = 400


class FilterError(ValidationError):
    """A ``filters`` expression could not be understood."""

    code = "invalid_filter"


class NotFoundError(EngramError, KeyError, ValueError):
    """The memory (or other object) named by id does not exist in the store. Also a ``ValueError``:
    mem0's ``delete`` / ``update`` raise that for an unknown id."""

    code = "not_found"
    http_status = 404

    def __str__(self) -> str:
        return Exception.__str__(self)


class StorageError(EngramError):
    """The storage backend failed (disk full, corrupt file, unreachable database...)."""

    code = "storage_error"
    http_status = 503


class ConfigurationError(EngramError):
    """Engram was configured in a way that cannot work (unknown embedder, bad URL...)."""

    code = "configuration_error"
    http_status = 500


class ReembedPendingError(ConfigurationError):
    """The store is being re-embedded (``engram reembed``): its vectors are unusable until that finishes."""

    code = "reembed_pending"
    http_status = 503


class EmbeddingError(EngramError):
    """The embedder failed to produce vectors."""

    code = "embedding_error"
    http_status = 502


class LLMError(EngramError):
    """The language model could not be reached or kept returning unusable replies."""

    code = "llm_error"
    http_status = 502


class PermissionDeniedError(EngramError):
    """The caller is not allowed to touch the requested scope or operation."""

    code = "permission_denied"
    http_status = 403


class AuthenticationError(EngramError):
    """No API key was sent, or the key is unknown or revoked."""

    code = "unauthenticated"
    http_status = 401


class RateLimitError(EngramError):
    """Too many requests for this key; retry after ``retry_after`` seconds."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float, field: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, field=field, hint=hint)
        self.retry_after = retry_after


class PayloadTooLargeError(ValidationError):
    """The request body is larger than the server accepts."""

    code = "payload_too_large"
    http_status = 413


class FeatureUnavailableError(ConfigurationError):
    """The server cannot do this with its configuration (e.g. answering without an LLM)."""

    code = "not_available"
    http_status = 503


SERVICE_ERRORS: tuple[type[EngramError], ...] = (AuthenticationError, RateLimitError, PayloadTooLargeError,
                                                 FeatureUnavailableError)
