"""A bare SIP UAC over UDP for tests that need what a phone library will not send: INVITEs
from a chosen source address with chosen headers (floods, forged headers), no RTP or RTP on
demand, a hold re-INVITE written by hand. One call per UDP socket (SIP) plus one for RTP."""
from __future__ import annotations

import socket
import struct
import time
import uuid


def sdp(host: str, port: int, direction: str = "sendrecv", version: int = 1) -> str:
    return (f"v=0\r\no=- 1 {version} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n")


def parse(data: bytes) -> tuple[str, dict[str, str], str]:
    """(start line, headers by lower-case name (the first of each), body) of a SIP message."""
    text = data.decode(errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return lines[0], headers, body


class BareUac:
    """One call to ``sip:<user>@127.0.0.1:<port>`` from *source*: INVITE, ACK, re-INVITE, BYE,
    and an answer to the daemon's BYE. *extra*: header lines (CRLF-ended) added to the INVITE."""

    def __init__(self, port: int, user: str, source: str = "127.0.0.1", extra: str = "") -> None:
        self.port, self.user, self.extra = port, user, extra
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((source, 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((source, 0))
        self.host, self.lport = self.sip.getsockname()
        self.call_id = uuid.uuid4().hex
        self.from_tag = "t" + self.call_id[:8]
        self.to = ""
        self.cseq = 1
        self.remote_rtp: tuple[str, int] | None = None
        self.byes: list[tuple[float, dict[str, str]]] = []

    def _request(self, method: str, body: str = "", cseq: int | None = None, branch: str | None = None,
                 extra: str = "") -> str:
        branch = branch or "z9hG4bK" + uuid.uuid4().hex[:16]
        to = self.to or f"<sip:{self.user}@127.0.0.1>"
        ctype = "Content-Type: application/sdp\r\n" if body else ""
        msg = (f"{method} sip:{self.user}@127.0.0.1:{self.port} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {self.host}:{self.lport};branch={branch};rport\r\n"
               f"From: <sip:+15105550101@{self.host}>;tag={self.from_tag}\r\nTo: {to}\r\n"
               f"Call-ID: {self.call_id}\r\nCSeq: {cseq or self.cseq} {method}\r\n"
               f"Contact: <sip:uac@{self.host}:{self.lport}>\r\nMax-Forwards: 70\r\n"
               f"{extra}{ctype}Content-Length: {len(body)}\r\n\r\n{body}")
        self.sip.sendto(msg.encode(), ("127.0.0.1", self.port))
        return branch

    def final(self, method: str, timeout: float = 10.0) -> tuple[int, dict[str, str], str]:
        """The final response to our *method* request: (status, headers, body)."""
        self.sip.settimeout(timeout)
        while True:
            start, headers, body = parse(self.sip.recv(65535))
            if start.startswith("SIP/2.0") and headers.get("cseq", "").endswith(method):
                status = int(start.split(" ", 2)[1])
                if status >= 200:
                    return status, headers, body

    def send_invite(self, direction: str = "sendrecv") -> str:
        """Send the INVITE (or, once answered, a re-INVITE) without waiting; its branch."""
        return self._request("INVITE", sdp(self.host, self.rtp.getsockname()[1], direction, self.cseq),
                             extra=self.extra)

    def answer(self, branch: str, timeout: float = 10.0) -> tuple[int, dict[str, str], str]:
        """The final response to the INVITE sent with *branch*, ACKed: a 2xx in the dialog (then
        the next request has the next CSeq), a refusal in the INVITE's transaction, as RFC 3261
        17.1.1.3 says (so the daemon does not retransmit it)."""
        status, headers, body = self.final("INVITE", timeout)
        if status < 300:
            self.to = headers["to"]
            for line in body.split("\r\n"):
                if line.startswith("m=audio "):
                    self.remote_rtp = ("127.0.0.1", int(line.split()[1]))
            self._request("ACK", cseq=self.cseq)
            self.cseq += 1
        else:
            self.to = headers["to"]
            self._request("ACK", cseq=self.cseq, branch=branch)
        return status, headers, body

    def invite(self, direction: str = "sendrecv") -> None:
        """INVITE (or re-INVITE once answered), its 200 and the ACK."""
        status, headers, _ = self.answer(self.send_invite(direction))
        assert status == 200, (status, headers)

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
            start, headers, _ = parse(data)
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
        status, _, _ = self.final("BYE")
        return status

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()


def flood(port: int, user: str, sources: list[str], extra: str = "") -> list[tuple[int, dict[str, str]]]:
    """One INVITE from each address of *sources* (repeats allowed), all sent before any answer
    is read; the final responses (status, headers) in the same order, each ACKed."""
    uacs = [BareUac(port, user, source=src, extra=extra) for src in sources]
    try:
        branches = [u.send_invite() for u in uacs]
        return [u.answer(b, timeout=5.0)[:2] for u, b in zip(uacs, branches)]
    finally:
        for u in uacs:
            u.close()
