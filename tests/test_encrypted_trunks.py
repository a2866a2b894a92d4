"""Encrypted Voice Connectors (``encryption: true``), as Chime's Encryption option: inbound calls
must come over TLS *and* offer SRTP (else 403 / 488, before the application sees them); outbound
calls through such a connector offer SRTP only, over TLS, and the TLS listener checks the far
end's certificate and name against its ``ca_list``. Real calls: the pjsua2 test phone calls in
over TLS and answers as the carrier over TLS, the audio checked at the far end. With our build's
AEAD-GCM suites (scripts/build-pjsua2), the phone's offer (pjmedia's list, AEAD_AES_256_GCM
first) is answered with AEAD_AES_256_GCM and the tone still comes through."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.audio import read_pcm
from tests.support.harness import (
    Daemon,
    ListeningPhone,
    free_port,
    handler_app,
    read_events,
    self_signed_cert,
    write_tone,
)

pytestmark = pytest.mark.sip

APP = "e7e7e7e7-0000-4000-8000-000000000001"
TONE = "+15550100601"           # secure connector: hear tone1000, then BYE
TRUSTED = "+15550100602"        # secure connector: bridged to the carrier whose cert we trust
UNTRUSTED = "+15550100603"      # secure connector: bridged to a carrier with an unknown cert
PLAIN = "+15550100000"          # the harness's plain connector


def carrier_cert(directory: Path) -> tuple[Path, Path]:
    """A carrier's self-signed certificate for 127.0.0.1 (subjectAltName IP, which pjsip's
    TLS name check compares with the route's host)."""
    return self_signed_cert(directory, cn="carrier.example", san="IP:127.0.0.1")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    work = tmp_path_factory.mktemp("encrypted")
    own, trusted, stranger = (work / "own", work / "trusted", work / "stranger")
    for d in (own, trusted, stranger):
        d.mkdir()
    cert, key = self_signed_cert(own)
    trusted_cert = carrier_cert(trusted)
    d = Daemon(work, free_port())
    d.tls_port = free_port()
    d.extra_listeners = [{"transport": "tls", "address": "127.0.0.1", "port": d.tls_port,
                          "certificate": str(cert), "private_key": str(key),
                          "ca_list": str(trusted_cert[0])}]    # so verify_server defaults to true
    d.trusted_cert = trusted_cert
    d.stranger_cert = carrier_cert(stranger)
    d.carrier_port, d.stranger_port = free_port(), free_port()
    d.events = work / "events"
    d.events.mkdir()
    env = {"EVENTS_DIR": str(d.events),
           "BRIDGE_VCS": json.dumps({TRUSTED: "vc-carrier", UNTRUSTED: "vc-stranger"})}
    apps = [handler_app(APP, "secure", "secure_bridge:handler", env)]
    rules = [{"id": f"e7e7e7e7-0000-4000-8000-00000000010{i}", "name": f"secure{i}", "trigger_type": "ToPhoneNumber",
              "trigger_value": n, "target_applications": [{"sip_media_application_id": APP, "priority": 1}]}
             for i, n in enumerate((TONE, TRUSTED, UNTRUSTED, PLAIN))]
    cfg = d.write_config(apps, rules=rules, numbers=[PLAIN])
    data = yaml.safe_load(cfg.read_text())
    data["voice_connectors"] += [
        {"id": "vc-secure", "name": "encrypted trunk", "host_name": "secure.chimevoice.local",
         "allow_list": ["127.0.0.1/32"], "phone_numbers": [TONE, TRUSTED, UNTRUSTED], "encryption": True},
        {"id": "vc-carrier", "name": "carrier", "host_name": "carrier.chimevoice.local", "encryption": True,
         "allow_list": ["127.0.0.1/32"],
         "origination": {"routes": [{"host": "127.0.0.1", "port": d.carrier_port, "protocol": "tls"}]}},
        {"id": "vc-stranger", "name": "carrier with an unknown certificate", "host_name": "stranger.chimevoice.local",
         "encryption": True, "allow_list": ["127.0.0.1/32"],
         "origination": {"routes": [{"host": "127.0.0.1", "port": d.stranger_port, "protocol": "tls"}]}},
    ]
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    write_tone(d.prompts / "tone1000.wav", 1000, 1.5)
    write_tone(work / "voice700.wav", 700, 1.0)
    d.voice = work / "voice700.wav"
    d.start()
    yield d
    assert d.stop() == 0, d.log_path.read_text()[-3000:]


def events_for(d: Daemon, number: str) -> list[dict]:
    return [e for e in read_events(d.events / "secure.jsonl")
            if e["CallDetails"]["Participants"][0]["To"] == number]


def test_srtp_over_tls_is_answered_with_aead_gcm_and_heard(daemon, tmp_path):
    heard = tmp_path / "heard.wav"
    res = daemon.call(user=TONE, transport="tls", port=daemon.tls_port, srtp=True, record=heard, max_seconds=4)
    assert res["answered"] and res["srtp"] is True, res
    # pjmedia offers its whole list, AEAD_AES_256_GCM first; the answer takes the first we support
    assert res["srtp_suite"] == "AEAD_AES_256_GCM", res
    pcm, rate = read_pcm(heard)
    assert abs(dominant_frequency(pcm[int(rate * 0.8):int(rate * 1.4)], rate) - 1000) < 25


def test_plain_rtp_over_tls_to_an_encrypted_connector_gets_488(daemon):
    before = len(events_for(daemon, TONE))
    res = daemon.call(user=TONE, transport="tls", port=daemon.tls_port, srtp=False, max_seconds=5)
    assert not res["answered"] and res["final_status"] == 488, res
    assert len(events_for(daemon, TONE)) == before            # the application never saw it
    refused = [e for e in daemon.logs() if e.get("event") == "call_rejected" and e.get("sip_status") == 488]
    assert refused and "requires SRTP" in refused[-1]["reason"], refused


def test_srtp_over_udp_to_an_encrypted_connector_gets_403(daemon):
    res = daemon.call(user=TONE, transport="udp", srtp=True, max_seconds=5)
    assert not res["answered"] and res["final_status"] == 403, res


def test_the_plain_connector_still_takes_plain_rtp(daemon):
    res = daemon.call(user=PLAIN, transport="tls", port=daemon.tls_port, max_seconds=4)
    assert res["answered"] and res["srtp"] is False, res


def test_bridge_through_an_encrypted_connector_is_tls_and_srtp_with_a_verified_certificate(daemon, tmp_path):
    cert, key = daemon.trusted_cert
    heard = tmp_path / "carrier.wav"
    with ListeningPhone(["--answer-after", "0.2", "--srtp", "--tls-cert", str(cert), "--tls-key", str(key),
                         "--record", str(heard), "--max-seconds", "12"],
                        transport="tls", address="127.0.0.1", port=daemon.carrier_port) as carrier:
        res = daemon.call(user=TRUSTED, transport="tls", port=daemon.tls_port, srtp=True, play=daemon.voice,
                          hangup_after=3, max_seconds=15)
        got = carrier.result(timeout=25)
    assert res["answered"], res
    assert got["calls_received"] == 1 and got["answered"] and got["srtp"] is True, got
    assert got["srtp_suite"] == "AEAD_AES_256_GCM", got        # we offer pjmedia's list, GCM first
    # the caller's BYE (after 3 s) came in over its TLS connection and ended the carrier's leg
    assert got["hangup_by"] == "remote" and got["connected_seconds"] < 6, got
    pcm, rate = read_pcm(heard)                                   # the caller's voice, via the bridge
    assert abs(dominant_frequency(pcm[int(rate * 0.5):int(rate * 2.0)], rate) - 700) < 25
    kinds = [e["InvocationEventType"] for e in events_for(daemon, TRUSTED)]
    assert kinds[:2] == ["NEW_INBOUND_CALL", "ACTION_SUCCESSFUL"], kinds


def test_a_carrier_whose_certificate_we_do_not_trust_is_never_reached(daemon, tmp_path):
    cert, key = daemon.stranger_cert
    with ListeningPhone(["--answer-after", "0.2", "--srtp", "--tls-cert", str(cert), "--tls-key", str(key),
                         "--max-seconds", "4"],
                        transport="tls", address="127.0.0.1", port=daemon.stranger_port) as stranger:
        res = daemon.call(user=UNTRUSTED, transport="tls", port=daemon.tls_port, srtp=True, max_seconds=12)
        got = stranger.result(timeout=15)
    assert got["calls_received"] == 0 and not got["answered"], got
    evs = events_for(daemon, UNTRUSTED)
    failed = [e for e in evs if e["InvocationEventType"] == "ACTION_FAILED"]
    assert failed and failed[0]["ActionData"]["Type"] == "CallAndBridge", [e["InvocationEventType"] for e in evs]
    assert res["hangup_by"] == "remote", res


def test_the_handlers_hangup_reaches_a_tls_caller_over_its_own_connection(daemon):
    """The handler hangs up after the tone: the BYE goes back over the connection the INVITE came
    on. Before, it never arrived: the connection died right after the answer (libsrtp's AES-GCM
    left an error on OpenSSL's queue, pjproject issue 3632, fixed in our build) and pjsip cannot
    open TLS to a Contact without a listener (PJSIP_ETPNOTSUITABLE)."""
    res = daemon.call(user=TONE, transport="tls", port=daemon.tls_port, srtp=True, max_seconds=8)
    assert res["answered"] and res["hangup_by"] == "remote", res
    assert res["connected_seconds"] < 4, res              # the tone is 1.5 s, then the handler's BYE
    failed = [e for e in daemon.logs() if "Failed to send end session message" in str(e.get("msg", ""))]
    assert not failed, failed                             # what pjsip logged (level 1) when the BYE failed


def test_offers_srtp_reads_the_audio_sections_profile_and_keys():
    from chimevoice.sip.message import offers_srtp, srtp_suite
    savp = "v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AEAD_AES_256_GCM inline:abc\r\n"
    assert offers_srtp(savp) and srtp_suite(savp) == "AEAD_AES_256_GCM"
    assert not offers_srtp("v=0\r\nm=audio 4000 RTP/AVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n")
    assert not offers_srtp("v=0\r\nm=audio 4000 RTP/SAVP 0\r\n")                       # no keys: DTLS or junk
    assert not offers_srtp("m=video 5000 RTP/SAVP 96\r\na=crypto:1 X inline:y\r\nm=audio 4000 RTP/AVP 0\r\n")
    assert offers_srtp("m=audio 4000 rtp/savpf 0\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:k\n")
    assert not offers_srtp("") and srtp_suite("") is None


def test_a_via_that_claims_tls_over_udp_does_not_pass_the_tls_rule(daemon):
    """The transport is the one the INVITE came on, not what its Via says (docs/security.md)."""
    import socket
    import uuid
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    sdp = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 40000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
           "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:lFNO5WuefN+r6lKXUhRkv3ph0bNiRvYE21darRk7\r\n")
    msg = (f"INVITE sip:{TONE}@127.0.0.1:{daemon.port} SIP/2.0\r\n"
           f"Via: SIP/2.0/TLS 127.0.0.1:{port};rport;branch=z9hG4bK{uuid.uuid4().hex}\r\n"
           f"From: <sip:+15105550101@127.0.0.1>;tag=liar\r\nTo: <sip:{TONE}@127.0.0.1>\r\n"
           f"Call-ID: {uuid.uuid4()}\r\nCSeq: 1 INVITE\r\nContact: <sip:+15105550101@127.0.0.1:{port}>\r\n"
           f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}")
    try:
        sock.sendto(msg.encode(), ("127.0.0.1", daemon.port))
        finals = []
        while not finals:
            data, _ = sock.recvfrom(65536)
            code = int(data.split(b" ", 2)[1])
            if code >= 200:
                finals.append(code)
    finally:
        sock.close()
    assert finals == [403], finals
    refused = [e for e in daemon.logs() if e.get("event") == "call_rejected" and e.get("sip_status") == 403]
    assert refused and refused[-1]["transport"] == "udp", refused[-1:]
