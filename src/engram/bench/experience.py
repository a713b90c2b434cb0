"""``engram bench experience``: a mechanism test of experience memory, not a benchmark of agents.

A scripted, seeded environment of recurring tasks: each task family (deploying a site, restoring a
backup...) is asked in paraphrased wordings and has four possible approaches, of which one (drawn by the
seed) works. Each round, every family comes up once, worded at random. Two agents take turns at the
same tasks: the baseline picks an approach at random (it has no memory); the experienced agent first
calls ``Memory.search_experiences`` with the task's wording, reuses an approach that succeeded on a
similar case (similarity at least ``SIMILAR``), else avoids every approach that failed on one, and
records each attempt with ``Memory.add_experience``. Reported per round: success rate and repeat-failure
rate (attempts that repeat an approach that had already failed on the same family)."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engram.embed.base import Embedder

#: Cosine similarity from which a past case counts as the same kind of task.
SIMILAR = 0.5
FAMILIES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("Deploy the web app to staging", "Push the website to the staging environment",
      "Ship the latest build of the site to staging"),
     ("restart the web server", "clear the CDN cache", "run the database migration first", "roll back the release")),
    (("Restore the customer database from last night's backup", "Recover the customer DB using yesterday's dump",
      "Bring back the customers database from the nightly backup"),
     ("copy the dump over the data folder", "stop writes, then load the dump with pg_restore",
      "replay the write-ahead log", "ask the vendor for a copy")),
    (("Book a flight to Berlin for the conference", "Reserve plane tickets to Berlin for the summit",
      "Get me a flight to Berlin for the event"),
     ("use the corporate travel portal", "book on the airline website", "ask the assistant to call an agent",
      "book through a comparison site")),
    (("Fix the failing unit tests in the payments module", "Make the payments test suite pass again",
      "Repair the broken tests for payments"),
     ("update the snapshot files", "pin the time zone in the test setup", "delete the flaky tests",
      "upgrade the testing library")),
    (("Send the monthly invoice to Acme", "Email Acme their invoice for this month",
      "Bill Acme for the month"),
     ("attach a PDF export from the ledger", "paste the amounts into the email body", "use the billing portal",
      "send a spreadsheet")),
    (("Renew the TLS certificate for the API domain", "Refresh the HTTPS cert of the API host",
      "Get a new SSL certificate for the API endpoint"),
     ("run certbot with the DNS challenge", "run certbot with the HTTP challenge", "buy a certificate",
      "extend the old certificate's expiry")),
    (("Plan a vegetarian dinner for six guests", "Organise a meat-free supper for 6 people",
      "Cook a veggie dinner party menu for six"),
     ("order from the Thai place", "make a lasagne with spinach", "grill halloumi skewers", "serve a cheese board")),
    (("Set up the new laptop for the intern", "Prepare the new hire's notebook computer",
      "Configure a laptop for our new intern"),
     ("clone the golden disk image", "install everything by hand", "use the MDM enrolment profile",
      "let the intern do it")),
)


def _choose(rng: random.Random, approaches: Sequence[str], avoid: set[str]) -> str:
    allowed = [approach for approach in approaches if approach not in avoid] or list(approaches)
    return rng.choice(allowed)


def run_experience(workdir: Path, *, rounds: int = 6, seed: int = 7, embedder: Embedder | None = None
                   ) -> dict[str, Any]:
    """Run both agents through ``rounds`` rounds; returns the results as a JSON-ready dict."""
    from engram import Memory

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "experience.db"
    for stale in workdir.glob(f"{path.name}*"):
        stale.unlink()
    setup = random.Random(seed)
    winners = [setup.choice(approaches) for _, approaches in FAMILIES]
    per_round: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    with Memory(path=str(path), embedder=embedder) as memory:
        for agent in ("without", "with"):
            tasks, rng = random.Random(seed + 1), random.Random(seed + 2)
            failed: set[tuple[int, str]] = set()
            for round_number in range(1, rounds + 1):
                order = list(range(len(FAMILIES)))
                tasks.shuffle(order)
                successes = repeats = 0
                for family in order:
                    wordings, approaches = FAMILIES[family]
                    task = tasks.choice(wordings)
                    avoid: set[str] = set()
                    reuse = None
                    if agent == "with":
                        found = memory.search_experiences(task, user_id="agent", limit=10, distil=False)["results"]
                        similar = [case for case in found if case["score"] >= SIMILAR]
                        reuse = next((case["steps"][0] for case in similar if case["outcome"] == "success"), None)
                        avoid = {case["steps"][0] for case in similar if case["outcome"] == "failure"}
                    approach = reuse or _choose(rng, approaches, avoid)
                    success = approach == winners[family]
                    repeats += 1 if (family, approach) in failed else 0
                    successes += 1 if success else 0
                    if not success:
                        failed.add((family, approach))
                    if agent == "with":
                        memory.add_experience(task=task, outcome="success" if success else "failure",
                                              steps=[approach], user_id="agent")
                per_round[agent].append({"round": round_number, "success": round(successes / len(order), 4),
                                         "repeat_failure": round(repeats / len(order), 4)})
    return {"benchmark": "experience (scripted mechanism test)", "seed": seed, "rounds": rounds,
            "families": len(FAMILIES), "approaches_per_family": 4, "similar_threshold": SIMILAR,
            "per_round": per_round,
            "overall": {agent: {"success": _mean(rows, "success"), "repeat_failure": _mean(rows, "repeat_failure")}
                        for agent, rows in per_round.items()},
            "load": [round(x, 2) for x in os.getloadavg()]}


def _mean(rows: list[dict[str, float]], key: str) -> float:
    return round(sum(row[key] for row in rows) / len(rows), 4) if rows else 0.0


def render_markdown(results: dict[str, Any], command: str) -> str:
    """The per-round table docs/LEARNING.md quotes."""
    lines = [f"`{command}` (load {results['load']}): {results['families']} task families x "
             f"{results['approaches_per_family']} approaches (one works), {results['rounds']} rounds, "
             f"seed {results['seed']}. A mechanism test: scripted tasks and outcomes, no LLM.", "",
             "| round | success without | success with | repeat-failure without | repeat-failure with |",
             "|---|---|---|---|---|"]
    for without, with_memory in zip(results["per_round"]["without"], results["per_round"]["with"], strict=True):
        lines.append(f"| {without['round']} | {without['success']:.0%} | {with_memory['success']:.0%} | "
                     f"{without['repeat_failure']:.0%} | {with_memory['repeat_failure']:.0%} |")
    overall = results["overall"]
    lines.append(f"| all | {overall['without']['success']:.0%} | {overall['with']['success']:.0%} | "
                 f"{overall['without']['repeat_failure']:.0%} | {overall['with']['repeat_failure']:.0%} |")
    return "\n".join(lines) + "\n"
