"""Rules of English the change cues rest on (``engram.changes.cues``, fifth session): what "used to", "too",
"still", "another", "since", a decade, a counterfactual, a low frequency or a duration says; who a turn is
about; the words that tell a change without a verb of change; a turn that ends a named thing or corrects
itself."""

from __future__ import annotations

import pytest

from engram.changes.cues import corrects, ends_named, pair_features

OLD = "I live in Utrecht and cycle everywhere."


def _features(newer: str, older: str = OLD) -> dict[str, float]:
    return pair_features(older, newer, 0.5, [], [], True)


@pytest.mark.parametrize(("newer", "past"), [
    ("We relocated to Madrid and I'm slowly getting used to late dinners.", 0.0),
    ("We moved to Bristol. I'm used to the hills by now.", 0.0),
    ("I used to live in Coimbra when I was studying.", 1.0),
    ("My family moved from Austin to El Paso in the seventies.", 1.0),
    ("My grandparents moved to Phoenix back in the 80s.", 1.0),
])
def test_used_to_after_be_or_get_is_no_past_and_a_decade_is(newer: str, past: float) -> None:
    assert (_features(newer)["past"] > 0) == (past > 0)


@pytest.mark.parametrize(("newer", "coexist"), [
    ("Planning is on Wednesdays now, Tuesday mornings were too hectic.", 0.0),
    ("I picked up the ukulele too, it's easier on my fingers.", 1.0),
    ("I watched it too and it really spoke to me.", 1.0),
    ("Croatia would be way too hot in August.", 0.0),
    ("We relocated to Madrid, still unpacking boxes.", 0.0),
    ("We moved to Bristol. Still getting used to the hills.", 0.0),
    ("Still cycling everywhere, rain or shine.", 1.0),
    ("Renewed the lease on the Elm Street place for another year.", 0.0),
    ("We adopted another dog.", 1.0),
])
def test_degree_too_adapting_still_and_another_span_are_no_co_existence(newer: str, coexist: float) -> None:
    assert _features(newer)["coexist"] == coexist


@pytest.mark.parametrize(("newer", "temporary"), [
    ("Been living in Neovim since the conference in November.", 0.0),
    ("I'm at a conference in Porto.", 1.0),
    ("On sunny days I occasionally cycle to work instead.", 1.0),
    ("Hired two more people for the weekend rush, so we're six now.", 0.0),
    ("Going to my parents' for the weekend.", 1.0),
])
def test_a_start_point_a_low_frequency_and_a_duration(newer: str, temporary: float) -> None:
    assert (_features(newer)["temporary"] > 0) == (temporary > 0)


@pytest.mark.parametrize("newer", ["If the flights were cheaper we'd have gone to Japan instead.",
                                   "Had we booked earlier we would have gone to Lapland instead."])
def test_a_counterfactual_is_a_hedge(newer: str) -> None:
    assert _features(newer)["hedge"] > 0


@pytest.mark.parametrize(("newer", "change"), [
    ("They made me art director after the rebrand!", True),
    ("Survived my first month as a hospital pharmacist.", True),
    ("Life in Vienna is great, the coffee houses alone were worth the move.", True),
    ("Change of plans: the fjords in August.", True),
    ("I accepted the Chewy offer!!", True),
    ("That film made me cry.", False),
])
def test_words_that_tell_a_change_without_a_verb_of_change(newer: str, change: bool) -> None:
    assert (_features(newer)["change"] > 0) is change


@pytest.mark.parametrize(("older", "newer", "other"), [
    ("I live in Seattle, in Ballard.", "Turns out my grandparents moved from Seattle to Phoenix.", 1.0),
    ("I work at Siemens.", "Apparently my cousin moved to Berlin and joined Zalando.", 1.0),
    ("I live in Austin.", "Digging through old photos: my family moved from Austin to El Paso.", 1.0),
    ("My parents live in Kraków.", "My brother moved to Gdańsk for a job at the shipyard.", 1.0),
    ("My sister Leila lives in Manchester.", "Leila took a job in Glasgow.", 0.0),
    ("My husband works at Amazon.", "He's driving for a bakery now.", 0.0),
    ("My girlfriend Clara hates horror movies.", "Nora and I are going to Lisbon for the honeymoon!", 0.0),
])
def test_who_a_turn_is_about(older: str, newer: str, other: float) -> None:
    assert _features(newer, older)["other_subject"] == other


def test_a_turn_that_ends_a_named_thing() -> None:
    assert ends_named("I drive a 2012 Honda Civic.", "Traded the Civic in for a Kia EV6.")
    assert ends_named("I work as an analyst at Fairline Insurance.", "I left Fairline last month.")
    assert ends_named("My broadband is with Virgin Media.", "Cancelled Virgin Media, Hyperoptic is cheaper.")
    assert not ends_named("I live in Berlin.", "I left the office early today.")
    assert not ends_named("I drive a Civic.", "Traded my old bike in for a scooter.")


def test_a_turn_that_corrects_itself() -> None:
    assert corrects("Actually it's Friday the 10th, same time.")
    assert corrects("Sorry, I misread the ticket, the flight is on the 15th.")
    assert not corrects("I actually love the new place.")


@pytest.mark.parametrize(("text", "found"), [
    ("I've lived in Glasgow since 2015, right by Kelvingrove Park.", "user|residence=glasgow"),
    ("I've lived in Manchester for six years now.", "user|residence=manchester"),
    ("I've lived in Paris, London and Rome.", None),
    ("I lived in Valencia for five years.", None),
    ("I've worked at Google since 2019.", "user|employer=google"),
    ("Our new flat in Riga has a tiny balcony.", "user|residence=riga"),
])
def test_a_state_that_goes_on_is_a_statement(text: str, found: str | None) -> None:
    from engram.changes.slots import statements

    stated = [f"{statement.slot}={statement.value}" for statement in statements(text, "user")]
    assert stated == ([found] if found else [])


def test_the_speaker_as_i_m_and_getting_used_to_in_a_statement() -> None:
    from engram.changes.slots import statements

    assert [s.slot for s in statements("I'm based in Utrecht and cycle everywhere.", "user")] == ["user|residence"]
    moved = statements("We relocated to Madrid and I'm slowly getting used to late dinners.", "user")
    assert [f"{s.slot}={s.value}" for s in moved] == ["user|residence=madrid"]
    assert statements("I used to live in Coimbra.", "user") == []
