"""The RTP timeout (``sip.rtp.timeout_s``): an answered call whose far end stops sending RTP
without a BYE -- a crashed PBX, a BYE lost on the way -- is hung up by the daemon (BYE with
``Reason: SIP;cause=408``, CDR ``HangupSource: system``), while a caller that sends RTP, or that
holds the call with ``a=inactive``, keeps it. A bare SIP UAC over real UDP on loopback, sending
real RTP packets (or none)."""
from __future__ import annotations

import socket
import struct
import threading
import time
import uuid

import pytest
import yaml

from tests.support.harness import (
    APP_A,
    free_port,
    handler_app,
    metric,
    metrics,
    module_daemon,
    number_rules,
    wait_handler_events,
    write_tone,
)

pytestmark = pytest.mark.sip
LONG = "+15550100008"          # scripted.py: a 1000 Hz tone, 30 x 1 s; the caller hangs up
TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "rtp_timeout")
    d.http_port = free_port()
    path = d.write_config([handler_app(APP_A, "scripted", "scripted:handler", {"EVENTS_DIR": str(d.events)})],
                          rules=number_rules([LONG], APP_A, "cccccccc-0000-4000-8000", "long"), numbers=[LONG])
    data = yaml.safe_load(path.read_text())
    data["sip"]["rtp"].update(stats_interval_s=0.5, timeout_s=TIMEOUT_S)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    write_tone(d.prompts / "tone400.wav", 400, 0.5)
    d.start()
    yield d
    d.stop()


def _sdp(host: str, port: int, direction: str = "sendrecv", version: int = 1) -> str:
    return (f"v=0\r\no=- 1 {version} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n")


def _parse(data: bytes) -> tuple[str, dict[str, str], str]:
    text = data.decode(errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return lines[0], headers, body


class BareUac:
    """One call from a UDP socket: INVITE, ACK, re-INVITE, BYE, and an answer to the daemon's BYE."""

    def __init__(self, port: int, user: str) -> None:
        self.port, self.user = port, user
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.host, self.lport = self.sip.getsockname()
        self.call_id = uuid.uuid4().hex
        self.from_tag = "t" + self.call_id[:8]
        self.to = ""
        self.cseq = 1
        self.remote_rtp: tuple[str, int] | None = None
        self.byes: list[tuple[float, dict[str, str]]] = []
        self.sending = threading.Event()
        self.closed = False

    def _request(self, method: str, body: str = "", cseq: int | None = None) -> str:
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        to = self.to or f"<sip:{self.user}@127.0.0.1>"
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        msg = (f"{method} sip:{self.user}@127.0.0.1:{self.port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {self.host}:{self.lport};branch={branch};rport\r\n"
               f"From: <sip:+15105550101@{self.host}>;tag={self.from_tag}\r\nTo: {to}\r\n"
               f"Call-ID: {self.call_id}\r\nCSeq: {cseq or self.cseq} {method}\r\n"
               f"Contact: <sip:uac@{self.host}:{self.lport}>\r\nMax-Forwards: 70\r\n"
               f"{ctype}Content-Length: {len(body)}\r\n\r\n{body}")
        self.sip.sendto(msg.encode(), ("127.0.0.1", self.port))
        return branch

    def _final(self, method: str, timeout: float = 10.0) -> tuple[int, dict[str, str], str]:
        self.sip.settimeout(timeout)
        while True:
            start, headers, body = _parse(self.sip.recv(65535))
            if start.startswith("SIP/2.0") and headers.get("cseq", "").endswith(method):
                status = int(start.split(" ", 2)[1])
                if status >= 200:
                    return status, headers, body

    def invite(self, direction: str = "sendrecv") -> None:
        """INVITE (or re-INVITE once answered) and the ACK of its 200."""
        version = self.cseq
        self._request("INVITE", _sdp(self.host, self.rtp.getsockname()[1], direction, version))
        status, headers, body = self._final("INVITE")
        assert status == 200, (status, headers)
        self.to = headers["to"]
        for line in body.split("\r\n"):
            if line.startswith("m=audio "):
                self.remote_rtp = ("127.0.0.1", int(line.split()[1]))
        self._request("ACK", cseq=self.cseq)
        self.cseq += 1

    def send_rtp(self, seconds: float) -> None:
        """PCMU packets every 20 ms for *seconds*, from the offered port."""
        assert self.remote_rtp is not None
        seq, ts, ssrc = 1, 0, 0x1234ABCD
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.rtp.sendto(struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts, ssrc) + b"\xff" * 160, self.remote_rtp)
            seq, ts = seq + 1, ts + 160
            time.sleep(0.02)

    def watch_for_bye(self, seconds: float) -> list[tuple[float, dict[str, str]]]:
        """Read the SIP socket for *seconds*; answer a BYE from the daemon with 200 OK."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.sip.settimeout(max(0.01, end - time.monotonic()))
            try:
                data = self.sip.recv(65535)
            except (TimeoutError, socket.timeout):
                break
            start, headers, _ = _parse(data)
            if start.startswith("BYE "):
                self.byes.append((time.monotonic(), headers))
                ok = (f"SIP/2.0 200 OK\r\nVia: {headers['via']}\r\nFrom: {headers['from']}\r\n"
                      f"To: {headers['to']}\r\nCall-ID: {headers['call-id']}\r\nCSeq: {headers['cseq']}\r\n"
                      "Content-Length: 0\r\n\r\n")
                self.sip.sendto(ok.encode(), ("127.0.0.1", self.port))
                return self.byes
        return self.byes

    def bye(self) -> int:
        self._request("BYE")
        status, _, _ = self._final("BYE")
        return status

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()


def _cdr(d, sip_call_id: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in d.cdrs():
            if rec.get("SipCallId") == sip_call_id:
                return rec
        time.sleep(0.1)
    raise AssertionError(f"no CDR for {sip_call_id}")


def test_a_caller_gone_without_a_bye_is_hung_up_after_the_rtp_timeout(daemon):
    before = metric(metrics(daemon), "errors_total", type="rtp_timeout")
    uac = BareUac(daemon.port, LONG)
    try:
        uac.invite()
        answered = time.monotonic()
        byes = uac.watch_for_bye(TIMEOUT_S + 6)       # no RTP at all from here on
    finally:
        uac.close()
    assert byes, "the daemon kept a call whose caller sent no RTP"
    at, headers = byes[0]
    assert at - answered >= TIMEOUT_S - 0.1, f"hung up {at - answered:.1f} s after the answer"
    assert headers.get("reason") == "SIP;cause=408", headers
    cdr = _cdr(daemon, uac.call_id)
    assert cdr["HangupSource"] == "system", cdr
    timed_out = daemon.wait_log("rtp_timeout", call_id=cdr["CallId"])
    assert timed_out["silent_s"] >= TIMEOUT_S and timed_out["TransactionId"] == cdr["TransactionId"]
    events = wait_handler_events(daemon.events / "scripted.jsonl", LONG)
    mine = [e["InvocationEventType"] for e in events
            if e["CallDetails"]["Participants"][0]["CallId"] == cdr["CallId"]]
    assert mine[0] == "NEW_INBOUND_CALL" and mine[-1] == "HANGUP", mine
    assert metric(metrics(daemon), "errors_total", type="rtp_timeout") == before + 1


def test_a_caller_that_sends_rtp_keeps_its_call(daemon):
    uac = BareUac(daemon.port, LONG)
    try:
        uac.invite()
        sender = threading.Thread(target=uac.send_rtp, args=(TIMEOUT_S * 2.5,))
        sender.start()
        byes = uac.watch_for_bye(TIMEOUT_S * 2.5)
        sender.join()
        assert not byes, f"the daemon hung up a call that sent RTP: {byes}"
        assert uac.bye() == 200
    finally:
        uac.close()
    assert _cdr(daemon, uac.call_id)["HangupSource"] == "caller"


def test_a_call_on_hold_with_inactive_media_keeps_its_call(daemon):
    uac = BareUac(daemon.port, LONG)
    try:
        uac.invite()
        uac.send_rtp(1.0)
        uac.invite("inactive")                        # hold: neither side sends
        byes = uac.watch_for_bye(TIMEOUT_S * 2.5)
        assert not byes, f"the daemon hung up a call on hold: {byes}"
        uac.invite()                                  # resumed: the RTP totals go on from before the hold
        uac.send_rtp(1.0)
        assert uac.bye() == 200
    finally:
        uac.close()
    cdr = _cdr(daemon, uac.call_id)
    assert cdr["HangupSource"] == "caller"
    stats = daemon.wait_log("rtp_stats", call_id=cdr["CallId"])
    assert stats["rx_packets"] >= 80, stats          # 2 x 1 s of 20 ms packets, over three streams
