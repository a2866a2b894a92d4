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
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import commands as c
from . import events as E
from . import inputs as I
from .action import Action, ActionContext, Needs
from .digits import DigitListeners, Listener, Report, stream_digit
from .directory import Directory
from .errors import INVALID_ACTION_PARAMETER, MSG_BAD_LEG, MSG_SYSTEM, SYSTEM_EXCEPTION, ActionError
from .legs import Leg
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
                 limits: Limits = Limits(), directory: Directory = Directory()) -> None:
        if not targets:
            raise ValueError("a transaction needs at least one target application")
        self.transaction_id = transaction_id
        self.targets = targets
        self.target_index = 0
        self.registry = registry
        self.limits = limits
        self.directory = directory
        first = targets[0]
        self.info = E.CallDetailsInfo(transaction_id, first.aws_account_id, first.aws_region,
                                      first.app_id, sip_rule_id, [leg_a])
        self._legs: dict[str, Leg] = {leg_a.call_id: Leg(leg_a)}
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
        # Why the handler is no longer invoked for this call (invocation cap, an invalid
        # reply to INVALID_LAMBDA_RESPONSE: README readings 9 and 19); None while it is.
        self.gave_up: str | None = None
        self.finished = False
        self._ids = itertools.count(1)
        self._legs_made = 0
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

    def handle(self, inp: I.Input) -> None:
        """The engine's one entry point: apply *inp*, then start the next invocation
        if one is due. Commands accumulate until :meth:`drain`."""
        self._handlers[type(inp)](self, inp)
        self._pump()

    def dtmf_wanted(self, call_id: str) -> bool:
        """Whether anything would use a digit from *call_id* now (drives in-band detection)."""
        if self.current is not None and self.current.consumes_dtmf(call_id):
            return True
        return self.listeners.armed(call_id)

    # -- inputs ----------------------------------------------------------
    def _on_inbound_call(self, inp: I.InboundCallRouted) -> None:
        """An inbound call arrived and was routed: ring and ask the handler."""
        self.emit(c.Ring(self.leg_a))
        self.emit(c.StartTimer("unanswered", self.limits.unanswered_timeout_s))
        self._send(E.NEW_INBOUND_CALL)

    def _on_outbound_call(self, inp: I.OutboundCallRequested) -> None:
        """CreateSipMediaApplicationCall: dial LEG-A and tell the handler (01 §4.2)."""
        leg = self._legs[self.leg_a]
        self.handler_reached = True          # no failover: the application asked for the call
        self.emit(c.Dial(leg.call_id, "PSTN", leg.participant.to, leg.participant.from_,
                         sip_headers=inp.sip_headers))
        self.emit(c.StartTimer("unanswered", self.limits.unanswered_timeout_s))
        self._send(E.NEW_OUTBOUND_CALL, action_data={       # README reading 11
            "Type": "CallCreateRequest", "Parameters": {"Arguments": dict(inp.arguments)}})

    def _on_update_requested(self, inp: I.UpdateRequested) -> None:
        """UpdateSipMediaApplicationCall (01 §6.11): the reply's actions interrupt an
        interruptible action and replace the rest (see _take_actions)."""
        if not self._any_connected():
            return
        self._send(E.CALL_UPDATE_REQUESTED, action_data={
            "Type": "CallUpdateRequest", "Parameters": {"Arguments": dict(inp.arguments)}})

    def _on_handler_responded(self, inp: I.HandlerResponded) -> None:
        pending = self._complete_invocation()
        if pending is None:
            return
        if pending.event_type == E.NEW_INBOUND_CALL:
            self.handler_reached = True
        parsed = parse_response(inp.raw, max_attributes=self.limits.max_attributes)
        ignored = pending.event_type in _IGNORED_RESPONSES or not self._any_connected()
        if isinstance(parsed, ResponseProblem):
            self.log("warning", "invalid_handler_response", event_type=pending.event_type,
                     error_type=parsed.error_type, error=parsed.message)
            if ignored:
                self._after_ignored()
            elif pending.event_type == E.INVALID_LAMBDA_RESPONSE:
                # README reading 19: an invalid reply to INVALID_LAMBDA_RESPONSE ends the
                # call at once; the handler is not invoked again (not even for HANGUP).
                self._give_up("invalid_reply_loop", error_type=parsed.error_type, error=parsed.message)
            else:
                self._send(E.INVALID_LAMBDA_RESPONSE, error=(parsed.error_type, parsed.message))
            return
        self.attributes = apply_attributes(self.attributes, parsed)
        if ignored:
            self._after_ignored()
            return
        self._take_actions(pending, parsed)
        self._advance()

    def _on_handler_failed(self, inp: I.HandlerFailed) -> None:
        """The invocation could not be made or did not answer (timeout, error, unreachable)."""
        pending = self._complete_invocation()
        if pending is None:
            return
        self.log("error", "handler_invocation_failed", event_type=pending.event_type,
                 kind=inp.kind, error=inp.message, sip_media_application_id=self.app_id)
        if pending.event_type == E.NEW_INBOUND_CALL and not self.handler_reached:
            if self.target_index + 1 < len(self.targets) and self._leg(self.leg_a).connected:
                self._fail_over()
                return
            self._end_call(self.limits.reject_code)
            return
        if not self._any_connected() or pending.event_type in _IGNORED_RESPONSES:
            self._after_ignored()
            return
        # The handler cannot drive this call any more (04 §3.2: end it with 480).
        self._end_call(self.limits.reject_code)

    def _on_media_ready(self, inp: I.MediaReady) -> None:
        leg = self._legs.get(inp.call_id)
        if leg is None:
            return
        leg.media_ready = True
        if leg.inbound and leg.answering:
            leg.answered = True
            if inp.call_id == self.leg_a:
                self.emit(c.CancelTimer("unanswered"))
        action = self.current
        if action is not None:
            self._to_action(action, inp)
            if action is self.current and action.owns_leg(inp.call_id):
                self._proceed(action)

    def _on_leg_disconnected(self, inp: I.LegDisconnected) -> None:
        call_id = inp.call_id
        leg = self._legs.get(call_id)
        if leg is None or not leg.connected:
            return
        leg.participant.status = E.DISCONNECTED
        if not leg.listed:
            # An outbound leg that never answered (CallAndBridge reports it itself).
            self.log("info", "outbound_leg_failed", call_id=call_id, sip_status=inp.status_code)
            if self.current is not None:
                self._to_action(self.current, inp)
            return
        code = self.hangup_codes.pop(call_id, 0)
        self.log("info", "leg_disconnected", call_id=call_id, by_remote=inp.by_remote, sip_response_code=code)
        if call_id == self.leg_a:
            self.emit(c.CancelTimer("unanswered"))
        self._digit_effects(self.listeners.drop(call_id))   # no DIGITS_RECEIVED after HANGUP
        if self.current is not None and (not self._any_connected() or self.current.owns_leg(call_id)):
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
        if self._any_connected():
            # README reading 12: later events list only the live legs.
            self._unlist(leg)

    def _on_leg_ringing(self, inp: I.LegRinging) -> None:
        leg = self._legs.get(inp.call_id)
        if leg is None or not leg.connected:
            return
        if inp.call_id == self.leg_a and not leg.inbound and not leg.answered and not leg.rang:
            leg.rang = True
            self._send(E.RINGING)                 # an API-originated call (01 §6.3)
        elif self.current is not None:
            self._to_action(self.current, inp)

    def _on_leg_answered(self, inp: I.LegAnswered) -> None:
        leg = self._legs.get(inp.call_id)
        if leg is None or not leg.connected:
            return
        leg.answered = True
        leg.participant.start_ms = inp.start_ms
        if inp.call_id == self.leg_a and not leg.inbound:
            self.emit(c.CancelTimer("unanswered"))
            self._send(E.CALL_ANSWERED)           # an API-originated call (01 §6.4)
        elif self.current is not None:
            self._to_action(self.current, inp)

    def _on_preparation(self, inp: I.AudioReady | I.AudioFailed | I.BotTurn | I.BotFailed) -> None:
        """A preparation (audio, speech, a bot step) answered: to the action; when it was
        the last one the action waited for, the action's precondition comes next."""
        action = self.current
        if action is None:
            return
        action.ctx.outstanding.discard(inp.request_id)
        self._to_action(action, inp)
        if action is self.current:
            self._proceed(action)

    def _on_recording_stopped(self, inp: I.RecordingStopped) -> None:
        """A recording ended (*reason*: stopped, duration, silence, terminator, hangup, error)."""
        if self.current is not None:
            self._to_action(self.current, inp)
        rec = self.call_recordings.get(inp.call_id)
        if rec is not None and rec.record_id == inp.record_id:
            rec.state = "STOPPED"
        self.log("info" if inp.error is None else "error", "recording_stopped", call_id=inp.call_id,
                 record_id=inp.record_id, reason=inp.reason, error=inp.error,
                 duration_s=round(inp.duration_s, 3))

    def _on_action_input(self, inp: I.PlaybackFinished | I.DigitsSent | I.RecordingStarted) -> None:
        if self.current is not None:
            self._to_action(self.current, inp)

    def _on_dtmf(self, inp: I.Dtmf) -> None:
        """A digit of the leg's stream: to the foreground action consuming DTMF on that
        leg, else to the leg's ReceiveDigits listener, else dropped (engine/digits.py)."""
        d = stream_digit(inp.digit)
        if d is None or inp.call_id not in self._legs:
            self.log("info", "dtmf_ignored", call_id=inp.call_id, digit=inp.digit)
        elif self.current is not None and self.current.consumes_dtmf(inp.call_id):
            self._to_action(self.current, I.Dtmf(inp.call_id, d))
        else:
            self._digit_effects(self.listeners.dtmf(inp.call_id, d))

    def _on_timer(self, inp: I.TimerFired) -> None:
        name = inp.name
        if name == "unanswered":
            leg = self._leg(self.leg_a)
            if leg.connected and not leg.answered:
                self.log("warning", "unanswered_timeout", seconds=self.limits.unanswered_timeout_s)
                self._reject_or_disconnect(leg, self.limits.reject_code)
        elif self.listeners.owns(name):
            self._digit_effects(self.listeners.timer_fired(name))
        elif self.current is not None:
            self._to_action(self.current, inp)

    def _on_command_failed(self, inp: I.CommandFailed) -> None:
        cmd = inp.command
        self.log("error", "command_failed", command=type(cmd).__name__,
                 call_id=getattr(cmd, "call_id", None), error=inp.message)
        # What an action waits on (PlaybackFinished, DigitsSent) will now never come.
        action = self.current
        if action is not None and isinstance(cmd, (c.Play, c.SendDigits)) and action.owns_leg(cmd.call_id):
            self.action_failed(action, SYSTEM_EXCEPTION, MSG_SYSTEM)

    _handlers: dict[type, Callable[[Transaction, Any], None]] = {
        I.InboundCallRouted: _on_inbound_call,
        I.OutboundCallRequested: _on_outbound_call,
        I.UpdateRequested: _on_update_requested,
        I.HandlerResponded: _on_handler_responded,
        I.HandlerFailed: _on_handler_failed,
        I.MediaReady: _on_media_ready,
        I.LegDisconnected: _on_leg_disconnected,
        I.LegRinging: _on_leg_ringing,
        I.LegAnswered: _on_leg_answered,
        I.AudioReady: _on_preparation,
        I.AudioFailed: _on_preparation,
        I.BotTurn: _on_preparation,
        I.BotFailed: _on_preparation,
        I.RecordingStopped: _on_recording_stopped,
        I.PlaybackFinished: _on_action_input,
        I.DigitsSent: _on_action_input,
        I.RecordingStarted: _on_action_input,
        I.Dtmf: _on_dtmf,
        I.TimerFired: _on_timer,
        I.CommandFailed: _on_command_failed,
    }

    # -- TransactionPort: what actions may do (through their ActionContext) ------
    @property
    def legs(self) -> Mapping[str, Leg]:
        return self._legs

    @property
    def aws_region(self) -> str:
        return self.info.aws_region

    def emit(self, cmd: c.Command) -> None:
        self.outbox.append(cmd)

    def log(self, level: str, event: str, **fields: Any) -> None:
        self.outbox.append(c.Log(level, event, fields))

    def following_actions(self) -> Sequence[str]:
        return [str(a.get("Type")) for a in self.pending_actions]

    def arm_digit_listener(self, leg: Leg, listener: Listener, type_name: str,
                           echo: dict[str, Any]) -> None:
        self._digit_effects(self.listeners.arm(leg.call_id, listener, type_name, echo))

    def new_outbound_leg(self, *, tag: str, to: str, from_: str,
                         sip_headers: dict[str, str] | None = None) -> Leg:
        """A leg this transaction is about to dial, not listed in Participants until
        :meth:`list_leg`. Its CallId is a UUID derived from the TransactionId."""
        self._legs_made += 1
        call_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"chimevoice:{self.transaction_id}/{self._legs_made}"))
        leg = Leg(E.Participant(call_id, tag, to, from_, "Outbound", 0, sip_headers=sip_headers),
                  listed=False)
        self._legs[call_id] = leg
        return leg

    def list_leg(self, leg: Leg) -> None:
        """The leg joins ``CallDetails.Participants`` (after the legs already there)."""
        if not leg.listed:
            leg.listed = True
            self.info.participants.append(leg.participant)

    def _unlist(self, leg: Leg) -> None:
        if leg.listed:
            leg.listed = False
            self.info.participants = [p for p in self.info.participants if p is not leg.participant]

    def hold_unanswered_timer(self, held: bool) -> None:
        """CallAndBridge governs an unanswered LEG-A with its own timer while it dials;
        when it fails the unanswered timer runs again."""
        leg = self._legs[self.leg_a]
        if held:
            self.emit(c.CancelTimer("unanswered"))
        elif leg.connected and not leg.answered:
            self.emit(c.StartTimer("unanswered", self.limits.unanswered_timeout_s))

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def resolve_leg(self, params: Mapping[str, Any]) -> Leg:
        """The leg an action addresses (02c §0.2, README reading 4): CallId wins,
        then ParticipantTag, then the leg the handler was invoked for."""
        call_id = params.get("CallId")
        tag = params.get("ParticipantTag")
        if not is_blank(call_id):
            leg = self._legs.get(str(call_id))
        elif not is_blank(tag):
            wanted = str(tag).upper()
            leg = next((lg for lg in self._legs.values()
                        if lg.participant.tag == wanted and lg.connected and lg.listed), None)
        else:
            leg = self._legs.get(self.invoked_leg) or self._legs.get(self.leg_a)
            if leg is not None and not leg.connected:
                leg = self._legs.get(self.leg_a)
            if leg is None or not leg.connected:
                # Both gone (LEG-A hung up on a bridged call): the one leg still up.
                live = [lg for lg in self._legs.values() if lg.connected and lg.listed]
                leg = live[0] if len(live) == 1 else leg
        if leg is None or not leg.connected or not leg.listed:
            raise ActionError(INVALID_ACTION_PARAMETER, MSG_BAD_LEG)
        return leg

    def answer_leg(self, leg: Leg) -> bool:
        """Answer *leg* if needed; True when it is answered and its media is up."""
        if leg.answered and leg.media_ready:
            return True
        if not leg.inbound:
            return False                    # the far end answers; LegAnswered follows
        if not leg.answering:
            leg.answering = True
            self.emit(c.Answer(leg.call_id))
        if leg.media_ready:                 # early media: its audio is already up
            leg.answered = True
            if leg.call_id == self.leg_a:
                self.emit(c.CancelTimer("unanswered"))
            return True
        return False

    def hang_up_leg(self, leg: Leg, code: int) -> None:
        self.hangup_codes[leg.call_id] = code
        leg.hanging_up = True
        self._reject_or_disconnect(leg, code)

    def _reject_or_disconnect(self, leg: Leg, code: int) -> None:
        if leg.answered or leg.answering or not leg.inbound:
            self.emit(c.Disconnect(leg.call_id, code))
        else:
            self.hangup_codes.setdefault(leg.call_id, code)
            self.emit(c.Reject(leg.call_id, code or self.limits.reject_code))

    # -- internals ---------------------------------------------------------
    def _digit_effects(self, effects: Sequence[c.Command | Report]) -> None:
        for effect in effects:
            if isinstance(effect, Report):
                if self._legs[effect.call_id].connected:
                    self._send(E.DIGITS_RECEIVED, action_data=effect.action_data, invoked_leg=effect.call_id)
            else:
                self.emit(effect)

    def _leg(self, call_id: str) -> Leg:
        return self._legs[call_id]

    def _any_connected(self) -> bool:
        """Whether a leg the handler knows of (a listed one) is still up."""
        return any(leg.connected and leg.listed for leg in self._legs.values())

    def _details(self) -> dict[str, Any]:
        return E.call_details(self.info, self.attributes)

    def _send(self, event_type: str, *, action_data: dict[str, Any] | None = None,
              error: tuple[str, str] | None = None, invoked_leg: str | None = None,
              top_level: dict[str, Any] | None = None) -> None:
        if self.gave_up is not None:
            return                                  # the handler is not invoked any more
        if invoked_leg is None and action_data is not None:
            cid = action_data.get("Parameters", {}).get("CallId")
            invoked_leg = cid if isinstance(cid, str) and cid in self._legs else None
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
            self._give_up("invocation_limit_reached", limit=self.limits.max_invocations)
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
        self.emit(c.Invoke(event, self.app_id))

    def _give_up(self, reason: str, **fields: Any) -> None:
        """Stop invoking the handler for this call (one log line) and end the call:
        480 if never answered, else BYE (README readings 9, 19)."""
        if self.gave_up is not None:
            return
        self.gave_up = reason
        self.log("error", reason, invocations=self.invocations, **fields)
        self.queue.clear()
        self.pending_actions.clear()
        if self._any_connected():
            self._end_call(self.limits.reject_code)
        else:
            self._finish(reason.replace("_", " "))

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
        self.log("warning", "handler_failover", sip_media_application_id=target.app_id,
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
        for leg in self._legs.values():
            if leg.connected:
                self.hangup_codes.setdefault(leg.call_id, code)
                self._reject_or_disconnect(leg, code)

    def _finish(self, reason: str) -> None:
        if self.finished:
            return
        self.finished = True
        self.emit(c.CancelTimer("unanswered"))
        self._digit_effects(self.listeners.drop_all())
        self.emit(c.Finished(reason))

    def _take_actions(self, pending: _Pending, response: HandlerResponse) -> None:
        actions = response.actions
        resumed = self.paused
        self.paused = False
        if actions is None:
            return                                  # keep what is running / left
        if not actions:
            if pending.event_type == E.NEW_INBOUND_CALL:
                self.log("warning", "empty_action_list", error="The action list is empty.")
            if not resumed:
                self.pending_actions.clear()
            return
        current = self.current
        if (pending.event_type == E.CALL_UPDATE_REQUESTED and current is not None
                and current.interruptible):
            # 01 §6.7: the running PlayAudio / RecordAudio / Pause stops, the handler is told
            # (its reply is ignored), then the new actions run.
            self._abandon_current("interrupted")
            self.log("info", "action_interrupted", action=current.type_name)
            self._send(E.ACTION_INTERRUPTED, action_data=E.action_data(
                current.type_name, current.echo_parameters()))
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
        if self._guarded(action, action.start):
            self._proceed(action)

    def _proceed(self, action: Action) -> None:
        """Run *action* once its preparations have answered and its precondition holds
        (for ANSWERED_MEDIA: answer its leg, then wait for the leg's media)."""
        ctx = action.ctx
        if action is not self.current or ctx.done or ctx.running or ctx.outstanding:
            return
        if action.needs is Needs.ANSWERED_MEDIA:
            leg = action.leg
            if leg is None or not leg.connected:
                self.action_failed(action, INVALID_ACTION_PARAMETER, MSG_BAD_LEG)
                return
            if not self.answer_leg(leg):
                return                      # MediaReady for this leg proceeds
        ctx.running = True
        self._guarded(action, action.run)

    def _to_action(self, action: Action, inp: I.Input) -> None:
        self._guarded(action, lambda: action.on_input(inp))

    def _guarded(self, action: Action, step: Callable[[], None]) -> bool:
        """Run one step of *action*; an error fails the action (never the call)."""
        try:
            step()
        except ActionError as exc:
            self.action_failed(action, exc.error_type, exc.message)
        except ParamError as exc:
            self.action_failed(action, INVALID_ACTION_PARAMETER, f"{action.type_name} parameter is invalid: {exc}")
        except Exception as exc:  # noqa: BLE001 - one bad action must not take the call down
            self.log("error", "action_crashed", action=action.type_name, error=repr(exc))
            self.action_failed(action, SYSTEM_EXCEPTION, MSG_SYSTEM)
        else:
            return True
        return False

    def action_succeeded(self, action: Action, extra: dict[str, Any]) -> None:
        if action is not self.current:
            return
        self.current = None
        self.emit(c.ActionEnded(action.type_name, "successful"))
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

    def action_failed(self, action: Action, error_type: str, message: str) -> None:
        if action is not self.current:
            return
        action.stop()
        self.current = None
        self.pending_actions.clear()
        self.emit(c.ActionEnded(action.type_name, "failed", error_type))
        self.log("warning", "action_failed", action=action.type_name, error_type=error_type, error=message)
        if self._any_connected():
            self._send(E.ACTION_FAILED, action_data=E.action_data(
                action.type_name, action.echo_parameters(), **action.failure_data(),
                ErrorType=error_type, ErrorMessage=message))

    def action_ended_list(self, action: Action) -> None:
        """The action ended the list without an event of its own (Hangup)."""
        if action is not self.current:
            return
        self.current = None
        self.emit(c.ActionEnded(action.type_name, "successful"))
        self.pending_actions.clear()

    def _abandon_current(self, result: str = "abandoned") -> None:
        action, self.current = self.current, None
        if action is not None:
            if not action.ctx.done:
                self.emit(c.ActionEnded(action.type_name, result))
            action.ctx.done = True
            action.stop()


class _Unsupported(Action):
    """A known Chime action this server does not implement: ACTION_FAILED naming it."""

    def start(self) -> None:
        raise ActionError(SYSTEM_EXCEPTION, f"Action {self.type_name} is not supported by this chimevoice server.")
