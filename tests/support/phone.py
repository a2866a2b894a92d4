"""A pjsua2 test phone: places one real SIP call, records what it hears, prints a JSON result.

Run as a separate process (pjsua2 allows one library instance per process):

    python tests/support/phone.py --uri sip:+15550100000@127.0.0.1:5060 --record out.wav

Options let it hang up after a while, send DTMF at given times (RFC 4733 events, SIP INFO
``application/dtmf-relay`` or SIP INFO ``application/dtmf``: ``--dtmf-method``), play a WAV
file to the far end in a loop from the answer (``--play``), and use TCP or TLS. The result
line on stdout is JSON: status codes seen, whether and how long the call was connected, and
who hung up.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import pjsua2 as pj


class Phone(pj.Call):
    def __init__(self, acc, ep):
        super().__init__(acc)
        self.ep = ep
        self.statuses: list[int] = []
        self.confirmed_at: float | None = None
        self.disconnected_at: float | None = None
        self.remote_hangup = True
        self.recorder = None
        self.audio = None
        self.last_code = 0
        self.reason = ""
        self.dtmf_in: list = []
        self.srtp: bool | None = None
        self.play_path = ""
        self.player = None
        self.no_te = False
        self.tones = None

    def onCallState(self, prm):
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

    def onDtmfDigit(self, prm):
        since = time.monotonic() - self.confirmed_at if self.confirmed_at else 0.0
        self.dtmf_in.append([round(since, 3), prm.digit])

    def onCallMediaState(self, prm):
        info = self.getInfo()
        if self.audio is None and any(m.status == pj.PJSUA_CALL_MEDIA_ACTIVE for m in info.media):
            self.audio = self.getAudioMedia(-1)
            self.srtp = self.getStreamInfo(0).proto == pj.PJMEDIA_TP_PROTO_RTP_SAVP
            if self.recorder is not None:
                self.audio.startTransmit(self.recorder)
            if self.play_path:
                self.player = pj.AudioMediaPlayer()
                self.player.createPlayer(self.play_path, 0)       # 0: loop
                self.player.startTransmit(self.audio)

    def onCallSdpCreated(self, prm):
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
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
    ap.add_argument("--header", action="append", default=[], help="Name: value added to the INVITE")
    ap.add_argument("--srtp", action="store_true", help="offer RTP/SAVP with SDES keys and require it")
    args = ap.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
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
    tc.port = args.local_port
    tc.boundAddress = args.bind
    kind = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}[args.transport]
    tid = ep.transportCreate(kind, tc)
    ep.libStart()
    for ci in ep.codecEnum2():
        ep.codecSetPriority(ci.codecId, 255 if ci.codecId.startswith("PCMU") else 0)
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
    # Open the (null) sound device now: pjsua opens it lazily on the first conference
    # connection, and the audio that arrives while it opens is lost (about 0.5 s).
    adm = ep.audDevManager()
    adm.getCaptureDevMedia().startTransmit(adm.getPlaybackDevMedia())
    for _ in range(60):
        ep.libHandleEvents(10)
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
    dtmf = []
    for at, _, digits in (x.partition(":") for x in args.dtmf):
        if args.dtmf_method in ("rfc4733", "inband"):
            dtmf.append((float(at), digits))          # pjsua queues the events itself
        else:                                         # one INFO per digit, in order
            dtmf += [(float(at) + i * args.dtmf_gap, d) for i, d in enumerate(digits)]
    dtmf.sort(key=lambda x: x[0])
    sent: list = []
    hung_up = False
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
                call.remote_hangup = False
                call.hangup(pj.CallOpParam(True))
    if call.disconnected_at is None:
        call.remote_hangup = False
        call.hangup(pj.CallOpParam(True))
        for _ in range(50):
            ep.libHandleEvents(10)
    connected = (call.disconnected_at - call.confirmed_at) if (call.confirmed_at and call.disconnected_at) else 0.0
    if call.recorder is not None:
        call.recorder = None
    call.tones = None
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
    }
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    import os
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
