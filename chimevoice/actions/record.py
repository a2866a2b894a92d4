"""RecordAudio (spec 03a §3): record what one leg says into a bucket.

The recording starts once the leg's media is up (an unanswered inbound call is
answered first) and ends at DurationInSeconds, after SilenceDurationInSeconds of
silence (SilenceThreshold), when the caller presses one of RecordingTerminators,
or when the leg hangs up (the file is kept; only HANGUP is sent). The object key
is ``Prefix`` + a generated ``<uuid>.wav`` (no separator inserted, 03a §3.8);
the handler reads it from ``ActionData.RecordingDestination.Key``.
"""
from __future__ import annotations

import math
import re
import uuid
from typing import Any

from chimevoice.engine import inputs as I
from chimevoice.engine.action import Action, Needs
from chimevoice.engine.errors import INVALID_ACTION_PARAMETER, ActionError

TERMINATOR_KEYS = frozenset("1234567890*#")
MAX_PREFIX_BYTES = 979
# S3 "safe characters" plus '/' (03a §3.3 recommendation).
_SAFE_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]*$")
MSG_DESTINATION = "RecordingDestination parameter value is invalid."
MSG_DURATION = "DurationInSeconds parameter value is invalid."
MSG_SILENCE = "SilenceDurationInSeconds parameter value is invalid."
MSG_THRESHOLD = "SilenceThreshold parameter value is invalid."
MSG_TERMINATORS = "RecordingTerminators parameter value is invalid."
MSG_UPLOAD = "Error occurred while uploading recording to S3 bucket."
DEFAULT_THRESHOLD = 200
# A recording with neither a duration nor a silence limit still ends (03a §6 C5).
SERVER_MAX_SECONDS = 3600.0


def _number(params: dict[str, Any], name: str, message: str) -> float | None:
    if name not in params:
        return None
    value = params[name]
    if isinstance(value, bool) or value is None:
        raise ActionError(INVALID_ACTION_PARAMETER, message)
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise ActionError(INVALID_ACTION_PARAMETER, message) from None
    if not math.isfinite(number):
        raise ActionError(INVALID_ACTION_PARAMETER, message)
    return number


def parse_destination(value: Any) -> tuple[str, str]:
    """(bucket, prefix) of RecordingDestination."""
    if not isinstance(value, dict) or value.get("Type") != "S3":
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_DESTINATION)
    bucket = value.get("BucketName")
    if not isinstance(bucket, str) or not bucket.strip():
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_DESTINATION)
    prefix = value.get("Prefix")
    if prefix is None:
        prefix = ""
    if (not isinstance(prefix, str) or len(prefix.encode()) > MAX_PREFIX_BYTES
            or not _SAFE_PREFIX.match(prefix) or ".." in prefix.split("/")):
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_DESTINATION)
    return bucket.strip(), prefix.lstrip("/")


def parse_record_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Validated options in the order of 03a §4; raises ActionError."""
    bucket, prefix = parse_destination(params.get("RecordingDestination"))
    duration = _number(params, "DurationInSeconds", MSG_DURATION)
    if duration is not None and duration <= 0:
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_DURATION)
    silence = _number(params, "SilenceDurationInSeconds", MSG_SILENCE)
    if silence is not None and not 1 <= silence <= 1000:
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_SILENCE)
    threshold = _number(params, "SilenceThreshold", MSG_THRESHOLD)
    if threshold is not None and not 1 <= threshold <= 1000:
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_THRESHOLD)
    terms = params.get("RecordingTerminators")
    if terms is None:
        terms = []
    if isinstance(terms, str):
        terms = [terms]
    if not isinstance(terms, list) or any(not isinstance(t, str) or t not in TERMINATOR_KEYS for t in terms):
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_TERMINATORS)
    return {"bucket": bucket, "prefix": prefix, "duration": duration, "silence": silence,
            "threshold": int(threshold) if threshold is not None else DEFAULT_THRESHOLD,
            "terminators": frozenset(terms)}


class RecordAudio(Action):
    type_name = "RecordAudio"
    interruptible = True
    reports_immediately = True
    needs = Needs.ANSWERED_MEDIA

    record_id: str | None = None
    terminator: str | None = None

    def start(self) -> None:
        self.opts = parse_record_parameters(self.params)
        self.leg = self.ctx.resolve_leg()
        self.key = f"{self.opts['prefix']}{uuid.uuid4()}.wav"

    def run(self) -> None:
        assert self.leg is not None
        o = self.opts
        self.record_id = self.ctx.start_recording(
            self.leg, o["bucket"], self.key, track="INCOMING",
            max_s=o["duration"] if o["duration"] is not None else SERVER_MAX_SECONDS,
            silence_s=o["silence"], silence_threshold=o["threshold"])

    def consumes_dtmf(self, call_id: str) -> bool:
        return self.owns_leg(call_id) and bool(self.opts["terminators"])

    def on_input(self, inp: I.Input) -> None:
        match inp:
            case I.Dtmf(call_id=cid, digit=digit) if (
                    self.owns_leg(cid) and digit in self.opts["terminators"]
                    and self.record_id is not None and self.terminator is None):
                self.terminator = digit
                self.ctx.stop_recording(cid, self.record_id, "terminator")
            case I.RecordingStopped(record_id=rid, error=error) if rid is not None and rid == self.record_id:
                self._stopped(error)
            case _:
                super().on_input(inp)

    def _stopped(self, error: str | None) -> None:
        self.record_id = None
        if error is not None:
            self.ctx.fail(INVALID_ACTION_PARAMETER, MSG_UPLOAD)
            return
        extra: dict[str, Any] = {"RecordingDestination": {
            "Type": "S3", "BucketName": self.opts["bucket"], "Key": self.key}}
        if self.terminator is not None:
            extra["RecordingTerminatorUsed"] = self.terminator
        self.ctx.succeed(**extra)

    def stop(self) -> None:
        # Hang-up or interruption: the partial recording is finished and kept (03a §3.9).
        if self.record_id is not None and self.leg is not None:
            self.ctx.stop_recording(self.leg.call_id, self.record_id, "abandoned")
            self.record_id = None
