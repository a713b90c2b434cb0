"""The write-time guard: one verdict per record, combining patterns, anomalies and trust.

``Guard.screen`` is pure (no storage access): the write path calls it with the record's text,
role and metadata plus whatever scope context it has, and stores a quarantined record with
``status="quarantined"`` instead of dropping it, so an admin can release it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engram.errors import ValidationError
from engram.guard.anomaly import AnomalySettings, GuardContext, score_anomalies
from engram.guard.patterns import combine, score_patterns
from engram.trust import TrustLevel, derive_provenance

DEFAULT_THRESHOLD = 0.5

#: How much more suspicious the same pattern is when the writer is less trusted.
TRUST_FACTORS: dict[TrustLevel, float] = {
    TrustLevel.USER: 1.0,
    TrustLevel.ASSISTANT: 1.1,
    TrustLevel.TOOL: 1.25,
    TrustLevel.DOCUMENT: 1.25,
    TrustLevel.UNKNOWN: 1.25,
}


@dataclass(frozen=True)
class Verdict:
    """The guard's judgement of one record.

    ``score`` is in [0, 1]; ``reasons`` name the signals that fired, strongest first, as
    ``"pattern:<name>"`` or ``"anomaly:<name>"``; ``quarantine`` is ``score >= threshold``;
    ``trust`` and ``writer`` are the provenance to store with the record."""

    score: float
    reasons: list[str] = field(default_factory=list)
    quarantine: bool = False
    trust: str = TrustLevel.USER.value
    writer: str = TrustLevel.USER.value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for metadata, logs and the quarantine listing)."""
        return {"score": self.score, "reasons": list(self.reasons), "quarantine": self.quarantine,
                "trust": self.trust, "writer": self.writer}


@dataclass(frozen=True)
class Screening:
    """What ``Guard.prepare`` learns of a record without its context: its text, provenance (``trust``,
    ``writer``) and pattern signals (``"pattern:<name>"`` -> weight, trust-adjusted)."""

    text: str
    trust: TrustLevel
    writer: str
    weights: dict[str, float]


class Guard:
    """Scores records for poisoning; quarantines those at or above ``threshold``.

    ``anomaly_weight`` scales the anomaly signals (0 turns them off); each anomaly weight stays
    below the default threshold, so an anomaly alone never quarantines a record."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, *, anomaly_weight: float = 1.0,
                 anomaly_settings: AnomalySettings | None = None) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValidationError(f"must be in (0, 1], got {threshold!r}", field="threshold")
        if not 0.0 <= anomaly_weight <= 1.0:
            raise ValidationError(f"must be in [0, 1], got {anomaly_weight!r}", field="anomaly_weight")
        self.threshold = threshold
        self.anomaly_weight = anomaly_weight
        self.anomaly_settings = anomaly_settings or AnomalySettings()

    def screen(self, text: str, *, role: str = "user", metadata: Mapping[str, Any] | None = None,
               name: str | None = None, context: GuardContext | None = None) -> Verdict:
        """Judge ``text`` written with ``role`` (and ``metadata``/``name``) in the given context."""
        return self.judge(self.prepare(text, role=role, metadata=metadata, name=name), context)

    def prepare(self, text: str, *, role: str = "user", metadata: Mapping[str, Any] | None = None,
                name: str | None = None) -> Screening:
        """The half of ``screen`` that needs no scope context (provenance and pattern signals): the write
        path runs it while the record is still being embedded, then ``judge`` with the context."""
        if not isinstance(text, str):
            raise ValidationError(f"must be a string, got {type(text).__name__}", field="text")
        provenance = derive_provenance(role, metadata, name)
        signals = score_patterns(text, trust_factor=TRUST_FACTORS[provenance.trust])
        return Screening(text=text, trust=provenance.trust, writer=provenance.writer,
                         weights={f"pattern:{reason}": signals.weights[reason] for reason in signals.reasons})

    def judge(self, screening: Screening, context: GuardContext | None = None) -> Verdict:
        """The verdict on a ``prepare``d record: its pattern signals and its anomalies against ``context``."""
        weights = dict(screening.weights)
        if self.anomaly_weight > 0:
            anomalies = score_anomalies(screening.text, screening.trust, context, self.anomaly_settings)
            weights.update({f"anomaly:{name}": weight * self.anomaly_weight for name, weight in anomalies.items()})
        score = combine(weights.values())
        reasons = sorted(weights, key=lambda reason: (-weights[reason], reason))
        return Verdict(score=score, reasons=reasons, quarantine=score >= self.threshold,
                       trust=screening.trust.value, writer=screening.writer)
