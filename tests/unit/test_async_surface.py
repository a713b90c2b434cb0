"""AsyncMemory is Memory, awaited: the same public methods with the same parameters (issue #12, item 5)."""

from __future__ import annotations

import inspect

from engram import AsyncMemory, Memory
from engram.async_memory import SYNC_ONLY, public_methods


def test_async_memory_has_every_public_method_of_memory() -> None:
    missing = [name for name in public_methods(Memory) if not inspect.iscoroutinefunction(getattr(AsyncMemory, name,
                                                                                                  None))]
    assert missing == []
    for name in ("add", "search", "update", "backup", "restore", "export", "import_records", "answer"):
        assert name in public_methods(Memory)


def test_async_methods_take_the_same_parameters() -> None:
    for name in public_methods(Memory):
        assert inspect.signature(getattr(AsyncMemory, name)) == inspect.signature(getattr(Memory, name)), name


def test_constructors_take_the_same_parameters() -> None:
    sync_parameters = inspect.signature(Memory.__init__).parameters
    assert list(inspect.signature(AsyncMemory.__init__).parameters) == list(sync_parameters)
    sync_public = {name for name in dir(Memory) if not name.startswith("_")}
    assert sync_public - set(public_methods(Memory)) <= SYNC_ONLY | {"from_config"}
