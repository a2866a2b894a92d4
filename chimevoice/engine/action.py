"""The action contract: what every action is made of, and what it may ask of its call.

An action is a small object created from the handler's ``{"Type", "Parameters"}``
JSON (the classes live in :mod:`chimevoice.actions`, a plug-in package that imports
this module; the engine never imports it). Its life, driven by the transaction:

1. :meth:`Action.start` checks the parameters (raising
   :class:`~chimevoice.engine.errors.ActionError` with the spec's error), resolves
   :attr:`Action.leg` and asks for what it needs prepared (``ctx.prepare_audio``,
   ``ctx.prepare_speech``, ``ctx.bot_request``);
2. when every preparation has answered, the transaction makes the action's
   precondition (:class:`Needs`) true: for ``ANSWERED_MEDIA`` it answers the leg and
   waits for its media; this is written once, here, for every action;
3. :meth:`Action.run` starts the work (play, timer, recording...);
4. inputs the action waits for arrive through :meth:`Action.on_input` (one method,
   one ``match``); the action ends with ``ctx.succeed()``, ``ctx.fail()`` or
   ``ctx.end_list()``; :meth:`Action.stop` releases its media when it is abandoned.

The context talks to the transaction through :class:`TransactionPort`, a small
public interface the transaction implements (aioquic keeps its congestion-control
plug-in contract in the core the same way: ``quic/congestion/base.py``).
"""
from __future__ import annotations

import enum
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from . import commands as c
from . import inputs as I
from .digits import Listener
from .directory import Directory
from .legs import Leg


class Needs(enum.Enum):
    """An action's precondition (jambonz ``lib/tasks/task.js`` preconditions)."""

    NOTHING = "nothing"
    """Runs as soon as its preparations are done (Hangup, ReceiveDigits, SendDigits...)."""

    ANSWERED_MEDIA = "answered-media"
    """Runs once its leg is answered and its audio is up: the transaction answers an
    unanswered leg (after the action's preparations, so a missing prompt fails
    without answering) and waits for ``MediaReady``."""


class TransactionPort(Protocol):
    """What an action's context may do to its transaction."""

    @property
    def transaction_id(self) -> str: ...

    @property
    def aws_region(self) -> str: ...

    @property
    def legs(self) -> Mapping[str, Leg]: ...

    @property
    def call_recordings(self) -> dict[str, Any]: ...

    @property
    def directory(self) -> Directory: ...

    @property
    def leg_a(self) -> str: ...

    def emit(self, cmd: c.Command) -> None: ...
    def new_id(self, prefix: str) -> str: ...
    def resolve_leg(self, params: Mapping[str, Any]) -> Leg: ...
    def answer_leg(self, leg: Leg) -> bool: ...
    def hang_up_leg(self, leg: Leg, code: int) -> None: ...
    def arm_digit_listener(self, leg: Leg, listener: Listener, type_name: str,
                           echo: dict[str, Any]) -> None: ...
    def following_actions(self) -> Sequence[str]: ...
    def new_outbound_leg(self, *, tag: str, to: str, from_: str,
                         sip_headers: dict[str, str] | None = None) -> Leg: ...
    def list_leg(self, leg: Leg) -> None: ...
    def hold_unanswered_timer(self, held: bool) -> None: ...
    def log(self, level: str, event: str, **fields: Any) -> None: ...
    def action_succeeded(self, action: Action, extra: dict[str, Any]) -> None: ...
    def action_failed(self, action: Action, error_type: str, message: str) -> None: ...
    def action_ended_list(self, action: Action) -> None: ...


class ActionContext:
    """What an action may do. Calls after the action finished are ignored."""

    def __init__(self, port: TransactionPort) -> None:
        self.port = port
        self._action: weakref.ref[Action] | None = None
        self.done = False
        #: Preparation requests (audio, speech, bot steps) not answered yet; the action
        #: runs when this is empty. Requests made once it runs are not tracked here.
        self.outstanding: set[str] = set()
        #: Every preparation request this action made (stale answers are told apart).
        self.requests: set[str] = set()
        self.running = False

    @property
    def action(self) -> Action | None:
        """The action this context belongs to, held weakly: an action holds its context, so a
        strong reference back would make every action a reference cycle, left for the cyclic
        collector's full collections (about 7,500 objects every 8 s at 1000 calls) instead of
        freed when its call lets go of it. The transaction holds the running action."""
        return self._action() if self._action is not None else None

    @action.setter
    def action(self, action: Action | None) -> None:
        self._action = weakref.ref(action) if action is not None else None

    # -- legs
    def resolve_leg(self, params: Mapping[str, Any] | None = None) -> Leg:
        assert self.action is not None
        return self.port.resolve_leg(self.action.params if params is None else params)

    def answer(self, leg: Leg) -> bool:
        """Answer *leg* if needed; True when its media is already up."""
        return self.port.answer_leg(leg)

    def hang_up(self, leg: Leg, code: int) -> None:
        self.port.hang_up_leg(leg, code)

    @property
    def legs(self) -> Mapping[str, Leg]:
        return self.port.legs

    @property
    def leg_a(self) -> Leg:
        """The transaction's first leg."""
        return self.port.legs[self.port.leg_a]

    def dial(self, leg: Leg, *, endpoint_type: str, uri: str, arn: str | None = None,
             sip_headers: Mapping[str, str] | None = None) -> None:
        """Place the outbound call of *leg* (made by :meth:`new_outbound_leg`)."""
        self.port.emit(c.Dial(leg.call_id, endpoint_type, uri, leg.participant.from_, arn,
                              tuple((sip_headers or {}).items())))

    def new_outbound_leg(self, *, tag: str, to: str, from_: str) -> Leg:
        return self.port.new_outbound_leg(tag=tag, to=to, from_=from_)

    def list_leg(self, leg: Leg) -> None:
        self.port.list_leg(leg)

    def hold_unanswered_timer(self, held: bool) -> None:
        self.port.hold_unanswered_timer(held)

    def early_media(self, leg: Leg) -> None:
        """183 with SDP on an unanswered inbound leg (its MediaReady follows)."""
        self.port.emit(c.EarlyMedia(leg.call_id))

    def link_audio(self, source: Leg, sink: Leg) -> None:
        """*sink* hears *source* (one direction)."""
        self.port.emit(c.LinkAudio(source.call_id, sink.call_id))

    def unlink_audio(self, source: Leg, sink: Leg) -> None:
        self.port.emit(c.UnlinkAudio(source.call_id, sink.call_id))

    @property
    def directory(self) -> Directory:
        return self.port.directory

    # -- preparations
    def _request(self, prefix: str) -> str:
        rid = self.port.new_id(prefix)
        self.requests.add(rid)
        if not self.running:
            self.outstanding.add(rid)
        return rid

    def prepare_audio(self, bucket: str, key: str) -> str:
        rid = self._request("audio")
        self.port.emit(c.PrepareAudio(rid, bucket, key))
        return rid

    def prepare_speech(self, request: Any) -> str:
        rid = self._request("speech")
        self.port.emit(c.PrepareSpeech(rid, request))
        return rid

    def bot_request(self, conversation_id: str, call_id: str, op: str, value: Any = None) -> str:
        """Ask the driver for one bot step (see commands.BotRequest); returns its request id."""
        rid = self._request("bot")
        self.port.emit(c.BotRequest(rid, conversation_id, call_id, op, value))
        return rid

    def bot_release(self, conversation_id: str) -> None:
        self.port.emit(c.BotRelease(conversation_id))

    # -- media
    def play(self, leg: Leg, path: str, repeat: int = 1, duration_s: float = 0.0) -> str:
        pid = self.port.new_id("play")
        self.port.emit(c.Play(leg.call_id, pid, path, repeat, duration_s))
        return pid

    def stop_play(self, leg: Leg, play_id: str) -> None:
        self.port.emit(c.StopPlay(leg.call_id, play_id))

    def send_digits(self, leg: Leg, digits: str, tone_ms: int, gap_ms: int) -> str:
        sid = self.port.new_id("digits")
        self.port.emit(c.SendDigits(leg.call_id, sid, digits, tone_ms, gap_ms))
        return sid

    def stop_digits(self, leg: Leg, send_id: str) -> None:
        self.port.emit(c.StopDigits(leg.call_id, send_id))

    def start_recording(self, leg: Leg, bucket: str, key: str, **options: Any) -> str:
        rid = self.port.new_id("rec")
        self.port.emit(c.StartRecording(leg.call_id, rid, bucket, key, **options))
        return rid

    def stop_recording(self, call_id: str, record_id: str, reason: str = "stopped") -> None:
        self.port.emit(c.StopRecording(call_id, record_id, reason))

    def pause_recording(self, call_id: str, record_id: str, paused: bool) -> None:
        self.port.emit(c.PauseRecording(call_id, record_id, paused))

    def set_voice_focus(self, leg: Leg, enabled: bool) -> None:
        self.port.emit(c.SetVoiceFocus(leg.call_id, enabled))

    def arm_digit_listener(self, leg: Leg, listener: Listener) -> None:
        """Install a ReceiveDigits listener on *leg* (replacing the one there)."""
        assert self.action is not None
        self.port.arm_digit_listener(leg, listener, self.action.type_name, self.action.echo_parameters())

    # -- timers
    def timer_name(self, suffix: str) -> str:
        return self.port.new_id(f"action-{suffix}")

    def start_timer(self, name: str, seconds: float) -> None:
        self.port.emit(c.StartTimer(name, seconds))

    def cancel_timer(self, name: str) -> None:
        self.port.emit(c.CancelTimer(name))

    # -- the transaction
    @property
    def transaction_id(self) -> str:
        return self.port.transaction_id

    @property
    def aws_region(self) -> str:
        return self.port.aws_region

    @property
    def call_recordings(self) -> dict[str, Any]:
        return self.port.call_recordings

    def following_actions(self) -> Sequence[str]:
        """The Types of the actions left in the list after this one."""
        return self.port.following_actions()

    def new_id(self, prefix: str) -> str:
        return self.port.new_id(prefix)

    def log(self, level: str, event: str, **fields: Any) -> None:
        self.port.log(level, event, **fields)

    # -- the end
    def succeed(self, **extra: Any) -> None:
        if not self.done and self.action is not None:
            self.done = True
            self.port.action_succeeded(self.action, extra)

    def fail(self, error_type: str, message: str) -> None:
        if not self.done and self.action is not None:
            self.done = True
            self.port.action_failed(self.action, error_type, message)

    def end_list(self) -> None:
        if not self.done and self.action is not None:
            self.done = True
            self.port.action_ended_list(self.action)


class Action:
    """The base of every action (see the module docstring for its life)."""

    type_name: ClassVar[str] = ""
    interruptible: ClassVar[bool] = False
    #: Sends ACTION_SUCCESSFUL as soon as it succeeds, even mid-list (README reading 6).
    reports_immediately: ClassVar[bool] = False
    #: What must hold before :meth:`run`.
    needs: ClassVar[Needs] = Needs.NOTHING

    def __init__(self, ctx: ActionContext, params: dict[str, Any]) -> None:
        self.ctx = ctx
        self.params = params
        #: The leg the action addresses, set by :meth:`start` (required for ANSWERED_MEDIA).
        self.leg: Leg | None = None

    # The parameters echoed in ActionData (as received, plus defaults the service adds).
    def echo_parameters(self) -> dict[str, Any]:
        return dict(self.params)

    def success_data(self, **extra: Any) -> dict[str, Any]:
        """ActionData of this action's ACTION_SUCCESSFUL: Type, Parameters, then outputs."""
        out: dict[str, Any] = {"Type": self.type_name, "Parameters": self.echo_parameters()}
        out.update(extra)
        return out

    def failure_data(self) -> dict[str, Any]:
        """Extra ActionData keys of this action's ACTION_FAILED (StartBotConversation: CallId)."""
        return {}

    def start(self) -> None:
        """Check the parameters, set :attr:`leg`, ask for preparations. Default: nothing."""

    def run(self) -> None:
        """The preparations are done and the precondition holds: do the work."""

    def on_input(self, inp: I.Input) -> None:
        """An input while the action runs (or prepares). Default: a failed preparation
        fails the action with its error; everything else is ignored."""
        if isinstance(inp, I.AudioFailed) and inp.request_id in self.ctx.requests:
            self.ctx.fail(inp.error_type, inp.message)

    def consumes_dtmf(self, call_id: str) -> bool:
        """Whether a digit on *call_id* goes to this action rather than the leg's
        ReceiveDigits listener (spec 03a §2.7 choice 4). Default: no."""
        return False

    def stop(self) -> None:
        """The action is abandoned (its leg hung up or it was interrupted): release media."""

    def owns_leg(self, call_id: str) -> bool:
        return self.leg is not None and self.leg.call_id == call_id
