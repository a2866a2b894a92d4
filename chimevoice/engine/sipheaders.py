"""SIP headers a handler may put on an outbound leg (spec 04 §2.3).

Used by ``CallAndBridge`` (``SipHeaders``) and by ``CreateSipMediaApplicationCall``.
Allowed: names starting ``x-`` (any case), ``User-to-User`` and ``Diversion``; not the
service's internal prefixes (``X-AMZN``, ``x-vine``, ``x-vc``, ``x-canary``, ``x-voice``);
a name must be an RFC 3261 token; a value at most 2048 characters, on one line.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

RESERVED_PREFIXES = ("x-amzn", "x-vine", "x-vc", "x-canary", "x-voice")
NAMED = ("user-to-user", "diversion")
MAX_VALUE_CHARS = 2048
MSG_INVALID = "Invalid SIP header(s) provided: {names}"

_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")     # RFC 3261 token


def invalid_sip_headers(headers: Mapping[str, Any]) -> list[str]:
    """The names in *headers* that may not be sent, in the order given (empty: all good)."""
    bad = []
    for name, value in headers.items():
        n = str(name).lower()
        allowed = n.startswith("x-") or n in NAMED
        reserved = any(n == r or n.startswith(r + "-") for r in RESERVED_PREFIXES)
        good_value = (isinstance(value, str) and len(value) <= MAX_VALUE_CHARS
                      and "\r" not in value and "\n" not in value)
        if not allowed or reserved or not good_value or not _TOKEN.match(str(name)):
            bad.append(str(name))
    return bad


def invalid_headers_message(names: list[str]) -> str:
    """The ErrorMessage of ``ACTION_FAILED`` for *names* (several joined with ``", "``)."""
    return MSG_INVALID.format(names=", ".join(names))
