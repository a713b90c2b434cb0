"""Heavy dependencies imported on first use, so that light commands (``engram get``, ``engram list``)
do not pay for them."""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name``, imported when one of its attributes is first read (then cached
    on this object, so later reads cost a plain attribute lookup)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(importlib.import_module(self._name), attribute)
        setattr(self, attribute, value)
        return value
