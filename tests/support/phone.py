"""A pjsua2 test phone: places one real SIP call, records what it hears, prints a JSON result.

Run as a separate process (pjsua2 allows one library instance per process). The calling
half (class Phone, the endpoint set-up, the call loop) is chimevoice/testphone.py, which
``chimevoice call`` runs too; the answering mode is here.

    python tests/support/phone.py --uri sip:+15550100000@127.0.0.1:5060 --record out.wav

Options let it hang up after a while, send DTMF at given times (RFC 4733 events, SIP INFO
``application/dtmf-relay`` or SIP INFO ``application/dtmf``: ``--dtmf-method``), play a WAV
file to the far end in a loop from the answer (``--play``), and use TCP or TLS. The result
line on stdout is JSON: status codes seen, whether and how long the call was connected, and
who hung up.

Answering mode (``--listen ADDR:PORT`` instead of ``--uri``; port 0 picks a free one): the
phone listens, prints ``{"listening": true, "port": N}`` once its transport is up, then
handles ``--calls`` incoming calls (each its own object, concurrently) until they have ended
or ``--max-seconds`` have passed. Per call it may ring (``--ring``: 180), send early media
(``--early-media``: 183 with SDP, ``--play`` starts then), answer after ``--answer-after``
seconds with 200 or reject with ``--reject CODE``, or never answer (``--no-answer``). The
result line also says what the INVITE carried: Request-URI, From, To, users, ``X-*``,
``User-to-User`` and ``Diversion`` headers, the source address, and whether a CANCEL came.
With ``--calls`` > 1 the per-call results are a list under ``"calls"``.

    python tests/support/phone.py --listen 127.0.0.1:0 --ring --answer-after 1 --record in.wav
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import pjsua2 as pj

from chimevoice.sip.message import srtp_suite
from chimevoice.testphone import PHONE_KEYS, Phone, dtmf_schedule, open_null_sound, place_call, start_endpoint


class Answerer(Phone):
    """One incoming call (answering mode): what its INVITE said and what we do with it."""
    record_on_media = False       # from the 200 on, not from early media

    def __init__(self, acc, ep, call_id: int, n: int, args, rdata, received_at: float):
        super().__init__(acc, ep, call_id)
        self.n = n
        self.args = args
        self.invite_at = time.monotonic()
        self.received_at = received_at
        self.invite = invite_info(rdata.wholeMsg)
        self.invite["remote_address"] = rdata.srcAddress
        self.play_path = args.play
        self.no_te = args.no_telephone_event
        self.record_path = record_path(args.record, n) if args.record else ""
        self.provisional_done = False
        self.final_sent: int | None = None            # the final status we sent (200, 486, ...)
        self.answer_sent_at: float | None = None
        self.cancelled = False
        self.hung_up = False
        self.sent: list = []
        self.sent_statuses: list[int] = []
        self.dtmf = dtmf_schedule(args.dtmf, args.dtmf_method, args.dtmf_gap)
        self.recording = False
        self.errors: list[str] = []                   # pjsua errors while acting on the call

    # -- pjsua callbacks
    def onCallTsxState(self, prm):
        try:
            if prm.e.type == pj.PJSIP_EVENT_TSX_STATE and prm.e.body.tsxState.tsx.method == "CANCEL":
                self.cancelled = True
            ts = prm.e.body.tsxState if prm.e.type == pj.PJSIP_EVENT_TSX_STATE else None
            if ts is not None and ts.tsx.method == "INVITE" and ts.type == pj.PJSIP_EVENT_TX_MSG \
                    and ts.tsx.statusCode // 100 == 2:          # our answer names the chosen suite
                self.srtp_suite = srtp_suite(ts.src.tdata.wholeMsg) or self.srtp_suite
        except Exception:                                    # noqa: BLE001 - never kill pjsua's thread
            traceback.print_exc()

    def onCallState(self, prm):
        super().onCallState(prm)
        if self.disconnected_at is not None and self.final_sent is None and self.last_code == 487:
            self.cancelled = True                            # CANCEL answered 487 by pjsip itself

    def onCallMediaState(self, prm):
        super().onCallMediaState(prm)
        self._start_recording()

    # -- driven from the main loop
    def _txop(self, code: int) -> "pj.CallOpParam":
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        for h in self.args.header:                           # --header goes on every response
            name, _, value = h.partition(":")
            sh = pj.SipHeader()
            sh.hName = name.strip()
            sh.hValue = value.strip()
            prm.txOption.headers.append(sh)
        return prm

    def _start_recording(self) -> None:
        if self.record_path and self.recorder is None and self.answer_sent_at is not None \
                and self.audio is not None and self.disconnected_at is None:
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(self.record_path)
            self.audio.startTransmit(self.recorder)
            self.recording = True

    def step(self, now: float) -> None:
        if self.disconnected_at is not None:
            return
        a = self.args
        if not self.provisional_done:
            self.provisional_done = True
            if a.ring:
                self.answer(self._txop(180))
                self.sent_statuses.append(180)
            if a.early_media:
                self.answer(self._txop(183))
                self.sent_statuses.append(183)
        if self.final_sent is None and not a.no_answer and now - self.invite_at >= a.answer_after:
            if a.reject:
                self.final_sent = a.reject
                self.remote_hangup = False
                self.hangup(self._txop(a.reject))
            else:
                self.final_sent = 200
                self.answer_sent_at = now
                self.answer(self._txop(200))
                self._start_recording()
            self.sent_statuses.append(self.final_sent)
        if self.confirmed_at is not None and self.disconnected_at is None:
            since = now - self.confirmed_at
            while self.dtmf and since >= self.dtmf[0][0]:
                digits = self.dtmf.pop(0)[1]
                self.send_digits(digits, a.dtmf_method)
                self.sent.append([round(since, 3), digits])
            if a.hangup_after and since >= a.hangup_after and not self.hung_up:
                self.hung_up = True
                self.remote_hangup = False
                self.hangup(pj.CallOpParam(True))

    def give_up(self) -> None:
        """--max-seconds ran out: end the call from here (603 if never answered)."""
        if self.disconnected_at is None:
            self.remote_hangup = False
            self.hung_up = True
            try:
                self.hangup(pj.CallOpParam(True))
            except pj.Error:
                pass

    def result(self) -> dict:
        connected = (self.disconnected_at - self.confirmed_at) if (self.confirmed_at and self.disconnected_at) else 0.0
        return {
            "call": self.n,
            **self.invite,
            "received_at": round(self.received_at, 3),
            "cancelled": self.cancelled,
            "sent_statuses": self.sent_statuses,
            "statuses": self.statuses,
            "final_status": self.last_code,
            "reason": self.reason,
            "answered": self.confirmed_at is not None,
            "connected_seconds": round(connected, 3),
            "answer_seconds": round(self.answer_sent_at - self.invite_at, 3) if self.answer_sent_at else None,
            "hangup_by": None if self.disconnected_at is None else ("remote" if self.remote_hangup else "local"),
            "dtmf_received": self.dtmf_in,
            "dtmf_sent": self.sent,
            "played": self.player is not None,
            "srtp": self.srtp,
            "srtp_suite": self.srtp_suite,
            "recording": self.record_path if self.recording else None,
            "errors": self.errors,
        }


class Listener(pj.Account):
    def __init__(self, ep, args, t0: float):
        super().__init__()
        self.ep = ep
        self.args = args
        self.t0 = t0
        self.calls: list[Answerer] = []
        self.extra = 0            # calls beyond --calls, answered 486
        self.extra_refs: list = []

    def onIncomingCall(self, prm):
        try:
            if len(self.calls) >= self.args.calls:
                self.extra += 1
                extra = pj.Call(self, prm.callId)
                op = pj.CallOpParam(True)
                op.statusCode = 486
                extra.hangup(op)
                self.extra_refs.append(extra)     # pjsua2 Call objects must outlive the call
                return
            call = Answerer(self, self.ep, prm.callId, len(self.calls) + 1, self.args, prm.rdata,
                            time.monotonic() - self.t0)
            self.calls.append(call)
        except Exception:                                    # noqa: BLE001
            traceback.print_exc()


def record_path(path: str, n: int) -> str:
    """--record for call *n*: the path itself for call 1, ``name-N.ext`` for the others."""
    if n <= 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{n}{p.suffix}"))


def invite_info(text: str) -> dict:
    """What a test wants to know about an incoming INVITE (names of extra headers as received)."""
    from chimevoice.sip.message import parse_request, uri_of, uri_parts
    _method, ruri, headers, _body = parse_request(text)
    frm = headers.get("from", [""])[0]
    to = headers.get("to", [""])[0]
    extra: dict[str, str] = {}
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0].split("\n")[1:]
    last = None
    for line in head:
        if line[:1] in (" ", "\t") and last:
            extra[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        last = None
        if sep and (name.lower().startswith("x-") or name.lower() in ("user-to-user", "diversion")):
            # the same name twice (Diversion often is): one comma-separated value
            extra[name] = f"{extra[name]}, {value.strip()}" if name in extra else value.strip()
            last = name
    return {
        "request_uri": ruri,
        "request_user": uri_parts(ruri)[1],
        "from": frm,
        "from_user": uri_parts(uri_of(frm))[1] if frm else "",
        "to": to,
        "to_user": uri_parts(uri_of(to))[1] if to else "",
        "call_id": headers.get("call-id", [""])[0],
        "headers": extra,
        "invite": text,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--uri", help="calling mode: the SIP URI to call")
    mode.add_argument("--listen", metavar="ADDR:PORT",
                      help="answering mode: listen there (port 0: any free port, printed) for --calls calls")
    ap.add_argument("--transport", default="udp", choices=("udp", "tcp", "tls"))
    ap.add_argument("--local-port", type=int, default=0)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--from-user", default="+15105550101")
    ap.add_argument("--record", default="")
    ap.add_argument("--hangup-after", type=float, default=0.0, help="seconds after answer; 0 = wait for the far end")
    ap.add_argument("--max-seconds", type=float, default=30.0)
    ap.add_argument("--dtmf", action="append", default=[], help="AT_SECONDS:DIGITS after answer, e.g. 1.5:#")
    ap.add_argument("--dtmf-method", default="rfc4733", choices=("rfc4733", "info", "info-dtmf", "inband"),
                    help="rfc4733: RTP events; info: SIP INFO application/dtmf-relay; "
                         "info-dtmf: SIP INFO application/dtmf (one request per digit); "
                         "inband: dual tones in the audio (100 ms on, 100 ms off)")
    ap.add_argument("--no-telephone-event", action="store_true",
                    help="offer no telephone-event in the SDP (the far end must use in-band DTMF)")
    ap.add_argument("--dtmf-gap", type=float, default=0.25,
                    help="seconds between the digits of one --dtmf entry sent by SIP INFO")
    ap.add_argument("--play", default="", help="WAV file played to the far end in a loop from the answer")
    ap.add_argument("--header", action="append", default=[],
                    help="Name: value added to the INVITE (answering mode: to every response)")
    ap.add_argument("--srtp", action="store_true", help="offer RTP/SAVP with SDES keys and require it")
    ap.add_argument("--tls-cert", default="", help="PEM certificate for the TLS transport (answering mode)")
    ap.add_argument("--tls-key", default="", help="PEM private key for the TLS transport (answering mode)")
    uas = ap.add_argument_group("answering mode (--listen)")
    uas.add_argument("--calls", type=int, default=1, help="how many incoming calls to handle (more: 486)")
    uas.add_argument("--ring", action="store_true", help="send 180 Ringing first")
    uas.add_argument("--early-media", action="store_true",
                     help="send 183 Session Progress with SDP (and start --play) before answering")
    uas.add_argument("--answer-after", type=float, default=0.0,
                     help="seconds from the INVITE to the final response")
    uas.add_argument("--reject", type=int, default=0, metavar="CODE",
                     help="final response CODE (e.g. 486, 503, 404) instead of 200")
    uas.add_argument("--no-answer", action="store_true",
                     help="never send a final response (the caller times out or CANCELs)")
    args = ap.parse_args()
    if args.listen:
        return listen(args)

    result = place_call(args)                # chimevoice/testphone.py (also `chimevoice call`)
    result = {k: result[k] for k in PHONE_KEYS}
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)


def listen(args) -> int:
    """Answering mode: see the module docstring."""
    host, _, port = args.listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    ep, tid = start_endpoint(args, host, int(port), max_calls=max(4, args.calls + 2))
    bound = int(ep.transportGetInfo(tid).localName.rpartition(":")[2])
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{args.from_user}@{host}:{bound}"
    acfg.sipConfig.transportId = tid
    acfg.mediaConfig.transportConfig.boundAddress = host
    if args.srtp:
        acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
        acfg.mediaConfig.srtpSecureSignaling = 0
    open_null_sound(ep)
    t0 = time.monotonic()
    acc = Listener(ep, args, t0)
    acc.create(acfg, True)          # the default account: pjsua takes its media settings for incoming calls
    print(json.dumps({"listening": True, "port": bound, "transport": args.transport}), flush=True)
    deadline = t0 + args.max_seconds
    while time.monotonic() < deadline:
        ep.libHandleEvents(10)
        now = time.monotonic()
        for c in acc.calls:
            try:
                c.step(now)
            except pj.Error as exc:             # e.g. the caller went away in between: report, go on
                c.errors.append(exc.info())     # (each action is marked done before it is tried)
        if len(acc.calls) >= args.calls and all(c.disconnected_at is not None for c in acc.calls):
            break
    for c in acc.calls:
        c.give_up()
    for _ in range(30):                 # let the last BYE/ACK/200 go out
        ep.libHandleEvents(10)
    calls = []
    for c in acc.calls:
        c.recorder = None               # closes the WAV (header with the final length)
        c.tones = None
        calls.append(c.result())
    top = {"listening_port": bound, "calls_received": len(calls), "calls_refused": acc.extra}
    if args.calls == 1:
        result = {**top, **(calls[0] if calls else {"answered": False, "cancelled": False})}
    else:
        result = {**top, "calls": calls}
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
