"""E.164 phone-number normalisation (pure functions, no I/O)."""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["E164_PATTERN", "is_e164", "normalize_e164", "uri_user_part"]

#: ``+`` then a non-zero country-code digit, 2..15 digits in all (ITU-T E.164).
E164_PATTERN = re.compile(r"\+[1-9][0-9]{1,14}")

_SEPARATORS = re.compile(r"[\s\-.()]")
_SCHEMES = ("sips:", "sip:", "tel:")


def is_e164(value: str) -> bool:
    """True when ``value`` is exactly ``+`` followed by 2..15 digits (first digit non-zero)."""
    return isinstance(value, str) and E164_PATTERN.fullmatch(value) is not None


def uri_user_part(value: str) -> str:
    """Return the user part of a SIP/tel URI (or the value itself when it is not a URI).

    Handles ``"Name" <sip:user@host>``, ``sip:``/``sips:``/``tel:`` schemes, ``user:password``,
    URI parameters (``;user=phone``), URI headers (``?X=1``) and percent-encoding.
    """
    text = value.strip()
    if "<" in text and ">" in text:
        text = text[text.index("<") + 1 : text.rindex(">")]
    lowered = text.lower()
    for scheme in _SCHEMES:
        if lowered.startswith(scheme):
            text = text[len(scheme) :]
            break
    else:
        scheme = ""
    if scheme != "tel:" and "@" in text:
        text = text.rsplit("@", 1)[0]
        if ":" in text:  # user:password
            text = text.split(":", 1)[0]
    text = text.split("?", 1)[0].split(";", 1)[0]
    return unquote(text).strip()


def normalize_e164(user: str, default_country_code: str = "1") -> str | None:
    """Normalise a SIP/tel URI user part or a dialled number to E.164, or return None.

    Rules: visual separators (space ``-`` ``.`` ``(`` ``)``) are removed; ``+...`` is kept;
    ``00<cc>...`` becomes ``+<cc>...``; with country code ``1`` the NANP international prefix
    ``011`` becomes ``+``, 10 digits become ``+1`` + digits, 11 digits starting with ``1`` get a
    ``+``, and 12..15 digits are taken as E.164 written without the ``+``; with any other
    country code a leading trunk ``0`` is dropped and the country code prepended. The result
    must match :data:`E164_PATTERN`, otherwise None (e.g. ``"alice"``, ``"*97"``).
    """
    if not isinstance(user, str):
        return None
    cc = str(default_country_code).strip().lstrip("+")
    number = _SEPARATORS.sub("", uri_user_part(user))
    if not number:
        return None
    if number.startswith("+"):
        candidate = number
    elif not number.isdigit() or not number.isascii():
        return None
    elif cc == "1" and number.startswith("011"):
        candidate = "+" + number[3:]
    elif number.startswith("00"):
        candidate = "+" + number[2:]
    elif cc == "1":
        if len(number) == 10:
            candidate = "+1" + number
        elif (len(number) == 11 and number.startswith("1")) or 12 <= len(number) <= 15:
            candidate = "+" + number  # 1NXXNXXXXXX, or E.164 sent without its "+"
        else:
            return None
    else:
        if number.startswith("0"):
            number = number[1:]
        if not number:
            return None
        candidate = "+" + cc + number
    return candidate if is_e164(candidate) else None
