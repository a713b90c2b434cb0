"""The strength of a memory: how well it is remembered, after MemoryBank's forgetting curve.

A memory's *uses* are its ``access_count``: every recall that was recorded (search with a recipe that
reinforces, a memory marked useful) adds to it; a memory marked not useful loses ``NOT_USEFUL_PENALTY``
uses (never below 0). With ``u`` uses and ``t`` days since it was last used (or created)::

    stability S = BASE_STABILITY_DAYS * (1 + u)           # each use makes it fade more slowly
    retention R = exp(-t / S)                             # MemoryBank: R = e^(-t/S)
    strength    = (1 + ln(1 + u)) * R                     # 1 for a fresh, unused memory

``engram maintain --forget`` archives memories whose strength is below ``FORGET_THRESHOLD`` (an unused
memory after about 180 days unused, one marked useful once (2 uses) after about 670)."""

from __future__ import annotations

import math
from datetime import datetime

from engram.models import MemoryItem

#: Days an unused memory takes to fall to 1/e of its strength.
BASE_STABILITY_DAYS = 60.0
#: Uses a "useful" mark adds (a use, counted like a recall, plus a bonus).
USEFUL_USES = 2
#: Uses a "not useful" mark takes away.
NOT_USEFUL_PENALTY = 2
#: ``engram maintain --forget`` archives memories weaker than this.
FORGET_THRESHOLD = 0.05


def last_used_at(memory: MemoryItem) -> datetime:
    """When the memory was last used: its last recorded access, else its creation."""
    if memory.last_accessed_at is not None and memory.last_accessed_at > memory.created_at:
        return memory.last_accessed_at
    return memory.created_at


def stability_days(uses: int) -> float:
    """``S = BASE_STABILITY_DAYS * (1 + uses)``."""
    return BASE_STABILITY_DAYS * (1 + max(0, uses))


def strength_of(memory: MemoryItem, now: datetime) -> float:
    """``(1 + ln(1 + u)) * exp(-t / S)`` at ``now`` (see the module docstring)."""
    uses = max(0, memory.access_count)
    idle_days = max(0.0, (now - last_used_at(memory)).total_seconds() / 86_400)
    return (1.0 + math.log1p(uses)) * math.exp(-idle_days / stability_days(uses))


def strength_report(memory: MemoryItem, now: datetime) -> dict[str, object]:
    """A memory's strength with the quantities it is computed from."""
    return {"id": memory.id, "strength": round(strength_of(memory, now), 6), "uses": memory.access_count,
            "stability_days": stability_days(memory.access_count),
            "last_used_at": last_used_at(memory).isoformat(), "status": memory.status}
