"""The local bot's text helpers: tokens, numbers, phrases, scores, DTMF clean-up, prompts."""
from __future__ import annotations

import pytest

from chimevoice.bots import clean_dtmf, render_messages
from chimevoice.bots.nlu import confirmation_of, find_numbers, find_phrases, similarity, tokenize


def norms(text: str) -> list[str]:
    return [t.norm for t in tokenize(text)]


def test_tokenize_lowercases_and_expands_contractions():
    assert norms("Where's Bob's PIZZA? I'd like it, don't wait!") == [
        "where", "is", "bob", "pizza", "i", "would", "like", "it", "do", "not", "wait"]
    assert [t.orig for t in tokenize("Large, Pepperoni")] == ["Large", "Pepperoni"]
    assert norms("I won\u2019t") == ["i", "will", "not"]


@pytest.mark.parametrize("text,value", [
    ("one two three four", "1234"), ("zero zero four two", "0042"), ("twenty five", "25"),
    ("two hundred and five", "205"), ("three thousand two hundred", "3200"), ("12", "12"),
    ("1 2 3", "123"), ("nineteen", "19"),
])
def test_numbers(text, value):
    assert [v for _, _, v in find_numbers(tokenize(text))] == [value]


def test_numbers_in_a_sentence():
    toks = tokenize("two large pizzas and three cokes")
    assert find_numbers(toks) == [(0, 1, "2"), (4, 5, "3")]
    assert find_numbers(toks, used={0}) == [(4, 5, "3")]


def test_phrases_longest_first_and_fuzzy():
    phrases = {("thin",): ["thin"], ("thin", "crust"): ["thin"], ("pepperoni",): ["pepperoni"]}
    assert find_phrases(tokenize("thin crust peperoni"), phrases) == [(0, 2, ["thin"]), (2, 3, ["pepperoni"])]
    assert find_phrases(tokenize("peperoni"), phrases, fuzzy=False) == []


@pytest.mark.parametrize("text,answer", [("yes", "Yes"), ("yeah sure", "Yes"), ("that's right", "Yes"),
                                         ("no thanks", "No"), ("that's not right", "No"), ("maybe", None)])
def test_confirmation(text, answer):
    assert confirmation_of(tokenize(text)) == answer


def test_similarity():
    assert similarity(["order", "pizza"], ["order", "pizza"]) == 1.0
    assert similarity([], ["x"]) == 0.0
    close = similarity(norms("i would like to order a pizza please"), norms("i want to order a pizza"))
    far = similarity(norms("what is the weather on mars"), norms("i want to order a pizza"))
    assert close >= 0.8 and far < 0.3
    assert similarity(["ordr", "pizza"], ["order", "pizza"]) > similarity(["xyz", "pizza"], ["order", "pizza"])


@pytest.mark.parametrize("digits,clean", [("123", "123"), ("123#", "123"), ("12#34", "12"), ("9*45#", "45"),
                                          ("1*", ""), ("#", ""), (" 4 2 ", "42")])
def test_clean_dtmf(digits, clean):
    assert clean_dtmf(digits) == clean


def test_render_messages():
    assert render_messages([]) == (None, None)
    assert render_messages([("Hi.", "PlainText"), ("", "PlainText"), ("Bye.", "PlainText")]) == ("Hi. Bye.", None)
    assert render_messages([("<speak>A <break time='1s'/> B</speak>", "SSML"), ("x < y", "PlainText")]) == (
        "A B x < y", "<speak>A <break time='1s'/> B x &lt; y</speak>")
