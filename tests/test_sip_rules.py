"""Pure routing functions (sip_rules): E.164, connector/rule selection, allow list, digest."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sip_rules import (
    compute_response,
    make_challenge,
    make_nonce,
    match_rule,
    nonce_status,
    normalize_e164,
    normalize_host,
    parse_authorization,
    select_voice_connector,
    source_allowed,
    targets_in_order,
    verify_digest,
)

# --------------------------------------------------------------------------- E.164


@pytest.mark.parametrize(
    ("user", "country", "expected"),
    [
        ("+15550100000", "1", "+15550100000"),
        ("+1 (555) 010-0000", "1", "+15550100000"),
        ("+1.555.010.0000", "1", "+15550100000"),
        ("15550100000", "1", "+15550100000"),
        ("5550100000", "1", "+15550100000"),
        ("(555) 010-0000", "1", "+15550100000"),
        ("0015550100000", "1", "+15550100000"),
        ("011442071838750", "1", "+442071838750"),
        ("442071838750", "1", "+442071838750"),  # 12+ digits: E.164 written without "+"
        ("sip:+15550100000@host;user=phone", "1", "+15550100000"),
        ("sips:5550100000@host:5061;transport=tls", "1", "+15550100000"),
        ('"Bob" <sip:+15550100000@vc.example.com>;tag=1', "1", "+15550100000"),
        ("tel:+1-555-010-0000;phone-context=example.com", "1", "+15550100000"),
        ("%2B15550100000", "1", "+15550100000"),
        ("02071838750", "44", "+442071838750"),
        ("2071838750", "44", "+442071838750"),
        ("00442071838750", "44", "+442071838750"),
        ("+61285993444", "44", "+61285993444"),
        ("alice", "1", None),
        ("sip:alice@example.com", "1", None),
        ("", "1", None),
        ("+", "1", None),
        ("+1abc", "1", None),
        ("*97", "1", None),
        ("911", "1", None),
        ("25550100000", "1", None),  # 11 digits not starting with 1
        ("+1234567890123456", "1", None),  # 16 digits
        ("+05550100000", "1", None),  # country code cannot start with 0
        ("0", "44", None),
    ],
)
def test_normalize_e164(user: str, country: str, expected: str | None) -> None:
    assert normalize_e164(user, country) == expected


def test_normalize_e164_default_country_is_nanp() -> None:
    assert normalize_e164("5550100000") == "+15550100000"


# --------------------------------------------------------------------------- fixtures (duck-typed)


@dataclass(frozen=True)
class VC:
    id: str
    host_name: str
    allow_list: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    phone_numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    sip_media_application_id: str
    priority: int


@dataclass(frozen=True)
class Rule:
    id: str
    trigger_type: str
    trigger_value: str
    target_applications: tuple[Target, ...] = field(default=(Target("sma", 1),))


VC1 = VC(
    "vc1",
    "vc1.example.com",
    (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32")),
    ("+15550100000", "+15550100001"),
)
VC2 = VC("vc2", "vc2.example.com", (ipaddress.ip_network("198.51.100.7/32"),), ("+15550100002",))
RULES = (
    Rule("host-rule", "RequestUriHostname", "vc1.example.com"),
    Rule("number-rule", "ToPhoneNumber", "+15550100000"),
    Rule("other-number", "ToPhoneNumber", "+15550100002"),
)


# --------------------------------------------------------------------------- connector selection


def test_select_connector_by_host_first() -> None:
    # The host names vc1 although the number belongs to vc2: the host wins.
    chosen = select_voice_connector([VC1, VC2], request_uri_host="VC1.Example.COM:5060", called_number="+15550100002")
    assert chosen is VC1


def test_select_connector_by_called_number() -> None:
    chosen = select_voice_connector([VC1, VC2], request_uri_host="203.0.113.9", called_number="5550100002")
    assert chosen is VC2


def test_select_connector_none() -> None:
    assert (
        select_voice_connector([VC1, VC2], request_uri_host="other.example.com", called_number="+15559999999") is None
    )
    assert select_voice_connector([VC1], request_uri_host="", called_number=None) is None


def test_normalize_host() -> None:
    assert normalize_host("VC1.Example.com.:5061") == "vc1.example.com"
    assert normalize_host("[2001:DB8::1]:5060") == "2001:db8::1"
    assert normalize_host("2001:db8::1") == "2001:db8::1"


# --------------------------------------------------------------------------- allow list


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("192.0.2.10", True),  # v4 inside
        ("2001:db8:1::5", True),  # v6 inside
        ("[2001:db8::5]:5060", True),
        ("::ffff:192.0.2.200", True),  # IPv4-mapped IPv6
        ("192.0.3.1", False),  # outside
        ("2001:db9::1", False),
        ("::ffff:10.0.0.1", False),
        ("not-an-ip", False),
        ("", False),
    ],
)
def test_source_allowed(source: str, allowed: bool) -> None:
    assert source_allowed(VC1, source) is allowed


def test_empty_allow_list_admits_nobody() -> None:
    assert source_allowed(VC("x", "x.example.com"), "127.0.0.1") is False


# --------------------------------------------------------------------------- rule matching


def test_match_rule_number_before_host() -> None:
    rule = match_rule(RULES, called_number="sip:+15550100000@vc1.example.com", request_uri_host="vc1.example.com")
    assert rule is not None and rule.id == "number-rule"


def test_match_rule_national_number() -> None:
    rule = match_rule(RULES, called_number="(555) 010-0002", request_uri_host="vc2.example.com")
    assert rule is not None and rule.id == "other-number"


def test_match_rule_host_fallback() -> None:
    rule = match_rule(RULES, called_number="+15550100001", request_uri_host="VC1.EXAMPLE.COM:5060")
    assert rule is not None and rule.id == "host-rule"
    rule = match_rule(RULES, called_number="alice", request_uri_host="vc1.example.com")
    assert rule is not None and rule.id == "host-rule"


def test_match_rule_none() -> None:
    assert match_rule(RULES, called_number="+15559999999", request_uri_host="vc2.example.com") is None
    assert match_rule(RULES, called_number=None, request_uri_host="") is None
    assert match_rule([], called_number="+15550100000", request_uri_host="vc1.example.com") is None


def test_targets_in_priority_order() -> None:
    rule = Rule("r", "ToPhoneNumber", "+15550100000", (Target("c", 3), Target("a", 1), Target("b", 2)))
    assert [t.sip_media_application_id for t in targets_in_order(rule)] == ["a", "b", "c"]
    tied = Rule("r", "ToPhoneNumber", "+15550100000", (Target("x", 2), Target("y", 1), Target("z", 2)))
    assert [t.sip_media_application_id for t in targets_in_order(tied)] == ["y", "x", "z"]


def test_routing_with_config_dataclasses() -> None:
    from chimevoice.config import load_config

    config = load_config(Path(__file__).resolve().parent.parent / "config" / "example.yaml")
    connector = select_voice_connector(
        config.voice_connectors,
        request_uri_host="vc-demo.voiceconnector.chimevoice.local",
        called_number="+15550100000",
    )
    assert connector is config.voice_connectors[0]
    assert source_allowed(connector, "127.0.0.1") and source_allowed(connector, "::1")
    assert not source_allowed(connector, "192.0.2.1")
    rule = match_rule(
        config.sip_rules, called_number="5550100000", request_uri_host="vc-demo.voiceconnector.chimevoice.local"
    )
    assert rule is config.sip_rules[0]
    assert [t.priority for t in targets_in_order(rule)] == [1]
    assert match_rule(config.sip_rules, called_number="+15550100001", request_uri_host="x") is None


# --------------------------------------------------------------------------- digest authentication

SECRET = b"test-secret"
NOW = 1_700_000_000.0


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_rfc2617_vector() -> None:
    # RFC 2617 §3.5 example; the expected response is given by the RFC.
    args = dict(
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    ha1 = md5("Mufasa:testrealm@host.com:Circle Of Life")
    ha2 = md5("GET:/dir/index.html")
    by_hand = md5(f"{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}")
    assert by_hand == "6629fae49393a05397450978507c4ef1"
    assert compute_response(**args) == by_hand


def authorization(nonce: str, *, password: str = "s3cret", qop: bool = True, username: str = "pbx1") -> str:
    realm, uri, method = "chimevoice", "sip:+15550100000@vc1.example.com", "INVITE"
    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    if qop:
        response = md5(f"{ha1}:{nonce}:00000001:abcdef:auth:{ha2}")
        extra = ', qop=auth, nc=00000001, cnonce="abcdef"'
    else:
        response = md5(f"{ha1}:{nonce}:{ha2}")
        extra = ""
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5{extra}'
    )


def check(header: str, *, password: str = "s3cret", now: float = NOW + 10) -> bool:
    params = parse_authorization(header)
    return verify_digest(
        params, method="INVITE", username="pbx1", password=password, realm="chimevoice", secret=SECRET, now=now
    )


def test_digest_accepts_correct_response() -> None:
    nonce = make_nonce(SECRET, NOW)
    assert check(authorization(nonce))
    assert check(authorization(nonce, qop=False))


def test_digest_rejects_wrong_password_and_user() -> None:
    nonce = make_nonce(SECRET, NOW)
    assert not check(authorization(nonce, password="wrong"))
    assert not check(authorization(nonce), password="other")
    assert not check(authorization(nonce, username="intruder"))


def test_digest_rejects_stale_and_forged_nonce() -> None:
    nonce = make_nonce(SECRET, NOW)
    assert not check(authorization(nonce), now=NOW + 301)
    assert nonce_status(nonce, secret=SECRET, now=NOW + 301) == "stale"
    assert nonce_status(nonce, secret=SECRET, now=NOW + 1) == "valid"
    forged = make_nonce(b"other-secret", NOW)
    assert nonce_status(forged, secret=SECRET, now=NOW) == "invalid"
    assert not check(authorization(forged))
    assert nonce_status("garbage", secret=SECRET, now=NOW) == "invalid"
    stamp, tag = nonce.split(".")
    assert nonce_status(f"{int(stamp, 16) + 1000:x}.{tag}", secret=SECRET, now=NOW + 10) == "invalid"


def test_parse_authorization() -> None:
    params = parse_authorization(
        'Digest username="a\\"b", realm="chimevoice",nonce="n1", uri="sip:x@y", '
        'response="0123", qop=auth, nc=00000001, cnonce="c, d", opaque=""'
    )
    assert params == {
        "username": 'a"b',
        "realm": "chimevoice",
        "nonce": "n1",
        "uri": "sip:x@y",
        "response": "0123",
        "qop": "auth",
        "nc": "00000001",
        "cnonce": "c, d",
        "opaque": "",
    }
    assert parse_authorization("Basic dXNlcjpwYXNz") == {}


def test_make_challenge() -> None:
    nonce = make_nonce(SECRET, NOW)
    challenge = make_challenge("chimevoice", nonce)
    assert challenge == f'Digest realm="chimevoice", nonce="{nonce}", algorithm=MD5, qop="auth"'
    assert make_challenge("r", "n", stale=True).endswith("stale=TRUE")
    # A challenge parses back like an Authorization header.
    assert parse_authorization(challenge)["nonce"] == nonce
