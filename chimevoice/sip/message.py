"""Tiny, pure helpers to read the parts of a SIP request that pjsua2 does not expose."""
from __future__ import annotations

import re
from urllib.parse import unquote

# RFC 3261 compact header forms we may meet.
_COMPACT = {"f": "from", "t": "to", "i": "call-id", "m": "contact", "v": "via", "l": "content-length",
            "c": "content-type", "k": "supported"}


def parse_request(text: str) -> tuple[str, str, dict[str, list[str]], str]:
    """(method, request_uri, headers, body) from a whole SIP request.

    Header names are lower-cased (compact forms expanded); folded lines are joined.
    """
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    parts = lines[0].split(" ")
    method, uri = (parts[0], parts[1]) if len(parts) >= 3 else ("", "")
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last:
            headers[last][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip().lower()
        name = _COMPACT.get(name, name)
        headers.setdefault(name, []).append(value.strip())
        last = name
    return method, uri, headers, body


def body_shorter_than_declared(raw_message: str, content_length: str) -> bool:
    """Whether *raw_message* (as pjsua2 gives it: undecodable bytes as lone surrogates)
    holds fewer body bytes than its Content-Length declares. pjsip accepts such a UDP
    datagram with the body it has; RFC 4475 §3.1.2.2 wants 400 (over a stream pjsip
    waits for the whole body, so this never holds there)."""
    try:
        declared = int(content_length.strip())
    except ValueError:
        return False
    _, sep, body = raw_message.partition("\r\n\r\n")
    if not sep:
        _, sep, body = raw_message.partition("\n\n")
    try:
        size = len(body.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:                  # a surrogate SWIG did not make: count it as one byte
        size = len(body.encode("utf-8", "replace"))
    return declared > size


_URI_RE = re.compile(r"<([^>]*)>")


def uri_of(name_addr: str) -> str:
    """The URI inside a name-addr (``"Bob" <sip:bob@host>;tag=1``) or the addr-spec itself."""
    m = _URI_RE.search(name_addr)
    if m:
        return m.group(1).strip()
    return name_addr.split(";", 1)[0].strip()


def uri_parts(uri: str) -> tuple[str, str, str, dict[str, str]]:
    """(scheme, user, host, params) of a sip:/sips:/tel: URI. Host has no port; params lower-cased names."""
    scheme, _, rest = uri.partition(":")
    scheme = scheme.lower()
    rest = rest.split("?", 1)[0]
    if scheme == "tel":
        number, *params = rest.split(";")
        return scheme, unquote(number), "", _params(params)
    userinfo, at, hostport = rest.rpartition("@")
    if not at:
        hostport, userinfo = rest, ""
    hostport, *params = hostport.split(";")
    user = unquote(userinfo.split(":", 1)[0])
    if hostport.startswith("["):
        host = hostport[1:hostport.find("]")] if "]" in hostport else hostport[1:]
    else:
        host = hostport.split(":", 1)[0]
    return scheme, user, host.lower(), _params(params)


def _params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if not item:
            continue
        k, _, v = item.partition("=")
        out[k.strip().lower()] = unquote(v.strip())
    return out


def via_transport(headers: dict[str, list[str]]) -> str:
    """Transport of the top Via (``SIP/2.0/TCP host`` -> ``tcp``)."""
    for value in headers.get("via", []):
        m = re.match(r"\s*SIP\s*/\s*2\.0\s*/\s*([A-Za-z]+)", value)
        if m:
            return m.group(1).lower()
    return "udp"


def offers_srtp(body: str) -> bool:
    """True when the SDP offer's audio stream is SDES-SRTP: an ``m=audio`` line with an
    ``RTP/SAVP`` or ``RTP/SAVPF`` profile and at least one ``a=crypto`` line in its section
    (RFC 4568), as an encrypted Chime Voice Connector trunk offers (spec 04 §1.5)."""
    in_secure_audio = False
    for raw in body.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if line.startswith("m="):
            fields = line[2:].split()
            in_secure_audio = (len(fields) >= 3 and fields[0].lower() == "audio"
                               and fields[2].upper() in ("RTP/SAVP", "RTP/SAVPF"))
        elif in_secure_audio and line.lower().startswith("a=crypto:"):
            return True
    return False


def srtp_suite(body: str) -> str | None:
    """The crypto suite of the first ``a=crypto`` line of an SDP (an answer names one), or None."""
    for raw in body.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if line.lower().startswith("a=crypto:"):
            fields = line.split()
            return fields[1] if len(fields) > 1 else None
    return None


_SURFACED = ("user-to-user", "diversion")
_RESERVED_PREFIXES = ("x-vine", "x-amzn", "x-vc", "x-canary", "x-voice")


def chime_sip_headers(raw_text: str) -> dict[str, str]:
    """The headers a handler sees in ``Participants[].SipHeaders`` (04 §2.2): custom
    ``X-`` headers, ``User-to-User`` and ``Diversion``, with their received spelling;
    internal names are filtered out; repeated headers are joined with a comma."""
    head = raw_text.replace("\r\n", "\n").partition("\n\n")[0]
    out: dict[str, str] = {}
    for line in head.split("\n")[1:]:
        name, sep, value = line.partition(":")
        if not sep or line[:1] in (" ", "\t"):
            continue
        name = name.strip()
        low = name.lower()
        if not (low.startswith("x-") or low in _SURFACED):
            continue
        if any(low == p or low.startswith(p + "-") for p in _RESERVED_PREFIXES):
            continue
        value = value.strip()
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


_DTMF_KEYS = frozenset("0123456789*#ABCD")
# INFO bodies pjsua answers itself (pjsua_call.c): DTMF relay, media control, trickle ICE.
_PJSUA_INFO_TYPES = ("application/dtmf-relay", "application/media_control+xml",
                     "application/trickle-ice-sdpfrag")


def info_dtmf(content_type: str, body: str) -> tuple[str, str | None]:
    """Classify an in-dialog INFO request: ``(kind, digit)``.

    kind is ``"pjsua"`` (pjsua answers it; DTMF relay arrives through onDtmfDigit),
    ``"dtmf"`` (``application/dtmf``: the body is the key, e.g. ``5``; *digit* is None
    when the body is not one key), ``"empty"`` (no body: answer 200) or ``"other"``
    (answer 415)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype in _PJSUA_INFO_TYPES:
        return "pjsua", None
    if not ctype and not body.strip():
        return "empty", None
    if ctype == "application/dtmf":
        key = body.strip().upper()
        if key.startswith("SIGNAL="):         # some PBXs send the relay syntax here
            key = key[7:].split()[0] if key[7:].split() else ""
        if key == "10":
            key = "*"
        elif key == "11":
            key = "#"
        return "dtmf", key if key in _DTMF_KEYS else None
    return "other", None
