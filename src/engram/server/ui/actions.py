"""What the inspector's forms change: edit, delete, feedback, release and drop. Each action checks
the viewer's scope first and returns where to go next (or a confirmation page to show)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from engram.errors import ValidationError
from engram.memory import Memory
from engram.server.auth import Principal, owned_memory, scope_of
from engram.server.ui.pages import supports

PREFIX = "/ui"
Form = dict[str, list[str]]

#: Messages a redirect may ask the next page to show (by code: no text travels in URLs).
NOTICES = {
    "edited": "The memory was updated; its old text is kept in its history.",
    "deleted": "The memory was deleted.",
    "feedback": "Thank you: the feedback was recorded.",
    "released": "The selected records were released from quarantine.",
    "dropped": "The selected records were deleted.",
}


@dataclass
class Confirm:
    """A confirmation page to show instead of acting."""

    template: str
    context: dict[str, Any]


def link(path: str, **params: Any) -> str:
    """An inspector URL with the given query parameters (None and empty values left out)."""
    path = quote(path, safe="/")
    query = urlencode({name: value for name, value in params.items() if value not in (None, "")})
    return f"{PREFIX}{path}" + (f"?{query}" if query else "")


def first(form: Form, name: str) -> str:
    values = form.get(name) or [""]
    return values[0]


def edit(memory: Memory, principal: Principal, memory_id: str, form: Form) -> str:
    owned_memory(memory, principal, memory_id)
    memory.update(memory_id, first(form, "text"))
    return link(f"/memory/{memory_id}", done="edited")


def delete(memory: Memory, principal: Principal, memory_id: str, form: Form) -> str:
    item = owned_memory(memory, principal, memory_id)
    if first(form, "confirm") != "yes":
        raise ValidationError("tick the box to confirm the deletion", field="confirm")
    memory.delete(memory_id)
    return link("/scope", **dict(scope_of(item).items()), done="deleted")


def feedback(memory: Memory, principal: Principal, memory_id: str, form: Form) -> str:
    owned_memory(memory, principal, memory_id)
    if not supports(memory, "feedback"):
        raise ValidationError("this version of Engram records no feedback", field="useful")
    useful = first(form, "useful")
    if useful not in ("yes", "no"):
        raise ValidationError("must be yes or no", field="useful")
    memory.feedback(memory_id, useful=useful == "yes", note=first(form, "note") or None)
    return link(f"/memory/{memory_id}", done="feedback")


def quarantine(memory: Memory, principal: Principal, form: Form) -> str | Confirm:
    """Release or drop the selected quarantined records; dropping asks for confirmation first."""
    ids = [memory_id for memory_id in form.get("ids", []) if memory_id]
    action = first(form, "action")
    if not ids:
        raise ValidationError("select at least one record", field="ids")
    if action not in ("release", "drop", "drop-confirmed"):
        raise ValidationError("must be release or drop", field="action")
    items = [owned_memory(memory, principal, memory_id) for memory_id in ids]
    for item in items:
        if item["status"] != "quarantined":
            raise ValidationError(f"{item['id']} is not quarantined", field="ids")
    back = {name: first(form, name) for name in ("user_id", "agent_id", "run_id")}
    if action == "drop":
        return Confirm("confirm_drop.html", {"items": items, "back": back})
    for item in items:
        if action == "release":
            memory.release(item["id"])
        else:
            memory.delete(item["id"])
    return link("/quarantine", **back, done="released" if action == "release" else "dropped")
