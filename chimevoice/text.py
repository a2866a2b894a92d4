"""Text that came off the wire: bytes that are not UTF-8 kept visible, never lost.

pjsua2 (SWIG) turns the bytes of a SIP message into ``str`` with the ``surrogateescape``
error handler: a byte that is not UTF-8 becomes a lone surrogate (``0xff`` → ``"\\udcff"``).
Such a string cannot be encoded as UTF-8, so a CDR, a log line or a handler event that
carries it would fail to be written. :func:`escape_undecodable` turns each of those
surrogates into the four characters ``\\xNN`` (the byte in hex), the same spelling as
Python's ``backslashreplace``; every other character is kept. The result always encodes
as UTF-8. It is applied where pjsua2's strings enter the daemon (``sip/endpoint.py``) and,
as a second guard, where records are written (``cdr.py``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def escape_undecodable(text: str) -> str:
    """*text* with every lone surrogate written as ``\\xNN`` (an escaped undecodable byte,
    U+DC80..U+DCFF) or ``\\uNNNN`` (any other surrogate); unchanged when it encodes as UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def escape_strings(value: Any) -> Any:
    """*value* with :func:`escape_undecodable` applied to every string in it (keys too),
    through dicts, lists and tuples; other values unchanged."""
    if isinstance(value, str):
        return escape_undecodable(value)
    if isinstance(value, Mapping):
        return {escape_strings(k): escape_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(escape_strings(v) for v in value)
    return value


__all__ = ["escape_undecodable", "escape_strings"]
