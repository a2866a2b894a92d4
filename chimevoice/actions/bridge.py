"""CallAndBridge (spec 02b §1): dial LEG-B and bridge it to LEG-A once it answers.

Validation runs before any INVITE, in the order 02b §1.4 recommends (E4 → E5 → E7 →
E6 → E9 → E8 → E10 → E3, then E2 when the ringback file is read). Then:

* LEG-B is dialled (``Dial``); ``CallTimeoutSeconds`` runs from its INVITE;
* while it rings LEG-A hears the ``RingbackTone`` file, looped (an unanswered LEG-A gets
  ``183 Session Progress`` with SDP for it); without one, LEG-B's early media is relayed
  to LEG-A the same way, and an unanswered LEG-A that gets none keeps its ``180``;
* LEG-B answers: LEG-A is answered if it was not (answer propagates from B to A), audio
  is linked both ways, LEG-B joins ``Participants`` and ``ACTION_SUCCESSFUL`` is sent at
  once, even with actions left in the list (README reading 6);
* no answer in time, or a final error response: LEG-B is cancelled and left out of
  ``Participants``; ``ACTION_FAILED`` ``CallNotAnswered``.

Endpoints: ``PSTN`` (an E.164 number through the PSTN gateway, or a number of this server,
README reading 14), ``AWS`` (a Voice Connector ARN of this server; ``Uri`` is the user part
of the Request-URI), and, as a chimevoice extension, ``AWS`` with the ARN of a SIP media
application of this server (``arn:aws:chime:<region>:<account>:sma/<id>``; docs/bridging.md).
"""
from __future__ import annotations

import re
from typing import Any

from chimevoice.engine import inputs as I
from chimevoice.engine.action import Action
from chimevoice.engine.errors import INVALID_ACTION_PARAMETER, INVALID_AUDIO_SOURCE, ActionError
from chimevoice.engine.legs import Leg
from chimevoice.engine.sipheaders import invalid_headers_message, invalid_sip_headers
from chimevoice.engine.values import ParamError, as_int, is_blank

CALL_NOT_ANSWERED = "CallNotAnswered"
MSG_NOT_ANSWERED = "Call not answered"
MSG_ENDPOINTS = "Invalid number of endpoints provided."                      # E4
MSG_ENDPOINT = "Endpoint parameter is invalid."                              # E5
MSG_CALLER_MISSING = "Caller ID not defined."                                # E7
MSG_CALLER_INVALID = "Invalid caller ID."                                    # E6
MSG_CALLER_NOT_OWNED = ("Invalid caller ID number provided. The number must be owned by this "
                        "AWS account or be the From number of LEG-A.")       # E9
MSG_TIMEOUT = "MaxCallTimeout parameter is invalid. Timeout must be between 0 and 120 seconds."  # E8
MSG_RINGBACK = "Ringtone parameter value is invalid."                        # E3
MSG_RINGBACK_ACCESS = "Cannot access the S3 bucket or audio file."           # E2
MSG_BRIDGED = "CallAndBridge cannot run on a leg that is already bridged."   # chimevoice's choice

DEFAULT_TIMEOUT_S = 30
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
AWS_URI = re.compile(r"^[A-Za-z0-9&=+$/%\-_!~*().]{1,30}$")
_ARN = re.compile(r"^arn:aws:chime:(?P<region>[^:]*):(?P<account>[^:]*):(?P<kind>vc|vcg|sma)/(?P<id>[^/\s]+)$")
RINGBACK_REPEAT = 1000                     # looped until LEG-B answers or fails


def _invalid(message: str) -> ActionError:
    return ActionError(INVALID_ACTION_PARAMETER, message)


class CallAndBridge(Action):
    type_name = "CallAndBridge"
    reports_immediately = True

    def __init__(self, ctx: Any, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        self.state = "idle"          # idle | dialling | answering-a | bridged | done
        self.b: Leg | None = None
        self.timer: str | None = None
        self.ringback: tuple[str, str] | None = None
        self.ringback_request: str | None = None
        self.ringback_path: tuple[str, float] | None = None
        self.ringback_play: str | None = None
        self.relaying = False        # LEG-B's early media is linked to LEG-A
        self.ringing = False         # LEG-B sent 180/183 (media before that is the answer's)
        self.early_media_sent = False

    # -- parameters -----------------------------------------------------------
    def echo_parameters(self) -> dict[str, Any]:
        out = dict(self.params)
        out.setdefault("CallTimeoutSeconds", DEFAULT_TIMEOUT_S)
        leg = self.leg
        if leg is None and is_blank(out.get("CallId")):
            # Validation failed before start() chose the leg (E4–E7): the CallId is still
            # injected (02b §1.2, §1.6.3), the leg it would have run on (README reading 4).
            try:
                leg = self.ctx.resolve_leg({})
            except ActionError:
                leg = None
        if leg is not None:
            out["CallId"] = leg.call_id                   # 02b §1.2: the leg it ran on
        return out

    def start(self) -> None:
        p = self.params
        endpoints = p.get("Endpoints")
        if not isinstance(endpoints, list) or len(endpoints) != 1 or not isinstance(endpoints[0], dict):
            raise _invalid(MSG_ENDPOINTS)
        self.endpoint_type, self.uri, self.arn = self._endpoint(endpoints[0])
        caller = p.get("CallerIdNumber")
        if is_blank(caller):
            raise _invalid(MSG_CALLER_MISSING)
        if not isinstance(caller, str) or not E164.match(caller.strip()):
            raise _invalid(MSG_CALLER_INVALID)
        self.caller = caller.strip()
        leg = self.ctx.resolve_leg({"CallId": p.get("CallId")} if not is_blank(p.get("CallId")) else {})
        self.leg = leg
        if (self.endpoint_type == "PSTN" and self.caller not in self.ctx.directory.phone_numbers
                and self.caller != leg.participant.from_):
            raise _invalid(MSG_CALLER_NOT_OWNED)        # README reading 13: PSTN endpoints only
        self.timeout_s = self._timeout(p.get("CallTimeoutSeconds"))
        headers = p.get("SipHeaders")
        if headers is None:
            headers = {}
        if not isinstance(headers, dict):
            raise _invalid(invalid_headers_message([str(headers)]))
        bad = invalid_sip_headers(headers)
        if bad:
            raise _invalid(invalid_headers_message(bad))
        self.sip_headers: dict[str, str] = dict(headers)
        ringback = p.get("RingbackTone")
        if ringback is not None:
            if (not isinstance(ringback, dict) or ringback.get("Type") != "S3"
                    or not isinstance(ringback.get("BucketName"), str) or not ringback["BucketName"].strip()
                    or not isinstance(ringback.get("Key"), str) or not ringback["Key"].strip()):
                raise ActionError(INVALID_AUDIO_SOURCE, MSG_RINGBACK)
            self.ringback = (ringback["BucketName"].strip(), ringback["Key"].strip())
        # A LEG-B that a Hangup is ending does not count (README reading 12: the reply to
        # that Hangup's ACTION_SUCCESSFUL may bridge again before LEG-B's BYE completes).
        if any(lg.connected and lg.listed and not lg.hanging_up and lg is not leg
               for lg in self.ctx.legs.values()):
            raise _invalid(MSG_BRIDGED)
        if self.ringback is not None:
            self.ringback_request = self.ctx.prepare_audio(*self.ringback)   # E2 before dialling

    def _endpoint(self, ep: dict[str, Any]) -> tuple[str, str, str | None]:
        etype, uri, arn = ep.get("BridgeEndpointType"), ep.get("Uri"), ep.get("Arn")
        if not isinstance(uri, str) or not uri.strip():
            raise _invalid(MSG_ENDPOINT)
        uri = uri.strip()
        if etype == "PSTN":
            if arn is not None or not E164.match(uri):
                raise _invalid(MSG_ENDPOINT)
            return "PSTN", uri, None
        if etype == "AWS":
            m = _ARN.match(arn) if isinstance(arn, str) else None
            if m is None or not AWS_URI.match(uri):
                raise _invalid(MSG_ENDPOINT)
            directory = self.ctx.directory
            if m["kind"] == "sma":
                if m["id"] not in directory.sip_media_applications:
                    raise _invalid(MSG_ENDPOINT)
                return "SMA", uri, m["id"]
            if m["id"] not in directory.voice_connectors:
                raise _invalid(MSG_ENDPOINT)
            return "AWS", uri, m["id"]
        raise _invalid(MSG_ENDPOINT)

    @staticmethod
    def _timeout(value: Any) -> int:
        if is_blank(value):
            return DEFAULT_TIMEOUT_S
        try:
            seconds = int(as_int(value))
        except ParamError:
            raise _invalid(MSG_TIMEOUT) from None
        if not 1 <= seconds <= 120:
            raise _invalid(MSG_TIMEOUT)
        return seconds

    # -- the call ---------------------------------------------------------------
    def run(self) -> None:
        a = self._a
        self.b = self.ctx.new_outbound_leg(tag="LEG-B", to=self.uri, from_=self.caller)
        self.ctx.hold_unanswered_timer(True)
        self.ctx.dial(self.b, endpoint_type=self.endpoint_type, uri=self.uri, arn=self.arn,
                      sip_headers=self.sip_headers)
        self.state = "dialling"
        self.timer = self.ctx.timer_name("bridge")
        self.ctx.start_timer(self.timer, float(self.timeout_s))
        self.ctx.log("info", "bridge_dialling", leg_b=self.b.call_id, endpoint_type=self.endpoint_type,
                     uri=self.uri, timeout_s=self.timeout_s)
        if self.ringback_path is not None:
            self._a_media_for_ringing(a)

    @property
    def _a(self) -> Leg:
        assert self.leg is not None
        return self.leg

    def _a_media_for_ringing(self, a: Leg) -> None:
        """LEG-A needs its audio up to hear ringback or early media (183 if unanswered)."""
        if a.media_ready:
            self._ringing_media()
        elif not self.early_media_sent:
            self.early_media_sent = True
            self.ctx.early_media(a)

    def _ringing_media(self) -> None:
        a, b = self._a, self.b
        if self.state != "dialling" or b is None:
            return
        if self.ringback_path is not None:
            if self.ringback_play is None:
                path, duration = self.ringback_path
                self.ringback_play = self.ctx.play(a, path, RINGBACK_REPEAT, duration)
        elif b.media_ready and not self.relaying:
            self.relaying = True
            self.ctx.link_audio(b, a)

    def _maybe_relay(self) -> None:
        """Relay LEG-B's early media: only once it rang (a 200 OK's SDP may arrive just
        before the answer itself) and without a ringback file."""
        b = self.b
        if (b is not None and self.state == "dialling" and self.ringback_path is None and self.ringing
                and b.media_ready and not b.answered):
            self._a_media_for_ringing(self._a)

    def on_input(self, inp: I.Input) -> None:
        b = self.b
        match inp:
            case I.AudioReady(request_id=rid, path=path, duration_s=duration) if rid == self.ringback_request:
                self.ringback_path = (path, duration)
            case I.AudioFailed(request_id=rid, error_type=error_type) if rid == self.ringback_request:
                self.ctx.fail(error_type or INVALID_AUDIO_SOURCE, MSG_RINGBACK_ACCESS)
            case I.MediaReady(call_id=cid) if cid == self._a.call_id:
                if self.state == "answering-a":
                    self._bridge()
                else:
                    self._ringing_media()
            case I.MediaReady(call_id=cid) if b is not None and cid == b.call_id:
                self._maybe_relay()
            case I.LegRinging(call_id=cid) if b is not None and cid == b.call_id:
                self.ringing = True
                self._maybe_relay()
            case I.LegAnswered(call_id=cid) if b is not None and cid == b.call_id and self.state == "dialling":
                self._b_answered()
            case I.LegDisconnected(call_id=cid, status_code=code) if (
                    b is not None and cid == b.call_id and self.state in ("dialling", "answering-a")):
                self._not_answered(f"final response {code}" if code else "leg ended")
            case I.TimerFired(name=name) if name == self.timer and self.state == "dialling":
                self.timer = None
                self._not_answered(f"no answer in {self.timeout_s} s")
            case _:
                super().on_input(inp)

    def _b_answered(self) -> None:
        assert self.b is not None
        self._cancel_timer()
        self._stop_ringing_media()
        if self.ctx.answer(self._a):                  # answer propagates from B to A
            self._bridge()
        else:
            self.state = "answering-a"

    def _bridge(self) -> None:
        a, b = self._a, self.b
        assert b is not None
        self.state = "bridged"
        self.ctx.link_audio(a, b)
        self.ctx.link_audio(b, a)
        self.ctx.list_leg(b)
        self.ctx.log("info", "bridged", leg_a=a.call_id, leg_b=b.call_id)
        self.ctx.succeed()

    def _not_answered(self, why: str) -> None:
        b = self.b
        self.state = "done"
        self._cancel_timer()
        self._stop_ringing_media()
        if b is not None and b.connected:
            self.ctx.hang_up(b, 0)                    # CANCEL
        self.ctx.hold_unanswered_timer(False)
        self.ctx.log("info", "bridge_not_answered", leg_b=b.call_id if b else None, reason=why)
        self.ctx.fail(CALL_NOT_ANSWERED, MSG_NOT_ANSWERED)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.ctx.cancel_timer(self.timer)
            self.timer = None

    def _stop_ringing_media(self) -> None:
        if self.ringback_play is not None:
            self.ctx.stop_play(self._a, self.ringback_play)
            self.ringback_play = None
        if self.relaying and self.b is not None:
            self.relaying = False
            self.ctx.unlink_audio(self.b, self._a)

    def stop(self) -> None:
        """Abandoned (LEG-A hung up while LEG-B rang, or the list was replaced): cancel LEG-B."""
        if self.state in ("dialling", "answering-a"):
            self.state = "done"
            self._cancel_timer()
            self._stop_ringing_media()
            if self.b is not None and self.b.connected:
                self.ctx.hang_up(self.b, 0)


__all__ = ["CallAndBridge"]
