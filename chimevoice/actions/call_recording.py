"""Call recording (spec 02a §2-§7): StartCallRecording, StopCallRecording,
PauseCallRecording, ResumeCallRecording.

Recording runs in the background per leg; StartCallRecording succeeds as soon as
capture has begun, with ``CallRecordingDestination`` at the top level of the event
(02a §3.7). A leg is recorded once: start after a start or a stop fails. Pause
writes a marker tone then silence; resume writes a marker tone then live audio
(the tones are only in the file, docs/recording.md). The recording stops by itself
when the leg ends.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from chimevoice.engine import inputs as I
from chimevoice.engine.action import Action, Needs
from chimevoice.engine.errors import INVALID_ACTION_PARAMETER, MISSING_REQUIRED_ACTION_PARAMETER, ActionError

TRACKS = ("BOTH", "INCOMING", "OUTGOING")
DEFAULT_PREFIX = "Amazon-Chime-SMA-Call-Recordings"
MSG_CALL_ID = "CallId parameter for action is invalid."
MSG_TRACK = "Invalid recording track. Choose INCOMING, OUTGOING or BOTH."
MSG_DESTINATION = "Destination parameter value is invalid."
MSG_MISSING = "Missing required action parameter."


@dataclass(slots=True)
class CallRecording:
    record_id: str
    bucket: str
    key: str
    track: str
    state: str = "RECORDING"        # RECORDING | PAUSED | STOPPED


def parse_location(destination: Any) -> tuple[str, str]:
    """(bucket, prefix) from Destination {Type: S3, Location: bucket[/prefix]}."""
    if not isinstance(destination, dict) or destination.get("Type") not in ("S3", "Amazon S3"):
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_DESTINATION)
    location = destination.get("Location")
    if not isinstance(location, str) or not location.strip().strip("/"):
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_DESTINATION)
    bucket, _, prefix = location.strip().strip("/").partition("/")
    prefix = prefix.strip("/") or DEFAULT_PREFIX
    if any(part in ("", ".", "..") for part in prefix.split("/")):
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_DESTINATION)
    return bucket, prefix


def recording_key(prefix: str, start_ms: int, transaction_id: str, call_id: str) -> str:
    """02a §3.4: <prefix>/YYYY/MM/DD/YYYY-MM-DD-HH-MM-SS-mmm_<TransactionId>_<CallId>.wav (UTC)."""
    t = dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.timezone.utc)
    return (f"{prefix}/{t:%Y}/{t:%m}/{t:%d}/"
            f"{t:%Y-%m-%d-%H-%M-%S}-{t.microsecond // 1000:03d}_{transaction_id}_{call_id}.wav")


class _RecordingAction(Action):
    """Addressed by CallId only (no ParticipantTag); reading 4: none = the invoked leg."""

    def _leg(self):
        params = {k: v for k, v in self.params.items() if k != "ParticipantTag"}
        try:
            return self.ctx.resolve_leg(params)
        except ActionError:
            raise ActionError(INVALID_ACTION_PARAMETER, MSG_CALL_ID) from None

    def _recording(self, leg, *states: str) -> CallRecording:
        rec = self.ctx.call_recordings.get(leg.call_id)
        if rec is None or rec.state not in states:
            raise ActionError(INVALID_ACTION_PARAMETER, MSG_CALL_ID)
        return rec


class StartCallRecording(_RecordingAction):
    type_name = "StartCallRecording"
    needs = Needs.ANSWERED_MEDIA

    def start(self) -> None:
        leg = self._leg()
        track = self.params.get("Track")
        if track is None:
            raise ActionError(MISSING_REQUIRED_ACTION_PARAMETER, MSG_MISSING)
        if not isinstance(track, str) or track.upper() not in TRACKS:
            raise ActionError(INVALID_ACTION_PARAMETER, MSG_TRACK)
        track = track.upper()
        bucket, prefix = parse_location(self.params.get("Destination"))
        if leg.call_id in self.ctx.call_recordings:      # once per leg (02a §2.2)
            raise ActionError(INVALID_ACTION_PARAMETER, MSG_CALL_ID)
        key = recording_key(prefix, leg.participant.start_ms, self.ctx.transaction_id, leg.call_id)
        self.leg = leg
        self.rec = CallRecording("", bucket, key, track)

    def run(self) -> None:
        assert self.leg is not None
        rec = self.rec
        rec.record_id = self.ctx.start_recording(
            self.leg, rec.bucket, rec.key, track=rec.track, call_recording=True,
            metadata=(("transaction-id", self.ctx.transaction_id), ("call-id", self.leg.call_id),
                      ("recording-audio-file-format", "audio/wav")))
        self.ctx.call_recordings[self.leg.call_id] = rec

    def on_input(self, inp: I.Input) -> None:
        rec = self.rec
        if isinstance(inp, I.RecordingStarted) and rec.record_id and inp.record_id == rec.record_id:
            self.ctx.succeed(_top_level={"CallRecordingDestination": {
                "Type": "S3", "Location": f"{rec.bucket}/{rec.key}"}})
        elif (isinstance(inp, I.RecordingStopped) and rec.record_id and inp.record_id == rec.record_id
              and inp.error is not None and not self.ctx.done):
            # The bucket could not be written: the start fails (02a §3.8 NoAccessToDestination).
            self.ctx.fail("NoAccessToDestination", "Error while accessing destination")

    def failure_data(self) -> dict[str, Any]:
        return {}


class StopCallRecording(_RecordingAction):
    type_name = "StopCallRecording"

    def start(self) -> None:
        leg = self._leg()
        rec = self._recording(leg, "RECORDING", "PAUSED")
        rec.state = "STOPPED"
        self.ctx.stop_recording(leg.call_id, rec.record_id, "stopped")
        self.ctx.succeed()


class PauseCallRecording(_RecordingAction):
    type_name = "PauseCallRecording"

    def start(self) -> None:
        leg = self._leg()
        rec = self._recording(leg, "RECORDING", "PAUSED")
        if rec.state == "RECORDING":
            rec.state = "PAUSED"
            self.ctx.pause_recording(leg.call_id, rec.record_id, True)
        self.ctx.succeed()


class ResumeCallRecording(_RecordingAction):
    type_name = "ResumeCallRecording"

    def start(self) -> None:
        leg = self._leg()
        rec = self._recording(leg, "RECORDING", "PAUSED")
        if rec.state == "PAUSED":
            rec.state = "RECORDING"
            self.ctx.pause_recording(leg.call_id, rec.record_id, False)
        self.ctx.succeed()
