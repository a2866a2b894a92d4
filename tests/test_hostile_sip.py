"""Hostile input at the real daemon (issue 11 item 2): our RFC 4475 / pjproject-sendto torture
messages, a seeded SIP fuzzer over UDP and TCP with a real call placed through it, bytes that
are not UTF-8 in headers, and RTP/RTCP from the wrong address or too large during a call.

The long run (100,000 messages) is bench/fuzz_sip.py; this is the short one."""
from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.request
import uuid

import numpy as np
import pytest

from chimevoice.cdr import CdrWriter, build_record
from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.audio import read_pcm
from chimevoice.sip.message import body_shorter_than_declared
from chimevoice.text import escape_strings, escape_undecodable
from tests.support import sipfuzz as F
from tests.support.harness import handler_app, module_daemon, read_events, write_tone

pytestmark = pytest.mark.sip

APP = "dddddddd-0000-4000-8000-000000000001"
REAL = "+15550100066"          # answered, a 1000 Hz tone (tests/handlers/hostile.py)
TARGET = "+15550100001"        # turned down with 486 by the handler: what torture and fuzz INVITEs call


def _rule(i: int, number: str) -> dict:
    return {"id": f"eeeeeeee-0000-4000-8000-{i:012d}", "name": f"hostile-{i}", "trigger_type": "ToPhoneNumber",
            "trigger_value": number, "target_applications": [{"sip_media_application_id": APP, "priority": 1}]}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from tests.support.harness import free_port
    d = module_daemon(tmp_path_factory, "hostile")
    d.http_port = free_port()
    apps = [handler_app(APP, "hostile", "hostile:handler", {"EVENTS_DIR": str(d.events)})]
    d.write_config(apps, rules=[_rule(0, REAL), _rule(1, TARGET)], numbers=[REAL, TARGET])
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    d.start()
    yield d
    code = d.stop()
    assert code == 0, d.log_path.read_text()[-3000:]


def totals(d) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/status", timeout=5) as r:
        return json.loads(r.read())["totals"]


def wait_idle(d, timeout: float = 15.0) -> dict:
    """/status totals once no call is live (AssertionError if calls stay in the registry)."""
    deadline = time.monotonic() + timeout
    while True:
        t = totals(d)
        if t["calls_active"] == 0:
            return t
        if time.monotonic() > deadline:
            raise AssertionError(f"calls left in the registry: {t}")
        time.sleep(0.1)


def wait_cdrs(d, count: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        n = len(list(d.data.rglob("Amazon-Chime-SMADRs/**/*.json")))
        if n >= count or time.monotonic() > deadline:
            return n
        time.sleep(0.1)


def tone_gaps(rec) -> tuple[int, int]:
    """(silent, all) 20 ms blocks of a recording from 0.6 s after the answer to its last
    0.2 s, after checking that what it heard is the 1000 Hz tone."""
    heard, rate = read_pcm(rec)
    x = heard.astype(np.float64)
    assert dominant_frequency(x, rate) == pytest.approx(1000, abs=15)
    block = rate // 50
    blocks = [x[i:i + block] for i in range(0, len(x) - block, block)][int(0.6 * 50):-10]
    return sum(1 for b in blocks if np.abs(b).max() < 1000), len(blocks)


def failures(d) -> list[dict]:
    return [e for e in d.logs() if e.get("event") in ("cdr_write_failed", "sip_event_failed", "incoming_call_failed",
                                                       "call_state_failed", "media_state_failed")]


# -- the fix: bytes that are not UTF-8 never cost a record ---------------------------------------

def test_undecodable_bytes_are_escaped_not_lost_in_cdrs(tmp_path):
    """The issue's 38 lost CDRs: a Call-ID with a byte pjsua2 hands over as a lone surrogate."""
    record = build_record(aws_account_id="1", transaction_id="t-1", call_id="c-1", voice_connector_id="vc",
                          start_ms=1_700_000_000_000, end_ms=1_700_000_001_000, sip_response_code=486,
                          sip_call_id="odd-\udcff\udcfe@host", source_phone_number_name="caf\u00e9 \udc80")
    writer = CdrWriter(tmp_path)
    results = writer.write_batch([record, dict(record, CallId="c-2")]) + [writer.write(dict(record, CallId="c-3"))]
    assert all(not isinstance(r, Exception) for r in results), results
    saved = json.loads(results[0].read_text(encoding="utf-8"))
    assert saved["SipCallId"] == "odd-\\xff\\xfe@host"
    assert saved["SourcePhoneNumberName"] == "caf\u00e9 \\x80"        # real UTF-8 stays as it is


def test_escape_undecodable_spells_each_byte():
    raw = b"a\xff\xc3\xa9\xed\xa0\x80z"
    text = raw.decode("utf-8", "surrogateescape")            # what SWIG gives us
    assert escape_undecodable(text) == "a\\xff\u00e9\\xed\\xa0\\x80z"
    assert escape_undecodable("plain") == "plain"
    assert escape_undecodable("\ud800") == "\\ud800"
    assert escape_strings({"k\udcff": ["\udcfe", 1]}) == {"k\\xff": ["\\xfe", 1]}
    assert body_shorter_than_declared("INVITE x SIP/2.0\r\nl: 10\r\n\r\nv=0\r\n", "10")
    assert not body_shorter_than_declared("INVITE x SIP/2.0\r\n\r\n\udcff\udcfe", "2")


def _invite(me: str, host: str, number: str, call_id: bytes, extra: bytes = b"") -> bytes:
    sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    return (f"INVITE sip:{number}@{host} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{uuid.uuid4().hex};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:+15105550101@{me}>;tag=1\r\nTo: <sip:{number}@{host}>\r\n").encode() \
        + b"Call-ID: " + call_id + b"\r\nCSeq: 1 INVITE\r\nContact: <sip:x@" + me.encode() + b">\r\n" + extra \
        + b"Content-Type: application/sdp\r\nContent-Length: " + str(len(sdp)).encode() + b"\r\n\r\n" + sdp


def test_non_utf8_call_id_and_header_reach_cdr_and_handler_escaped(daemon):
    """A real INVITE whose Call-ID and X- header hold bytes that are not UTF-8: the call gets
    its CDR (SipCallId escaped) and the handler sees the header escaped, nothing dropped."""
    tag = uuid.uuid4().hex[:8]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        me, host = f"127.0.0.1:{s.getsockname()[1]}", f"127.0.0.1:{daemon.port}"
        msg = _invite(me, host, TARGET, b"odd-" + tag.encode() + b"-\xff\xfe@x",
                      b"X-Odd: caf\xc3\xa9 \xff\x80 " + tag.encode() + b"\r\n")
        s.sendto(msg, ("127.0.0.1", daemon.port))
        code = None
        while code is None or code < 200:
            data, _ = s.recvfrom(65536)
            code = F.status_of(data)
        assert code == 486
        ack = F.ack_for(data, f"sip:{TARGET}@{host}".encode())
        assert ack is not None
        s.sendto(ack, ("127.0.0.1", daemon.port))
    want = f"odd-{tag}-\\xff\\xfe@x"
    deadline = time.monotonic() + 10
    while not any(c["SipCallId"] == want for c in daemon.cdrs()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c["SipCallId"] for c in daemon.cdrs() if tag in c["SipCallId"]] == [want], failures(daemon)
    seen = [e for e in read_events(daemon.events / "hostile.jsonl")
            if tag in (e["CallDetails"]["Participants"][0].get("SipHeaders") or {}).get("X-Odd", "")]
    assert seen and seen[0]["CallDetails"]["Participants"][0]["SipHeaders"]["X-Odd"] == f"caf\u00e9 \\xff\\x80 {tag}"
    assert not failures(daemon)


def test_offer_with_six_media_lines_is_answered_line_for_line(daemon):
    """Our pjsua2 build keeps 4 media per call (PJSUA_MAX_CALL_MEDIA, scripts/build-pjsua2: the
    per-call tables are most of the idle footprint). An offer with 6 m-lines still gets an answer
    with 6 (RFC 3264 §6): the first audio line taken, the rest refused with port 0; the call is up."""
    lines = [b"m=audio 4000 RTP/AVP 0", b"m=video 4002 RTP/AVP 96", b"m=audio 4004 RTP/AVP 8",
             b"m=application 4006 UDP/BFCP *", b"m=text 4008 RTP/AVP 98", b"m=audio 4010 RTP/AVP 0"]
    rtpmap = {1: b"a=rtpmap:96 H264/90000", 4: b"a=rtpmap:98 t140/1000"}   # dynamic types need one
    sdp = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           + b"".join(ln + b"\r\n" + (rtpmap[i] + b"\r\n" if i in rtpmap else b"") for i, ln in enumerate(lines)))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        me, host = f"127.0.0.1:{s.getsockname()[1]}", f"127.0.0.1:{daemon.port}"
        cid = f"six-{uuid.uuid4().hex}".encode()
        invite = _invite(me, host, REAL, cid)
        head = invite.split(b"\r\n\r\n", 1)[0].replace(b"Content-Length: ", b"X-Len: ")
        s.sendto(head + b"\r\nContent-Length: " + str(len(sdp)).encode() + b"\r\n\r\n" + sdp,
                 ("127.0.0.1", daemon.port))
        code, data = None, b""
        while code is None or code < 200:
            data, _ = s.recvfrom(65536)
            code = F.status_of(data)
        assert code == 200, data[:300]
        answer = data.split(b"\r\n\r\n", 1)[1]
        mlines = [ln for ln in answer.split(b"\r\n") if ln.startswith(b"m=")]
        assert len(mlines) == 6, answer
        assert [ln.split()[0] for ln in mlines] == [ln.split()[0] for ln in lines]
        assert mlines[0].split()[1] != b"0" and all(ln.split()[1] == b"0" for ln in mlines[1:]), mlines
        to = F.header_of(data, b"to")
        contact = F.header_of(data, b"contact") or b""
        target = re.search(rb"<([^>]+)>", contact).group(1) if b"<" in contact else contact
        common = (b"From: <sip:+15105550101@" + me.encode() + b">;tag=1\r\nTo: " + to + b"\r\nCall-ID: " + cid
                  + b"\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
        for method, cseq in ((b"ACK", b"1"), (b"BYE", b"2")):
            via = f"Via: SIP/2.0/UDP {me};branch=z9hG4bK-{uuid.uuid4().hex};rport\r\n".encode()
            s.sendto(method + b" " + target + b" SIP/2.0\r\n" + via + b"CSeq: " + cseq + b" " + method + b"\r\n"
                     + common, ("127.0.0.1", daemon.port))
        code = None
        while code != 200 or b"BYE" not in (F.header_of(data, b"cseq") or b""):
            data, _ = s.recvfrom(65536)
            code = F.status_of(data)
    deadline = time.monotonic() + 10
    while not any(c["SipCallId"] == cid.decode() for c in daemon.cdrs()) and time.monotonic() < deadline:
        time.sleep(0.05)
    [cdr] = [c for c in daemon.cdrs() if c["SipCallId"] == cid.decode()]
    assert cdr["AnswerTimeEpochMilliseconds"] and cdr["HangupSource"] != "system", cdr
    assert not failures(daemon)


# -- torture messages -------------------------------------------------------------------------

def test_torture_messages_get_the_right_answer_or_none(daemon):
    """Each of our RFC 4475 / sendto messages, each from its own socket at once; the final
    response (or silence) must be one tests/sip_torture/cases.yaml allows."""
    cases = F.torture_cases()
    before = wait_idle(daemon)
    cdrs_before = len(daemon.cdrs())
    host = f"127.0.0.1:{daemon.port}"
    socks = {}
    for i, name in enumerate(sorted(cases)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        data = F.load_torture(name, n=TARGET, host=host, me=f"127.0.0.1:{s.getsockname()[1]}",
                              serial=f"{i}-{uuid.uuid4().hex[:8]}")
        s.sendto(data, ("127.0.0.1", daemon.port))
        socks[name] = s
    finals: dict[str, int] = {}
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and len(finals) < len(cases):
        for name, s in socks.items():
            try:
                data = s.recv(70000)
            except BlockingIOError:
                continue
            code = F.status_of(data)
            if code is not None and code >= 200 and name not in finals:
                finals[name] = code
                ack = F.ack_for(data, f"sip:{TARGET}@{host}".encode())
                if ack and code >= 300:
                    s.sendto(ack, ("127.0.0.1", daemon.port))
        time.sleep(0.01)
    for s in socks.values():
        s.close()
    wrong = {name: finals.get(name, "drop") for name, case in cases.items()
             if finals.get(name, "drop") not in case["expect"]}
    assert not wrong, f"unexpected answers: {wrong}"
    assert daemon.proc.poll() is None
    # Every call created wrote its CDR; every 486 was such a call. (pjsua turns some offers
    # down itself, 406 for bad SRTP keys, 422 for a short Session-Expires, after the call
    # was already handed to us: those are calls too, with their CDRs.)
    after = wait_idle(daemon)
    created = after["calls_total"] - before["calls_total"]
    assert wait_cdrs(daemon, cdrs_before + created) == cdrs_before + created
    routed = {e["sip_call_id"].split("@")[0] for e in daemon.logs()
              if e.get("event") == "call_routed" and e.get("sip_call_id", "").startswith("torture-")}
    assert len(routed) == created
    recorded = {c["SipCallId"].split("@")[0] for c in daemon.cdrs() if c["SipCallId"].startswith("torture-")}
    assert recorded == routed
    names = sorted(cases)
    assert {names[int(cid.split("-")[1])] for cid in routed} >= {n for n, code in finals.items() if code == 486}
    # esc01's %-escaped users are read as pjsip parsed them, not from the text pjsip unescaped in place
    esc = [e for e in daemon.logs() if e.get("event") == "call_routed"
           and e.get("sip_call_id", "").startswith(f"torture-{names.index('esc01')}-")]
    assert esc and (esc[0]["called"], esc[0]["caller"]) == (TARGET, "I have spaces"), esc
    assert not failures(daemon)


# -- the fuzzer, with a real call through it ----------------------------------------------------

def _fuzz_round(d, seed: int, udp: int, tcp: int) -> F.Tally:
    host = f"127.0.0.1:{d.port}"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        fz = F.Fuzzer(seed, number=TARGET, host=host, me=f"127.0.0.1:{s.getsockname()[1]}")
        tally = F.send_udp(("127.0.0.1", d.port), (fz.message(i).data for i in range(udp)), rate=700,
                           sock=s, linger_s=0.5, ack_ruri=f"sip:{TARGET}@{host}".encode())
    fz = F.Fuzzer(seed + 1, number=TARGET, host=host, me="127.0.0.1:5999", transport="TCP")
    tally.merge(F.send_tcp(("127.0.0.1", d.port), (fz.message(i).data for i in range(tcp)), per_connection=40,
                           rate=1500, linger_s=0.3))
    return tally


def test_fuzzed_udp_and_tcp_while_a_real_call_keeps_its_audio(daemon, tmp_path):
    """Seeded mutations (non-UTF-8 bytes in every header in turn, huge headers, bad
    Content-Length, bad SDP, byte flips) over UDP and TCP: the daemon stays up, a real call
    placed meanwhile hears its whole tone, no call is left in the registry, every call
    created wrote a CDR, and RSS does not keep growing from one round to the next."""
    _fuzz_round(daemon, 11, 400, 100)                        # warm-up: pools, workers, caches
    before = wait_idle(daemon)
    cdrs_before = wait_cdrs(daemon, 0)
    rss_before = F.rss_kb(daemon.proc.pid)
    rec = tmp_path / "real.wav"
    result: dict = {}
    caller = threading.Thread(target=lambda: result.update(daemon.call(user=REAL, record=rec, hangup_after=5.0)))
    caller.start()
    tally = _fuzz_round(daemon, 12, 1600, 400)
    caller.join(40)
    assert daemon.proc.poll() is None, daemon.log_path.read_text()[-3000:]
    assert result.get("answered") and result["hangup_by"] == "local", result
    quiet, total = tone_gaps(rec)
    # A few 20 ms blocks may go quiet when the 2 cores are saturated by the flood (CI saw 4 of
    # 210); a disrupted call (media taken over, stream lost) misses far more than 5 %.
    assert total > 150 and quiet <= total // 20, f"the real call missed its tone in {quiet} of {total} 20 ms blocks"
    after = wait_idle(daemon)
    created = after["calls_total"] - before["calls_total"]
    cdrs = wait_cdrs(daemon, cdrs_before + created)
    rss_after = F.rss_kb(daemon.proc.pid)
    print(f"fuzz: sent {tally.sent}, responses {dict(tally.by_class)}, calls {created}, "
          f"CDRs {cdrs - cdrs_before}, RSS {rss_before} -> {rss_after} kB")
    assert tally.sent == 2000 and tally.by_class["4xx"] > 100, tally.by_class
    assert created > 0 and cdrs - cdrs_before == created
    assert rss_after - rss_before < 60_000, (rss_before, rss_after)   # the bench shows the plateau
    assert not failures(daemon)


# -- RTP and RTCP that do not belong to the call -----------------------------------------------

def _rtp(seq: int, ts: int, ssrc: int, payload: bytes, pt: int = 0) -> bytes:
    return bytes([0x80, pt]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big") + ssrc.to_bytes(4, "big") + payload


def test_rtp_from_a_wrong_address_and_oversized_rtp_rtcp_leave_the_call_alone(daemon, tmp_path):
    """During a real call, RTP from another address (127.0.0.2 and another port) and oversized
    or garbage RTP and RTCP at every port of the daemon's media range: the call keeps hearing
    its tone to the end and the daemon stays up."""
    cfg_rtp = re.search(r"port_start: (\d+)\n\s+port_count: (\d+)", daemon.config_path.read_text())
    assert cfg_rtp, daemon.config_path.read_text()
    start, count = int(cfg_rtp.group(1)), int(cfg_rtp.group(2))
    rec = tmp_path / "rtp.wav"
    result: dict = {}
    caller = threading.Thread(target=lambda: result.update(daemon.call(user=REAL, record=rec, hangup_after=5.0)))
    caller.start()
    time.sleep(1.5)
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as same_host:
        other.bind(("127.0.0.2", 0))
        same_host.bind(("127.0.0.1", 0))
        t_end = time.monotonic() + 2.0
        seq = 0
        while time.monotonic() < t_end:
            # 25 packets in a row from one wrong source, then 25 from the other: pjmedia
            # would move the call's media to a source that keeps sending (NAT latching).
            s = other if (seq // 25) % 2 == 0 else same_host
            for port in range(start, start + count, 2):
                s.sendto(_rtp(seq, seq * 160, 0x0BADBEEF, b"\x00" * 160), ("127.0.0.1", port))   # loud PCMU
                s.sendto(_rtp(seq, seq * 160, 0x0BADBEEF, b"\x55" * 1400, pt=8), ("127.0.0.1", port))
                s.sendto(b"\x80\xc8" + b"\xff" * 9000, ("127.0.0.1", port + 1))         # oversized RTCP SR
                s.sendto(b"\x81\xcb\x00\xff", ("127.0.0.1", port + 1))                  # BYE claiming 1 kB
                sent += 4
            for port in range(start, start + count, 2):
                other.sendto(b"\x80\x00" + b"\x00" * 60000, ("127.0.0.1", port))            # a 60 kB "RTP" packet
                sent += 1
            seq += 1
            time.sleep(0.02)
    caller.join(30)
    assert daemon.proc.poll() is None, daemon.log_path.read_text()[-3000:]
    assert result.get("answered") and result["hangup_by"] == "local", result
    quiet, total = tone_gaps(rec)
    # As in the fuzz test: a few blocks may go quiet while the flood saturates the 2 cores (a
    # fresh-clone CI run saw 4 of 209); media latched to a stray source would hear its loud
    # packets and then nothing for the rest of the call, far more than 5 %.
    assert total > 150 and quiet <= total // 20, f"{quiet} silent 20 ms blocks of {total} after {sent} stray packets"
    wait_idle(daemon)
    assert not failures(daemon)


# -- a flood of unparsable messages is not a flood of log lines ------------------------------------

def _bad_message(port: int) -> bytes:
    """A request pjsip cannot parse (a CSeq without a number): it logs such a message at error
    level, with the message itself."""
    return (f"OPTIONS sip:{TARGET}@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"From: <sip:flood@127.0.0.1>;tag=f\r\nTo: <sip:{TARGET}@127.0.0.1>\r\nCall-ID: {uuid.uuid4()}\r\n"
            "CSeq: OPTIONS OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def test_a_flood_of_unparsable_messages_is_a_bounded_number_of_log_lines(daemon):
    def counts() -> tuple[int, int]:
        logs = daemon.logs()
        logged = sum(1 for e in logs if e.get("event") == "pjsip" and "Error processing" in e.get("msg", ""))
        held = sum(e["lines"] for e in logs if e.get("event") == "pjsip_log_suppressed")
        return logged, held

    logged0, held0 = counts()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    n = 600
    t0 = time.monotonic()
    try:
        for i in range(n):
            sock.sendto(_bad_message(port), ("127.0.0.1", daemon.port))
            if i % 50 == 49:
                time.sleep(0.02)            # paced so the socket's receive buffer never drops one
        time.sleep(1.5)                     # the budget refills: the next line passes, with the count
        sock.sendto(_bad_message(port), ("127.0.0.1", daemon.port))
        deadline = time.monotonic() + 5
        # until every line is logged or counted (a slow flood can see more than one count line)
        while sum(counts()) - logged0 - held0 < n + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sock.close()
    elapsed = time.monotonic() - t0
    logged1, held1 = counts()
    logged, held = logged1 - logged0, held1 - held0
    # at most a burst of 100 and 20 a second pass; every other line is counted, not lost
    assert logged <= 100 + 20 * elapsed + 1, (logged, elapsed)
    assert held > 0 and logged + held >= n + 1, (logged, held)
    assert daemon.proc.poll() is None


def test_log_budget_passes_a_burst_then_a_rate_and_cuts_long_lines():
    from chimevoice.sip.endpoint import _LogBudget
    now = [0.0]
    budget = _LogBudget(rate=10.0, burst=5, max_chars=20, clock=lambda: now[0])
    passed = [budget.admit("x") for _ in range(8)]
    assert passed.count("x") == 5 and passed[5:] == [None, None, None] and budget.suppressed == 3
    now[0] += 0.25                                  # 2.5 tokens back
    assert budget.admit("y") == "y" and budget.suppressed == 0      # reported with this line
    assert budget.admit("z") == "z" and budget.admit("w") is None
    now[0] += 10
    assert budget.admit("a" * 30) == "a" * 20 + " ... (10 more characters)"
