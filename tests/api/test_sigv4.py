"""The SigV4 verifier against requests signed by botocore's own signer."""
from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chimevoice.api.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from chimevoice.api.sigv4 import SigV4Verifier, parse_authorization

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SIGNED_AT = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
PATH = "/sip-media-applications/abc/calls?max-results=5&next-token=a%2Fb"
BODY = json.dumps({"FromPhoneNumber": "+15550100000", "ToPhoneNumber": "+15557654321"}).encode()


def signed(*, secret: str = SECRET, region: str = "us-east-1", service: str = "chime", path: str = PATH,
           body: bytes = BODY, token: str | None = None, at: dt.datetime = SIGNED_AT) -> AWSRequest:
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:8090{path}", data=body,
                         headers={"Content-Type": "application/json", "User-Agent": "test"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=at.replace(tzinfo=None)):
        SigV4Auth(Credentials(KEY, secret, token), service, region).add_auth(request)
    return request


def verifier(now: dt.datetime = SIGNED_AT) -> SigV4Verifier:
    return SigV4Verifier({KEY: SECRET}, region="us-east-1", clock=lambda: now.timestamp())


def items(request: AWSRequest) -> list[tuple[str, str]]:
    return [(name, value) for name, value in request.headers.items()] + [("Host", "127.0.0.1:8090")]


def check(request: AWSRequest, *, v: SigV4Verifier | None = None, path: str = PATH, body: bytes = BODY,
          headers: list[tuple[str, str]] | None = None) -> str:
    return (v or verifier()).verify("POST", path, headers if headers is not None else items(request), body)


def test_a_botocore_signed_request_verifies():
    assert check(signed()) == KEY


def test_percent_encoded_path_segments_verify():
    path = "/phone-numbers/%2B15550100000"
    assert check(signed(path=path, body=b""), path=path, body=b"") == KEY


def test_a_session_token_is_accepted():
    request = signed(token="SESSIONTOKEN")
    assert request.headers["X-Amz-Security-Token"] == "SESSIONTOKEN"
    assert check(request) == KEY


def test_a_tampered_body_fails():
    with pytest.raises(InvalidSignatureException):
        check(signed(), body=BODY.replace(b"7654321", b"0000000"))


def test_a_tampered_path_or_query_fails():
    with pytest.raises(InvalidSignatureException):
        check(signed(), path=PATH.replace("/abc/", "/abd/"))
    with pytest.raises(InvalidSignatureException):
        check(signed(), path=PATH.replace("max-results=5", "max-results=6"))


def test_a_tampered_signed_header_fails():
    request = signed()
    headers = [(n, "text/plain" if n.lower() == "content-type" else v) for n, v in items(request)]
    with pytest.raises(InvalidSignatureException):
        check(request, headers=headers)


def test_a_content_hash_header_must_match_the_body():
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:8090{PATH}", data=BODY,
                         headers={"X-Amz-Content-SHA256": "0" * 64})
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT.replace(tzinfo=None)):
        SigV4Auth(Credentials(KEY, SECRET), "chime", "us-east-1").add_auth(request)
    with pytest.raises(InvalidSignatureException):
        check(request)


def test_a_wrong_secret_fails():
    with pytest.raises(InvalidSignatureException) as excinfo:
        check(signed(secret="another-secret-another-secret-000000000"))
    assert excinfo.value.message.startswith("The request signature we calculated does not match")


def test_wrong_scope_fails():
    with pytest.raises(InvalidSignatureException, match="region"):
        check(signed(region="eu-west-1"))
    with pytest.raises(InvalidSignatureException, match="service"):
        check(signed(service="lambda"))


@pytest.mark.parametrize("minutes", [16, -16])
def test_a_date_more_than_15_minutes_away_fails(minutes):
    request = signed()
    with pytest.raises(InvalidSignatureException, match="Signature (expired|not yet current)"):
        check(request, v=verifier(SIGNED_AT + dt.timedelta(minutes=minutes)))
    assert check(request, v=verifier(SIGNED_AT + dt.timedelta(minutes=minutes - (1 if minutes > 0 else -1) * 2)))


def test_a_changed_date_header_fails():
    request = signed()
    later = (SIGNED_AT + dt.timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")
    headers = [(n, later if n.lower() == "x-amz-date" else v) for n, v in items(request)]
    with pytest.raises(InvalidSignatureException):
        check(request, headers=headers)


def test_unknown_key_missing_and_malformed_headers():
    request = signed()
    with pytest.raises(UnrecognizedClientException):
        SigV4Verifier({"OTHER": SECRET}, region="us-east-1", clock=SIGNED_AT.timestamp).verify(
            "POST", PATH, items(request), BODY)
    without = [(n, v) for n, v in items(request) if n.lower() != "authorization"]
    with pytest.raises(MissingAuthenticationTokenException):
        check(request, headers=without)
    with pytest.raises(IncompleteSignatureException):
        check(request, headers=[*without, ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE")])
    with pytest.raises(IncompleteSignatureException):
        check(request, headers=[*without, ("Authorization", "Basic dXNlcjpwYXNz")])


def test_parse_authorization():
    auth = parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/20240506/us-east-1/chime/aws4_request, "
                               "SignedHeaders=host;x-amz-date, Signature=ABCDEF")
    assert (auth.access_key_id, auth.date, auth.region, auth.service) == ("AKID", "20240506", "us-east-1", "chime")
    assert auth.signed_headers == ("host", "x-amz-date") and auth.signature == "abcdef"
