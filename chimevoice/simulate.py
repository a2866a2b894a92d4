"""``chimevoice simulate``: run a handler against a scripted call, with no SIP and no audio.

The call engine is sans-IO (:mod:`chimevoice.engine`): :class:`SimDriver` feeds the same
:class:`~chimevoice.engine.transaction.Transaction` the daemon uses and carries out its
commands the way :class:`chimevoice.calls.driver.CallDriver` does, but in virtual time:
an event heap and a clock that jumps from one event to the next. Handlers are called
through ``lambda_bridge`` (the daemon's runtime); prompts are prepared with the real
:class:`~chimevoice.media.audio.AudioCache` from the configuration's buckets, so durations
and ``InvalidAudioSource`` errors are the real ones. Speech is validated with the real
rules; its duration is an estimate (no synthesis). See docs/simulate.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import heapq
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lambda_bridge import HandlerConfig, InvocationError, Invoker, create_invoker

from .actions import REGISTRY
from .config import Config, SipMediaApplication
from .engine import commands as c
from .engine import inputs as I
from .engine.directory import Directory
from .engine.events import Participant
from .engine.transaction import Limits, Target, Transaction

EPOCH_MS = 1_700_000_000_000          # StartTimeInMilliseconds of virtual time 0
LEG_A = "00000000-0000-4000-8000-00000000000a"
TRANSACTION_ID = "00000000-0000-4000-8000-0000000000ff"
MEDIA_DELAY_S = 0.05                  # 200 OK -> media up
DIGIT_SPACING_S = 0.25                # one scripted key every 250 ms
SPEECH_CHARS_PER_S = 14.0             # the length estimate of synthesized speech
MAX_SECONDS = 3600.0


class ScriptError(ValueError):
    """The script is not valid (message names the step)."""


@dataclass
class Step:
    at: float
    kind: str                         # dtmf | hangup | update
    value: Any = None


@dataclass
class Bridge:
    """How the far end of every outbound leg (CallAndBridge) behaves."""
    ring_after: float | None = 0.5
    answer_after: float | None = None
    reject: int | None = None
    reject_after: float = 1.0
    hangup_after: float | None = None     # after answering


@dataclass
class Script:
    application: str | None
    caller: str = "+15105550101"
    called: str = "+15550100000"
    sip_headers: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    bridge: Bridge = field(default_factory=Bridge)
    times_from: str = "answer"        # step times count from the caller's answer (like `chimevoice call`)
    max_seconds: float = MAX_SECONDS


def parse_script(data: Any) -> Script:
    if not isinstance(data, Mapping):
        raise ScriptError("the script must be a mapping")
    call = data.get("call") or {}
    if not isinstance(call, Mapping):
        raise ScriptError("call: expected {from: ..., to: ...}")
    script = Script(application=data.get("application"), caller=str(call.get("from", "+15105550101")),
                    called=str(call.get("to", "+15550100000")),
                    sip_headers={str(k): str(v) for k, v in (call.get("sip_headers") or {}).items()},
                    times_from=str(data.get("times_from", "answer")),
                    max_seconds=float(data.get("max_seconds", MAX_SECONDS)))
    if script.times_from not in ("answer", "start"):
        raise ScriptError("times_from: expected answer or start")
    for i, raw in enumerate(data.get("steps") or []):
        if not isinstance(raw, Mapping) or "at" not in raw:
            raise ScriptError(f"steps[{i}]: expected a mapping with at:")
        try:
            at = float(raw["at"])
        except (TypeError, ValueError):
            raise ScriptError(f"steps[{i}].at: expected seconds") from None
        if "dtmf" in raw:
            script.steps.append(Step(at, "dtmf", str(raw["dtmf"])))
        elif raw.get("hangup"):
            script.steps.append(Step(at, "hangup"))
        elif "update" in raw:
            args = raw["update"] or {}
            if not isinstance(args, Mapping):
                raise ScriptError(f"steps[{i}].update: expected a mapping of Arguments")
            script.steps.append(Step(at, "update", {str(k): str(v) for k, v in args.items()}))
        else:
            raise ScriptError(f"steps[{i}]: expected dtmf:, hangup: true or update:")
    br = data.get("bridge") or {}
    if not isinstance(br, Mapping):
        raise ScriptError("bridge: expected a mapping")
    bridge = Bridge(ring_after=None if br.get("no_ring") else float(br.get("ring_after", 0.5)))
    if br.get("reject") is not None:
        bridge.reject = int(br["reject"])
        bridge.reject_after = float(br.get("reject_after", 1.0))
    elif not br.get("no_answer"):
        bridge.answer_after = float(br.get("answer_after", 1.0))
    if br.get("hangup_after") is not None:
        bridge.hangup_after = float(br["hangup_after"])
    script.bridge = bridge
    script.steps.sort(key=lambda s: s.at)
    return script


def load_script(path: str | Path) -> Script:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScriptError(f"{path}: {exc}") from None
    return parse_script(data)


@dataclass
class TraceEntry:
    t: float
    kind: str                         # invoke | dtmf | hangup | update | far-end
    event: dict[str, Any] | None = None
    reply: Any = None
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": round(self.t, 3), "kind": self.kind}
        if self.kind == "invoke":
            out["event"] = self.event
            out["reply"] = self.reply
        else:
            out["detail"] = self.detail
        return out


class SimDriver:
    """Carries out one transaction's commands in virtual time (the reference is CallDriver)."""

    def __init__(self, tx: Transaction, invoke: Callable[[dict[str, Any]], Any], *, cfg: Config | None,
                 audio: Any, buckets: Any, script: Script) -> None:
        self.tx = tx
        self.invoke = invoke
        self.cfg = cfg
        self.audio = audio
        self.buckets = buckets
        self.script = script
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[[], Any]]] = []
        self._seq = 0
        self._tokens: dict[str, int] = {}          # timers, plays, digit sends, recordings: name -> live token
        self.media_up: set[str] = set()
        self.gone: set[str] = set()
        self.recordings: dict[str, tuple[str, float]] = {}    # record_id -> (leg, started at)
        self.invocations: list[c.Invoke | c.BotRequest] = []
        self.trace: list[TraceEntry] = []
        self.finished: str | None = None
        self.answered_at: float | None = None
        self.bots: Any = None

    # -- the clock ---------------------------------------------------------------
    def at(self, t: float, fn: Callable[[], Any]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (max(t, self.now), self._seq, fn))

    def later(self, delay: float, inp: I.Input, token: str | None = None) -> None:
        live = self._arm(token) if token else None

        def fire() -> None:
            if token is not None:
                if self._tokens.get(token) != live:
                    return
                del self._tokens[token]
            self.feed(inp)
        self.at(self.now + delay, fire)

    def _arm(self, token: str) -> int:
        self._seq += 1
        self._tokens[token] = self._seq
        return self._seq

    def _cancel(self, token: str) -> None:
        self._tokens.pop(token, None)

    async def run(self) -> list[TraceEntry]:
        if self.script.times_from == "start":
            self._schedule_steps(0.0)
        self.feed(I.InboundCallRouted())
        while not self.finished:
            while self.invocations:
                await self._invoke(self.invocations.pop(0))
            if self.finished or not self._heap:
                break
            t, _, fn = heapq.heappop(self._heap)
            if t > self.script.max_seconds:
                self.trace.append(TraceEntry(t, "stopped", detail=f"max_seconds {self.script.max_seconds:g}"))
                break
            self.now = t
            fn()
        return self.trace

    # -- inputs ------------------------------------------------------------------
    def feed(self, inp: I.Input) -> None:
        if self.finished:
            return
        leg = getattr(inp, "call_id", None)
        if leg in self.gone and not isinstance(inp, (I.LegDisconnected, I.RecordingStopped)):
            return                    # nothing more comes from a leg that is gone
        if isinstance(inp, I.MediaReady):
            if inp.call_id in self.media_up:
                return
            self.media_up.add(inp.call_id)
            if inp.call_id == self.tx.leg_a and self.answered_at is None and self.script.times_from == "answer":
                self.answered_at = self.now
                self._schedule_steps(self.now)
        if isinstance(inp, I.LegDisconnected):
            if inp.call_id in self.gone:
                return
            self.gone.add(inp.call_id)
        self.tx.handle(inp)
        self._run()
        if isinstance(inp, I.LegDisconnected):      # the media worker closes the leg's recordings
            for rid, (rleg, _) in list(self.recordings.items()):
                if rleg == inp.call_id:
                    self._stop_recording(rid, "hangup")

    def _schedule_steps(self, base: float) -> None:
        for step in self.script.steps:
            self.at(base + step.at, lambda s=step: self._step(s))   # type: ignore[misc]

    def _step(self, step: Step) -> None:
        a = self.tx.leg_a
        if step.kind == "dtmf":
            for i, digit in enumerate(step.value):
                def key(d: str = digit) -> None:
                    if a not in self.gone:
                        self.trace.append(TraceEntry(self.now, "dtmf", detail=d))
                    self.feed(I.Dtmf(a, d))
                self.at(self.now + i * DIGIT_SPACING_S, key)
        elif step.kind == "hangup":
            if a not in self.gone:
                self.trace.append(TraceEntry(self.now, "hangup", detail="caller"))
            self.feed(I.LegDisconnected(a, by_remote=True, status_code=200))
        elif step.kind == "update":
            self.trace.append(TraceEntry(self.now, "update", detail=json.dumps(step.value, sort_keys=True)))
            self.feed(I.UpdateRequested(dict(step.value)))

    # -- commands ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            cmds = self.tx.drain()
            if not cmds:
                break
            for cmd in cmds:
                self._execute(cmd)

    def _execute(self, cmd: c.Command) -> None:
        match cmd:
            case c.Invoke():
                self.invocations.append(cmd)
            case (c.Ring() | c.LinkAudio() | c.UnlinkAudio() | c.SetVoiceFocus() | c.PauseRecording() | c.Log()
                  | c.ActionEnded()):
                pass
            case c.Answer(call_id=cid) | c.EarlyMedia(call_id=cid):
                self.later(MEDIA_DELAY_S, I.MediaReady(cid))
            case c.Reject(call_id=cid, status_code=code):
                self.later(0.0, I.LegDisconnected(cid, by_remote=False, status_code=code))
            case c.Disconnect(call_id=cid):
                self.later(0.0, I.LegDisconnected(cid, by_remote=False, status_code=200))
            case c.Play(call_id=cid, play_id=pid, repeat=repeat, duration_s=dur):
                self.later(max(1, repeat) * dur, I.PlaybackFinished(cid, pid), f"play:{pid}")
            case c.StopPlay(play_id=pid):
                self._cancel(f"play:{pid}")
            case c.SendDigits(call_id=cid, send_id=sid, digits=digits, tone_ms=tone, gap_ms=gap):
                self.later(len(digits) * (tone + gap) / 1000, I.DigitsSent(cid, sid), f"send:{sid}")
            case c.StopDigits(send_id=sid):
                self._cancel(f"send:{sid}")
            case c.StartTimer(name=name, seconds=secs):
                self.later(secs, I.TimerFired(name), f"timer:{name}")
            case c.CancelTimer(name=name):
                self._cancel(f"timer:{name}")
            case c.PrepareAudio(request_id=rid, bucket=bucket, key=key):
                self.tx.handle(self._prepare_audio(rid, bucket, key))
            case c.PrepareSpeech(request_id=rid, request=req):
                self.tx.handle(self._prepare_speech(rid, req))
            case c.Dial():
                self._dial(cmd)
            case c.StartRecording():
                self._start_recording(cmd)
            case c.StopRecording(record_id=rid, reason=reason):
                self.at(self.now, lambda: self._stop_recording(rid, reason))
            case c.BotRequest():
                self.invocations.append(cmd)        # async, like an invocation
            case c.BotRelease(conversation_id=conv):
                if self.bots is not None:
                    self.bots.release(conv)
            case c.Finished(reason=reason):
                self.finished = reason

    def _prepare_audio(self, rid: str, bucket: str, key: str) -> I.Input:
        from .media.audio import AudioSourceError
        try:
            prepared = self.audio.prepare_object(self.buckets, bucket, key)
        except AudioSourceError as exc:
            return I.AudioFailed(rid, exc.error_type, exc.message)
        except Exception:  # noqa: BLE001
            return I.AudioFailed(rid, "SystemException", "System error while running action")
        return I.AudioReady(rid, str(prepared.path), prepared.duration_s)

    def _prepare_speech(self, rid: str, req: Any) -> I.Input:
        from .speech import SpeechError
        from .speech.request import validate
        try:
            validate(req)
        except SpeechError as exc:
            return I.AudioFailed(rid, exc.error_type, exc.message)
        text = str(getattr(req, "text", "") or "")
        return I.AudioReady(rid, "/dev/null", round(0.3 + len(text) / SPEECH_CHARS_PER_S, 2))

    def _dial(self, cmd: c.Dial) -> None:
        cid, br = cmd.call_id, self.script.bridge
        self.trace.append(TraceEntry(self.now, "far-end", detail=f"dialled {cmd.endpoint_type} {cmd.uri}"))
        if br.ring_after is not None and (br.answer_after is None or br.ring_after < br.answer_after):
            self.later(br.ring_after, I.LegRinging(cid))
        if br.reject is not None:
            def reject(code: int = br.reject) -> None:
                self.trace.append(TraceEntry(self.now, "far-end", detail=f"rejected {code}"))
                self.feed(I.LegDisconnected(cid, by_remote=True, status_code=code))
            self.at(self.now + br.reject_after, reject)
        elif br.answer_after is not None:
            start_ms = EPOCH_MS + int(self.now * 1000)

            def answer() -> None:
                if cid in self.gone:
                    return
                self.trace.append(TraceEntry(self.now, "far-end", detail="answered"))
                self.feed(I.LegAnswered(cid, start_ms))
                self.later(MEDIA_DELAY_S, I.MediaReady(cid))
                if br.hangup_after is not None:
                    def hangup() -> None:
                        if cid not in self.gone:
                            self.trace.append(TraceEntry(self.now, "far-end", detail="hung up"))
                        self.feed(I.LegDisconnected(cid, by_remote=True, status_code=200))
                    self.at(self.now + br.hangup_after, hangup)
            self.at(self.now + br.answer_after, answer)
        elif br.ring_after is None:           # no answer and no ringing: the dialler's attempt timeout
            from .calls.dialing import ATTEMPT_TIMEOUT_S
            self.later(ATTEMPT_TIMEOUT_S, I.LegDisconnected(cid, by_remote=False, status_code=408))

    def _start_recording(self, cmd: c.StartRecording) -> None:
        try:
            self.buckets.writable_path(cmd.bucket, cmd.key)
        except Exception as exc:  # noqa: BLE001
            self.tx.handle(I.RecordingStopped(cmd.call_id, cmd.record_id, "error", str(exc)))
            return
        self.recordings[cmd.record_id] = (cmd.call_id, self.now)
        self.later(0.0, I.RecordingStarted(cmd.call_id, cmd.record_id))
        # the simulated caller is silent: silence detection ends it first, else the maximum
        limits = [(s, r) for s, r in ((cmd.silence_s, "silence"), (cmd.max_s, "duration")) if s is not None]
        if limits:
            secs, reason = min(limits)
            rid = cmd.record_id
            self.at(self.now + secs, lambda: self._stop_recording(rid, reason))

    def _stop_recording(self, rid: str, reason: str) -> None:
        rec = self.recordings.pop(rid, None)
        if rec is not None:
            self.feed(I.RecordingStopped(rec[0], rid, reason, None, round(self.now - rec[1], 3)))

    async def _invoke(self, cmd: Any) -> None:
        if isinstance(cmd, c.BotRequest):
            self.feed(await self._bot_request(cmd))
            return
        entry = TraceEntry(self.now, "invoke", event=cmd.event)
        self.trace.append(entry)
        inp: I.Input
        try:
            result = await self.invoke(cmd.event)
        except InvocationError as exc:
            entry.reply = {"HandlerFailed": exc.kind, "Message": exc.message}
            inp = I.HandlerFailed(exc.kind, exc.message)
        except Exception as exc:  # noqa: BLE001
            entry.reply = {"HandlerFailed": "error", "Message": repr(exc)}
            inp = I.HandlerFailed("error", repr(exc))
        else:
            entry.reply = result
            inp = I.HandlerResponded(result)
        self.feed(inp)

    async def _bot_request(self, cmd: c.BotRequest) -> I.Input:
        from .bots import BotError
        from .calls.bots import CallBots
        if self.bots is None:
            if self.cfg is None:
                return I.BotFailed(cmd.request_id, "SystemException", "no bots configured")
            self.bots = CallBots(self.cfg.bots)
        try:
            turn = await self.bots.step(cmd, self.tx.info)
            if turn is None:
                return I.BotFailed(cmd.request_id, "SystemException", "released")
        except BotError as exc:
            return I.BotFailed(cmd.request_id, exc.error_type, exc.message)
        except Exception:  # noqa: BLE001
            return I.BotFailed(cmd.request_id, "SystemException", "System error while running action")
        return I.BotTurn(cmd.request_id, turn)


# -- running a script -------------------------------------------------------------------
def _app(cfg: Config, wanted: str | None) -> SipMediaApplication:
    apps = cfg.sip_media_applications
    for app in apps:
        if wanted in (app.id, app.name):
            return app
    if wanted is None and len(apps) == 1:
        return apps[0]
    raise ScriptError(f"application: {wanted!r} is not a SIP media application of the configuration "
                      f"({', '.join(a.id for a in apps) or 'none'})")


async def simulate(cfg: Config, script: Script, *, handler: str | None = None,
                   invoker: Invoker | None = None) -> list[TraceEntry]:
    """Run *script* against the application it names (or *handler*, ``module:function``)."""
    from .calls.dialing import Dialer
    from .daemon import handler_config
    from .media.audio import AudioCache
    from .media.storage import BucketStore

    config_dir = Path(cfg.source).resolve().parent if cfg.source and cfg.source != "<string>" else Path.cwd()
    if handler is not None:
        try:                  # the script's application: its settings (environment...), this handler
            app = _app(cfg, script.application)
        except ScriptError:
            app_id, account, region = script.application or "simulated-sma", "111122223333", "us-east-1"
            hc = HandlerConfig(type="python", target=handler, function_name="simulated",
                               python_path=(str(Path.cwd()),), workers=1)
        else:
            app_id, account, region = app.id, app.aws_account_id, app.aws_region
            base = handler_config(app, config_dir)
            hc = dataclasses.replace(base, type="python", target=handler, endpoint_url=None,
                                     python_path=(str(Path.cwd()), *base.python_path))
    else:
        app = _app(cfg, script.application)
        app_id, account, region = app.id, app.aws_account_id, app.aws_region
        hc = handler_config(app, config_dir)
    own = invoker is None
    inv = invoker if invoker is not None else create_invoker(hc)
    dialer = Dialer(cfg, hairpin_secret=b"simulate")
    directory = Directory(
        phone_numbers=frozenset(dialer.numbers),
        voice_connectors=frozenset(vc.id for vc in cfg.voice_connectors
                                   if vc.origination is not None and not vc.origination.disabled),
        sip_media_applications=frozenset(a.id for a in cfg.sip_media_applications))
    leg = Participant(LEG_A, "LEG-A", script.called, script.caller, "Inbound", EPOCH_MS,
                      sip_headers=script.sip_headers or None)
    tx = Transaction(transaction_id=TRANSACTION_ID, leg_a=leg, targets=[Target(app_id, account, region)],
                     sip_rule_id="00000000-0000-4000-8000-000000000001", registry=REGISTRY,
                     limits=Limits(unanswered_timeout_s=cfg.sip.unanswered_timeout_s), directory=directory)
    audio = AudioCache(cfg.data_dir / "audio-cache", rate=8000)
    buckets = BucketStore(dict(cfg.buckets))

    async def call(event: dict[str, Any]) -> Any:
        return await inv.invoke(event, log_context={"TransactionId": TRANSACTION_ID, "CallId": LEG_A})

    driver = SimDriver(tx, call, cfg=cfg, audio=audio, buckets=buckets, script=script)
    try:
        return await driver.run()
    finally:
        if own:
            await inv.close()


# -- presenting a trace -----------------------------------------------------------------
def _action_summary(action: Any) -> str:
    if not isinstance(action, Mapping):
        return repr(action)
    kind = str(action.get("Type", "?"))
    p = action.get("Parameters") or {}
    if not isinstance(p, Mapping):
        return kind
    src = p.get("AudioSource")
    bits = []
    if isinstance(src, Mapping) and src.get("Key"):
        bits.append(str(src["Key"]))
    for name in ("Repeat", "DurationInMilliseconds", "Text", "InputDigitsRegex", "SipResponseCode"):
        if name in p:
            bits.append(f"{name}={p[name]}")
    return f"{kind} {' '.join(bits)}".strip()


def reply_summary(reply: Any) -> str:
    if isinstance(reply, Mapping) and "HandlerFailed" in reply:
        return f"handler failed: {reply['HandlerFailed']} {reply.get('Message', '')}".rstrip()
    if isinstance(reply, Mapping):
        actions = reply.get("Actions")
        if isinstance(actions, list):
            return "[" + ", ".join(_action_summary(a) for a in actions) + "]"
    return f"(not an action list: {json.dumps(reply)[:60]})"


def event_summary(event: Mapping[str, Any]) -> str:
    out = str(event.get("InvocationEventType"))
    data = event.get("ActionData")
    if isinstance(data, Mapping):
        out += f" {data.get('Type')}"
        if data.get("ReceivedDigits") is not None:
            out += f" digits={data['ReceivedDigits']!r}"
        if data.get("ErrorType"):
            out += f" {data['ErrorType']}"
    return out


def trace_lines(trace: list[dict[str, Any]]) -> list[str]:
    """The readable trace (one line per entry) of a JSON trace."""
    lines = []
    for e in trace:
        t = f"{e['t']:9.3f}"
        if e["kind"] == "invoke":
            lines.append(f"{t}  -> {event_summary(e['event'])}")
            lines.append(f"{t}  <- {reply_summary(e['reply'])}")
        elif e["kind"] == "dtmf":
            lines.append(f"{t}  DTMF {e['detail']}")
        elif e["kind"] == "hangup":
            lines.append(f"{t}  caller hangs up")
        elif e["kind"] == "update":
            lines.append(f"{t}  UpdateSipMediaApplicationCall {e['detail']}")
        else:
            lines.append(f"{t}  {e['kind']} {e['detail']}")
    return lines


def normalised(trace: list[dict[str, Any]]) -> list[str]:
    """What --check compares: times to 10 ms, event and ActionData types, errors, reply action types."""
    out = []
    for e in trace:
        t = f"{round(e['t'], 2):.2f}"
        if e["kind"] == "invoke":
            ev: Mapping[str, Any] = e["event"] or {}
            raw = ev.get("ActionData")
            data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            out.append(" ".join(x for x in (t, "->", str(ev.get("InvocationEventType")), str(data.get("Type") or ""),
                                             str(data.get("ErrorType") or "")) if x))
            reply = e["reply"]
            if isinstance(reply, Mapping) and isinstance(reply.get("Actions"), list):
                kinds = [str(a.get("Type")) if isinstance(a, Mapping) else "?" for a in reply["Actions"]]
                out.append(f"{t} <- [{', '.join(kinds)}]")
            else:
                out.append(f"{t} <- {reply_summary(reply)}")
        else:
            out.append(f"{t} {e['kind']} {e['detail']}")
    return out


def compare(expected: list[dict[str, Any]], actual: list[dict[str, Any]], *,
            names: tuple[str, str] = ("expected", "actual")) -> str:
    """A unified diff of the normalised traces; empty when they match."""
    return "\n".join(difflib.unified_diff(normalised(expected), normalised(actual), *names, lineterm=""))


# -- the command line -------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, metavar="FILE", help="YAML configuration file")
    p.add_argument("script", metavar="SCRIPT", help="YAML script of the caller's behaviour (docs/simulate.md)")
    p.add_argument("--handler", metavar="MODULE:FUNCTION", help="run this python handler instead of the "
                   "script's application")
    p.add_argument("--json", action="store_true", help="print the trace as JSON")
    p.add_argument("--check", metavar="EXPECTED.json", help="compare with a stored trace; exit 1 with a diff")
    p.add_argument("--write", metavar="EXPECTED.json", help="store the trace (for --check)")


def run(args: argparse.Namespace) -> int:
    import asyncio

    from . import logs
    from .config import ConfigError, load_config
    logs.configure("warning", "console")          # the trace is the output; warnings go to stderr
    try:
        cfg = load_config(args.config)
        script = load_script(args.script)
        trace = [e.as_json() for e in asyncio.run(simulate(cfg, script, handler=args.handler))]
    except ConfigError as exc:
        print(f"chimevoice: invalid configuration\n{exc}", file=sys.stderr)
        return 2
    except ScriptError as exc:
        print(f"chimevoice simulate: {args.script}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(trace, indent=2))
    else:
        print("\n".join(trace_lines(trace)))
    if args.write:
        Path(args.write).write_text(json.dumps(trace, indent=2) + "\n")
    if args.check:
        try:
            expected = json.loads(Path(args.check).read_text())
        except (OSError, ValueError) as exc:
            print(f"chimevoice simulate: {args.check}: {exc}", file=sys.stderr)
            return 2
        diff = compare(expected, trace, names=(args.check, "simulated"))
        if diff:
            print(diff, file=sys.stderr)
            return 1
        print(f"{args.check}: trace matches", file=sys.stderr)
    return 0
