"""The SSML reader: what each supported tag turns into (the rendering plan)."""
from __future__ import annotations

import pytest

from chimevoice.speech.ssml import Pause, Span, parse_ssml, plain_text


def items(body: str, language: str | None = "en-US"):
    return parse_ssml(f"<speak>{body}</speak>", language).items


def spoken(body: str, language: str | None = "en-US") -> str:
    return "".join(i.text for i in items(body, language) if isinstance(i, Span))


def test_plain_text_is_one_span_read_literally():
    doc = plain_text("a <b> & c")
    assert doc.items == (Span("a <b> & c"),)


def test_break_time_and_strength():
    got = items("a<break time='1s'/>b<break time='250ms'/>c<break strength='strong'/>d<break/>e")
    pauses = [i for i in got if isinstance(i, Pause)]
    assert pauses == [Pause(ms=1000), Pause(ms=250), Pause(strength="strong"), Pause(strength="medium")]
    assert items("<break time='1.5s'/>")[0] == Pause(ms=1500)


def test_break_longer_than_ten_seconds_is_cut_to_ten():
    doc = parse_ssml("<speak>a<break time='12s'/>b</speak>")
    assert Pause(ms=10_000) in doc.items
    assert "break>10s" in doc.degraded


def test_sentences_and_paragraphs_end_with_pauses():
    got = items("<p><s>One.</s><s>Two.</s></p>")
    assert got == (Span("One."), Pause(strength="strong"), Span("Two."), Pause(strength="strong"),
                   Pause(strength="x-strong"))


def test_prosody_nests_and_default_resets():
    got = [i for i in items("<prosody rate='50%' volume='+6dB' pitch='+10%'>a"
                            "<prosody rate='x-fast' volume='-3dB' pitch='low'>b"
                            "<prosody rate='default' volume='default' pitch='default'>c</prosody>"
                            "</prosody></prosody>") if isinstance(i, Span)]
    a, b, c = got
    assert (a.style.rate, a.style.volume_db, a.style.pitch) == (0.5, 6.0, 10.0)
    assert b.style.rate == pytest.approx(0.5 * 1.6)
    assert (b.style.volume_db, b.style.pitch) == (3.0, 0.0)
    assert (c.style.rate, c.style.volume_db, c.style.pitch) == (1.0, 0.0, 0.0)


def test_prosody_rate_outside_polly_range_is_clamped():
    doc = parse_ssml("<speak><prosody rate='500%'>x</prosody></speak>")
    assert doc.items[0].style.rate == 2.0
    assert "prosody-rate-clamped" in doc.degraded


def test_silent_volume():
    assert items("<prosody volume='silent'>shh</prosody>")[0].style.silent


def test_say_as_rewrites():
    assert spoken("<say-as interpret-as='digits'>1234</say-as>").split() == ["1", "2", "3", "4"]
    assert spoken("<say-as interpret-as='telephone'>+1 (800) 555-0199</say-as>").strip() == \
        "plus 1, 8 0 0, 5 5 5, 0 1 9 9"
    assert spoken("<say-as interpret-as='ordinal'>22</say-as>").strip() == "22nd"
    assert spoken("<say-as interpret-as='ordinal'>13</say-as>").strip() == "13th"
    assert spoken("<say-as interpret-as='ordinal'>3</say-as>", "es-ES").strip() == "3"
    assert spoken("<say-as interpret-as='cardinal'>1234</say-as>").strip() == "1234"
    chars = items("<say-as interpret-as='characters'>ABC</say-as>")[0]
    assert chars.say_as == "characters" and chars.text.strip() == "ABC"
    assert items("<say-as interpret-as='spell-out'>xyz</say-as>")[0].say_as == "characters"


def test_expletive_is_a_bleep():
    (bleep,) = items("<say-as interpret-as='expletive'>darn</say-as>")
    assert bleep.tone_hz == 1000.0 and bleep.ms >= 150


def test_sub_reads_the_alias():
    assert spoken("<sub alias='World Wide Web Consortium'>W3C</sub>").strip() == "World Wide Web Consortium"


def test_phoneme_falls_back_to_its_text():
    doc = parse_ssml("<speak>a <phoneme alphabet='ipa' ph='pɪˈkɑːn'>pecan</phoneme></speak>")
    assert "".join(i.text for i in doc.items) == "a pecan"
    assert "phoneme" in doc.degraded


def test_lang_emphasis_whisper_styles():
    got = {i.text.strip(): i.style for i in items(
        "<lang xml:lang='fr-FR'>bonjour</lang> <emphasis level='strong'>big</emphasis> "
        "<amazon:effect name='whispered'>psst</amazon:effect> plain") if isinstance(i, Span) and i.text.strip()}
    assert got["bonjour"].lang == "fr-FR"
    assert got["big"].emphasis == "strong"
    assert got["psst"].whisper
    assert got["plain"].lang is None and not got["plain"].whisper and got["plain"].emphasis is None


def test_speak_xml_lang_applies_to_everything():
    doc = parse_ssml("<speak xml:lang='de-DE'>hallo</speak>")
    assert doc.items[0].style.lang == "de-DE"


def test_whitespace_is_collapsed_and_marks_vanish():
    got = items("\n   Hello,\n\t <mark name='m'/>  world  \n")
    assert [i.text for i in got] == [" Hello, ", " world "]
