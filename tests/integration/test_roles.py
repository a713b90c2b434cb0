"""Whose words become memories (issue 13.3): an assistant's turn is context for the user's, recalled as a
result of its own when it states something, and first when the question asks what the assistant said."""

from __future__ import annotations

from pathlib import Path

import pytest

from engram import Memory
from engram.bench.longmemeval import run_longmemeval
from engram.bench.runner import RunSettings
from engram.embed.base import Embedder
from engram.read.query import asks_about_assistant
from engram.read.recipes import CONTEXT_WEIGHT
from engram.read.roles import is_acknowledgement

ACKNOWLEDGED = "Got it, I'll remember your dietary needs."
#: The user's own facts that an acknowledgement echoes in the question's words; on main, the acknowledgement
#: came first for five of these eight (recipes.CONTEXT_WEIGHT is set from them).
DIETARY_FACTS = [
    "I'm vegetarian and allergic to peanuts.",
    "I'm vegan and I can't have gluten.",
    "I don't eat meat and I'm lactose intolerant.",
    "Just so you know, I keep kosher and avoid shellfish.",
    "I'm allergic to shellfish and I avoid dairy.",
    "I can't eat nuts or gluten.",
    "My doctor says no sugar and no salt for me.",
    "I'm on a low-carb diet and avoid pork.",
]


def test_the_users_fact_comes_before_the_assistants_acknowledgement(memory: Memory) -> None:
    for number, fact in enumerate(DIETARY_FACTS):
        memory.add([{"role": "user", "content": fact}, {"role": "assistant", "content": ACKNOWLEDGED}],
                   user_id=f"u{number}")
    for number, fact in enumerate(DIETARY_FACTS):
        hits = memory.search("dietary restrictions?", user_id=f"u{number}", explain=True)["results"]
        assert [hit["memory"] for hit in hits] == [fact, ACKNOWLEDGED], fact
        assert hits[1]["explain"]["role"] == CONTEXT_WEIGHT and hits[0]["explain"]["role"] == 1.0
    assert len(memory.episodes(user_id="u0")) == 2  # every message is still an episode


TRIP = [
    {"role": "user", "content": "Can you recommend a good book about Roman history?"},
    {"role": "assistant", "content": "I'd suggest SPQR by Mary Beard: it covers the first thousand years of Rome."},
    {"role": "user", "content": "Thanks! I also want a book about Roman history for my nephew."},
    {"role": "assistant", "content": "Sure, that's a lovely idea!"},
]


def test_a_question_about_what_the_assistant_said_finds_its_recommendation(memory: Memory) -> None:
    memory.add(TRIP, user_id="u", timestamp="2024-03-01T10:00:00Z")
    for question in ("What book did you recommend about Roman history?",
                     "Which Roman history book did you suggest to me?",
                     "You told me about a Roman history book, which one was it?"):
        hits = memory.search(question, user_id="u", limit=3, explain=True)["results"]
        assert hits[0]["memory"].startswith("I'd suggest SPQR"), question
        assert hits[0]["explain"]["trust"] == 1.0
        assert hits[1]["memory"].startswith("Can you recommend") and hits[1]["explain"]["role"] == CONTEXT_WEIGHT
    plain = memory.search("Roman history book", user_id="u", explain=True)["results"]
    recommendation = next(hit for hit in plain if hit["memory"].startswith("I'd suggest SPQR"))
    assert recommendation["explain"]["trust"] == 0.85  # otherwise the assistant's statements keep 85%


def test_an_assistant_statement_the_user_confirms_is_found(memory: Memory) -> None:
    memory.add([
        {"role": "user", "content": "I'm thinking about the weekend."},
        {"role": "assistant", "content": "Sounds fun!"},
        {"role": "user", "content": "Can you check my booking?"},
        {"role": "assistant", "content": "Your dentist appointment is on Thursday at 10 am with Dr. Patel."},
        {"role": "user", "content": "Yes, that's right, thanks."},
        {"role": "assistant", "content": "You're welcome!"},
    ], user_id="u", timestamp="2024-03-01T10:00:00Z")
    hits = memory.search("Who is my dentist?", user_id="u", limit=2)["results"]
    assert hits[0]["memory"].startswith("Your dentist appointment")


def test_longmemeval_style_questions_find_whose_words_they_ask_for(tmp_path: Path, embedder: Embedder) -> None:
    """Two single-session-assistant questions (the evidence is the assistant's turn) and a single-session-user
    one (the evidence is the user's fact, acknowledged by the assistant), through the benchmark runner."""
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "longmemeval_assistant.json"
    run = run_longmemeval(fixture, RunSettings(ks=(1,), budgets=(50,), depth=10), tmp_path, embedder=embedder,
                          systems=("engram",), qa=False)
    per_type = run.results["systems"]["engram"]["per_category"]
    assert per_type["single-session-assistant"]["recall@1"] == 1.0
    assert per_type["single-session-user"]["recall@1"] == 1.0


@pytest.mark.parametrize(("text", "expected"), [
    (ACKNOWLEDGED, True),
    ("Congratulations! How is he settling in?", True),
    ("Well done on finishing your first race!", True),
    ("Wow, that's great, Caroline! I'm so happy for you.", True),
    ("I'll keep that in mind.", True),
    ("Great, I recommend the Alfama district.", False),
    ("Lisbon in May is lovely. I recommend the Alfama district.", False),
    ("Noted. Your flight is on Tuesday at 9am.", False),
    ("That's awesome! I adopted a puppy last week, his name is Biscuit.", False),
    ("Mount Elbrus, at 5,642 metres.", False),
    ("Good idea! How about this series?", False),  # a suggestion in question form
    ("Sure thing! I can give it to you tomorrow, how does that sound?", False),
    ("Hey Joanna, what's been up since we last chatted? How's it going?", True),
])
def test_acknowledgements_are_told_from_statements(text: str, expected: bool) -> None:
    assert is_acknowledgement(text) is expected


@pytest.mark.parametrize(("question", "expected"), [
    ("What did you recommend for Lisbon?", True),
    ("You told me about a book last week, what was it?", True),
    ("Can you remind me what you said about the museum?", True),
    ("How many peppers did you suggest using?", True),
    ("What was your recommendation for dinner?", True),
    ("What would you recommend for dinner?", False),
    ("dietary restrictions?", False),
    ("What did I tell you about my sister?", False),
    ("What did Caroline say about the parade?", False),
])
def test_questions_about_what_the_assistant_said(question: str, expected: bool) -> None:
    assert asks_about_assistant(question) is expected
