"""Text understanding for the local bot: normalisation, numbers, slot values, scores.

Deliberately small and deterministic (docs/bots.md, "Matching"):

* ``tokenize`` lower-cases, drops punctuation and apostrophes (``I'd`` -> ``id``)
  and keeps each token's original spelling for ``OriginalValue``;
* slot values are found as token phrases (longest first), with a per-token fuzzy
  fallback (difflib ratio) for misspellings;
* an utterance is scored against an intent's sample utterances after the slot
  values it contains are replaced by ``{SlotName}`` placeholders: 0.6 x token
  overlap F1 on content words (fuzzy token equality) + 0.4 x difflib sequence
  ratio on all tokens, rounded to two decimals.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

STOPWORDS = frozenset("""
a an the i me my we us our you your to would will like want wanna please pls can could may
some for of is it its and or um uh er just do does so that this be am are have hi hello hey
""".split())

UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
        "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
DIGIT_WORDS = {w for w, v in UNITS.items() if v < 10}

YES_WORDS = ("yes", "yeah", "yep", "yup", "sure", "correct", "right", "ok", "okay", "affirmative",
             "absolutely", "certainly", "of course", "please do", "go ahead", "sounds good", "confirm")
NO_WORDS = ("no", "nope", "nah", "negative", "not", "do not", "wrong", "incorrect",
            "cancel", "never mind", "nevermind", "stop")

FUZZY_TOKEN_CUTOFF = 0.8
_TOKEN_RE = re.compile(r"[\w']+|\{\w+\}")


@dataclass(frozen=True)
class Token:
    norm: str
    orig: str


_S_IS = frozenset("he she it that what where who how there here".split())
_IRREGULAR = {"won't": ["will", "not"], "can't": ["can", "not"], "cannot": ["can", "not"],
              "shan't": ["shall", "not"], "let's": ["let", "us"]}
_SUFFIXES = (("n't", "not"), ("'d", "would"), ("'ll", "will"), ("'re", "are"), ("'ve", "have"), ("'m", "am"))


def _expand(word: str) -> list[str]:
    """``where's`` -> ``where is``, ``i'd`` -> ``i would``, ``don't`` -> ``do not``; ``bob's`` -> ``bob``."""
    w = word.lower().replace("\u2019", "'").strip("'")
    if w in _IRREGULAR:
        return list(_IRREGULAR[w])
    for suffix, full in _SUFFIXES:
        if w.endswith(suffix) and len(w) > len(suffix):
            return [w[: -len(suffix)].replace("'", ""), full]
    if w.endswith("'s") and len(w) > 2:
        base = w[:-2].replace("'", "")
        return [base, "is"] if base in _S_IS else [base]
    return [w.replace("'", "")]


def tokenize(text: str, *, keep_placeholders: bool = False) -> list[Token]:
    """Tokens of *text*: ``norm`` lower-cased with contractions expanded, ``orig`` as written."""
    out: list[Token] = []
    for m in _TOKEN_RE.finditer(str(text).replace("\u2019", "'")):
        raw = m.group(0)
        if raw.startswith("{"):
            if keep_placeholders:
                out.append(Token(raw.lower(), raw))
            continue
        parts = [p.replace("_", "") for p in _expand(raw)]
        parts = [p for p in parts if p]
        if len(parts) == 1:
            out.append(Token(parts[0], raw.strip("'")))
        else:
            out.extend(Token(p, p) for p in parts)
    return out


def normalize(text: str) -> str:
    return " ".join(t.norm for t in tokenize(text))


# -- numbers -----------------------------------------------------------------

def _is_number_token(norm: str) -> bool:
    return norm.isdigit() or norm in UNITS or norm in TENS or norm in SCALES


def parse_number_words(words: list[str]) -> str | None:
    """``["one","two","three","four"]`` -> ``"1234"``; ``["twenty","five"]`` -> ``"25"``."""
    words = [w for w in words if w != "and"]
    if not words:
        return None
    if len(words) > 1 and all((w.isdigit() and len(w) == 1) or w in DIGIT_WORDS for w in words):
        return "".join(w if w.isdigit() else str(UNITS[w]) for w in words)
    if len(words) == 1 and words[0].isdigit():
        return words[0]
    total = 0
    current = 0
    seen = False
    for w in words:
        if w.isdigit():
            current += int(w)
        elif w in UNITS:
            current += UNITS[w]
        elif w in TENS:
            current += TENS[w]
        elif w == "hundred":
            current = (current or 1) * 100
        elif w in SCALES:
            total += (current or 1) * SCALES[w]
            current = 0
        else:
            return None
        seen = True
    return str(total + current) if seen else None


def find_numbers(tokens: list[Token], used: set[int] | None = None) -> list[tuple[int, int, str]]:
    """Runs of number tokens as ``(start, end, value)`` (end exclusive)."""
    used = used or set()
    runs: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        if i in used or not _is_number_token(tokens[i].norm) or tokens[i].norm == "oh":
            i += 1
            continue
        j = i + 1
        while j < len(tokens) and j not in used:
            n = tokens[j].norm
            if _is_number_token(n):
                j += 1
            elif (n == "and" and j + 1 < len(tokens) and tokens[j - 1].norm in SCALES
                  and _is_number_token(tokens[j + 1].norm)):
                j += 1
            else:
                break
        value = parse_number_words([t.norm for t in tokens[i:j]])
        if value is not None:
            runs.append((i, j, value))
        i = j
    return runs


# -- phrases -------------------------------------------------------------------

def tokens_similar(a: str, b: str) -> bool:
    if a == b:
        return True
    if len(a) < 4 or len(b) < 4 or a.isdigit() or b.isdigit():
        return False
    return difflib.SequenceMatcher(None, a, b).ratio() >= FUZZY_TOKEN_CUTOFF


def find_phrases(tokens: list[Token], phrases: Mapping[tuple[str, ...], T], used: set[int] | None = None,
                 *, fuzzy: bool = True) -> list[tuple[int, int, T]]:
    """Non-overlapping occurrences of *phrases* (token tuples -> label), longest first.

    Exact matches are taken first; with *fuzzy*, remaining single tokens of four or
    more letters may match a one-token phrase by difflib ratio.
    """
    used = set(used or ())
    found: list[tuple[int, int, T]] = []
    norms = [t.norm for t in tokens]
    for phrase in sorted(phrases, key=len, reverse=True):
        n = len(phrase)
        for i in range(len(norms) - n + 1):
            if any(k in used for k in range(i, i + n)):
                continue
            if tuple(norms[i:i + n]) == phrase:
                found.append((i, i + n, phrases[phrase]))
                used.update(range(i, i + n))
    if fuzzy:
        singles = [p for p in phrases if len(p) == 1]
        for i, norm in enumerate(norms):
            if i in used or norm in STOPWORDS:
                continue
            best = None
            best_ratio = 0.0
            for p in singles:
                if tokens_similar(norm, p[0]):
                    r = difflib.SequenceMatcher(None, norm, p[0]).ratio()
                    if r > best_ratio:
                        best, best_ratio = p, r
            if best is not None:
                found.append((i, i + 1, phrases[best]))
                used.add(i)
    found.sort()
    return found


def confirmation_of(tokens: list[Token]) -> str | None:
    """"Yes" / "No" / None for a yes-no answer (a "no" word wins over a "yes" word)."""
    norms = [t.norm for t in tokens]
    text = " " + " ".join(norms) + " "
    has_no = any(f" {w} " in text for w in NO_WORDS)
    has_yes = any(f" {w} " in text for w in YES_WORDS)
    if has_no:
        return "No"
    if has_yes:
        return "Yes"
    return None


# -- scoring -------------------------------------------------------------------

def _content(tokens: list[str]) -> list[str]:
    kept = [t for t in tokens if t not in STOPWORDS]
    return kept or list(tokens)


def _matched(src: list[str], dst: list[str]) -> int:
    pool = list(dst)
    count = 0
    for s in src:
        for k, d in enumerate(pool):
            if tokens_similar(s, d):
                count += 1
                del pool[k]
                break
    return count


def similarity(user: list[str], template: list[str]) -> float:
    """Score in [0, 1] of a (delexicalised) user token list against a sample utterance."""
    if not user or not template:
        return 0.0
    if user == template:
        return 1.0
    uc, tc = _content(user), _content(template)
    mu, mt = _matched(uc, tc), _matched(tc, uc)
    precision = mu / len(uc)
    recall = mt / len(tc)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    seq = difflib.SequenceMatcher(None, user, template, autojunk=False).ratio()
    return round(min(1.0, 0.6 * f1 + 0.4 * seq), 2)
