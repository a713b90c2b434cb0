"""The cues of a change or of co-existence (``engram.changes.cues``) read in context: a denied co-existence
word is none, a hedge inside a question asks for advice rather than doubting the news, a request tells
nothing."""

from __future__ import annotations

import pytest

from engram.changes.cues import opens_about_someone_else, pair_features, relatives_named

OLD = "I bike to work, 8km each way."


def _features(newer: str) -> dict[str, float]:
    return pair_features(OLD, newer, 0.5, [], [], True)


@pytest.mark.parametrize(("newer", "coexist"), [
    ("Someone stole my bike. Not buying another one, I'm just taking the bus now.", 0.0),
    ("I don't have another bike anymore, the bus it is.", 0.0),
    ("I didn't buy another bike, the bus it is.", 0.0),
    ("I also got an e-bike for the hills.", 1.0),
    ("No, I'm not going anywhere, still cycling every day.", 1.0),
    ("He's driving for UPS now. Still need lunch ideas for him though.", 0.0),
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


@pytest.mark.parametrize(("newer", "coexist"), [
    ("Got a new phone, kept the same number luckily.", 1.0),
    ("New laptop, but my setup is unchanged.", 1.0),
    ("Got a new phone and a new number, 0699 111 222.", 0.0),
])
def test_words_of_retention_are_co_existence(newer: str, coexist: float) -> None:
    assert _features(newer)["coexist"] == coexist


@pytest.mark.parametrize(("newer", "temporary"), [
    ("First week at the new job done, office hours feel like a holiday.", 0.0),
    ("Graduated! I start a PhD at UCL next week.", 0.0),
    ("I'm in Paris next week for a conference.", 1.0),
    ("Off on holiday to Crete, so no bike for two weeks.", 1.0),
    ("Starting a juice cleanse for a week.", 1.0),
    ("Yoga's cancelled tonight, the instructor is sick.", 1.0),
    ("First valentine's with Hannah tonight!", 0.0),
])
def test_a_comparison_or_a_start_is_no_temporary_state(newer: str, temporary: float) -> None:
    assert (_features(newer)["temporary"] > 0) == (temporary > 0)


def test_he_or_she_after_a_turn_about_someone_else_is_that_person() -> None:
    about_husband = pair_features("My husband works at the Amazon warehouse.", "He's driving for a bakery now.",
                                  0.5, [], [], True)
    assert about_husband["other_subject"] == 0.0
    about_me = pair_features("I have two kids.", "She's here! Ada, 3kg, so that's three kids now.", 0.5, [], [], True)
    assert about_me["other_subject"] == 0.0, "after a turn about the speaker, 'she' is no one asked about"
    from engram.changes.cues import other_person_than_asked

    assert not other_person_than_asked(True, "he's driving for UPS now"), "'he' is the husband asked about"
    assert other_person_than_asked(False, "My colleague Ben bought a Porsche")


def test_news_of_another_named_person() -> None:
    from engram.changes.cues import asks_of_named_person, news_of_someone_not_asked

    older = "my neighbours are both teachers, Priya's at Oak Hill and Tom's at the grammar school"
    newer = "Tom quit teaching!! he's driving a taxi now"
    assert asks_of_named_person("Where does Priya work?")
    assert not asks_of_named_person("Who walks Bramble now?"), "the answer is a name"
    assert news_of_someone_not_asked({"priya"}, newer, [older, newer])
    assert not news_of_someone_not_asked({"tom"}, newer, [older, newer])
    sister = "my sister Leila lives in Manchester"
    assert not news_of_someone_not_asked({"sister"}, "Leila took a job in Glasgow", [sister]), "a named relative"


@pytest.mark.parametrize(("newer", "now"), [
    ("Signed up for a half marathon, so I run on weekends as well now.", 0.0),
    ("I take the train now instead.", 2.0),
])
def test_now_after_an_addition_is_no_new_state(newer: str, now: float) -> None:
    assert _features(newer)["now"] == now


@pytest.mark.parametrize(("text", "about_someone_else"), [
    ("Inês arrived yesterday! We went to the Gulbenkian museum today.", True),
    ("Inês and I finally moved to Porto.", False),
    ("Lisbon is lovely in June.", False),
    ("My colleague Ben bought a boat.", True),
])
def test_a_turn_that_opens_with_a_relatives_name_is_their_news(text: str, about_someone_else: bool) -> None:
    window = ["My sister Inês is visiting in April, so I'd like a spare room.", "I just moved to Lisbon."]
    assert opens_about_someone_else(text, relatives_named(window)) == about_someone_else


def test_a_name_no_turn_gives_a_relative_is_not_taken_for_one() -> None:
    assert not opens_about_someone_else("Inês arrived yesterday!", relatives_named(["I just moved to Lisbon."]))
