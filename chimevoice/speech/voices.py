"""The Polly voice catalogue and the local (espeak-ng) voice table.

The guide only links to Polly's voice and language lists (spec 03b D36); this module is
the self-hosted catalogue spec 03b §2.3 asks for: for every Polly ``VoiceId`` that offers
the ``standard`` or ``neural`` engine, its gender, default language, additional
languages (bilingual voices) and engines. Voice IDs and language codes are
case-sensitive, as in Polly's API (``joanna`` and ``en-us`` are rejected).

Voices Polly offers only with engines the Speak action does not allow (``generative``,
``long-form``), and voices newer than this table, are not listed: the local backend
rejects them with ``VoiceId parameter value is invalid.`` (the Polly backend leaves
the decision to Polly). ``tests/speech/test_voices.py`` checks every entry against
botocore's Polly model.

Local mapping (docs/speech.md has the full table): :data:`LOCAL_VOICES` maps a voice to
an espeak-ng voice spec (``language+variant``); a catalogue voice that is not in it uses
its language's default local voice (:data:`LOCAL_LANGUAGES`, female or male variant by
the voice's gender), and that fallback is logged once per voice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "VoiceInfo",
    "POLLY_VOICES",
    "POLLY_LANGUAGES",
    "LANGUAGE_CODE_RE",
    "DEFAULT_VOICE_ID",
    "LOCAL_VOICES",
    "LOCAL_LANGUAGES",
    "local_voice_for",
]

DEFAULT_VOICE_ID = "Joanna"


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    gender: str  # "Female" | "Male"
    language: str  # default language
    engines: frozenset[str]
    additional_languages: tuple[str, ...] = ()

    @property
    def languages(self) -> tuple[str, ...]:
        return (self.language, *self.additional_languages)


_S = frozenset({"standard"})
_N = frozenset({"neural"})
_SN = frozenset({"standard", "neural"})
F, M = "Female", "Male"

# (id, gender, language, engines, additional languages)
_CATALOGUE: tuple[tuple[str, str, str, frozenset[str], tuple[str, ...]], ...] = (
    ("Zeina", F, "arb", _S, ()),
    ("Hala", F, "ar-AE", _N, ()),
    ("Zayd", M, "ar-AE", _N, ()),
    ("Arlet", F, "ca-ES", _N, ()),
    ("Zhiyu", F, "cmn-CN", _SN, ()),
    ("Hiujin", F, "yue-CN", _N, ()),
    ("Jitka", F, "cs-CZ", _N, ()),
    ("Gwyneth", F, "cy-GB", _S, ()),
    ("Naja", F, "da-DK", _S, ()),
    ("Mads", M, "da-DK", _S, ()),
    ("Sofie", F, "da-DK", _N, ()),
    ("Lisa", F, "nl-BE", _N, ()),
    ("Lotte", F, "nl-NL", _S, ()),
    ("Ruben", M, "nl-NL", _S, ()),
    ("Laura", F, "nl-NL", _N, ()),
    ("Nicole", F, "en-AU", _S, ()),
    ("Russell", M, "en-AU", _S, ()),
    ("Olivia", F, "en-AU", _N, ()),
    ("Amy", F, "en-GB", _SN, ()),
    ("Emma", F, "en-GB", _SN, ()),
    ("Brian", M, "en-GB", _SN, ()),
    ("Arthur", M, "en-GB", _N, ()),
    ("Geraint", M, "en-GB-WLS", _S, ()),
    ("Aditi", F, "en-IN", _S, ("hi-IN",)),
    ("Raveena", F, "en-IN", _S, ()),
    ("Kajal", F, "en-IN", _N, ("hi-IN",)),
    ("Niamh", F, "en-IE", _N, ()),
    ("Aria", F, "en-NZ", _N, ()),
    ("Jasmine", F, "en-SG", _N, ()),
    ("Ayanda", F, "en-ZA", _N, ()),
    ("Danielle", F, "en-US", _N, ()),
    ("Gregory", M, "en-US", _N, ()),
    ("Ivy", F, "en-US", _SN, ()),
    ("Joanna", F, "en-US", _SN, ()),
    ("Joey", M, "en-US", _SN, ()),
    ("Justin", M, "en-US", _SN, ()),
    ("Kendra", F, "en-US", _SN, ()),
    ("Kevin", M, "en-US", _N, ()),
    ("Kimberly", F, "en-US", _SN, ()),
    ("Matthew", M, "en-US", _SN, ()),
    ("Ruth", F, "en-US", _N, ()),
    ("Salli", F, "en-US", _SN, ()),
    ("Stephen", M, "en-US", _N, ()),
    ("Suvi", F, "fi-FI", _N, ()),
    ("Isabelle", F, "fr-BE", _N, ()),
    ("Chantal", F, "fr-CA", _S, ()),
    ("Gabrielle", F, "fr-CA", _N, ()),
    ("Liam", M, "fr-CA", _N, ()),
    ("Celine", F, "fr-FR", _S, ()),
    ("Lea", F, "fr-FR", _SN, ()),
    ("Mathieu", M, "fr-FR", _S, ()),
    ("Remi", M, "fr-FR", _N, ()),
    ("Hannah", F, "de-AT", _N, ()),
    ("Sabrina", F, "de-CH", _N, ()),
    ("Marlene", F, "de-DE", _S, ()),
    ("Vicki", F, "de-DE", _SN, ()),
    ("Hans", M, "de-DE", _S, ()),
    ("Daniel", M, "de-DE", _N, ()),
    ("Dora", F, "is-IS", _S, ()),
    ("Karl", M, "is-IS", _S, ()),
    ("Carla", F, "it-IT", _S, ()),
    ("Bianca", F, "it-IT", _SN, ()),
    ("Giorgio", M, "it-IT", _S, ()),
    ("Adriano", M, "it-IT", _N, ()),
    ("Mizuki", F, "ja-JP", _S, ()),
    ("Takumi", M, "ja-JP", _SN, ()),
    ("Kazuha", F, "ja-JP", _N, ()),
    ("Tomoko", F, "ja-JP", _N, ()),
    ("Seoyeon", F, "ko-KR", _SN, ()),
    ("Jihye", F, "ko-KR", _N, ()),
    ("Liv", F, "nb-NO", _S, ()),
    ("Ida", F, "nb-NO", _N, ()),
    ("Ewa", F, "pl-PL", _S, ()),
    ("Maja", F, "pl-PL", _S, ()),
    ("Jacek", M, "pl-PL", _S, ()),
    ("Jan", M, "pl-PL", _S, ()),
    ("Ola", F, "pl-PL", _N, ()),
    ("Camila", F, "pt-BR", _SN, ()),
    ("Vitoria", F, "pt-BR", _SN, ()),
    ("Ricardo", M, "pt-BR", _S, ()),
    ("Thiago", M, "pt-BR", _N, ()),
    ("Ines", F, "pt-PT", _SN, ()),
    ("Cristiano", M, "pt-PT", _S, ()),
    ("Carmen", F, "ro-RO", _S, ()),
    ("Tatyana", F, "ru-RU", _S, ()),
    ("Maxim", M, "ru-RU", _S, ()),
    ("Conchita", F, "es-ES", _S, ()),
    ("Lucia", F, "es-ES", _SN, ()),
    ("Enrique", M, "es-ES", _S, ()),
    ("Sergio", M, "es-ES", _N, ()),
    ("Mia", F, "es-MX", _SN, ()),
    ("Andres", M, "es-MX", _N, ()),
    ("Lupe", F, "es-US", _SN, ()),
    ("Penelope", F, "es-US", _S, ()),
    ("Miguel", M, "es-US", _S, ()),
    ("Pedro", M, "es-US", _N, ()),
    ("Astrid", F, "sv-SE", _S, ()),
    ("Elin", F, "sv-SE", _N, ()),
    ("Filiz", F, "tr-TR", _S, ()),
    ("Burcu", F, "tr-TR", _N, ()),
)

POLLY_VOICES: dict[str, VoiceInfo] = {
    vid: VoiceInfo(vid, gender, lang, engines, extra) for vid, gender, lang, engines, extra in _CATALOGUE
}

#: Polly's LanguageCode values (SynthesizeSpeech / DescribeVoices enum).
POLLY_LANGUAGES: frozenset[str] = frozenset({
    "arb", "cmn-CN", "cy-GB", "da-DK", "de-DE", "en-AU", "en-GB", "en-GB-WLS", "en-IN", "en-US",
    "es-ES", "es-MX", "es-US", "fr-CA", "fr-FR", "is-IS", "it-IT", "ja-JP", "hi-IN", "ko-KR",
    "nb-NO", "nl-NL", "pl-PL", "pt-BR", "pt-PT", "ro-RO", "ru-RU", "sv-SE", "tr-TR", "en-NZ",
    "en-ZA", "ca-ES", "de-AT", "yue-CN", "ar-AE", "fi-FI", "en-IE", "nl-BE", "fr-BE", "cs-CZ",
    "de-CH", "en-SG",
})

#: The shape of a Polly language code: ISO 639 (2-3 lower-case letters), then an
#: optional ISO 3166 region and an optional 3-letter sub-region (``en-GB-WLS``).
LANGUAGE_CODE_RE = re.compile(r"[a-z]{2,3}(?:-[A-Z]{2}(?:-[A-Z]{3})?)?")

# ---------------------------------------------------------------------------------------
# Local voices (espeak-ng)
# ---------------------------------------------------------------------------------------

#: Polly language -> (espeak-ng voice, female variant, male variant). ``None``: no local voice.
LOCAL_LANGUAGES: dict[str, tuple[str, str, str] | None] = {
    "arb": ("ar", "f3", "m3"),
    "ar-AE": ("ar", "f3", "m3"),
    "ca-ES": ("ca", "f3", "m3"),
    "cmn-CN": ("cmn", "f3", "m3"),
    "yue-CN": ("yue", "f3", "m3"),
    "cs-CZ": ("cs", "f3", "m3"),
    "cy-GB": ("cy", "f3", "m3"),
    "da-DK": ("da", "f3", "m3"),
    "de-DE": ("de", "f3", "m3"),
    "de-AT": ("de", "f3", "m3"),
    "de-CH": ("de", "f3", "m3"),
    "en-US": ("en-us", "f3", "m3"),
    "en-GB": ("en-gb", "f3", "m3"),
    "en-GB-WLS": ("en-gb", "f3", "m3"),
    "en-AU": ("en-gb", "f3", "m3"),
    "en-NZ": ("en-gb", "f3", "m3"),
    "en-IE": ("en-gb", "f3", "m3"),
    "en-IN": ("en-gb", "f3", "m3"),
    "en-SG": ("en-gb", "f3", "m3"),
    "en-ZA": ("en-gb", "f3", "m3"),
    "es-ES": ("es", "f3", "m3"),
    "es-MX": ("es-419", "f3", "m3"),
    "es-US": ("es-419", "f3", "m3"),
    "fi-FI": ("fi", "f3", "m3"),
    "fr-FR": ("fr-fr", "f3", "m3"),
    "fr-BE": ("fr-be", "f3", "m3"),
    "fr-CA": ("fr-fr", "f3", "m3"),
    "hi-IN": ("hi", "f3", "m3"),
    "is-IS": ("is", "f3", "m3"),
    "it-IT": ("it", "f3", "m3"),
    "ja-JP": ("ja", "f3", "m3"),
    "ko-KR": ("ko", "f3", "m3"),
    "nb-NO": ("nb", "f3", "m3"),
    "nl-NL": ("nl", "f3", "m3"),
    "nl-BE": ("nl", "f3", "m3"),
    "pl-PL": ("pl", "f3", "m3"),
    "pt-BR": ("pt-br", "f3", "m3"),
    "pt-PT": ("pt", "f3", "m3"),
    "ro-RO": ("ro", "f3", "m3"),
    "ru-RU": ("ru", "f3", "m3"),
    "sv-SE": ("sv", "f3", "m3"),
    "tr-TR": ("tr", "f3", "m3"),
}

#: Polly voice -> espeak-ng variant, for voices with a voice of their own locally. The
#: espeak-ng language comes from LOCAL_LANGUAGES for the language being spoken (so a
#: bilingual voice keeps its variant in both languages).
LOCAL_VOICES: dict[str, str] = {
    # en-US
    "Joanna": "f3", "Salli": "f2", "Kendra": "f4", "Kimberly": "f5", "Ivy": "f1",
    "Ruth": "linda", "Danielle": "steph",
    "Matthew": "m3", "Joey": "m2", "Justin": "m1", "Kevin": "m5", "Gregory": "m4", "Stephen": "m6",
    # en-GB and other English
    "Amy": "f3", "Emma": "f2", "Brian": "m3", "Arthur": "m2",
    "Nicole": "f4", "Olivia": "f5", "Russell": "m4",
    "Aditi": "f2", "Raveena": "f4", "Kajal": "f3",
    "Geraint": "m6", "Niamh": "f2", "Aria": "f3", "Jasmine": "f4", "Ayanda": "f5",
    # Spanish, French, German
    "Lucia": "f3", "Conchita": "f2", "Enrique": "m3", "Sergio": "m2",
    "Mia": "f3", "Andres": "m3", "Lupe": "f3", "Penelope": "f2", "Miguel": "m3", "Pedro": "m2",
    "Lea": "f3", "Celine": "f2", "Mathieu": "m3", "Remi": "m2",
    "Chantal": "f3", "Gabrielle": "f2", "Liam": "m3", "Isabelle": "f3",
    "Vicki": "f3", "Marlene": "f2", "Hans": "m3", "Daniel": "m2", "Hannah": "f3", "Sabrina": "f3",
}


def local_voice_for(voice: VoiceInfo, language: str,
                    languages: dict[str, tuple[str, str, str] | None] | None = None,
                    ) -> tuple[str, str, bool] | None:
    """``(espeak language voice, variant, explicit)`` for ``voice`` speaking ``language``.

    ``explicit`` is False when the voice has no entry in :data:`LOCAL_VOICES` and the
    language's default variant for its gender is used. ``None``: no local voice for
    ``language``.
    """
    table = LOCAL_LANGUAGES if languages is None else languages
    entry = table.get(language)
    if entry is None:
        return None
    base, female, male = entry
    variant = LOCAL_VOICES.get(voice.id)
    if variant is not None:
        return base, variant, True
    return base, (female if voice.gender == F else male), False
