"""What ``Memory.feedback``, ``Memory.strength`` and ``Memory.forget`` do: validate, then change the
store through ``engram.learning.feedback`` (the facade's methods stay one line each)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from engram.arguments import flag_argument, text_argument, validate_scope
from engram.errors import ValidationError
from engram.learning.feedback import feedback_change, plan_forgetting
from engram.learning.profile import build_profile
from engram.learning.strength import strength_of, strength_report
from engram.timeutil import to_utc, utcnow

if TYPE_CHECKING:
    from engram.memory import Memory

#: Longest feedback note, in characters.
MAX_NOTE_CHARS = 2000


def give_feedback(memory: Memory, memory_id: str, useful: object, note: object, given_by: object) -> dict[str, Any]:
    """Record one feedback signal on a memory (see ``Memory.feedback``)."""
    useful = flag_argument(useful, "useful")
    checked_note = text_argument(note, "note", max_chars=MAX_NOTE_CHARS) if note is not None else None
    giver = text_argument(given_by, "given_by", max_chars=memory.config.limits.max_id_chars) \
        if given_by is not None else None
    current = memory._get_item(memory_id)
    with memory.store.locked(current.scope):
        current = memory._get_item(memory_id)
        now = utcnow()
        change = feedback_change(current, useful=useful, note=checked_note, given_by=giver, now=now)
        memory.store.apply(change)
    updated = change.memories[0]
    return {"id": memory_id, "useful": useful, "note": checked_note, "given_by": giver,
            "restored": change.history[0].metadata["restored"], **_strength_fields(updated, now)}


def strength(memory: Memory, memory_id: str, reference_date: Any = None) -> dict[str, Any]:
    """A memory's strength now (or at ``reference_date``) with what it is computed from."""
    now = to_utc(reference_date, field="reference_date") if reference_date is not None else utcnow()
    return strength_report(memory._get_item(memory_id), now)


def forget(memory: Memory, *, user_id: Any, agent_id: Any, run_id: Any, threshold: Any, dry_run: Any,
           reference_date: Any) -> dict[str, Any]:
    """Archive the memories of a scope (all scopes when none is given) weaker than ``threshold``."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold < math.inf:
        raise ValidationError("must be a finite number, at least 0 (a strength)", field="threshold")
    dry_run = flag_argument(dry_run, "dry_run")
    scope = validate_scope(user_id, agent_id, run_id, memory.config.limits, required=False)
    now = to_utc(reference_date, field="reference_date") if reference_date is not None else utcnow()
    with memory.store.locked(scope):
        plan = plan_forgetting(memory.store, scope, threshold=float(threshold), now=now)
        if not dry_run:
            memory.store.apply(plan.change)
    return {"dry_run": dry_run, "threshold": float(threshold), "reference_date": now.isoformat(),
            "examined": plan.examined, "archived": len(plan.archived), "memories": plan.archived}


def _strength_fields(item: Any, now: Any) -> dict[str, Any]:
    return {"strength": round(strength_of(item, now), 6), "uses": item.access_count, "status": item.status}


def profile(memory: Memory, *, user_id: Any, agent_id: Any, run_id: Any, max_tokens: Any,
            refresh: Any) -> dict[str, Any]:
    """The scope's profile (see ``Memory.profile``)."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 20 <= max_tokens <= 100_000:
        raise ValidationError("must be an integer from 20 to 100000", field="max_tokens")
    refresh = flag_argument(refresh, "refresh")
    scope = memory._scope(user_id, agent_id, run_id, None)
    return build_profile(memory.store, scope, memory._profile_cache, max_tokens=max_tokens, llm=memory.llm,
                         refresh=refresh)
