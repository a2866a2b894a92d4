"""The per-call driver: feeds one transaction its inputs and carries out its commands.

A thin adapter in the manner of aioquic's ``asyncio/protocol.py``: it translates SIP
and media events into engine inputs (:mod:`chimevoice.engine.inputs`) and engine
commands into SIP commands, media-worker commands, handler invocations, timers and
service calls. It decides nothing about the call; the engine does.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from lambda_bridge import InvocationError, Invoker

from ..bots import BotError
from ..cdr import build_record
from ..config import Config
from ..engine import commands as c
from ..engine import inputs as I
from ..engine.transaction import Transaction
from ..media import worker as mw
from ..media.audio import AudioSourceError
from ..media.storage import BucketStore
from ..metrics import Metrics
from ..sip import commands as sc
from ..sip import events as ev
from ..speech import SpeechError
from .bots import CallBots
from .cdrs import CdrBatcher
from .dialing import ATTEMPT_TIMEOUT_S, Dialer, DialError, Outbound
from .legs import LegRecord
from .prompts import PromptService
from .registry import CallRegistry

MSG_SYSTEM = "System error while running action"


class SipControl(Protocol):
    def send(self, cmd: sc.SipCommand) -> None: ...


class MediaControl(Protocol):
    def send(self, cmd: mw.MediaCommand) -> None: ...


@dataclass(slots=True)
class Services:
    """What every call's driver uses, wired once at start-up."""

    cfg: Config
    sip: SipControl
    media: MediaControl | None
    invokers: dict[str, Invoker]
    prompts: PromptService
    buckets: BucketStore
    cdrs: CdrBatcher
    metrics: Metrics
    registry: CallRegistry[CallDriver]
    dialer: Dialer
    loop: asyncio.AbstractEventLoop
    ended: Callable[[CallDriver], None]
    """Told when a call's transaction ended (after its CDRs were queued)."""


class CallDriver:
    """One live call: its transaction, its legs' CDR records, its timers and tasks."""

    def __init__(self, tx: Transaction, services: Services, log: Any, *, voice_connector_id: str,
                 sip_rule_id: str) -> None:
        self.tx = tx
        self.s = services
        self.log = log
        self.voice_connector_id = voice_connector_id
        self.sip_rule_id = sip_rule_id
        self.legs: dict[str, LegRecord] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.inband_legs: dict[str, bool] = {}      # legs without RFC 4733 -> detector on
        self.rtp_counted: dict[str, ev.RtpStats] = {}  # legs' RTP totals already on /metrics
        self.rx_quiet_since: dict[str, float] = {}     # answered legs: when RTP last arrived (monotonic)
        self.timed_out: set[str] = set()               # legs hung up for want of RTP
        self.bots = CallBots(services.cfg.bots)
        self.outbound: dict[str, Outbound] = {}      # outbound legs being dialled or up
        self.attempt_timers: dict[str, asyncio.TimerHandle] = {}
        self.finished = False
        #: For the live view (/status): when the call began (monotonic), the last handler
        #: invocation's latency and event type.
        self.started_at = time.monotonic()
        self.last_handler_latency_s: float | None = None
        self.last_event_type: str | None = None

    @property
    def transaction_id(self) -> str:
        return self.tx.transaction_id

    def add_leg(self, leg: LegRecord) -> None:
        self.legs[leg.call_id] = leg
        self.s.registry.add_leg(leg.call_id, self)
        self._journal(leg)

    # -- inputs ---------------------------------------------------------------
    def feed(self, inp: I.Input) -> None:
        """Hand one input to the engine and carry out what it asks for."""
        self.tx.handle(inp)
        self._run()

    def on_sip_event(self, event: ev.SipEvent) -> None:
        rec = self.legs.get(event.leg_id)
        metrics = self.s.metrics
        out = self.outbound.get(event.leg_id)
        if isinstance(event, ev.MediaReady):
            if rec is not None and rec.answer_ms is None and out is None:
                rec.answer_ms = now_ms()
                metrics.observe("call_setup_seconds", (rec.answer_ms - rec.start_ms) / 1000)
                self._journal(rec)
            if not event.telephone_event:
                self.inband_legs[event.leg_id] = False     # detector on while digits are wanted
            self.rx_quiet_since.setdefault(event.leg_id, time.monotonic())
            self.feed(I.MediaReady(event.leg_id))
        elif isinstance(event, ev.OutgoingProgress):
            if out is not None:
                out.progressed = True
                self._cancel_attempt_timer(event.leg_id)
            self.feed(I.LegRinging(event.leg_id))
        elif isinstance(event, ev.OutgoingAnswered):
            if out is not None:
                self.s.dialer.answered(out)
                self._cancel_attempt_timer(event.leg_id)
            if rec is not None:
                rec.answer_ms = now_ms()
                self._journal(rec)
            self.log.info("outbound_answered", call_id=event.leg_id,
                          host=out.attempts[0].uri if out and out.attempts else None)
            self.feed(I.LegAnswered(event.leg_id, out.start_ms if out else now_ms()))
        elif isinstance(event, ev.CallDisconnected):
            if out is not None and not out.answered:
                self._cancel_attempt_timer(event.leg_id)
                if self.s.dialer.failed(out, event.status_code) and not self.finished:
                    self.log.info("outbound_failover", call_id=event.leg_id, status=event.status_code,
                                  next_host=out.attempts[0].uri)
                    self._attempt(out)
                    return
            if rec is not None:
                rec.end_ms = now_ms()
                rec.status_code = event.status_code
                rec.hangup_source = ("system" if event.leg_id in self.timed_out
                                     else "caller" if event.by_remote else "application")
                self._journal(rec)
            if event.rtp is not None:
                self._rtp_metrics(event.leg_id, event.rtp)
            self.rtp_counted.pop(event.leg_id, None)
            self.rx_quiet_since.pop(event.leg_id, None)
            self.timed_out.discard(event.leg_id)
            self.inband_legs.pop(event.leg_id, None)
            if self.s.media is not None:
                self.s.media.send(mw.LegEnded(event.leg_id))
            self.feed(I.LegDisconnected(event.leg_id, by_remote=event.by_remote,
                                        status_code=event.status_code))
        elif isinstance(event, ev.RtpProgress):
            self._watch_rtp(event)
            self._rtp_counted(event.leg_id, event.rtp)
        elif isinstance(event, ev.DtmfReceived):
            self.log.info("dtmf_received", digit=event.digit, method=event.method)
            metrics.inc("dtmf_digits_total", method=event.method)
            if self.s.media is not None and self.tx.call_recordings:
                self.s.media.send(mw.KeyPressed(event.leg_id, event.digit))
            self.feed(I.Dtmf(event.leg_id, event.digit))
        elif isinstance(event, ev.PlaybackFinished):
            self.feed(I.PlaybackFinished(event.leg_id, event.play_id))
        elif isinstance(event, ev.DigitsSent):
            self.log.info("digits_sent", send_id=event.send_id, method=event.method)
            metrics.inc("digits_sent_total", method=event.method)
            self.feed(I.DigitsSent(event.leg_id, event.send_id))
        elif isinstance(event, ev.CommandFailed):
            metrics.inc("errors_total", type="sip_command_failed")
            self.feed(I.CommandFailed(engine_command(event.command), event.message))

    def _watch_rtp(self, event: ev.RtpProgress) -> None:
        """Hang up an answered leg that has received no RTP for ``sip.rtp.timeout_s`` while it
        was to receive (docs/operations.md, "RTP timeout"): its far end is gone without a BYE
        (a crashed PBX, a lost BYE, a dead link), and the call would otherwise last for ever."""
        timeout = self.s.cfg.sip.rtp.timeout_s
        leg = event.leg_id
        since = self.rx_quiet_since.get(leg)
        rec = self.legs.get(leg)
        if not timeout or since is None or leg in self.timed_out or rec is None or rec.answer_ms is None:
            return
        now = time.monotonic()
        before = self.rtp_counted.get(leg)
        if event.rtp.rx.packets > (before.rx.packets if before else 0) or not event.receiving:
            self.rx_quiet_since[leg] = now
            return
        if now - since < timeout:
            return
        self.timed_out.add(leg)
        self.log.warning("rtp_timeout", call_id=leg, silent_s=round(now - since, 1),
                         rx_packets=event.rtp.rx.packets)
        self.s.metrics.inc("errors_total", type="rtp_timeout")
        self.s.sip.send(sc.Disconnect(leg, 408))     # BYE with Reason: SIP;cause=408

    def _rtp_counted(self, leg_id: str, rtp: ev.RtpStats) -> None:
        """Add what *rtp* (a leg's totals so far) has beyond what is already on /metrics."""
        metrics = self.s.metrics
        before = self.rtp_counted.get(leg_id)
        for direction, d in (("rx", rtp.rx), ("tx", rtp.tx)):
            old = (before.rx if direction == "rx" else before.tx) if before else None
            metrics.inc("rtp_packets_total", max(0, d.packets - (old.packets if old else 0)), direction=direction)
            metrics.inc("rtp_packets_lost_total", max(0, d.lost - (old.lost if old else 0)), direction=direction)
        self.rtp_counted[leg_id] = rtp

    def _rtp_metrics(self, leg_id: str, rtp: ev.RtpStats) -> None:
        """A leg's final totals: the rest of its packets and losses, its mean jitter, a log line."""
        metrics = self.s.metrics
        self._rtp_counted(leg_id, rtp)
        for direction, d in (("rx", rtp.rx), ("tx", rtp.tx)):
            if d.packets:
                metrics.observe("rtp_jitter_seconds", d.jitter_ms / 1000, direction=direction)
        self.log.info("rtp_stats", call_id=leg_id, rx_packets=rtp.rx.packets, rx_lost=rtp.rx.lost,
                      rx_jitter_ms=round(rtp.rx.jitter_ms, 2), tx_packets=rtp.tx.packets, tx_lost=rtp.tx.lost,
                      tx_jitter_ms=round(rtp.tx.jitter_ms, 2))

    def on_media_event(self, event: mw.MediaEvent) -> None:
        if isinstance(event, mw.InbandDigit):
            self.log.info("dtmf_received", digit=event.digit, method="inband")
            self.s.metrics.inc("dtmf_digits_total", method="inband")
            self.feed(I.Dtmf(event.leg_id, event.digit))
        elif isinstance(event, mw.RecordingStarted):
            self.feed(I.RecordingStarted(event.leg_id, event.record_id))
        elif isinstance(event, mw.RecordingStopped):
            self.s.metrics.inc("recordings_total", reason=event.reason)
            self.feed(I.RecordingStopped(event.leg_id, event.record_id, event.reason, event.error,
                                         event.duration_s))

    # -- commands -------------------------------------------------------------
    def _run(self) -> None:
        while True:
            cmds = self.tx.drain()
            if not cmds:
                break
            for cmd in cmds:
                self._execute(cmd)
        if self.inband_legs and self.s.media is not None:
            self._update_inband()

    def _execute(self, cmd: c.Command) -> None:
        sip, media = self.s.sip, self.s.media
        match cmd:
            case c.Invoke():
                self._spawn(self._invoke(cmd))
            case c.Ring(call_id=cid):
                sip.send(sc.Ring(cid))
            case c.Answer(call_id=cid):
                sip.send(sc.Answer(cid))
            case c.Reject(call_id=cid, status_code=code):
                sip.send(sc.Reject(cid, code))
            case c.Disconnect(call_id=cid, cause=cause):
                sip.send(sc.Disconnect(cid, cause))
            case c.Play(call_id=cid, play_id=pid, path=path, repeat=repeat, duration_s=dur):
                sip.send(sc.Play(cid, pid, path, repeat, dur))
            case c.StopPlay(call_id=cid, play_id=pid):
                sip.send(sc.StopPlay(cid, pid))
            case c.SendDigits(call_id=cid, send_id=sid, digits=digits, tone_ms=tone, gap_ms=gap):
                sip.send(sc.SendDigits(cid, sid, digits, tone, gap))
            case c.StopDigits(call_id=cid, send_id=sid):
                sip.send(sc.StopDigits(cid, sid))
            case c.Dial():
                self._dial(cmd)
            case c.EarlyMedia(call_id=cid):
                sip.send(sc.EarlyMedia(cid))
            case c.LinkAudio(source=src, sink=sink):
                sip.send(sc.LinkAudio(src, sink))
            case c.UnlinkAudio(source=src, sink=sink):
                sip.send(sc.UnlinkAudio(src, sink))
            case c.PrepareAudio(request_id=rid, bucket=bucket, key=key):
                hit = self.s.prompts.recent(bucket, key)
                if hit is not None:
                    self.tx.handle(I.AudioReady(rid, *hit))
                else:
                    self._spawn(self._prepare_audio(cmd))
            case c.PrepareSpeech():
                self._spawn(self._prepare_speech(cmd))
            case c.BotRequest():
                self._spawn(self._bot_request(cmd))
            case c.BotRelease(conversation_id=conv):
                self.bots.release(conv)
            case c.StartTimer(name=name, seconds=secs):
                old = self.timers.pop(name, None)
                if old:
                    old.cancel()
                self.timers[name] = self.s.loop.call_later(secs, self._timer, name)
            case c.CancelTimer(name=name):
                handle = self.timers.pop(name, None)
                if handle:
                    handle.cancel()
            case c.StartRecording():
                self._start_recording(cmd)
            case c.StopRecording(call_id=cid, record_id=rid, reason=reason):
                if media is not None:
                    media.send(mw.StopRecording(cid, rid, reason))
            case c.PauseRecording(call_id=cid, record_id=rid, paused=paused):
                if media is not None:
                    media.send(mw.PauseRecording(cid, rid, paused))
            case c.SetVoiceFocus(call_id=cid, enabled=enabled):
                self.log.info("voice_focus", call_id=cid, enabled=enabled)
                if media is not None:
                    media.send(mw.SetVoiceFocus(cid, enabled))      # recordings of the leg
                sip.send(sc.SetVoiceFocus(cid, enabled))            # the legs that hear it
            case c.Log(level=level, event=event, fields=fields):
                getattr(self.log, level, self.log.info)(event, **fields)
            case c.ActionEnded(type_name=name, result=result, error_type=error_type):
                self.s.metrics.inc("actions_total", type=name, result=result)
                if error_type:
                    self.s.metrics.inc("errors_total", type=error_type)
            case c.Finished(reason=reason):
                self._finished(reason)

    def _update_inband(self) -> None:
        """In-band DTMF detection runs on a leg without RFC 4733 only while something
        wants that leg's digits (a DTMF-consuming action or a ReceiveDigits listener)."""
        assert self.s.media is not None
        for leg_id, on in self.inband_legs.items():
            want = self.tx.dtmf_wanted(leg_id)
            if want != on:
                self.inband_legs[leg_id] = want
                self.s.media.send(mw.SetInband(leg_id, want))

    def _start_recording(self, cmd: c.StartRecording) -> None:
        try:
            path = self.s.buckets.writable_path(cmd.bucket, cmd.key)
        except Exception as exc:  # noqa: BLE001 - no such bucket, bad key, not writable
            self.log.warning("recording_destination_failed", bucket=cmd.bucket, key=cmd.key, error=str(exc))
            self.tx.handle(I.RecordingStopped(cmd.call_id, cmd.record_id, "error", str(exc)))
            return
        if self.s.media is None:
            self.tx.handle(I.RecordingStopped(cmd.call_id, cmd.record_id, "error", "no media worker"))
            return
        self.log.info("recording_started", call_id=cmd.call_id, record_id=cmd.record_id,
                      bucket=cmd.bucket, key=cmd.key, track=cmd.track)
        self.s.media.send(mw.StartRecording(
            cmd.call_id, cmd.record_id, path, track=cmd.track, max_s=cmd.max_s, silence_s=cmd.silence_s,
            silence_threshold=cmd.silence_threshold, metadata=cmd.metadata, render_keys=cmd.call_recording))

    # -- outbound legs ------------------------------------------------------------
    def _dial(self, cmd: c.Dial) -> None:
        try:
            out = self.s.dialer.plan(cmd)
        except DialError as exc:
            self.log.warning("dial_failed", call_id=cmd.call_id, endpoint_type=cmd.endpoint_type,
                             uri=cmd.uri, error=str(exc))
            self.tx.handle(I.LegDisconnected(cmd.call_id, by_remote=False, status_code=404))
            return
        out.start_ms = now_ms()
        self.outbound[cmd.call_id] = out
        trigger = "CreateSipMediaApplicationCall" if cmd.call_id == self.tx.leg_a else "CallAndBridge"
        self.add_leg(LegRecord(cmd.call_id, "Outbound", cmd.caller_id, cmd.uri, out.start_ms,
                               transport=out.attempts[0].route.protocol if out.attempts[0].route else "udp",
                               trigger_type=trigger))
        self._attempt(out)

    def _attempt(self, out: Outbound) -> None:
        attempt = out.attempts[0]
        out.tried.append(attempt.uri)
        rec = self.legs.get(out.cmd.call_id)
        if rec is not None and attempt.route is not None:
            rec.source_address = attempt.route.hostport
            rec.transport = attempt.route.protocol
        self.log.info("outbound_attempt", call_id=out.cmd.call_id, uri=attempt.uri, attempt=len(out.tried))
        self.s.sip.send(sc.Dial(out.cmd.call_id, attempt.uri, out.from_uri, out.headers, attempt.credentials,
                                srtp=out.srtp))
        self.attempt_timers[out.cmd.call_id] = self.s.loop.call_later(
            ATTEMPT_TIMEOUT_S, self._attempt_timed_out, out.cmd.call_id)

    def _attempt_timed_out(self, call_id: str) -> None:
        self.attempt_timers.pop(call_id, None)
        out = self.outbound.get(call_id)
        if out is None or out.progressed or out.answered or self.finished:
            return
        self.log.info("outbound_attempt_timeout", call_id=call_id, uri=out.attempts[0].uri,
                      seconds=ATTEMPT_TIMEOUT_S)
        out.timed_out = True
        self.s.sip.send(sc.Disconnect(call_id, 0))        # CANCEL; CallDisconnected follows

    def _cancel_attempt_timer(self, call_id: str) -> None:
        handle = self.attempt_timers.pop(call_id, None)
        if handle is not None:
            handle.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.s.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _timer(self, name: str) -> None:
        self.timers.pop(name, None)
        self.feed(I.TimerFired(name))

    # -- services ---------------------------------------------------------------
    async def _invoke(self, cmd: c.Invoke) -> None:
        event_type = cmd.event["InvocationEventType"]
        invoker = self.s.invokers[cmd.app_id]
        metrics = self.s.metrics
        t0 = time.monotonic()
        self.log.debug("handler_invoke", event_type=event_type, sequence=cmd.event["Sequence"],
                       sip_media_application=cmd.app_id)
        inp: I.Input
        try:
            result = await invoker.invoke(cmd.event, log_context={
                "TransactionId": self.tx.transaction_id, "CallId": self.tx.leg_a})
        except InvocationError as exc:
            metrics.inc("handler_invocations_total", outcome=exc.kind, application=cmd.app_id)
            metrics.inc("errors_total", type=f"handler_{exc.kind}")
            inp = I.HandlerFailed(exc.kind, exc.message)
        except Exception as exc:  # noqa: BLE001
            self.log.exception("handler_bridge_crashed")
            metrics.inc("handler_invocations_total", outcome="bridge_error", application=cmd.app_id)
            metrics.inc("errors_total", type="handler_bridge_error")
            inp = I.HandlerFailed("error", repr(exc))
        else:
            metrics.inc("handler_invocations_total", outcome="ok", application=cmd.app_id)
            metrics.observe("handler_latency_seconds", time.monotonic() - t0, application=cmd.app_id)
            inp = I.HandlerResponded(result)
        elapsed = time.monotonic() - t0
        metrics.inc("handler_seconds_total", elapsed, application=cmd.app_id)    # mean latency per app
        self.last_handler_latency_s = elapsed
        self.last_event_type = event_type
        self.feed(inp)

    async def _prepare_audio(self, cmd: c.PrepareAudio) -> None:
        inp: I.Input
        try:
            path, duration = await self.s.prompts.prepare(cmd.bucket, cmd.key)
        except AudioSourceError as exc:
            self.log.warning("audio_source_failed", bucket=cmd.bucket, key=cmd.key,
                             error_type=exc.error_type, error=str(exc))
            inp = I.AudioFailed(cmd.request_id, exc.error_type, exc.message)
        except Exception:  # noqa: BLE001
            self.log.exception("audio_prepare_failed", bucket=cmd.bucket, key=cmd.key)
            inp = I.AudioFailed(cmd.request_id, "SystemException", MSG_SYSTEM)
        else:
            inp = I.AudioReady(cmd.request_id, path, duration)
        self.feed(inp)

    async def _prepare_speech(self, cmd: c.PrepareSpeech) -> None:
        inp: I.Input
        try:
            path, duration = await self.s.prompts.synthesize(cmd.request)
        except SpeechError as exc:
            self.log.warning("speech_failed", error_type=exc.error_type, error=exc.message)
            inp = I.AudioFailed(cmd.request_id, exc.error_type, exc.message)
        except Exception:  # noqa: BLE001
            self.log.exception("speech_crashed")
            inp = I.AudioFailed(cmd.request_id, "SystemException", MSG_SYSTEM)
        else:
            inp = I.AudioReady(cmd.request_id, path, duration)
        self.feed(inp)

    async def _bot_request(self, cmd: c.BotRequest) -> None:
        """One bot step. Lex (boto3, blocking) runs on a worker thread inside LexV2Bot;
        the local bot is plain Python on the loop."""
        inp: I.Input
        try:
            turn = await self.bots.step(cmd, self.tx.info)
            if turn is None:                      # released meanwhile (the action ended)
                return
        except BotError as exc:
            self.log.warning("bot_failed", op=cmd.op, error_type=exc.error_type, error=exc.message)
            inp = I.BotFailed(cmd.request_id, exc.error_type, exc.message)
        except Exception:  # noqa: BLE001
            self.log.exception("bot_crashed", op=cmd.op)
            inp = I.BotFailed(cmd.request_id, "SystemException", MSG_SYSTEM)
        else:
            self.log.info("bot_turn", op=cmd.op, input=cmd.value if cmd.op != "start" else None,
                          dialog_action=turn.dialog_action, slot=turn.slot_to_elicit, finished=turn.finished)
            inp = I.BotTurn(cmd.request_id, turn)
        self.feed(inp)

    # -- the end ------------------------------------------------------------------
    def _finished(self, reason: str) -> None:
        self.finished = True
        for handle in [*self.timers.values(), *self.attempt_timers.values()]:
            handle.cancel()
        self.timers.clear()
        self.attempt_timers.clear()
        self.bots.clear()                 # the call's bot sessions and store end with it
        registry = self.s.registry
        registry.remove(self.tx.transaction_id)
        for leg_id in self.legs:
            registry.remove_leg(leg_id)
        self.s.metrics.gauge("calls_active", len(registry))
        self.log.info("transaction_finished", reason=reason, invocations=self.tx.invocations)
        for rec in self.legs.values():
            self._write_cdr(rec)
        self.s.ended(self)

    def _cdr_fields(self, rec: LegRecord, end_ms: int | None) -> dict[str, Any]:
        """The leg's CDR as ``build_record`` keywords (journaled while the leg is up)."""
        tx = self.tx
        return dict(
            aws_account_id=tx.info.aws_account_id, transaction_id=tx.transaction_id, call_id=rec.call_id,
            voice_connector_id=self.voice_connector_id,
            source_phone_number=rec.source_number, destination_phone_number=rec.destination_number,
            direction=rec.direction, region=tx.info.aws_region, sip_rule_id=self.sip_rule_id,
            sip_application_id=tx.info.sip_media_application_id,
            call_leg_trigger_type=rec.trigger_type, start_ms=rec.start_ms, answer_ms=rec.answer_ms,
            end_ms=end_ms, sip_response_code=rec.status_code,
            sip_call_id=rec.sip_call_id, transport=rec.transport,
            source_address=rec.source_address, hangup_source=rec.hangup_source)

    def _journal(self, rec: LegRecord) -> None:
        """Journal the leg's CDR as it stands, so that kill -9 loses no CDR (calls/journal.py)."""
        self.s.cdrs.journal_leg(self._cdr_fields(rec, rec.end_ms))

    def _write_cdr(self, rec: LegRecord) -> None:
        fields = self._cdr_fields(rec, rec.end_ms or now_ms())
        try:
            record = build_record(**fields)
        except Exception:  # noqa: BLE001 - never lose the daemon over a CDR
            self.log.exception("cdr_build_failed", call_id=rec.call_id)
            return
        self.s.cdrs.journal_leg(fields)
        self.s.cdrs.submit(record, self.log)


def engine_command(cmd: sc.SipCommand) -> c.Command:
    """The engine command a failed SIP command was made from."""
    match cmd:
        case sc.Play(leg_id=leg, play_id=pid, path=path, repeat=repeat, duration_s=dur):
            return c.Play(leg, pid, path, repeat, dur)
        case sc.SendDigits(leg_id=leg, send_id=sid, digits=digits, tone_ms=tone, gap_ms=gap):
            return c.SendDigits(leg, sid, digits, tone, gap)
        case sc.StopPlay(leg_id=leg, play_id=pid):
            return c.StopPlay(leg, pid)
        case sc.StopDigits(leg_id=leg, send_id=sid):
            return c.StopDigits(leg, sid)
        case sc.Ring(leg_id=leg):
            return c.Ring(leg)
        case sc.Answer(leg_id=leg):
            return c.Answer(leg)
        case sc.Reject(leg_id=leg, status_code=code):
            return c.Reject(leg, code)
        case sc.Disconnect(leg_id=leg, cause=cause):
            return c.Disconnect(leg, cause)
    return c.Log("error", "sip_command_failed", {"command": repr(cmd)})


def now_ms() -> int:
    return int(time.time() * 1000)
