"""The cues of a change or of co-existence (``engram.changes.cues``) read in context: a denied co-existence
word is none, a hedge inside a question asks for advice rather than doubting the news, a request tells
nothing."""

from __future__ import annotations

import pytest

from engram.changes.cues import pair_features

OLD = "I bike to work, 8km each way."


def _features(newer: str) -> dict[str, float]:
    return pair_features(OLD, newer, 0.5, [], [], True)


@pytest.mark.parametrize(("newer", "coexist"), [
    ("Someone stole my bike. Not buying another one, I'm just taking the bus now.", 0.0),
    ("I don't have another bike anymore, the bus it is.", 0.0),
    ("I also got an e-bike for the hills.", 1.0),
    ("No, I'm not going anywhere, still cycling every day.", 1.0),
])
def test_a_denied_co_existence_word_is_no_co_existence(newer: str, coexist: float) -> None:
    assert _features(newer)["coexist"] == coexist


@pytest.mark.parametrize(("newer", "hedged"), [
    ("We're taking the train instead now. What should we pack for it?", False),
    ("Switched to the bus. Should I get a monthly pass?", False),
    ("Thinking maybe someday I'd take the train?", True),
    ("I might switch to the bus.", True),
])
def test_a_hedge_counts_only_outside_questions(newer: str, hedged: bool) -> None:
    assert (_features(newer)["hedge"] > 0) is hedged


@pytest.mark.parametrize(("text", "asks"), [
    ("Can you check my booking?", True),
    ("how do i transfer a car title in Ohio", True),
    ("My cat is 16 and drinking a lot, should I be worried?", False),
    ("Please call me Mo.", False),
])
def test_a_request_tells_nothing(text: str, asks: bool) -> None:
    from engram.changes.cues import is_request

    assert is_request(text) is asks
