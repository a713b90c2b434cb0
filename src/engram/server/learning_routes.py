"""REST routes of memory that learns from use (feedback, strength, forgetting, profile, experience,
training data), with the same scope rules as the memory routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from engram.memory import Memory
from engram.server.auth import Principal, owned_memory, resolve_scope
from engram.server.rest import Caller
from engram.server.schemas import (
    ExperienceRequest,
    ExperienceSearchRequest,
    FeedbackRequest,
    ForgetRequest,
    TrainingExportRequest,
)


def add_learning_routes(router: APIRouter, memory: Memory, problems: dict[int | str, dict[str, Any]]) -> None:
    """Mount the learning routes on ``router``."""

    def owned(principal: Principal, memory_id: str) -> None:
        owned_memory(memory, principal, memory_id)

    @router.post("/v1/memories/{memory_id}/feedback", responses=problems, tags=["learning"])
    def feedback(memory_id: str, body: FeedbackRequest, principal: Caller) -> Response:
        """Mark a memory useful (it grows stronger; an archived one is restored) or not (``Memory.feedback``)."""
        owned(principal, memory_id)
        return JSONResponse(memory.feedback(memory_id, useful=body.useful, note=body.note,
                                            given_by=body.given_by or principal.key_id))

    @router.get("/v1/memories/{memory_id}/strength", responses=problems, tags=["learning"])
    def strength(memory_id: str, principal: Caller) -> Response:
        """How strongly a memory is remembered now (``Memory.strength``)."""
        owned(principal, memory_id)
        return JSONResponse(memory.strength(memory_id))

    @router.get("/v1/profile", responses=problems, tags=["learning"])
    def profile(principal: Caller, user_id: str | None = None, agent_id: str | None = None,
                run_id: str | None = None, max_tokens: int = 300, refresh: bool = False) -> Response:
        """The scope's profile: a short, current, cited summary of its stable facts (``Memory.profile``)."""
        scope = resolve_scope(principal, user_id=user_id, agent_id=agent_id, run_id=run_id)
        return JSONResponse(memory.profile(**scope, max_tokens=max_tokens, refresh=refresh))

    @router.post("/v1/experiences", responses=problems, tags=["learning"])
    def add_experience(body: ExperienceRequest, principal: Caller) -> Response:
        """Remember one attempt at a task, its outcome, steps and lesson (``Memory.add_experience``)."""
        scope = resolve_scope(principal, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id)
        return JSONResponse(memory.add_experience(task=body.task, outcome=body.outcome, steps=body.steps,
                                                  lesson=body.lesson, metadata=body.metadata, **scope))

    @router.post("/v1/experiences/search", responses=problems, tags=["learning"])
    def search_experiences(body: ExperienceSearchRequest, principal: Caller) -> Response:
        """The past cases most similar to a task (``Memory.search_experiences``)."""
        scope = resolve_scope(principal, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id)
        return JSONResponse(memory.search_experiences(body.task, **scope, limit=body.limit, outcome=body.outcome,
                                                      distil=body.distil))

    @router.post("/v1/export/training", responses=problems, tags=["learning"])
    def export_training(body: TrainingExportRequest, principal: Caller) -> Response:
        """The scope's memory as fine-tuning rows and their manifest (``Memory.export_training``)."""
        scope = resolve_scope(principal, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id)
        return JSONResponse(memory.export_training(body.format, **scope, min_trust=body.min_trust))

    @router.post("/v1/forget", responses=problems, tags=["learning"])
    def forget(body: ForgetRequest, principal: Caller) -> Response:
        """Archive the scope's memories whose strength has faded; the report lists each (``Memory.forget``).
        An admin key naming no scope forgets across all scopes."""
        scope = resolve_scope(principal, user_id=body.user_id, agent_id=body.agent_id, run_id=body.run_id)
        return JSONResponse(memory.forget(**scope, threshold=body.threshold, dry_run=body.dry_run,
                                          reference_date=body.reference_date))
