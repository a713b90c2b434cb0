"""``AsyncMemory``: ``Memory`` for asyncio code, generated from ``Memory``'s public methods (one
implementation: each awaitable twin runs the sync method in a worker thread)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from engram.config import EngramConfig
from engram.memory import Memory

if TYPE_CHECKING:
    from engram.embed.base import Embedder
    from engram.llm.base import LLM
    from engram.store.base import Store

T = TypeVar("T")

#: Public ``Memory`` attributes that are not operations, so ``AsyncMemory`` has no awaitable twin of them.
SYNC_ONLY = frozenset({"from_config", "store", "embedder", "config", "recipe", "llm", "guard"})


def public_methods(cls: type) -> list[str]:
    """The names of ``cls``'s public operations (what ``AsyncMemory`` mirrors)."""
    return sorted(name for name, value in vars(cls).items()
                  if not name.startswith("_") and name not in SYNC_ONLY and callable(value))


def _in_thread(method: Callable[..., T]) -> Callable[..., Any]:
    """An async twin of a ``Memory`` method that runs it in a worker thread, with the same signature."""
    name = method.__name__

    @functools.wraps(method)
    async def twin(self: AsyncMemory, *args: Any, **kwargs: Any) -> Any:
        import asyncio  # only asyncio code pays for it (the CLI's start-up does not)

        return await asyncio.to_thread(getattr(self.sync, name), *args, **kwargs)

    return twin


class AsyncMemory:
    """``Memory`` for asyncio code: every public method of ``Memory``, awaited, with the same parameters;
    the work runs in worker threads. Built from ``Memory``'s method list, so the two cannot drift."""

    def __init__(self, path: str | None = None, url: str | None = None, *, config: EngramConfig | None = None,
                 store: Store | None = None, embedder: Embedder | None = None, llm: LLM | None = None) -> None:
        self.sync = Memory(path, url, config=config, store=store, embedder=embedder, llm=llm)

    @classmethod
    def from_config(cls, config: dict[str, Any] | EngramConfig) -> AsyncMemory:
        """Build from a config dict, as ``Memory.from_config``."""
        instance = cls.__new__(cls)
        instance.sync = Memory.from_config(config)
        return instance

    if TYPE_CHECKING:
        def __getattr__(self, name: str) -> Any: ...

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


for _name in public_methods(Memory):
    setattr(AsyncMemory, _name, _in_thread(getattr(Memory, _name)))
