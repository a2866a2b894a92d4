"""AWS Signature Version 4 verification of API requests, with botocore's own signer.

The canonical request, string to sign and signature are computed by
:class:`botocore.auth.SigV4Auth` over an :class:`botocore.awsrequest.AWSRequest` rebuilt from
what was received (method, raw path and query, the headers the client listed in
``SignedHeaders``, the body) with the client's ``X-Amz-Date`` and credential scope; only the
parsing of the ``Authorization`` header and the checks around it are ours. Errors are those
AWS front ends answer with (docs/api.md): MissingAuthenticationTokenException,
IncompleteSignatureException, UnrecognizedClientException, InvalidSignatureException.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

__all__ = ["ALGORITHM", "SIGNATURE_MISMATCH", "Authorization", "SigV4Verifier", "parse_authorization"]

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
                      "Check your AWS Secret Access Key and signing method. "
                      "Consult the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."
MAX_SKEW = timedelta(minutes=15)

_PART = re.compile(r"\s*([A-Za-z]+)\s*=\s*([^,\s]*)\s*")
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")


@dataclass(frozen=True, slots=True)
class Authorization:
    """A parsed ``AWS4-HMAC-SHA256`` Authorization header.

    ``access_key_id``, ``date`` (YYYYMMDD), ``region``, ``service``: the credential scope.
    ``signed_headers``: lower-case header names, as listed. ``signature``: lower-case hex.
    """

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> Authorization:
    """Parse ``AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request,
    SignedHeaders=a;b, Signature=hex``; raise IncompleteSignatureException when malformed."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise IncompleteSignatureException(
            f"Authorization header requires the {ALGORITHM} algorithm, got {algorithm[:40]!r}.")
    parts: dict[str, str] = {}
    for chunk in rest.split(","):
        match = _PART.fullmatch(chunk)
        if match is None:
            raise IncompleteSignatureException(
                f"Invalid key=value pair in Authorization header: {chunk.strip()[:80]!r}."
            )
        parts[match.group(1)] = match.group(2)
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not parts.get(name)]
    if missing:
        raise IncompleteSignatureException(
            "Authorization header requires " + ", ".join(f"'{name}'" for name in missing) + " parameter(s).")
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise IncompleteSignatureException(
            "Credential must have the form <access key id>/<date>/<region>/<service>/aws4_request.")
    signed = tuple(parts["SignedHeaders"].split(";"))
    if any(not name or name != name.lower() for name in signed):
        raise IncompleteSignatureException("SignedHeaders must be lower-case header names separated by ';'.")
    return Authorization(scope[0], scope[1], scope[2], scope[3], signed, parts["Signature"].lower())


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


class _Signer(SigV4Auth):
    """botocore's signer, except that a request signed with ``:authority`` (HTTP/2) has no host added."""

    def headers_to_sign(self, request: AWSRequest) -> Any:
        headers = super().headers_to_sign(request)
        if ":authority" in headers and "host" not in request.headers:
            del headers["host"]
        return headers


@dataclass(frozen=True, slots=True)
class SigV4Verifier:
    """Verifies signed requests against ``keys`` (access key id -> secret access key).

    ``region``: the region clients must scope their credential to (their client's region).
    ``service``: the signing name (``chime`` for both chime-sdk-voice and the legacy client).
    ``clock``: epoch seconds now; dates more than 15 minutes away are rejected.
    """

    keys: Mapping[str, str] = field(repr=False)
    region: str
    clock: Callable[[], float]
    service: str = "chime"
    allow_unsigned_payload: bool = False
    """Accept ``x-amz-content-sha256: UNSIGNED-PAYLOAD`` (streaming bodies: Lex's RecognizeUtterance)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    def verify(self, method: str, raw_path: str, headers: Iterable[tuple[str, str]], body: bytes,
               *, host_url: str = "http://localhost") -> str:
        """Check one request; return its access key id or raise an ApiError.

        ``raw_path``: path and query string exactly as received (still percent-encoded).
        ``headers``: every (name, value) received, repeated names included.
        ``host_url``: scheme and authority, only used when ``host`` was not signed (it then
        does not match, as at AWS).
        """
        received: dict[str, list[str]] = {}
        for name, value in headers:
            received.setdefault(name.lower(), []).append(value)
        header = received.get("authorization")
        if not header:
            raise MissingAuthenticationTokenException("Missing Authentication Token")
        auth = parse_authorization(header[0])
        secret = self.keys.get(auth.access_key_id)
        if secret is None:
            raise UnrecognizedClientException(INVALID_TOKEN)
        amz_date = (received.get("x-amz-date") or [""])[0].strip()
        if not _AMZ_DATE.fullmatch(amz_date):
            raise IncompleteSignatureException(
                "Authorization header requires existence of a valid 'X-Amz-Date' header (YYYYMMDD'T'HHMMSS'Z').")
        if ":authority" in auth.signed_headers and ":authority" not in received and "host" in received:
            # HTTP/2: @aws-sdk v3 signs the :authority pseudo-header instead of host; the server
            # hands pseudo-headers over as host (hypercorn, chimevoice.api.lex_runtime)
            received[":authority"] = received["host"]
        if "x-amz-date" not in auth.signed_headers or not {"host", ":authority"} & set(auth.signed_headers):
            raise InvalidSignatureException("'Host' and 'X-Amz-Date' must be signed headers.")
        if auth.date != amz_date[:8]:
            raise InvalidSignatureException(
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{auth.date}' != '{amz_date[:8]}', from '{amz_date}'.")
        if auth.region != self.region:
            raise InvalidSignatureException(
                f"Credential should be scoped to a valid region, not '{auth.region}'. ")
        if auth.service != self.service:
            raise InvalidSignatureException(
                f"Credential should be scoped to correct service: '{self.service}'. ")
        self._check_skew(amz_date)
        request = AWSRequest(method=method.upper(), url=host_url.rstrip("/") + raw_path, data=body)
        for name in auth.signed_headers:
            if name not in received:
                raise InvalidSignatureException(SIGNATURE_MISMATCH)
            for value in received[name]:
                request.headers[name] = value
        content_sha = received.get("x-amz-content-sha256")
        unsigned = self.allow_unsigned_payload and content_sha and content_sha[0].strip() == "UNSIGNED-PAYLOAD"
        if content_sha and not unsigned and content_sha[0].strip().lower() != hashlib.sha256(body).hexdigest():
            # botocore's signer trusts this header; the body must match it
            raise InvalidSignatureException(SIGNATURE_MISMATCH)
        request.context["timestamp"] = amz_date
        signer = _Signer(Credentials(auth.access_key_id, secret), auth.service, auth.region)
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
            raise InvalidSignatureException(SIGNATURE_MISMATCH)
        return auth.access_key_id

    def _check_skew(self, amz_date: str) -> None:
        signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=timezone.utc)
        now = _utc(self.clock())
        stamp = lambda moment: moment.strftime(SIGV4_TIMESTAMP)  # noqa: E731
        if signed_at < now - MAX_SKEW:
            raise InvalidSignatureException(
                f"Signature expired: {amz_date} is now earlier than {stamp(now - MAX_SKEW)} "
                f"({stamp(now)} - 15 min.)")
        if signed_at > now + MAX_SKEW:
            raise InvalidSignatureException(
                f"Signature not yet current: {amz_date} is still later than {stamp(now + MAX_SKEW)} "
                f"({stamp(now)} + 15 min.)")
