"""``engram.Client``: the REST API with the same methods and return shapes as ``Memory``.

Switching from embedded to service is one line::

    m = Memory(path="team.db")
    m = Client("http://127.0.0.1:8765", api_key="egk_...")

Errors come back as the same typed exceptions (``engram.errors``), rebuilt from the server's
problem-details JSON, plus the service's own (``AuthenticationError``, ``RateLimitError``...)."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from engram import errors
from engram.compat.mem0 import check_rerank, result_limit, update_text
from engram.errors import SERVICE_ERRORS, EngramError, NotFoundError, RateLimitError, StorageError, ValidationError

DEFAULT_URL = "http://127.0.0.1:8765"
_ERROR_CLASSES: dict[str, type[EngramError]] = {
    **{value.__name__: value for value in vars(errors).values()
       if isinstance(value, type) and issubclass(value, EngramError)},
    **{value.__name__: value for value in SERVICE_ERRORS},
}


def error_from_response(response: httpx.Response) -> EngramError:
    """The typed Engram error a problem-details response describes (``EngramError`` when unknown)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": response.text[:500] or response.reason_phrase}
    kind = _ERROR_CLASSES.get(str(body.get("error")), EngramError)
    message = str(body.get("detail") or body.get("title") or f"HTTP {response.status_code}")
    field = body.get("field") if isinstance(body.get("field"), str) else None
    hint = body.get("hint") if isinstance(body.get("hint"), str) else None
    error: EngramError
    if issubclass(kind, RateLimitError):
        try:
            retry_after = float(response.headers.get("retry-after", "1"))
        except ValueError:
            retry_after = 1.0
        error = kind(message, retry_after=retry_after, field=field, hint=hint)
    else:
        error = kind(message, field=field, hint=hint)
    error.http_status = response.status_code
    return error


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    return value


def _present(**values: Any) -> dict[str, Any]:
    return {key: _json_ready(value) for key, value in values.items() if value is not None}


def _memory_path(memory_id: Any) -> str:
    if not isinstance(memory_id, str) or not memory_id:
        raise ValidationError("must be a non-empty string", field="memory_id")
    return "/v1/memories/" + quote(memory_id, safe="")


class Client:
    """A client of ``engram serve``. ``api_key`` defaults to ``$ENGRAM_API_KEY``."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        key = api_key if api_key is not None else os.environ.get("ENGRAM_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, params=params, json=body)
        except httpx.TransportError as exc:
            raise StorageError(f"cannot reach the Engram server at {self.base_url}: {exc}",
                               hint="is `engram serve` running there?") from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response.json()

    @staticmethod
    def _filters(filters: dict[str, Any] | None) -> str | None:
        if filters is None:
            return None
        return json.dumps(_json_ready(filters), ensure_ascii=False)

    # -- write ----------------------------------------------------------------------------------

    def add(self, messages: Any, *, user_id: str | None = None, agent_id: str | None = None,
            run_id: str | None = None, metadata: dict[str, Any] | None = None, timestamp: Any = None,
            infer: bool = True, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Remember messages (see ``Memory.add``)."""
        body = _present(messages=messages, user_id=user_id, agent_id=agent_id, run_id=run_id, metadata=metadata,
                        timestamp=timestamp, filters=filters)
        result: dict[str, Any] = self._request("POST", "/v1/memories", body={**body, "infer": infer})
        return result

    def update(self, memory_id: str, text: str | None = None, metadata: dict[str, Any] | None = None, *,
               data: str | None = None) -> dict[str, Any]:
        """Replace a memory's text and/or set metadata keys (see ``Memory.update``)."""
        text = update_text(text, data, metadata)
        result: dict[str, Any] = self._request("PUT", _memory_path(memory_id),
                                               body=_present(text=text, metadata=metadata))
        return result

    def delete(self, memory_id: str) -> dict[str, Any]:
        """Delete one memory (see ``Memory.delete``)."""
        result: dict[str, Any] = self._request("DELETE", _memory_path(memory_id))
        return result

    def delete_all(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                   filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Delete every memory and episode of one scope (see ``Memory.delete_all``)."""
        params = _present(user_id=user_id, agent_id=agent_id, run_id=run_id, filters=self._filters(filters))
        result: dict[str, Any] = self._request("DELETE", "/v1/memories", params=params)
        return result

    def reset(self) -> None:
        """Remove everything, for every scope (needs an admin key)."""
        self._request("POST", "/v1/reset")

    # -- read -----------------------------------------------------------------------------------

    def search(self, query: str, *, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, filters: dict[str, Any] | None = None, limit: int | None = None,
               reference_date: Any = None, threshold: float | None = None, explain: bool = False,
               top_k: int | None = None, rerank: bool = False,
               include_archived: bool = False) -> dict[str, Any]:
        """Memories relevant to ``query`` (see ``Memory.search``)."""
        limit = result_limit(limit, top_k)
        check_rerank(rerank)
        body = _present(query=query, user_id=user_id, agent_id=agent_id, run_id=run_id, filters=filters,
                        reference_date=reference_date, threshold=threshold)
        result: dict[str, Any] = self._request("POST", "/v1/memories/search", body={
            **body, "limit": limit, "explain": explain, "include_archived": include_archived})
        return result

    def get(self, memory_id: str) -> dict[str, Any] | None:
        """One memory by id, or ``None`` when there is none (see ``Memory.get``)."""
        try:
            result: dict[str, Any] = self._request("GET", _memory_path(memory_id))
        except NotFoundError:
            return None
        return result

    def get_all(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                filters: dict[str, Any] | None = None, limit: int | None = None, offset: int = 0,
                top_k: int | None = None, include_archived: bool = False) -> dict[str, Any]:
        """One page of a scope's memories, newest first (see ``Memory.get_all``)."""
        limit = result_limit(limit, top_k, default=100)
        params = _present(user_id=user_id, agent_id=agent_id, run_id=run_id, filters=self._filters(filters),
                          limit=limit, offset=offset, include_archived=include_archived or None)
        result: dict[str, Any] = self._request("GET", "/v1/memories", params=params)
        return result

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """Every change to a memory, oldest first (see ``Memory.history``)."""
        result: list[dict[str, Any]] = self._request("GET", _memory_path(memory_id) + "/history")
        return result

    def answer(self, question: str, *, user_id: str | None = None, agent_id: str | None = None,
               run_id: str | None = None, filters: dict[str, Any] | None = None, limit: int = 10,
               reference_date: Any = None) -> dict[str, Any]:
        """An answer from the scope's memories with citations (see ``Memory.answer``; the server needs an LLM)."""
        body = _present(question=question, user_id=user_id, agent_id=agent_id, run_id=run_id, filters=filters,
                        reference_date=reference_date)
        result: dict[str, Any] = self._request("POST", "/v1/answer", body={**body, "limit": limit})
        return result

    # -- learning from use -----------------------------------------------------------------------

    def feedback(self, memory_id: str, useful: bool = True, note: str | None = None, *,
                 given_by: str | None = None) -> dict[str, Any]:
        """Mark a memory useful or not (see ``Memory.feedback``)."""
        body = _present(note=note, given_by=given_by)
        result: dict[str, Any] = self._request("POST", _memory_path(memory_id) + "/feedback",
                                               body={**body, "useful": useful})
        return result

    def strength(self, memory_id: str) -> dict[str, Any]:
        """How strongly a memory is remembered now (see ``Memory.strength``)."""
        result: dict[str, Any] = self._request("GET", _memory_path(memory_id) + "/strength")
        return result

    def forget(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
               threshold: float = 0.05, dry_run: bool = False, reference_date: Any = None) -> dict[str, Any]:
        """Archive weak memories, with a report of each (see ``Memory.forget``)."""
        body = _present(user_id=user_id, agent_id=agent_id, run_id=run_id, reference_date=reference_date)
        result: dict[str, Any] = self._request("POST", "/v1/forget",
                                               body={**body, "threshold": threshold, "dry_run": dry_run})
        return result

    def profile(self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None,
                max_tokens: int = 300, refresh: bool = False) -> dict[str, Any]:
        """The scope's cited profile (see ``Memory.profile``)."""
        params = _present(user_id=user_id, agent_id=agent_id, run_id=run_id, max_tokens=max_tokens,
                          refresh=refresh or None)
        result: dict[str, Any] = self._request("GET", "/v1/profile", params=params)
        return result

    def add_experience(self, *, task: str, outcome: str, steps: list[str] | None = None, lesson: str | None = None,
                       metadata: dict[str, Any] | None = None, user_id: str | None = None,
                       agent_id: str | None = None, run_id: str | None = None) -> dict[str, Any]:
        """Remember one attempt at a task (see ``Memory.add_experience``)."""
        body = _present(task=task, outcome=outcome, lesson=lesson, metadata=metadata, user_id=user_id,
                        agent_id=agent_id, run_id=run_id)
        result: dict[str, Any] = self._request("POST", "/v1/experiences", body={**body, "steps": steps or []})
        return result

    def search_experiences(self, task: str, *, user_id: str | None = None, agent_id: str | None = None,
                           run_id: str | None = None, limit: int = 5, outcome: str | None = None,
                           distil: bool = True) -> dict[str, Any]:
        """The past cases most similar to ``task`` (see ``Memory.search_experiences``)."""
        body = _present(task=task, user_id=user_id, agent_id=agent_id, run_id=run_id, outcome=outcome)
        result: dict[str, Any] = self._request("POST", "/v1/experiences/search",
                                               body={**body, "limit": limit, "distil": distil})
        return result

    def export_training(self, format: str = "sft", *, user_id: str | None = None, agent_id: str | None = None,
                        run_id: str | None = None, min_trust: str = "assistant") -> dict[str, Any]:
        """The scope's memory as fine-tuning rows (see ``Memory.export_training``; no replay over HTTP)."""
        body = _present(user_id=user_id, agent_id=agent_id, run_id=run_id)
        result: dict[str, Any] = self._request("POST", "/v1/export/training",
                                               body={**body, "format": format, "min_trust": min_trust})
        return result

    def health(self) -> dict[str, Any]:
        """The server's ``/healthz``: status, version, backend, whether auth and an LLM are on."""
        result: dict[str, Any] = self._request("GET", "/healthz")
        return result

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
