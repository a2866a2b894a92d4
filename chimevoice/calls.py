"""The asyncio driver: SIP events in, engine commands out.

:class:`CallManager` owns the live transactions. For each SIP event it finds
the transaction, feeds the engine, and carries out the commands the engine
queued: SIP operations through the :class:`~chimevoice.sip.endpoint.SipEndpoint`
facade, handler invocations through :mod:`lambda_bridge`, audio preparation in
a thread pool, timers with ``loop.call_later``, CDRs when a transaction ends.
"""
from __future__ import annotations

import asyncio
import secrets
import time
import uuid
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from lambda_bridge import InvocationError, Invoker

from .actions import REGISTRY
from .bots import BotError, BotSession, BotSessionStore, create_bot
from .cdr import CdrWriter, build_record
from .config import Config
from .engine import commands as c
from .engine.events import Participant
from .engine.transaction import Limits, Target, Transaction
from .media.audio import AudioCache, AudioSourceError
from .media import worker as mw
from .media.storage import BucketStore
from .metrics import Metrics
from .osthread import set_os_thread_name
from .routing import Rejection, route_call
from .sip import events as ev
from .speech import SpeechError, Synthesizer, make_synthesizer

log = structlog.get_logger("chimevoice.calls")


class SipControl(Protocol):
    def ring(self, leg_id: str) -> None: ...
    def answer(self, leg_id: str) -> None: ...
    def reject(self, leg_id: str, status_code: int, headers: tuple[tuple[str, str], ...] = ()) -> None: ...
    def disconnect(self, leg_id: str, cause: int = 0) -> None: ...
    def play(self, leg_id: str, play_id: str, path: str, repeat: int = 1, duration_s: float = 0.0) -> None: ...
    def stop_play(self, leg_id: str, play_id: str) -> None: ...


@dataclass(slots=True)
class _LegRecord:
    call: ev.IncomingCall
    start_ms: int
    answer_ms: int | None = None
    end_ms: int | None = None
    status_code: int = 0
    hangup_source: str = "system"


@dataclass(slots=True)
class _Live:
    tx: Transaction
    route_rule_id: str
    trigger_type: str
    connector_id: str
    called: str
    caller: str
    log: Any
    legs: dict[str, _LegRecord] = field(default_factory=dict)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    tasks: set[asyncio.Task] = field(default_factory=set)
    inband_legs: dict[str, bool] = field(default_factory=dict)   # legs without RFC 4733 -> detector on
    # StartBotConversation: live bot sessions by conversation id, and the call's store
    # (local-bot state shared by the conversations of this call, 03c §8.2).
    bots: dict[str, BotSession] = field(default_factory=dict)
    bot_store: BotSessionStore = field(default_factory=BotSessionStore)


class CallManager:
    def __init__(self, cfg: Config, sip: SipControl, invokers: dict[str, Invoker], *,
                 audio: AudioCache, buckets: BucketStore, cdr: CdrWriter, metrics: Metrics,
                 speech: Synthesizer | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.cfg = cfg
        self.sip = sip
        self.invokers = invokers
        self.audio = audio
        self.speech = speech or _synthesizer(cfg)
        self.buckets = buckets
        self.cdr = cdr
        self.metrics = metrics
        self.loop = loop or asyncio.get_event_loop()
        self.live: dict[str, _Live] = {}            # leg id (= Chime CallId) -> transaction
        self.by_tx: dict[str, _Live] = {}
        self.accepting = True
        self.auth_secret = secrets.token_bytes(32)
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="audio",
                                       initializer=set_os_thread_name, initargs=("cv-audio",))
        # CDRs are fsynced: write them on their own thread, in order, off the event loop.
        self.cdr_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cdr",
                                             initializer=set_os_thread_name, initargs=("cv-cdr",))
        self.limits = Limits(unanswered_timeout_s=cfg.sip.unanswered_timeout_s)
        self.pending_cdrs = 0
        self._cdr_queue: list[tuple[_Live, dict]] = []     # records waiting for the writer thread
        self._cdr_draining = False
        # (bucket, key) -> (valid until, prepared path, duration): a prompt played to call
        # after call is checked on disk at most every AUDIO_MEMO_S, not once per call.
        self._audio_memo: dict[tuple[str, str], tuple[float, str, float]] = {}
        self.idle = asyncio.Event()         # set when no transaction is live and every CDR is on disk
        self.idle.set()
        self.media: Any = None              # the MediaWorker (recordings, in-band DTMF, VoiceFocus)

    # -- SIP events (called on the loop) -----------------------------------
    def on_sip_events(self, batch: list[ev.SipEvent]) -> None:
        for event in batch:
            self.on_sip_event(event)

    def on_sip_event(self, event: ev.SipEvent) -> None:
        try:
            if isinstance(event, ev.IncomingCall):
                self._incoming(event)
                return
            live = self.live.get(event.leg_id)
            if live is None:
                return
            tx = live.tx
            rec = live.legs.get(event.leg_id)
            if isinstance(event, ev.MediaReady):
                if rec is not None and rec.answer_ms is None:
                    rec.answer_ms = _now_ms()
                    self.metrics.observe("call_setup_seconds", (rec.answer_ms - rec.start_ms) / 1000)
                if not event.telephone_event:
                    live.inband_legs[event.leg_id] = False     # detector on while digits are wanted
                tx.leg_media_ready(event.leg_id)
            elif isinstance(event, ev.CallDisconnected):
                if rec is not None:
                    rec.end_ms = _now_ms()
                    rec.status_code = event.status_code
                    rec.hangup_source = "caller" if event.by_remote else "application"
                self.live.pop(event.leg_id, None)
                live.inband_legs.pop(event.leg_id, None)
                if self.media is not None:
                    self.media.leg_ended(event.leg_id)
                tx.leg_disconnected(event.leg_id, by_remote=event.by_remote)
            elif isinstance(event, ev.DtmfReceived):
                live.log.info("dtmf_received", digit=event.digit, method=event.method)
                self.metrics.inc("dtmf_digits_total", method=event.method)
                if self.media is not None and tx.call_recordings:
                    self.media.key_pressed(event.leg_id, event.digit)
                tx.dtmf(event.leg_id, event.digit)
            elif isinstance(event, ev.PlaybackFinished):
                tx.playback_finished(event.leg_id, event.play_id)
            elif isinstance(event, ev.DigitsSent):
                live.log.info("digits_sent", send_id=event.send_id, method=event.method)
                self.metrics.inc("digits_sent_total", method=event.method)
                tx.digits_sent(event.leg_id, event.send_id)
            elif isinstance(event, ev.CommandFailed):
                tx.sip_command_failed(event.leg_id, event.command, event.message)
            else:
                return
            self._run(live)
        except Exception:  # noqa: BLE001 - one call's bug must not stop the daemon
            log.exception("sip_event_failed", sip_event=type(event).__name__)

    def on_media_event(self, event: Any) -> None:
        """An event of the media worker (chimevoice.media.worker), on the loop."""
        try:
            live = self.live.get(event.leg_id)
            if live is None:
                live = next((lv for lv in self.by_tx.values() if event.leg_id in lv.legs), None)
            if live is None:
                return
            tx = live.tx
            if isinstance(event, mw.InbandDigit):
                live.log.info("dtmf_received", digit=event.digit, method="inband")
                self.metrics.inc("dtmf_digits_total", method="inband")
                tx.dtmf(event.leg_id, event.digit)
            elif isinstance(event, mw.RecordingStarted):
                tx.recording_started(event.leg_id, event.record_id)
            elif isinstance(event, mw.RecordingStopped):
                self.metrics.inc("recordings_total", reason=event.reason)
                tx.recording_stopped(event.leg_id, event.record_id, event.reason, event.error, event.duration_s)
            else:
                return
            self._run(live)
        except Exception:  # noqa: BLE001
            log.exception("media_event_failed", media_event=type(event).__name__)

    def _incoming(self, call: ev.IncomingCall) -> None:
        self.metrics.inc("sip_invites_total")
        if not self.accepting:
            self.sip.reject(call.leg_id, 503, (("Retry-After", "5"),))
            self.metrics.inc("calls_rejected_total", code="503")
            return
        route = route_call(self.cfg, call, auth_secret=self.auth_secret)
        if isinstance(route, Rejection):
            level = log.info if route.status_code == 401 else log.warning
            level("call_rejected", sip_status=route.status_code, reason=route.reason,
                  source=f"{call.source_ip}:{call.source_port}", transport=call.transport,
                  request_uri=call.request_uri, sip_call_id=call.sip_call_id)
            self.sip.reject(call.leg_id, route.status_code, route.headers)
            self.metrics.inc("calls_rejected_total", code=str(route.status_code))
            return
        tx_id = str(uuid.uuid4())
        start_ms = _now_ms()
        participant = Participant(call.leg_id, "LEG-A", route.called, route.caller, "Inbound",
                                  start_ms, sip_headers=dict(call.sip_headers) or None)
        targets = [Target(app.id, app.aws_account_id, app.aws_region) for app in route.applications]
        tx = Transaction(transaction_id=tx_id, leg_a=participant, targets=targets,
                         sip_rule_id=route.rule.id, registry=REGISTRY, limits=self.limits)
        bound = log.bind(TransactionId=tx_id, CallId=call.leg_id)
        live = _Live(tx, route.rule.id, route.rule.trigger_type, route.connector.id, route.called,
                     route.caller, bound)
        live.legs[call.leg_id] = _LegRecord(call, start_ms)
        self.live[call.leg_id] = live
        self.by_tx[tx_id] = live
        self.idle.clear()
        self.metrics.inc("calls_total")
        self.metrics.gauge("calls_active", len(self.by_tx))
        bound.info("call_routed", called=route.called, caller=route.caller, transport=call.transport,
                   source=f"{call.source_ip}:{call.source_port}", sip_call_id=call.sip_call_id,
                   voice_connector=route.connector.id, sip_rule=route.rule.id,
                   sip_media_application=route.applications[0].id)
        tx.start()
        self._run(live)

    # -- engine commands -----------------------------------------------------
    def _run(self, live: _Live) -> None:
        while True:
            cmds = live.tx.drain()
            if not cmds:
                break
            self._execute(live, cmds)
        if live.inband_legs and self.media is not None:
            self._update_inband(live)

    def _execute(self, live: _Live, cmds: list) -> None:
        for cmd in cmds:
            match cmd:
                case c.Invoke():
                    self._spawn(live, self._invoke(live, cmd))
                case c.Ring(call_id=cid):
                    self.sip.ring(cid)
                case c.Answer(call_id=cid):
                    self.sip.answer(cid)
                case c.Reject(call_id=cid, status_code=code):
                    self.sip.reject(cid, code)
                case c.Disconnect(call_id=cid, cause=cause):
                    self.sip.disconnect(cid, cause)
                case c.PrepareAudio(request_id=rid, bucket=bucket, key=key):
                    hit = self._audio_memo.get((bucket, key))
                    if hit is not None and hit[0] > self.loop.time():
                        live.tx.audio_ready(rid, hit[1], hit[2])
                    else:
                        self._spawn(live, self._prepare_audio(live, cmd))
                case c.PrepareSpeech():
                    self._spawn(live, self._prepare_speech(live, cmd))
                case c.BotRequest():
                    self._spawn(live, self._bot_request(live, cmd))
                case c.BotRelease(conversation_id=conv):
                    live.bots.pop(conv, None)
                case c.Play(call_id=cid, play_id=pid, path=path, repeat=repeat, duration_s=dur):
                    self.sip.play(cid, pid, path, repeat, dur)
                case c.StopPlay(call_id=cid, play_id=pid):
                    self.sip.stop_play(cid, pid)
                case c.StartTimer(name=name, seconds=secs):
                    old = live.timers.pop(name, None)
                    if old:
                        old.cancel()
                    live.timers[name] = self.loop.call_later(secs, self._timer, live, name)
                case c.CancelTimer(name=name):
                    handle = live.timers.pop(name, None)
                    if handle:
                        handle.cancel()
                case c.SendDigits(call_id=cid, send_id=sid, digits=digits, tone_ms=tone, gap_ms=gap):
                    self.sip.send_digits(cid, sid, digits, tone, gap)
                case c.StopDigits(call_id=cid, send_id=sid):
                    self.sip.stop_digits(cid, sid)
                case c.StartRecording():
                    self._start_recording(live, cmd)
                case c.StopRecording(call_id=cid, record_id=rid, reason=reason):
                    if self.media is not None:
                        self.media.stop_recording(cid, rid, reason)
                case c.PauseRecording(call_id=cid, record_id=rid, paused=paused):
                    if self.media is not None:
                        self.media.pause_recording(cid, rid, paused)
                case c.SetVoiceFocus(call_id=cid, enabled=enabled):
                    live.log.info("voice_focus", call_id=cid, enabled=enabled)
                    if self.media is not None:
                        self.media.set_voice_focus(cid, enabled)
                case c.Log(level=level, event=event, fields=fields):
                    getattr(live.log, level, live.log.info)(event, **fields)
                case c.Finished(reason=reason):
                    self._finished(live, reason)

    def _update_inband(self, live: _Live) -> None:
        """In-band DTMF detection runs on a leg without RFC 4733 only while something
        wants that leg's digits (a DTMF-consuming action or a ReceiveDigits listener)."""
        for leg_id, on in live.inband_legs.items():
            want = live.tx.dtmf_wanted(leg_id)
            if want != on:
                live.inband_legs[leg_id] = want
                self.media.set_inband(leg_id, want)

    def _start_recording(self, live: _Live, cmd: c.StartRecording) -> None:
        try:
            path = self.buckets.writable_path(cmd.bucket, cmd.key)
        except Exception as exc:  # noqa: BLE001 - no such bucket, bad key, not writable
            live.log.warning("recording_destination_failed", bucket=cmd.bucket, key=cmd.key, error=str(exc))
            live.tx.recording_stopped(cmd.call_id, cmd.record_id, "error", str(exc))
            return
        if self.media is None:
            live.tx.recording_stopped(cmd.call_id, cmd.record_id, "error", "no media worker")
            return
        live.log.info("recording_started", call_id=cmd.call_id, record_id=cmd.record_id,
                      bucket=cmd.bucket, key=cmd.key, track=cmd.track)
        self.media.start_recording(cmd.call_id, cmd.record_id, path, track=cmd.track, max_s=cmd.max_s,
                                   silence_s=cmd.silence_s, silence_threshold=cmd.silence_threshold,
                                   metadata=dict(cmd.metadata), render_keys=cmd.call_recording)

    def _spawn(self, live: _Live, coro) -> None:
        task = self.loop.create_task(coro)
        live.tasks.add(task)
        task.add_done_callback(live.tasks.discard)

    def _timer(self, live: _Live, name: str) -> None:
        live.timers.pop(name, None)
        live.tx.timer_fired(name)
        self._run(live)

    async def _invoke(self, live: _Live, cmd: c.Invoke) -> None:
        event_type = cmd.event["InvocationEventType"]
        invoker = self.invokers[cmd.app_id]
        t0 = time.monotonic()
        live.log.debug("handler_invoke", event_type=event_type, sequence=cmd.event["Sequence"],
                      sip_media_application=cmd.app_id)
        try:
            result = await invoker.invoke(cmd.event, log_context={
                "TransactionId": live.tx.transaction_id, "CallId": live.tx.leg_a})
        except InvocationError as exc:
            self.metrics.inc("handler_invocations_total", outcome=exc.kind)
            live.tx.handler_failed(exc.kind, exc.message)
        except Exception as exc:  # noqa: BLE001
            live.log.exception("handler_bridge_crashed")
            self.metrics.inc("handler_invocations_total", outcome="bridge_error")
            live.tx.handler_failed("error", repr(exc))
        else:
            self.metrics.inc("handler_invocations_total", outcome="ok")
            self.metrics.observe("handler_latency_seconds", time.monotonic() - t0)
            live.tx.handler_responded(result)
        self._run(live)

    async def _prepare_audio(self, live: _Live, cmd: c.PrepareAudio) -> None:
        try:
            prepared = await self.loop.run_in_executor(
                self.pool, self.audio.prepare_object, self.buckets, cmd.bucket, cmd.key)
        except AudioSourceError as exc:
            live.log.warning("audio_source_failed", bucket=cmd.bucket, key=cmd.key,
                             error_type=exc.error_type, error=str(exc))
            live.tx.audio_failed(cmd.request_id, exc.error_type, exc.message)
        except Exception:  # noqa: BLE001
            live.log.exception("audio_prepare_failed", bucket=cmd.bucket, key=cmd.key)
            live.tx.audio_failed(cmd.request_id, "SystemException", "System error while running action")
        else:
            self._audio_memo[(cmd.bucket, cmd.key)] = (self.loop.time() + AUDIO_MEMO_S, str(prepared.path),
                                                       prepared.duration_s)
            live.tx.audio_ready(cmd.request_id, str(prepared.path), prepared.duration_s)
        self._run(live)

    async def _prepare_speech(self, live: _Live, cmd: c.PrepareSpeech) -> None:
        try:
            path = await self.speech.synthesize(cmd.request)
            with wave.open(str(path), "rb") as w:
                duration = w.getnframes() / w.getframerate()
        except SpeechError as exc:
            live.log.warning("speech_failed", error_type=exc.error_type, error=exc.message)
            live.tx.audio_failed(cmd.request_id, exc.error_type, exc.message)
        except Exception:  # noqa: BLE001
            live.log.exception("speech_crashed")
            live.tx.audio_failed(cmd.request_id, "SystemException", "System error while running action")
        else:
            live.tx.audio_ready(cmd.request_id, str(path), duration)
        self._run(live)

    async def _bot_request(self, live: _Live, cmd: c.BotRequest) -> None:
        """One bot step. Lex (boto3, blocking) runs on a worker thread inside LexV2Bot;
        the local bot is plain Python on the loop."""
        try:
            if cmd.op == "start":
                bot = self._create_bot(live, cmd)
                live.bots[cmd.conversation_id] = bot
                turn = await bot.start()
            else:
                bot = live.bots.get(cmd.conversation_id)
                if bot is None:                 # released meanwhile (the action ended)
                    return
                turn = await (bot.input_dtmf(cmd.value) if cmd.op == "dtmf" else bot.input_text(cmd.value))
        except BotError as exc:
            live.log.warning("bot_failed", op=cmd.op, error_type=exc.error_type, error=exc.message)
            live.tx.bot_failed(cmd.request_id, exc.error_type, exc.message)
        except Exception:  # noqa: BLE001
            live.log.exception("bot_crashed", op=cmd.op)
            live.tx.bot_failed(cmd.request_id, "SystemException", "System error while running action")
        else:
            live.log.info("bot_turn", op=cmd.op, input=cmd.value if cmd.op != "start" else None,
                          dialog_action=turn.dialog_action, slot=turn.slot_to_elicit, finished=turn.finished)
            live.tx.bot_turn(cmd.request_id, turn)
        self._run(live)

    def _create_bot(self, live: _Live, cmd: c.BotRequest) -> BotSession:
        bots = self.cfg.bots
        info = live.tx.info
        return create_bot(
            cmd.value, local_bots=bots.local, lex_endpoint_url=bots.lex_endpoint_url,
            allow_lex=bots.allow_lex, session_id=cmd.call_id, store=live.bot_store,
            source_account=info.aws_account_id,
            source_arn=f"arn:aws:voiceconnector:{info.aws_region}:{info.aws_account_id}"
                       f":sma/{info.sip_media_application_id}")

    def _finished(self, live: _Live, reason: str) -> None:
        for handle in live.timers.values():
            handle.cancel()
        live.timers.clear()
        live.bots.clear()                 # the call's bot sessions and store end with it
        live.bot_store = BotSessionStore()
        self.by_tx.pop(live.tx.transaction_id, None)
        for leg_id in live.legs:
            self.live.pop(leg_id, None)
        self.metrics.gauge("calls_active", len(self.by_tx))
        live.log.info("transaction_finished", reason=reason, invocations=live.tx.invocations)
        for leg_id, rec in live.legs.items():
            self._write_cdr(live, leg_id, rec)
        if not self.by_tx and not self.pending_cdrs:
            self.idle.set()

    def _write_cdr(self, live: _Live, leg_id: str, rec: _LegRecord) -> None:
        end_ms = rec.end_ms or _now_ms()
        tx = live.tx
        try:
            record = build_record(
                aws_account_id=tx.info.aws_account_id, transaction_id=tx.transaction_id, call_id=leg_id,
                voice_connector_id=live.connector_id,
                source_phone_number=live.caller, destination_phone_number=live.called,
                direction="Inbound", region=tx.info.aws_region, sip_rule_id=live.route_rule_id,
                sip_application_id=tx.info.sip_media_application_id,
                call_leg_trigger_type=live.trigger_type, start_time=rec.start_ms / 1000,
                answer_time=None if rec.answer_ms is None else rec.answer_ms / 1000,
                end_time=end_ms / 1000, sip_response_code=rec.status_code,
                sip_call_id=rec.call.sip_call_id, transport=rec.call.transport,
                source_address=f"{rec.call.source_ip}:{rec.call.source_port}",
                hangup_source=rec.hangup_source)
        except Exception:  # noqa: BLE001 - never lose the daemon over a CDR
            live.log.exception("cdr_build_failed")
            return
        self.pending_cdrs += 1
        self._cdr_queue.append((live, record))
        if not self._cdr_draining:
            # Gather what ends in the next moment into one batch: one flush for all of it.
            self._cdr_draining = True
            self.loop.call_later(CDR_BATCH_S, self._drain_cdrs)

    def _drain_cdrs(self) -> None:
        """Hand every queued record to the writer thread as one batch (group commit); the
        records that arrive meanwhile form the next batch."""
        batch, self._cdr_queue = self._cdr_queue, []
        if not batch:
            self._cdr_draining = False
            return
        future = self.loop.run_in_executor(self.cdr_writer, self.cdr.write_batch, [r for _, r in batch])
        future.add_done_callback(lambda f: self._cdr_done(batch, f))

    def _cdr_done(self, batch: list[tuple[_Live, dict]], future: asyncio.Future) -> None:
        self.pending_cdrs -= len(batch)
        exc = future.exception()
        results = [exc] * len(batch) if exc is not None else future.result()
        for (live, _), result in zip(batch, results):
            if isinstance(result, BaseException):
                live.log.error("cdr_write_failed", error=repr(result))
            else:
                live.log.debug("cdr_written", path=str(result))
        self._drain_cdrs()
        if not self.by_tx and not self.pending_cdrs:
            self.idle.set()

    # -- shutdown ------------------------------------------------------------
    async def drain(self, timeout: float) -> None:
        """Refuse new calls (503) and wait up to *timeout* for live ones to end;
        then hang the rest up and wait for their CDRs."""
        self.accepting = False
        if self.by_tx:
            log.info("draining", active_calls=len(self.by_tx), timeout_s=timeout)
            try:
                await asyncio.wait_for(self.idle.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        for live in list(self.by_tx.values()):
            for leg_id in list(live.legs):
                if leg_id in self.live:
                    self.sip.disconnect(leg_id, 0)
        try:
            await asyncio.wait_for(self.idle.wait(), 5)
        except asyncio.TimeoutError:
            log.warning("calls_left_at_shutdown", count=len(self.by_tx))
        self.pool.shutdown(wait=False)
        self.cdr_writer.shutdown(wait=True)     # nothing is lost: every queued CDR is written


AUDIO_MEMO_S = 2.0
CDR_BATCH_S = 0.05


def _synthesizer(cfg: Config) -> Synthesizer:
    """The configured text-to-speech: local espeak-ng, or Amazon Polly (speech.engine: polly)."""
    sp = cfg.speech
    if sp.engine == "polly":
        return make_synthesizer("polly", cfg.data_dir / "speech-cache", region=sp.polly_region,
                                endpoint_url=sp.polly_endpoint_url)
    return make_synthesizer("local", cfg.data_dir / "speech-cache")


def _now_ms() -> int:
    return int(time.time() * 1000)
