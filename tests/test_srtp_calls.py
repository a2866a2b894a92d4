"""Incoming SDES-SRTP (RTP/SAVP with a=crypto) over UDP and TLS, as an SBC set up for an
encrypted Chime Voice Connector offers it (spec 04 §1). Before our build's fix for pjproject
issue 3176 every such offer got 488 before the application saw the call."""
from __future__ import annotations

import shutil

import pytest

from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.audio import read_pcm
from tests.support.harness import Daemon, free_port, handler_app, read_events, self_signed_cert, sipp, write_tone

pytestmark = pytest.mark.sip

APP = "abababab-0000-4000-8000-000000000001"
NUMBER = "+15550100405"     # scripted.py: a tone, then hang up


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    if shutil.which("sipp") is None:
        pytest.fail("sipp (Debian package sip-tester) is required; run scripts/bootstrap")
    work = tmp_path_factory.mktemp("srtp")
    events = work / "events"
    events.mkdir()
    cert, key = self_signed_cert(work)
    port, tls_port = free_port(), free_port()
    d = Daemon(work, port, extra_listeners=[{"transport": "tls", "address": "127.0.0.1", "port": tls_port,
                                             "certificate": str(cert), "private_key": str(key)}])
    d.tls_port = tls_port
    d.events = events
    apps = [handler_app(APP, "scripted", "scripted:handler", {"EVENTS_DIR": str(events), "PROMPT_BUCKET": "prompts"})]
    rules = [{"id": "abababab-0000-4000-8000-000000000002", "name": "srtp", "trigger_type": "ToPhoneNumber",
              "trigger_value": NUMBER, "target_applications": [{"sip_media_application_id": APP, "priority": 1}]}]
    d.write_config(apps, rules=rules, numbers=[NUMBER])
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    d.start()
    yield d
    d.stop()


@pytest.mark.parametrize("transport", ["udp", "tls"])
def test_srtp_offer_is_answered_with_srtp_and_audio_flows(daemon, tmp_path, transport):
    """The test phone offers RTP/SAVP only (SRTP mandatory); the daemon answers with SRTP and
    the caller hears the handler's tone."""
    heard = tmp_path / "heard.wav"
    port = daemon.tls_port if transport == "tls" else daemon.port
    res = daemon.call(user=NUMBER, transport=transport, port=port, srtp=True, record=heard, max_seconds=4)
    assert res["answered"], res
    assert res["srtp"] is True, res
    pcm, rate = read_pcm(heard)
    assert len(pcm) > rate // 2
    assert abs(dominant_frequency(pcm[int(rate * 0.8):], rate) - 1000) < 25
    evs = [e for e in read_events(daemon.events / "scripted.jsonl")
           if e["CallDetails"]["Participants"][0]["To"] == NUMBER]
    assert evs and evs[0]["InvocationEventType"] == "NEW_INBOUND_CALL"


def test_the_specs_invite_with_aead_first_gets_an_srtp_answer(daemon, tmp_path):
    """sipp sends the crypto list of spec 04 §1.5 (AEAD_AES_256_GCM first); the 200 OK answers
    RTP/SAVP with one a=crypto line: the offer's first, AEAD_AES_256_GCM with its tag 1 (our
    build has pjmedia's GCM suites; before it the answer fell back to AES_256_CM_HMAC_SHA1_80)."""
    scenario = tmp_path / "uac_srtp.xml"
    scenario.write_text(UAC_SRTP)
    res = sipp(scenario, f"127.0.0.1:{daemon.port}", service=NUMBER, timeout=20, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]


# The spec's keys are placeholders; these are well-formed (44 bytes of key and salt for the
# AEAD_AES_256_GCM suites, RFC 7714 §14.2, 46 for AES_256_CM, 30 for AES_CM_128).
UAC_SRTP = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="SRTP offer of spec 04, answer must be SAVP with one crypto line">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15105550101@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:+15105550101@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/SAVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=crypto:1 AEAD_AES_256_GCM inline:BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTI=
a=crypto:2 AEAD_AES_256_GCM_8 inline:PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmc=
a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:HfYFOOcyD1/FGprdj2ourI9kVhZCTa9WnYUuYY2hSAXgR2dW5vdGDCy7Bszm4g==
a=crypto:4 AES_256_CM_HMAC_SHA1_32 inline:i581/aZ6tPn6kmrQGcMVcyuQJWhuAa/bqRMUe1OqILD6ZuPet9b6q788pcKRcg==
a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:lFNO5WuefN+r6lKXUhRkv3ph0bNiRvYE21darRk7
a=crypto:6 AES_CM_128_HMAC_SHA1_32 inline:Okaay6U648PHhdi/g+yzjyqAT4zjHm3LJAL6bort
a=sendrecv
]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="RTP/SAVP" search_in="body" check_it="true" assign_to="savp"/>
      <ereg regexp="a=crypto:1 AEAD_AES_256_GCM inline:" search_in="body" check_it="true" assign_to="crypto"/>
    </action>
  </recv>
  <nop hide="true"><action><log message="answer: [$savp] [$crypto]"/></action></nop>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15105550101@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:+15105550101@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]>
  </send>
  <pause milliseconds="500"/>
  <send retrans="500">
    <![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15105550101@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]>
  </send>
  <recv response="200"/>
</scenario>
"""
