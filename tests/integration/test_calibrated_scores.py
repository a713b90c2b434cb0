"""Search scores are calibrated relevance in [0, 1] that read the same in a tiny store and a large one;
``threshold`` cuts on them and ``abstain`` / ``confidence`` agree with what comes back (issue 13.2)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path

from engram import Memory
from engram.embed.base import Embedder

BERLIN = "I live in Berlin"
QUESTION = "where do I live"
START = datetime(2024, 1, 1, 9, tzinfo=UTC)

NAMES = ("Ana", "Ben", "Chloe", "Dario", "Emil", "Fatima", "Greta", "Hiro", "Ines", "Jonas")
FOODS = ("ramen", "a lentil curry", "pancakes", "sushi", "a goat cheese salad", "tacos", "risotto", "falafel")
TOPICS = ("astronomy", "medieval history", "sourdough baking", "chess openings", "bird migration",
          "jazz piano", "climate policy", "Roman architecture", "machine learning", "mushroom foraging")
PLACES = ("the lake", "the old quarry", "the botanical garden", "the harbour", "the ridge trail", "the market")
TEMPLATES = (
    "I had {food} for lunch with {name}.",
    "{name} recommended a book about {topic}.",
    "We watched a documentary about {topic} with {name}.",
    "{name} and I went for a walk near {place}.",
    "I signed up for an evening class on {topic}.",
    "{name} cooked {food} for everyone on Friday.",
    "I lost my umbrella somewhere near {place} while talking to {name} about {topic}.",
)
RELATIVES = ("My sister lives in Madrid.", "My parents live in a small village near Porto.")


def everyday_memories(count: int) -> list[str]:
    """``count`` distinct, ordinary first-person memories (a few of them about where relatives live)."""
    texts = list(RELATIVES)
    for template, name, food, topic, place in product(TEMPLATES, NAMES, FOODS, TOPICS, PLACES):
        text = template.format(name=name, food=food, topic=topic, place=place)
        if text not in texts:
            texts.append(text)
        if len(texts) >= count:
            break
    return texts[:count]


def store_with(path: Path, texts: list[str], embedder: Embedder) -> Memory:
    """A store holding ``texts`` (one per day, so no memory borrows a neighbour's context) then Berlin."""
    memory = Memory(path=str(path), embedder=embedder)
    for day, text in enumerate([*texts, BERLIN]):
        memory.add(text, user_id="a", timestamp=START + timedelta(days=day))
    return memory


def test_threshold_keeps_a_clear_match_in_a_one_memory_store(tmp_path: Path, embedder: Embedder) -> None:
    memory = store_with(tmp_path / "one.db", [], embedder)
    found = memory.search(QUESTION, user_id="a", threshold=0.1)
    assert [hit["memory"] for hit in found["results"]] == [BERLIN]
    assert found["results"][0]["score"] > 0.1
    assert found["abstain"] is False and found["confidence"] >= found["results"][0]["score"]
    unrelated = memory.search("Which programming language does my team use at work?", user_id="a")
    assert unrelated["results"][0]["score"] < 0.1
    cut = memory.search("Which programming language does my team use at work?", user_id="a", threshold=0.1)
    assert cut["results"] == [] and cut["abstain"] is True and cut["confidence"] < 0.1


def test_a_score_reads_the_same_in_a_small_and_a_large_store(tmp_path: Path, embedder: Embedder) -> None:
    small = store_with(tmp_path / "small.db", everyday_memories(2), embedder)
    large = store_with(tmp_path / "large.db", everyday_memories(300), embedder)
    assert large.search("anything", user_id="a", limit=1)["results"]
    scores = []
    for memory in (small, large):
        hits = memory.search(QUESTION, user_id="a", limit=5)["results"]
        scores.append(next(hit["score"] for hit in hits if hit["memory"] == BERLIN))
        assert hits[0]["memory"] == BERLIN
    assert abs(scores[0] - scores[1]) <= 0.15, scores
    assert min(scores) > 0.05


def test_a_threshold_above_every_score_abstains_below_the_abstain_threshold(tmp_path: Path,
                                                                            embedder: Embedder) -> None:
    memory = store_with(tmp_path / "one.db", [], embedder)
    found = memory.search(QUESTION, user_id="a", threshold=0.99)
    assert found["results"] == [] and found["abstain"] is True and found["confidence"] < 0.5


def test_the_cli_prints_meaningful_scores(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    run = [sys.executable, "-m", "engram.cli"]
    env = {**os.environ, "COLUMNS": "200"}
    subprocess.run([*run, "add", BERLIN, "--db", db, "-u", "a"], check=True, capture_output=True, env=env)
    shown = subprocess.run([*run, "search", QUESTION, "--db", db, "-u", "a", "--threshold", "0.1"],
                           check=True, capture_output=True, text=True, env=env).stdout
    row = next(line for line in shown.splitlines() if "Berlin" in line)
    assert "0.000" not in row and float(row.split("│")[1]) > 0.1
    assert "relevant memories found" in shown
