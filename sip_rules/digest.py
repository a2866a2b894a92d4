"""SIP digest authentication (RFC 2617 / RFC 3261 §22.4), MD5, ``qop=auth`` or no qop.

Pure functions: the nonce is a timestamp signed with HMAC-SHA256 under a server secret, so
the server keeps no per-nonce state (replays inside ``max_age_s`` are not detected).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

__all__ = [
    "NonceStatus",
    "compute_response",
    "make_challenge",
    "make_nonce",
    "nonce_status",
    "parse_authorization",
    "verify_digest",
]

NonceStatus = Literal["valid", "stale", "invalid"]

_SIG_HEX = 32  # 128 bits of the HMAC-SHA256 tag
_CLOCK_SKEW_S = 2.0
_HEX = frozenset("0123456789abcdef")  # a nonce from "slightly in the future" is still accepted


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _sign(secret: bytes, stamp: str) -> str:
    return hmac.new(secret, stamp.encode("ascii"), hashlib.sha256).hexdigest()[:_SIG_HEX]


def make_nonce(secret: bytes, now: float) -> str:
    """A stateless nonce: ``<hex milliseconds>.<HMAC-SHA256 tag>``."""
    stamp = format(int(now * 1000), "x")
    return f"{stamp}.{_sign(secret, stamp)}"


def nonce_status(nonce: str, *, secret: bytes, now: float, max_age_s: float = 300) -> NonceStatus:
    """``valid``; ``stale`` (genuine but older than ``max_age_s``); or ``invalid`` (forged/garbled)."""
    stamp, sep, tag = nonce.partition(".")
    if not sep or not stamp or len(stamp) > 16 or not all(c in _HEX for c in stamp):
        return "invalid"
    issued_ms = int(stamp, 16)
    if not hmac.compare_digest(tag.encode("ascii", "replace"), _sign(secret, stamp).encode("ascii")):
        return "invalid"
    age = now - issued_ms / 1000.0
    if age < -_CLOCK_SKEW_S:
        return "invalid"
    return "valid" if age <= max_age_s else "stale"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_challenge(realm: str, nonce: str, *, stale: bool = False, qop: bool = True) -> str:
    """A ``WWW-Authenticate`` / ``Proxy-Authenticate`` header value offering MD5 digest."""
    parts = [f"realm={_quote(realm)}", f"nonce={_quote(nonce)}", "algorithm=MD5"]
    if qop:
        parts.append('qop="auth"')
    if stale:
        parts.append("stale=TRUE")
    return "Digest " + ", ".join(parts)


def parse_authorization(header_value: str) -> dict[str, str]:
    """Parse an ``Authorization`` header value into lower-cased parameter names and values.

    Returns ``{}`` when the scheme is not ``Digest``. Quoted strings are unescaped.
    """
    text = header_value.strip()
    scheme, _, rest = text.partition(" ")
    if scheme.lower() != "digest":
        return {}
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t\r\n,":
            i += 1
        start = i
        while i < n and rest[i] not in "=, \t":
            i += 1
        name = rest[start:i].strip().lower()
        while i < n and rest[i] in " \t":
            i += 1
        if i >= n or rest[i] != "=":
            if name:
                params.setdefault(name, "")
            continue
        i += 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            chars: list[str] = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(rest[i])
                i += 1
            i += 1  # closing quote
            value = "".join(chars)
        else:
            start = i
            while i < n and rest[i] != ",":
                i += 1
            value = rest[start:i].strip()
        if name:
            params[name] = value
    return params


def compute_response(
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The digest ``response`` value (RFC 2617 §3.2.2.1, MD5)."""
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def verify_digest(
    params: dict[str, str],
    *,
    method: str,
    username: str,
    password: str,
    realm: str,
    secret: bytes,
    now: float,
    max_age_s: float = 300,
) -> bool:
    """Check parsed ``Authorization`` params: user, realm, algorithm, nonce signature/age, response."""
    if params.get("username") != username or params.get("realm") != realm:
        return False
    if params.get("algorithm", "MD5").upper() != "MD5":
        return False
    nonce, uri, response = params.get("nonce"), params.get("uri"), params.get("response")
    if not nonce or not uri or not response:
        return False
    if nonce_status(nonce, secret=secret, now=now, max_age_s=max_age_s) != "valid":
        return False
    qop = params.get("qop") or None
    if qop is not None and (qop.lower() != "auth" or not params.get("nc") or not params.get("cnonce")):
        return False
    expected = compute_response(
        username=username,
        realm=realm,
        password=password,
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=params.get("nc"),
        cnonce=params.get("cnonce"),
    )
    return hmac.compare_digest(expected, response.lower())
