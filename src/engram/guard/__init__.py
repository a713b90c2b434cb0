"""Write-time defence against memory poisoning: trust levels, pattern and anomaly scoring.

Typical use in a write path::

    guard = Guard()
    verdict = guard.screen(text, role="tool", metadata={"source": "web"}, context=recent)
    status = "quarantined" if verdict.quarantine else "active"
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from engram.trust import TRUST_WEIGHTS, Provenance, TrustLevel, derive_provenance, trust_of_writer

if TYPE_CHECKING:
    from engram.guard.anomaly import AnomalySettings, GuardContext
    from engram.guard.screen import DEFAULT_THRESHOLD, Guard, Verdict

#: Names loaded on first use: the rules compile their patterns when imported, and the trust vocabulary
#: (imported by the data model) must not pay for that.
_LAZY = {"AnomalySettings": "anomaly", "GuardContext": "anomaly", "DEFAULT_THRESHOLD": "screen", "Guard": "screen",
         "Verdict": "screen"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"engram.guard.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'engram.guard' has no attribute {name!r}")


__all__ = [
    "DEFAULT_THRESHOLD",
    "TRUST_WEIGHTS",
    "AnomalySettings",
    "Guard",
    "GuardContext",
    "Provenance",
    "TrustLevel",
    "Verdict",
    "derive_provenance",
    "trust_of_writer",
]
