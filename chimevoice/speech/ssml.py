"""Polly SSML: validation and a flat, engine-neutral rendering plan.

:func:`parse_ssml` checks a ``TextType: ssml`` text the way Amazon Polly's
SynthesizeSpeech does (the guide defers to Polly's SSML rules, spec 03b P10) and turns
it into a :class:`Document`: a flat list of :class:`Span` (text with the prosody, language
and emphasis in force) and :class:`Pause` (a timed or strength pause, or a bleep). A
backend renders that list; :mod:`chimevoice.speech.local` does it with espeak-ng.

Validation (every failure is :meth:`SpeechError.invalid_ssml`, i.e.
``InvalidActionParameter`` / ``Text parameter value is not valid SSML.``):

* the text must be well-formed XML whose root element is ``<speak>``;
* ``<!DOCTYPE>`` / entity declarations are refused (no entity expansion);
* only Polly's tags: ``speak p s break prosody say-as sub emphasis lang phoneme mark w``
  and ``amazon:effect amazon:auto-breaths amazon:breath amazon:domain``. The ``amazon:``
  prefix may be used without declaring it, as Polly allows;
* attribute values follow Polly's grammar: ``break`` strength (``none`` .. ``x-strong``)
  or time (``Ns``/``Nms``); ``prosody`` rate (``x-slow`` .. ``x-fast``, ``default``,
  ``N%``), pitch (``x-low`` .. ``x-high``, ``default``, ``+N%``/``-N%``), volume
  (``silent``, ``x-soft`` .. ``x-loud``, ``default``, ``+NdB``/``-NdB``); ``say-as``
  interpret-as in Polly's list; ``sub`` needs ``alias``; ``lang`` needs ``xml:lang`` in
  language-code form; ``phoneme`` needs ``ph`` and alphabet ``ipa``/``x-sampa``;
  ``emphasis`` level ``strong``/``moderate``/``reduced``; ``mark`` needs ``name``.

Lenient readings (Polly states a range but not what happens outside it): a break
longer than 10 s is cut to 10 s; a rate outside 20%-200% is clamped into it.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace

from .errors import SpeechError
from .voices import LANGUAGE_CODE_RE

__all__ = [
    "Style",
    "Span",
    "Pause",
    "Document",
    "parse_ssml",
    "plain_text",
    "STRENGTH_MS",
    "MAX_BREAK_MS",
]

AMAZON_NS = "urn:chimevoice:amazon-polly-ssml"
XML_NS = "http://www.w3.org/XML/1998/namespace"
_XML_LANG = f"{{{XML_NS}}}lang"

MAX_BREAK_MS = 10_000
#: Length of a strength pause when it has to be rendered as silence (at a chunk edge).
STRENGTH_MS = {"none": 0, "x-weak": 0, "weak": 250, "medium": 250, "strong": 500, "x-strong": 750}

_RATES = {"x-slow": 0.6, "slow": 0.8, "medium": 1.0, "fast": 1.25, "x-fast": 1.6}
_PITCHES = {"x-low": -20.0, "low": -10.0, "medium": 0.0, "high": 10.0, "x-high": 20.0}
_VOLUMES = {"x-soft": -10.0, "soft": -5.0, "medium": 0.0, "loud": 4.0, "x-loud": 8.0}
_SAY_AS = {"characters", "spell-out", "cardinal", "number", "ordinal", "digits", "fraction", "unit",
           "date", "time", "address", "expletive", "telephone"}
_EMPHASIS = {"strong", "moderate", "reduced", "none"}

_TIME_RE = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)\s*")
_PERCENT_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")
_SIGNED_PERCENT_RE = re.compile(r"\s*([+-])\s*(\d+(?:\.\d+)?)\s*%\s*")
_DB_RE = re.compile(r"\s*([+-])\s*(\d+(?:\.\d+)?)\s*dB\s*")
_DOCTYPE_RE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_AMAZON_DECL_RE = re.compile(r"""\sxmlns:amazon\s*=\s*("[^"]*"|'[^']*')""")
_SPEAK_OPEN_RE = re.compile(r"<speak(?=[\s/>])")
_WS_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class Style:
    """What is in force for a piece of text."""

    lang: str | None = None  # Polly language code from <lang>; None = the request's language
    rate: float = 1.0  # speaking-rate multiplier
    pitch: float = 0.0  # pitch change in percent
    volume_db: float = 0.0
    silent: bool = False
    emphasis: str | None = None  # "strong" | "moderate" | "reduced"
    whisper: bool = False


@dataclass(frozen=True)
class Span:
    text: str
    style: Style = field(default_factory=Style)
    #: "characters": the engine should spell the text out. Other say-as values are
    #: rewritten into plain text by the parser.
    say_as: str | None = None

    @property
    def is_speech(self) -> bool:
        return bool(self.text.strip())


@dataclass(frozen=True)
class Pause:
    ms: int | None = None  # a timed pause (break time=..., bleep length)
    strength: str | None = None  # a prosodic pause (break strength=..., end of <s>/<p>)
    tone_hz: float | None = None  # a bleep (say-as expletive) instead of silence

    @property
    def timed(self) -> bool:
        return self.ms is not None


Item = Span | Pause


@dataclass(frozen=True)
class Document:
    items: tuple[Item, ...]
    #: SSML features rendered only approximately or dropped (for logs).
    degraded: tuple[str, ...] = ()

    @property
    def chars(self) -> int:
        return sum(len(i.text) for i in self.items if isinstance(i, Span))


def plain_text(text: str) -> Document:
    """A ``TextType: text`` request: the whole text, read as it is."""
    return Document((Span(text),))


def parse_ssml(text: str, language: str | None = None) -> Document:
    """Validate Polly SSML and flatten it; raises :class:`SpeechError` (invalid SSML).

    ``language``: the request's language (Polly code), used by language-dependent
    rewrites such as ``say-as ordinal``.
    """
    root = _parse_xml(text)
    if _local(root) != "speak":
        raise SpeechError.invalid_ssml(f"root element is <{_qname(root)}>, not <speak>")
    walker = _Walker(language)
    base = Style()
    lang = root.get(_XML_LANG)
    if lang is not None:
        base = replace(base, lang=_check_lang(lang))
    walker.children(root, base)
    return Document(tuple(walker.items), tuple(sorted(walker.degraded)))


# ---------------------------------------------------------------------------------------


def _parse_xml(text: str) -> ET.Element:
    if _DOCTYPE_RE.search(text):
        raise SpeechError.invalid_ssml("DOCTYPE and entity declarations are not allowed")
    source = _AMAZON_DECL_RE.sub("", text)
    # Polly accepts amazon:* tags without a namespace declaration: bind the prefix.
    source = _SPEAK_OPEN_RE.sub(f'<speak xmlns:amazon="{AMAZON_NS}"', source, count=1)
    parser = ET.XMLParser()
    try:
        parser.feed(source)
        return parser.close()
    except ET.ParseError as exc:
        raise SpeechError.invalid_ssml(f"not well-formed XML: {exc}") from None


def _local(elem: ET.Element) -> str:
    tag = elem.tag if isinstance(elem.tag, str) else ""
    if tag.startswith("{"):
        uri, _, name = tag[1:].partition("}")
        if uri == AMAZON_NS:
            return f"amazon:{name}"
        if uri in ("http://www.w3.org/2001/10/synthesis", ""):
            return name
        return f"{{{uri}}}{name}"
    return tag


def _qname(elem: ET.Element) -> str:
    return _local(elem)


def _attr(elem: ET.Element, name: str) -> str | None:
    if name.startswith("amazon:"):
        return elem.get(f"{{{AMAZON_NS}}}{name[7:]}")
    return elem.get(name)


def _check_lang(value: str) -> str:
    value = value.strip()
    if not LANGUAGE_CODE_RE.fullmatch(value):
        raise SpeechError.invalid_ssml(f"xml:lang {value!r} is not a language code")
    return value


def _parse_time_ms(value: str, what: str) -> float:
    m = _TIME_RE.fullmatch(value)
    if not m:
        raise SpeechError.invalid_ssml(f"{what} {value!r} is not a duration (Ns or Nms)")
    n = float(m.group(1))
    return n * 1000.0 if m.group(2) == "s" else n


def _bad(elem: ET.Element, attr: str, value: str) -> SpeechError:
    return SpeechError.invalid_ssml(f"<{_qname(elem)}> {attr}={value!r} is not a valid value")


class _Walker:
    def __init__(self, language: str | None) -> None:
        self.language = language  # the request's language, for language-dependent rewrites
        self.items: list[Item] = []
        self.degraded: set[str] = set()

    # -- output ----------------------------------------------------------------------------
    def text(self, text: str | None, style: Style) -> None:
        if not text:
            return
        t = _WS_RE.sub(" ", text)
        if t:
            self.items.append(Span(t, style))

    def pause(self, pause: Pause) -> None:
        self.items.append(pause)

    # -- structure -------------------------------------------------------------------------
    def children(self, elem: ET.Element, style: Style) -> None:
        self.text(elem.text, style)
        for child in elem:
            self.element(child, style)
            self.text(child.tail, style)

    def element(self, elem: ET.Element, style: Style) -> None:
        if not isinstance(elem.tag, str):  # comments / processing instructions
            return
        name = _local(elem)
        handler = _HANDLERS.get(name)
        if handler is None:
            raise SpeechError.invalid_ssml(f"unsupported tag <{name}>")
        handler(self, elem, style)

    # -- Polly tags ------------------------------------------------------------------------
    def _p(self, elem: ET.Element, style: Style) -> None:
        self.children(elem, style)
        self.pause(Pause(strength="x-strong"))

    def _s(self, elem: ET.Element, style: Style) -> None:
        self.children(elem, style)
        self.pause(Pause(strength="strong"))

    def _break(self, elem: ET.Element, style: Style) -> None:
        time = elem.get("time")
        strength = elem.get("strength")
        if strength is not None and strength.strip() not in STRENGTH_MS:
            raise _bad(elem, "strength", strength)
        if time is not None:
            ms = _parse_time_ms(time, "break time")
            if ms > MAX_BREAK_MS:
                self.degraded.add("break>10s")
                ms = MAX_BREAK_MS
            self.pause(Pause(ms=int(round(ms))))
        else:
            self.pause(Pause(strength=(strength or "medium").strip()))

    def _prosody(self, elem: ET.Element, style: Style) -> None:
        new = style
        rate = elem.get("rate")
        if rate is not None:
            r = rate.strip()
            if r == "default":
                new = replace(new, rate=1.0)
            elif r in _RATES:
                new = replace(new, rate=new.rate * _RATES[r])
            elif (m := _PERCENT_RE.fullmatch(r)):
                pct = float(m.group(1))
                if not 20.0 <= pct <= 200.0:
                    self.degraded.add("prosody-rate-clamped")
                    pct = min(200.0, max(20.0, pct))
                new = replace(new, rate=new.rate * pct / 100.0)
            else:
                raise _bad(elem, "rate", rate)
        pitch = elem.get("pitch")
        if pitch is not None:
            p = pitch.strip()
            if p == "default":
                new = replace(new, pitch=0.0)
            elif p in _PITCHES:
                new = replace(new, pitch=new.pitch + _PITCHES[p])
            elif (m := _SIGNED_PERCENT_RE.fullmatch(p)):
                delta = float(m.group(2)) * (1 if m.group(1) == "+" else -1)
                new = replace(new, pitch=new.pitch + delta)
            else:
                raise _bad(elem, "pitch", pitch)
        volume = elem.get("volume")
        if volume is not None:
            v = volume.strip()
            if v == "default":
                new = replace(new, volume_db=0.0, silent=False)
            elif v == "silent":
                new = replace(new, silent=True)
            elif v in _VOLUMES:
                new = replace(new, volume_db=new.volume_db + _VOLUMES[v])
            elif (m := _DB_RE.fullmatch(v)):
                delta = float(m.group(2)) * (1 if m.group(1) == "+" else -1)
                new = replace(new, volume_db=new.volume_db + delta)
            else:
                raise _bad(elem, "volume", volume)
        max_duration = _attr(elem, "amazon:max-duration")
        if max_duration is not None:
            _parse_time_ms(max_duration, "amazon:max-duration")
            self.degraded.add("amazon:max-duration")
        self.children(elem, new)

    def _say_as(self, elem: ET.Element, style: Style) -> None:
        kind = elem.get("interpret-as")
        if kind is None:
            raise SpeechError.invalid_ssml("<say-as> needs interpret-as")
        kind = kind.strip()
        if kind not in _SAY_AS:
            raise _bad(elem, "interpret-as", kind)
        content = _WS_RE.sub(" ", "".join(elem.itertext())).strip()
        if not content:
            return
        if kind in ("characters", "spell-out"):
            self.items.append(Span(f" {content} ", style, say_as="characters"))
        elif kind == "digits":
            self.text(" " + " ".join(ch for ch in content if not ch.isspace()) + " ", style)
        elif kind == "telephone":
            self.text(" " + _telephone(content) + " ", style)
        elif kind == "ordinal":
            self.text(" " + _ordinal(content, style.lang or self.language) + " ", style)
        elif kind == "expletive":
            # Polly bleeps the word out: a 1 kHz tone as long as the word would take.
            self.pause(Pause(ms=max(150, 70 * len(content)), tone_hz=1000.0))
        else:
            # cardinal, number, fraction, unit, date, time, address: the engine's own reading.
            if kind in ("date", "unit", "address", "fraction"):
                self.degraded.add(f"say-as:{kind}")
            self.text(f" {content} ", style)

    def _sub(self, elem: ET.Element, style: Style) -> None:
        alias = elem.get("alias")
        if alias is None:
            raise SpeechError.invalid_ssml("<sub> needs alias")
        self.text(f" {alias} ", style)

    def _emphasis(self, elem: ET.Element, style: Style) -> None:
        level = (elem.get("level") or "moderate").strip()
        if level not in _EMPHASIS:
            raise _bad(elem, "level", level)
        self.children(elem, replace(style, emphasis=None if level == "none" else level))

    def _lang(self, elem: ET.Element, style: Style) -> None:
        lang = elem.get(_XML_LANG) or elem.get("lang")
        if lang is None:
            raise SpeechError.invalid_ssml("<lang> needs xml:lang")
        self.children(elem, replace(style, lang=_check_lang(lang)))

    def _phoneme(self, elem: ET.Element, style: Style) -> None:
        alphabet = elem.get("alphabet")
        if alphabet is not None and alphabet.strip() not in ("ipa", "x-sampa"):
            raise _bad(elem, "alphabet", alphabet)
        if elem.get("ph") is None:
            raise SpeechError.invalid_ssml("<phoneme> needs ph")
        # The local engine does not take IPA/X-SAMPA: read the written form instead.
        self.degraded.add("phoneme")
        self.children(elem, style)

    def _mark(self, elem: ET.Element, style: Style) -> None:
        if elem.get("name") is None:
            raise SpeechError.invalid_ssml("<mark> needs name")

    def _w(self, elem: ET.Element, style: Style) -> None:
        if elem.get("role") is not None:
            self.degraded.add("w-role")
        self.children(elem, style)

    def _amazon_effect(self, elem: ET.Element, style: Style) -> None:
        name = elem.get("name")
        phonation = elem.get("phonation")
        vtl = elem.get("vocal-tract-length")
        if name is None and phonation is None and vtl is None:
            raise SpeechError.invalid_ssml("<amazon:effect> needs name, phonation or vocal-tract-length")
        new = style
        if name is not None:
            if name.strip() == "whispered":
                new = replace(new, whisper=True)
            elif name.strip() == "drc":
                self.degraded.add("amazon:effect-drc")
            else:
                raise _bad(elem, "name", name)
        if phonation is not None:
            if phonation.strip() != "soft":
                raise _bad(elem, "phonation", phonation)
            new = replace(new, volume_db=new.volume_db - 4.0)
        if vtl is not None:
            m = _SIGNED_PERCENT_RE.fullmatch(vtl)
            if not m:
                raise _bad(elem, "vocal-tract-length", vtl)
            # A longer vocal tract sounds lower: approximate with pitch.
            delta = float(m.group(2)) * (1 if m.group(1) == "+" else -1)
            new = replace(new, pitch=new.pitch - delta)
        self.children(elem, new)

    def _amazon_auto_breaths(self, elem: ET.Element, style: Style) -> None:
        self.degraded.add("amazon:auto-breaths")
        self.children(elem, style)

    def _amazon_breath(self, elem: ET.Element, style: Style) -> None:
        self.degraded.add("amazon:breath")
        self.pause(Pause(strength="weak"))

    def _amazon_domain(self, elem: ET.Element, style: Style) -> None:
        if elem.get("name") is None:
            raise SpeechError.invalid_ssml("<amazon:domain> needs name")
        self.degraded.add("amazon:domain")
        self.children(elem, style)


_HANDLERS = {
    "p": _Walker._p,
    "s": _Walker._s,
    "break": _Walker._break,
    "prosody": _Walker._prosody,
    "say-as": _Walker._say_as,
    "sub": _Walker._sub,
    "emphasis": _Walker._emphasis,
    "lang": _Walker._lang,
    "phoneme": _Walker._phoneme,
    "mark": _Walker._mark,
    "w": _Walker._w,
    "amazon:effect": _Walker._amazon_effect,
    "amazon:auto-breaths": _Walker._amazon_auto_breaths,
    "amazon:breath": _Walker._amazon_breath,
    "amazon:domain": _Walker._amazon_domain,
}


def _telephone(content: str) -> str:
    """'+1 (800) 555-0199' -> '+1, 8 0 0, 5 5 5, 0 1 9 9': digit by digit, grouped."""
    groups = [g for g in re.split(r"[^0-9+*#A-Za-z]+", content) if g]
    out = []
    for g in groups:
        if g.startswith("+"):
            out.append("plus " + " ".join(g[1:]))
        else:
            out.append(" ".join(g))
    return ", ".join(out)


def _ordinal(content: str, lang: str | None) -> str:
    if not content.isdigit() or (lang is not None and not lang.startswith("en")):
        return content
    n = int(content)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{content}{suffix}"
