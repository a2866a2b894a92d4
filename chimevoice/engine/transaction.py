"""The per-transaction state machine (sans-IO).

One :class:`Transaction` per call (a TransactionId with its legs). It decides
which event the handler gets next, runs the handler's action list in order and
turns everything it needs done into :mod:`~chimevoice.engine.commands`, which
the driver collects with :meth:`Transaction.drain`.

Rules implemented here (spec 01 §2, README readings 3, 4, 6, 9):

* one invocation at a time; events that happen meanwhile are queued;
* actions run in order; one ``ACTION_SUCCESSFUL`` for the list (``ActionData``
  = last action), except actions that report at once mid-list; the first
  failure sends ``ACTION_FAILED`` and drops the rest;
* ``Actions: null`` keeps the current list, ``[]`` stops it (or resumes a list
  paused by a mid-list report), a non-empty list replaces what is left;
* a leg that hangs up stops its action and yields ``HANGUP``; when no leg is
  connected the reply to ``HANGUP`` is ignored and the transaction ends;
* at most ``max_invocations`` handler invocations per call;
* a handler that cannot be invoked on ``NEW_INBOUND_CALL`` fails over to the
  next target application; when none is left the call is rejected with 480.
"""
from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chimevoice.actions.base import Action

from . import commands as c
from . import events as E
from .digits import DigitListeners, Listener, Report, stream_digit
from .errors import (INVALID_ACTION_PARAMETER, MSG_BAD_LEG, MSG_SYSTEM, SYSTEM_EXCEPTION,
                     ActionError)
from .response import HandlerResponse, ResponseProblem, apply_attributes, parse_response
from .values import ParamError, is_blank

# Responses to these events are never executed (01 §2.1 rules 5, 9).
_IGNORED_RESPONSES = {E.NEW_OUTBOUND_CALL, E.RINGING, E.ACTION_INTERRUPTED}


@dataclass(frozen=True, slots=True)
class Target:
    """One SIP media application a call may be routed to (priority order)."""
    app_id: str
    aws_account_id: str
    aws_region: str


@dataclass(frozen=True, slots=True)
class Limits:
    max_invocations: int = 1000
    max_attributes: int = 100
    unanswered_timeout_s: float = 30.0
    reject_code: int = 480          # for unanswered legs: Hangup with code 0, timeouts, failures


@dataclass(slots=True)
class Leg:
    participant: E.Participant
    answered: bool = False
    media_ready: bool = False
    answering: bool = False

    @property
    def call_id(self) -> str:
        return self.participant.call_id

    @property
    def connected(self) -> bool:
        return self.participant.status == E.CONNECTED


@dataclass(slots=True)
class _Pending:
    event_type: str
    details: dict[str, Any]
    action_data: dict[str, Any] | None = None
    error: tuple[str, str] | None = None
    invoked_leg: str | None = None
    top_level: dict[str, Any] | None = None     # e.g. CallRecordingDestination (02a §3.7)


class Transaction:
    def __init__(self, *, transaction_id: str, leg_a: E.Participant, targets: list[Target],
                 sip_rule_id: str | None, registry: Mapping[str, type[Action]],
                 limits: Limits = Limits(), now_ms: Callable[[], int] | None = None) -> None:
        if not targets:
            raise ValueError("a transaction needs at least one target application")
        self.transaction_id = transaction_id
        self.targets = targets
        self.target_index = 0
        self.registry = registry
        self.limits = limits
        first = targets[0]
        self.info = E.CallDetailsInfo(transaction_id, first.aws_account_id, first.aws_region,
                                      first.app_id, sip_rule_id, [leg_a])
        self.legs: dict[str, Leg] = {leg_a.call_id: Leg(leg_a)}
        self.leg_a = leg_a.call_id
        self.attributes: dict[str, Any] = {}
        self.sequence = 0
        self.invocations = 0
        self.outbox: list[c.Command] = []
        self.queue: deque[_Pending] = deque()
        self.in_flight: _Pending | None = None
        self.pending_actions: deque[dict[str, Any]] = deque()
        self.current: Action | None = None
        self.paused = False                   # waiting for the reply to a mid-list report
        self.invoked_leg = leg_a.call_id
        self.hangup_codes: dict[str, int] = {}
        self.handler_reached = False          # some target answered NEW_INBOUND_CALL
        self.finished = False
        self._ids = itertools.count(1)
        self.listeners = DigitListeners()     # ReceiveDigits, one per leg (docs/digits.md)
        # Call recording per leg (02a §2.2): call id -> CallRecording; a leg records once.
        self.call_recordings: dict[str, Any] = {}

    # -- driver API ------------------------------------------------------
    def drain(self) -> list[c.Command]:
        out, self.outbox = self.outbox, []
        return out

    @property
    def app_id(self) -> str:
        return self.targets[self.target_index].app_id

    def start(self) -> None:
        """An inbound call arrived and was routed: ring and ask the handler."""
        self._emit(c.Ring(self.leg_a))
        self._emit(c.StartTimer("unanswered", self.limits.unanswered_timeout_s))
        self._send(E.NEW_INBOUND_CALL)
        self._pump()

    def handler_responded(self, raw: Any) -> None:
        pending = self._complete_invocation()
        if pending is None:
            return
        if pending.event_type == E.NEW_INBOUND_CALL:
            self.handler_reached = True
        parsed = parse_response(raw, max_attributes=self.limits.max_attributes)
        ignored = pending.event_type in _IGNORED_RESPONSES or not self._any_connected()
        if isinstance(parsed, ResponseProblem):
            self._log("warning", "invalid_handler_response", event_type=pending.event_type,
                      error_type=parsed.error_type, error=parsed.message)
            if ignored:
                self._after_ignored()
            else:
                self._send(E.INVALID_LAMBDA_RESPONSE, error=(parsed.error_type, parsed.message))
            return self._pump()
        self.attributes = apply_attributes(self.attributes, parsed)
        if ignored:
            self._after_ignored()
            return self._pump()
        self._take_actions(pending, parsed)
        self._advance()
        self._pump()

    def handler_failed(self, kind: str, message: str) -> None:
        """The invocation could not be made or did not answer (timeout, error, unreachable)."""
        pending = self._complete_invocation()
        if pending is None:
            return
        self._log("error", "handler_invocation_failed", event_type=pending.event_type,
                  kind=kind, error=message, sip_media_application_id=self.app_id)
        if pending.event_type == E.NEW_INBOUND_CALL and not self.handler_reached:
            if self.target_index + 1 < len(self.targets) and self._leg(self.leg_a).connected:
                self._fail_over()
                return self._pump()
            self._end_call(self.limits.reject_code)
            return self._pump()
        if not self._any_connected() or pending.event_type in _IGNORED_RESPONSES:
            self._after_ignored()
            return self._pump()
        # The handler cannot drive this call any more (04 §3.2: end it with 480).
        self._end_call(self.limits.reject_code)
        self._pump()

    def leg_media_ready(self, call_id: str) -> None:
        leg = self.legs.get(call_id)
        if leg is None:
            return
        leg.media_ready = True
        leg.answered = True
        self._emit(c.CancelTimer("unanswered"))
        if self.current is not None:
            self.current.on_media_ready(call_id)
        self._pump()

    def leg_disconnected(self, call_id: str, *, by_remote: bool) -> None:
        leg = self.legs.get(call_id)
        if leg is None or not leg.connected:
            return
        leg.participant.status = E.DISCONNECTED
        code = self.hangup_codes.pop(call_id, 0)
        self._log("info", "leg_disconnected", call_id=call_id, by_remote=by_remote, sip_response_code=code)
        if call_id == self.leg_a:
            self._emit(c.CancelTimer("unanswered"))
        self._digit_effects(self.listeners.drop(call_id))   # no DIGITS_RECEIVED after HANGUP
        if self.current is not None and not self._any_connected():
            self._abandon_current()
        if not self._any_connected():
            self.pending_actions.clear()
            self.paused = False
        if not self.handler_reached and self.in_flight is None:
            # No handler ever took this call (failover exhausted, or the caller
            # gave up before any handler answered): nobody to tell.
            self.queue.clear()
            self._finish("no handler answered")
            return
        self._send(E.HANGUP, action_data=E.action_data("Hangup", {
            "SipResponseCode": code, "CallId": call_id, "ParticipantTag": leg.participant.tag}),
            invoked_leg=call_id)
        self._pump()

    def audio_ready(self, request_id: str, path: str, duration_s: float) -> None:
        if self.current is not None:
            self.current.on_audio_ready(request_id, path, duration_s)
        self._pump()

    def audio_failed(self, request_id: str, error_type: str, message: str) -> None:
        if self.current is not None:
            self.current.on_audio_failed(request_id, error_type, message)
        self._pump()

    def bot_turn(self, request_id: str, turn: Any) -> None:
        """A bot step of a BotRequest answered (a chimevoice.bots.BotTurn)."""
        if self.current is not None:
            self.current.on_bot_turn(request_id, turn)
        self._pump()

    def bot_failed(self, request_id: str, error_type: str, message: str) -> None:
        """A bot step of a BotRequest failed (BotError or a crash)."""
        if self.current is not None:
            self.current.on_bot_failed(request_id, error_type, message)
        self._pump()

    def dtmf_wanted(self, call_id: str) -> bool:
        """Whether anything would use a digit from *call_id* now (drives in-band detection)."""
        if self.current is not None and self.current.consumes_dtmf(call_id):
            return True
        return self.listeners.armed(call_id)

    def digits_sent(self, call_id: str, send_id: str) -> None:
        if self.current is not None:
            self.current.on_digits_sent(call_id, send_id)
        self._pump()

    def recording_started(self, call_id: str, record_id: str) -> None:
        if self.current is not None:
            self.current.on_recording_started(call_id, record_id)
        self._pump()

    def recording_stopped(self, call_id: str, record_id: str, reason: str,
                          error: str | None = None, duration_s: float = 0.0) -> None:
        """A recording ended (*reason*: stopped, duration, silence, terminator, hangup, error)."""
        if self.current is not None:
            self.current.on_recording_stopped(call_id, record_id, reason, error)
        rec = self.call_recordings.get(call_id)
        if rec is not None and rec.record_id == record_id:
            rec.state = "STOPPED"
        self._log("info" if error is None else "error", "recording_stopped", call_id=call_id,
                  record_id=record_id, reason=reason, error=error, duration_s=round(duration_s, 3))
        self._pump()

    def playback_finished(self, call_id: str, play_id: str) -> None:
        if self.current is not None:
            self.current.on_playback_finished(call_id, play_id)
        self._pump()

    def dtmf(self, call_id: str, digit: str) -> None:
        """A digit of the leg's stream: to the foreground action consuming DTMF on that
        leg, else to the leg's ReceiveDigits listener, else dropped (engine/digits.py)."""
        d = stream_digit(digit)
        if d is None or call_id not in self.legs:
            self._log("info", "dtmf_ignored", call_id=call_id, digit=digit)
        elif self.current is not None and self.current.consumes_dtmf(call_id):
            self.current.on_dtmf(call_id, d)
        else:
            self._digit_effects(self.listeners.dtmf(call_id, d))
        self._pump()

    def timer_fired(self, name: str) -> None:
        if name == "unanswered":
            leg = self._leg(self.leg_a)
            if leg.connected and not leg.answered:
                self._log("warning", "unanswered_timeout", seconds=self.limits.unanswered_timeout_s)
                self._reject_or_disconnect(leg, self.limits.reject_code)
        elif self.listeners.owns(name):
            self._digit_effects(self.listeners.timer_fired(name))
        elif self.current is not None:
            self.current.on_timer(name)
        self._pump()

    def sip_command_failed(self, call_id: str, command: str, message: str) -> None:
        self._log("error", "sip_command_failed", call_id=call_id, command=command, error=message)
        # the commands an action waits on (PlaybackFinished, DigitsSent) that will now never come
        if self.current is not None and command in ("play", "send_digits"):
            self._action_failed(self.current, SYSTEM_EXCEPTION, MSG_SYSTEM)
        self._pump()

    # -- helpers for actions (through ActionContext) -------------------------
    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def resolve_leg(self, params: dict[str, Any]) -> Leg:
        """The leg an action addresses (02c §0.2, README reading 4): CallId wins,
        then ParticipantTag, then the leg the handler was invoked for."""
        call_id = params.get("CallId")
        tag = params.get("ParticipantTag")
        if not is_blank(call_id):
            leg = self.legs.get(str(call_id))
        elif not is_blank(tag):
            leg = next((lg for lg in self.legs.values() if lg.participant.tag == str(tag).upper()), None)
        else:
            leg = self.legs.get(self.invoked_leg) or self.legs.get(self.leg_a)
            if leg is not None and not leg.connected:
                leg = self.legs.get(self.leg_a)
        if leg is None or not leg.connected:
            raise ActionError(INVALID_ACTION_PARAMETER, MSG_BAD_LEG)
        return leg

    def answer_leg(self, leg: Leg) -> bool:
        """Answer *leg* if needed; True when its media is already up."""
        if leg.media_ready:
            return True
        if not leg.answering:
            leg.answering = True
            self._emit(c.Answer(leg.call_id))
        return False

    def hang_up_leg(self, leg: Leg, code: int) -> None:
        self.hangup_codes[leg.call_id] = code
        self._reject_or_disconnect(leg, code)

    def _reject_or_disconnect(self, leg: Leg, code: int) -> None:
        if leg.answered or leg.answering:
            self._emit(c.Disconnect(leg.call_id, code))
        else:
            self.hangup_codes.setdefault(leg.call_id, code)
            self._emit(c.Reject(leg.call_id, code or self.limits.reject_code))

    # -- internals ---------------------------------------------------------
    def _emit(self, cmd: c.Command) -> None:
        self.outbox.append(cmd)

    def _digit_effects(self, effects: list) -> None:
        for effect in effects:
            if isinstance(effect, Report):
                if self.legs[effect.call_id].connected:
                    self._send(E.DIGITS_RECEIVED, action_data=effect.action_data, invoked_leg=effect.call_id)
            else:
                self._emit(effect)

    def _log(self, level: str, event: str, **fields: Any) -> None:
        self._emit(c.Log(level, event, fields))

    def _leg(self, call_id: str) -> Leg:
        return self.legs[call_id]

    def _any_connected(self) -> bool:
        return any(leg.connected for leg in self.legs.values())

    def _details(self) -> dict[str, Any]:
        return E.call_details(self.info, self.attributes)

    def _send(self, event_type: str, *, action_data: dict[str, Any] | None = None,
              error: tuple[str, str] | None = None, invoked_leg: str | None = None,
              top_level: dict[str, Any] | None = None) -> None:
        if invoked_leg is None and action_data is not None:
            cid = action_data.get("Parameters", {}).get("CallId")
            invoked_leg = cid if isinstance(cid, str) and cid in self.legs else None
        self.queue.append(_Pending(event_type, self._details(), action_data, error,
                                   invoked_leg or self.leg_a, top_level))

    def _pump(self) -> None:
        """Start the next queued invocation when none is in flight."""
        if self.finished or self.in_flight is not None:
            return
        if not self.queue:
            if not self._any_connected() and self.current is None:
                self._finish("all legs disconnected")
            return
        if self.invocations >= self.limits.max_invocations:
            self._log("error", "invocation_limit_reached", limit=self.limits.max_invocations)
            self.queue.clear()
            self.pending_actions.clear()
            if self._any_connected():
                self._end_call(self.limits.reject_code)
            else:
                self._finish("invocation limit reached")
            return
        pending = self.queue.popleft()
        self.in_flight = pending
        self.invocations += 1
        self.sequence += 1
        self.invoked_leg = pending.invoked_leg or self.leg_a
        err_type, err_msg = pending.error if pending.error else (None, None)
        event = E.build_event(self.sequence, pending.event_type, pending.details,
                              action_data=pending.action_data, error_type=err_type,
                              error_message=err_msg, top_level=pending.top_level)
        self._emit(c.Invoke(event, self.app_id))

    def _complete_invocation(self) -> _Pending | None:
        pending, self.in_flight = self.in_flight, None
        if pending is None or self.finished:
            return None
        return pending

    def _after_ignored(self) -> None:
        self.paused = False
        self._advance()

    def _fail_over(self) -> None:
        self.target_index += 1
        target = self.targets[self.target_index]
        self._log("warning", "handler_failover", sip_media_application_id=target.app_id,
                  priority_index=self.target_index)
        self.info.sip_media_application_id = target.app_id
        self.info.aws_account_id = target.aws_account_id
        self.info.aws_region = target.aws_region
        self.sequence = 0          # the next application sees its first event
        self._send(E.NEW_INBOUND_CALL)

    def _end_call(self, code: int) -> None:
        self.pending_actions.clear()
        self.paused = False
        if self.current is not None:
            self._abandon_current()
        for leg in self.legs.values():
            if leg.connected:
                self.hangup_codes.setdefault(leg.call_id, code)
                self._reject_or_disconnect(leg, code)

    def _finish(self, reason: str) -> None:
        if self.finished:
            return
        self.finished = True
        self._emit(c.CancelTimer("unanswered"))
        self._digit_effects(self.listeners.drop_all())
        self._emit(c.Finished(reason))

    def _take_actions(self, pending: _Pending, response: HandlerResponse) -> None:
        actions = response.actions
        resumed = self.paused
        self.paused = False
        if actions is None:
            return                                  # keep what is running / left
        if not actions:
            if pending.event_type == E.NEW_INBOUND_CALL:
                self._log("warning", "empty_action_list", error="The action list is empty.")
            if not resumed:
                self.pending_actions.clear()
            return
        self.pending_actions = deque(actions)       # the running action (if any) completes first

    def _advance(self) -> None:
        while (self.current is None and not self.paused and self.in_flight is None
               and not self.queue and self.pending_actions and self._any_connected()):
            self._start_action(self.pending_actions.popleft())

    def _start_action(self, raw: dict[str, Any]) -> None:
        action_type = raw.get("Type", "")
        params = raw.get("Parameters") or {}
        cls = self.registry.get(action_type)
        ctx = ActionContext(self)
        if cls is None:
            action: Action = _Unsupported(ctx, params)
            action.type_name = action_type  # type: ignore[misc]
        else:
            action = cls(ctx, params)
        ctx.action = action
        self.current = action
        try:
            action.start()
        except ActionError as exc:
            self._action_failed(action, exc.error_type, exc.message)
        except ParamError as exc:
            self._action_failed(action, INVALID_ACTION_PARAMETER, f"{action.type_name} parameter is invalid: {exc}")
        except Exception as exc:  # noqa: BLE001 - one bad action must not take the call down
            self._log("error", "action_crashed", action=action_type, error=repr(exc))
            self._action_failed(action, SYSTEM_EXCEPTION, MSG_SYSTEM)

    def _action_succeeded(self, action: Action, extra: dict[str, Any]) -> None:
        if action is not self.current:
            return
        self.current = None
        top_level = extra.pop("_top_level", None)
        data = action.success_data(**extra)
        if not self._any_connected():
            return
        if not self.pending_actions:
            self._send(E.ACTION_SUCCESSFUL, action_data=data, top_level=top_level)
        elif action.reports_immediately:
            self.paused = True
            self._send(E.ACTION_SUCCESSFUL, action_data=data, top_level=top_level)
        else:
            self._advance()

    def _action_failed(self, action: Action, error_type: str, message: str) -> None:
        if action is not self.current:
            return
        action.stop()
        self.current = None
        self.pending_actions.clear()
        self._log("warning", "action_failed", action=action.type_name, error_type=error_type, error=message)
        if self._any_connected():
            self._send(E.ACTION_FAILED, action_data=E.action_data(
                action.type_name, action.echo_parameters(), **action.failure_data(),
                ErrorType=error_type, ErrorMessage=message))

    def _action_ended_list(self, action: Action) -> None:
        """The action ended the list without an event of its own (Hangup)."""
        if action is not self.current:
            return
        self.current = None
        self.pending_actions.clear()

    def _abandon_current(self) -> None:
        action, self.current = self.current, None
        if action is not None:
            action.ctx.done = True
            action.stop()


class ActionContext:
    """What an action may do. Calls after the action finished are ignored."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx
        self.action: Action | None = None
        self.done = False

    def resolve_leg(self, params: dict[str, Any] | None = None) -> Leg:
        assert self.action is not None
        return self.tx.resolve_leg(self.action.params if params is None else params)

    def answer(self, leg: Leg) -> bool:
        return self.tx.answer_leg(leg)

    def prepare_audio(self, bucket: str, key: str) -> str:
        rid = self.tx.new_id("audio")
        self.tx._emit(c.PrepareAudio(rid, bucket, key))
        return rid

    def prepare_speech(self, request: Any) -> str:
        rid = self.tx.new_id("speech")
        self.tx._emit(c.PrepareSpeech(rid, request))
        return rid

    def play(self, leg: Leg, path: str, repeat: int = 1, duration_s: float = 0.0) -> str:
        pid = self.tx.new_id("play")
        self.tx._emit(c.Play(leg.call_id, pid, path, repeat, duration_s))
        return pid

    def stop_play(self, leg: Leg, play_id: str) -> None:
        self.tx._emit(c.StopPlay(leg.call_id, play_id))

    def start_timer(self, name: str, seconds: float) -> None:
        self.tx._emit(c.StartTimer(name, seconds))

    def bot_request(self, conversation_id: str, call_id: str, op: str, value: Any = None) -> str:
        """Ask the driver for one bot step (see commands.BotRequest); returns its request id."""
        rid = self.tx.new_id("bot")
        self.tx._emit(c.BotRequest(rid, conversation_id, call_id, op, value))
        return rid

    def bot_release(self, conversation_id: str) -> None:
        self.tx._emit(c.BotRelease(conversation_id))

    def cancel_timer(self, name: str) -> None:
        self.tx._emit(c.CancelTimer(name))

    def arm_digit_listener(self, leg: Leg, listener: Listener) -> None:
        """Install a ReceiveDigits listener on *leg* (replacing the one there)."""
        assert self.action is not None
        self.tx._digit_effects(self.tx.listeners.arm(
            leg.call_id, listener, self.action.type_name, self.action.echo_parameters()))

    def send_digits(self, leg: Leg, digits: str, tone_ms: int, gap_ms: int) -> str:
        sid = self.tx.new_id("digits")
        self.tx._emit(c.SendDigits(leg.call_id, sid, digits, tone_ms, gap_ms))
        return sid

    def stop_digits(self, leg: Leg, send_id: str) -> None:
        self.tx._emit(c.StopDigits(leg.call_id, send_id))

    def start_recording(self, leg: Leg, bucket: str, key: str, **options: Any) -> str:
        rid = self.tx.new_id("rec")
        self.tx._emit(c.StartRecording(leg.call_id, rid, bucket, key, **options))
        return rid

    def stop_recording(self, call_id: str, record_id: str, reason: str = "stopped") -> None:
        self.tx._emit(c.StopRecording(call_id, record_id, reason))

    def pause_recording(self, call_id: str, record_id: str, paused: bool) -> None:
        self.tx._emit(c.PauseRecording(call_id, record_id, paused))

    def set_voice_focus(self, leg: Leg, enabled: bool) -> None:
        self.tx._emit(c.SetVoiceFocus(leg.call_id, enabled))

    @property
    def transaction_id(self) -> str:
        return self.tx.transaction_id

    @property
    def call_recordings(self) -> dict[str, Any]:
        return self.tx.call_recordings

    def timer_name(self, suffix: str) -> str:
        return self.tx.new_id(f"action-{suffix}")

    def hang_up(self, leg: Leg, code: int) -> None:
        self.tx.hang_up_leg(leg, code)

    def log(self, level: str, event: str, **fields: Any) -> None:
        self.tx._log(level, event, **fields)

    def succeed(self, **extra: Any) -> None:
        if not self.done and self.action is not None:
            self.done = True
            self.tx._action_succeeded(self.action, extra)

    def fail(self, error_type: str, message: str) -> None:
        if not self.done and self.action is not None:
            self.done = True
            self.tx._action_failed(self.action, error_type, message)

    def end_list(self) -> None:
        if not self.done and self.action is not None:
            self.done = True
            self.tx._action_ended_list(self.action)


class _Unsupported(Action):
    """A known Chime action this server does not implement: ACTION_FAILED naming it."""

    def start(self) -> None:
        raise ActionError(SYSTEM_EXCEPTION, f"Action {self.type_name} is not supported by this chimevoice server.")
