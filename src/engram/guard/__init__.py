"""Write-time defence against memory poisoning: trust levels, pattern and anomaly scoring.

Typical use in a write path::

    guard = Guard()
    verdict = guard.screen(text, role="tool", metadata={"source": "web"}, context=recent)
    status = "quarantined" if verdict.quarantine else "active"
"""

from engram.guard.anomaly import AnomalySettings, GuardContext
from engram.guard.screen import DEFAULT_THRESHOLD, Guard, Verdict
from engram.guard.trust import TRUST_WEIGHTS, Provenance, TrustLevel, derive_provenance, trust_of_writer

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
