"""The pjsua2 test phone: places one real SIP call (``chimevoice call``, chimevoice/caller.py).

:func:`place_call` dials, plays a WAV file as the caller's voice (looped from the answer),
sends digits at given times (RFC 4733 events, SIP INFO ``application/dtmf-relay``, SIP INFO
``application/dtmf`` or in-band tones), records what it hears, and waits for the far end's BYE
or hangs up after a while; it returns what happened as a dict.

tests/support/phone.py is built on this module (:class:`Phone`, :func:`start_endpoint`,
:func:`open_null_sound`, :func:`dtmf_schedule`, :func:`place_call`); its answering mode stays
there. pjsua2 allows one library instance per process: this module is for a process of its
own (never the daemon's, whose only pjsua2 user is chimevoice/sip/endpoint.py), and that
process should end with ``os._exit`` (pjsua2's destructors are not safe at interpreter exit).
"""
from __future__ import annotations

import sys
import time
from typing import Any

import pjsua2 as pj

from .sip.message import srtp_suite

# The keys tests/support/phone.py has always printed in calling mode (its JSON stays the same).
PHONE_KEYS = ("statuses", "final_status", "reason", "answered", "connected_seconds", "setup_seconds",
              "hangup_by", "dtmf_received", "dtmf_sent", "played", "srtp", "srtp_suite")


class Phone(pj.Call):
    """One call of the test phone (calling mode here; tests/support/phone.py answers with it too)."""
    record_on_media = True        # start the recorder as soon as media is up (calling mode)

    def __init__(self, acc: Any, ep: Any, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.ep = ep
        self.statuses: list[int] = []
        self.responses: list[list[Any]] = []    # every response to our INVITE: [code, reason]
        self.confirmed_at: float | None = None
        self.disconnected_at: float | None = None
        self.remote_hangup = True
        self.recorder: Any = None
        self.audio: Any = None
        self.last_code = 0
        self.reason = ""
        self.dtmf_in: list[list[Any]] = []
        self.srtp: bool | None = None
        self.srtp_suite: str | None = None      # the SDES suite the answer chose (a=crypto)
        self.play_path = ""
        self.player: Any = None
        self.no_te = False
        self.tones: Any = None

    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        code = int(info.lastStatusCode)
        if code and (not self.statuses or self.statuses[-1] != code):
            self.statuses.append(code)
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and self.confirmed_at is None:
            self.confirmed_at = time.monotonic()
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected_at = time.monotonic()
            self.last_code = code
            self.reason = info.lastReason

    def onCallTsxState(self, prm: Any) -> None:
        try:
            e = prm.e
            if e.type != pj.PJSIP_EVENT_TSX_STATE:
                return
            ts = e.body.tsxState
            tsx = ts.tsx
            if tsx.method == "INVITE" and tsx.role == pj.PJSIP_ROLE_UAC and ts.type == pj.PJSIP_EVENT_RX_MSG \
                    and tsx.statusCode:
                self.responses.append([int(tsx.statusCode), str(tsx.statusText)])
                if int(tsx.statusCode) // 100 == 2:
                    self.srtp_suite = srtp_suite(ts.src.rdata.wholeMsg) or self.srtp_suite
        except Exception:  # noqa: BLE001 - never raise into pjsua's callback
            pass

    def onDtmfDigit(self, prm: Any) -> None:
        since = time.monotonic() - self.confirmed_at if self.confirmed_at else 0.0
        self.dtmf_in.append([round(since, 3), prm.digit])

    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        if self.audio is None and any(m.status == pj.PJSUA_CALL_MEDIA_ACTIVE for m in info.media):
            self.audio = self.getAudioMedia(-1)
            self.srtp = self.getStreamInfo(0).proto == pj.PJMEDIA_TP_PROTO_RTP_SAVP
            if self.recorder is not None and self.record_on_media:
                self.audio.startTransmit(self.recorder)
            if self.play_path:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(self.play_path, 0)       # 0: loop
                self.player.startTransmit(self.audio)

    def onCallSdpCreated(self, prm: Any) -> None:
        # --no-telephone-event: offer no RFC 4733, so DTMF must go in-band both ways.
        if self.no_te:
            lines = prm.sdp.wholeSdp.split("\r\n")
            pts = {ln.split()[0].split(":")[1] for ln in lines
                   if ln.startswith("a=rtpmap:") and "telephone-event" in ln}
            out = []
            for ln in lines:
                if ln.startswith(("a=rtpmap:", "a=fmtp:")) and ln.split()[0].split(":")[1] in pts:
                    continue
                if ln.startswith("m=audio"):
                    ln = " ".join(w for w in ln.split(" ") if w not in pts)
                out.append(ln)
            prm.sdp.wholeSdp = "\r\n".join(out)

    def send_digits(self, digits: str, method: str) -> None:
        if method == "inband":                               # dual tones in the audio
            if self.tones is None:
                self.tones = pj.ToneGenerator()
                self.tones.createToneGenerator(8000, 1)
                self.tones.startTransmit(self.audio)
            vec = pj.ToneDigitVector()
            for ch in digits:
                d = pj.ToneDigit()
                d.digit = ch
                d.on_msec = 100
                d.off_msec = 100
                d.volume = 0
                vec.append(d)
            self.tones.playDigits(vec, False)
        elif method == "rfc4733":
            self.dialDtmf(digits)
        elif method == "info":
            prm = pj.CallSendDtmfParam()
            prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO       # INFO, application/dtmf-relay
            prm.digits = digits
            prm.duration = 160
            self.sendDtmf(prm)
        else:                                                # INFO, application/dtmf
            prm = pj.CallSendRequestParam()
            prm.method = "INFO"
            prm.txOption.contentType = "application/dtmf"
            prm.txOption.msgBody = digits
            self.sendRequest(prm)


def dtmf_schedule(entries: list[str], method: str, gap: float) -> list[tuple[float, str]]:
    """``AT:DIGITS`` entries as (seconds after the answer, digits), in time order; SIP INFO sends
    one request per digit, *gap* seconds apart."""
    dtmf: list[tuple[float, str]] = []
    for at, _, digits in (x.partition(":") for x in entries):
        if method in ("rfc4733", "inband"):
            dtmf.append((float(at), digits))          # pjsua queues the events itself
        else:                                         # one INFO per digit, in order
            dtmf += [(float(at) + i * gap, d) for i, d in enumerate(digits)]
    dtmf.sort(key=lambda x: x[0])
    return dtmf


_pjlib_log_func: Any = None     # the ctypes callback; pjlib keeps its address, so it lives forever


def route_pjlib_log(level: int) -> None:
    """pjlib's default log writer prints on stdout, from libCreate on (before libInit could install a
    LogWriter): send whatever pjlib logs at *level* or below to stderr instead (level 0: nothing).
    The SWIG module does not wrap pj_log_set_log_func, but the extension exports it (as in
    chimevoice/sip/endpoint.py)."""
    global _pjlib_log_func
    import ctypes
    try:
        ext = sys.modules.get("_pjsua2") or getattr(pj, "_pjsua2")
        lib = ctypes.CDLL(ext.__file__)
        if _pjlib_log_func is None:
            def write(_lvl: int, data: int, length: int) -> None:
                try:
                    sys.stderr.write(ctypes.string_at(data, length).decode("utf-8", "replace").rstrip("\n") + "\n")
                except Exception:  # noqa: BLE001 - never raise into C
                    pass
            _pjlib_log_func = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)(write)
        lib.pj_log_set_level(level)
        lib.pj_log_set_log_func(_pjlib_log_func)
    except (AttributeError, OSError):
        pass


_log_writer: Any = None


class _StderrLog(pj.LogWriter):
    def write(self, entry: Any) -> None:
        sys.stderr.write(entry.msg.rstrip("\n") + "\n")


def start_endpoint(args: Any, bind: str, port: int, max_calls: int = 0, log_level: int = 0) -> tuple[Any, int]:
    """Endpoint as both modes use it: no threads, null audio, PCMU only. Returns (ep, transport id).

    *args* needs ``transport``, ``tls_cert`` and ``tls_key``; pjlib logs go to stderr up to
    *log_level* (0: none)."""
    route_pjlib_log(log_level)
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    if max_calls:
        cfg.uaConfig.maxCalls = max_calls
    cfg.logConfig.level = log_level
    cfg.logConfig.consoleLevel = log_level
    if log_level:
        global _log_writer
        _log_writer = _StderrLog()                  # pjsua2 keeps a pointer: it must live on
        cfg.logConfig.writer = _log_writer
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.noVad = True
    # A short jitter buffer, so what is recorded lines up with what was sent.
    cfg.medConfig.jbInit = 4
    cfg.medConfig.jbMinPre = 4
    cfg.medConfig.jbMaxPre = 4
    cfg.medConfig.jbMax = 50
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    tc = pj.TransportConfig()
    tc.port = port
    tc.boundAddress = bind
    if args.tls_cert:
        tc.tlsConfig.certFile = args.tls_cert
    if args.tls_key:
        tc.tlsConfig.privKeyFile = args.tls_key
    kind = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}[args.transport]
    tid = ep.transportCreate(kind, tc)
    ep.libStart()
    for ci in ep.codecEnum2():
        ep.codecSetPriority(ci.codecId, 255 if ci.codecId.startswith("PCMU") else 0)
    return ep, tid


def open_null_sound(ep: Any) -> None:
    # Open the (null) sound device now: pjsua opens it lazily on the first conference
    # connection, and the audio that arrives while it opens is lost (about 0.5 s).
    adm = ep.audDevManager()
    adm.getCaptureDevMedia().startTransmit(adm.getPlaybackDevMedia())
    for _ in range(60):
        ep.libHandleEvents(10)


_alive: list[Any] = []


def place_call(args: Any, log_level: int = 0) -> dict[str, Any]:
    """Place the call *args* describe (phone.py's calling-mode options) and return the result:
    phone.py's keys (:data:`PHONE_KEYS`) and ``responses`` (every response to the INVITE, with
    its reason phrase), ``invite_status``, ``uri``, ``hangup_reason`` and ``dtmf_method``."""
    ep, tid = start_endpoint(args, args.bind, args.local_port, log_level=log_level)
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{args.from_user}@{args.bind}"
    acfg.sipConfig.transportId = tid
    acfg.mediaConfig.transportConfig.boundAddress = args.bind
    if args.srtp:
        acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY
        acfg.mediaConfig.srtpSecureSignaling = 0
    acfg.mediaConfig.transportConfig.port = 40000 + (args.local_port % 1000) * 20 if args.local_port else 0
    acc = pj.Account()
    acc.create(acfg)
    call = Phone(acc, ep)
    call.play_path = args.play
    call.no_te = args.no_telephone_event
    call.tones = None
    if args.record:
        call.recorder = pj.AudioMediaRecorder()
        call.recorder.createRecorder(args.record)
    open_null_sound(ep)
    prm = pj.CallOpParam(True)
    for h in args.header:
        name, _, value = h.partition(":")
        sh = pj.SipHeader()
        sh.hName = name.strip()
        sh.hValue = value.strip()
        prm.txOption.headers.append(sh)
    uri = args.uri
    if args.transport != "udp" and "transport=" not in uri:
        uri += f";transport={args.transport}"
    t0 = time.monotonic()
    call.makeCall(uri, prm)
    dtmf = dtmf_schedule(args.dtmf, args.dtmf_method, args.dtmf_gap)
    sent: list[list[Any]] = []
    hung_up = False
    hangup_reason = "remote"
    while time.monotonic() - t0 < args.max_seconds and call.disconnected_at is None:
        ep.libHandleEvents(10)
        if call.confirmed_at is not None:
            since = time.monotonic() - call.confirmed_at
            while dtmf and since >= dtmf[0][0]:
                digits = dtmf.pop(0)[1]
                call.send_digits(digits, args.dtmf_method)
                sent.append([round(since, 3), digits])
            if args.hangup_after and since >= args.hangup_after and not hung_up:
                hung_up = True
                hangup_reason = "hangup_after"
                call.remote_hangup = False
                call.hangup(pj.CallOpParam(True))
    if call.disconnected_at is None:
        call.remote_hangup = False
        hangup_reason = "max_seconds"
        call.hangup(pj.CallOpParam(True))
        for _ in range(50):
            ep.libHandleEvents(10)
    connected = (call.disconnected_at - call.confirmed_at) if (call.confirmed_at and call.disconnected_at) else 0.0
    if call.recorder is not None:
        call.recorder = None            # closes the WAV (header with the final length)
    call.tones = None
    # pjsua2's objects must not be destroyed while the library runs (a segfault): keep them until os._exit
    _alive.append((ep, acc, call))
    finals = [code for code, _ in call.responses if code >= 200]
    result = {
        "statuses": call.statuses,
        "final_status": call.last_code,
        "reason": call.reason,
        "answered": call.confirmed_at is not None,
        "connected_seconds": round(connected, 3),
        "setup_seconds": round(call.confirmed_at - t0, 3) if call.confirmed_at else None,
        "hangup_by": "remote" if call.remote_hangup else "local",
        "dtmf_received": call.dtmf_in,
        "dtmf_sent": sent,
        "played": call.player is not None,
        "srtp": call.srtp,
        "srtp_suite": call.srtp_suite,
        "uri": uri,
        "responses": call.responses,
        # the INVITE's final status: 200 when answered (the BYE's code is not it)
        "invite_status": finals[0] if finals else (200 if call.confirmed_at else call.last_code),
        "hangup_reason": hangup_reason if call.confirmed_at else None,
        "dtmf_method": args.dtmf_method,
    }
    return result
