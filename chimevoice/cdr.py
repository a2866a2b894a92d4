"""Call detail records: one JSON object per call leg (spec 04 Appendix A.1; field reference in docs/cdr.md).

``build_record(...)`` is a pure function producing the record; ``CdrWriter.write(record)``
stores it atomically at
``<directory>/Amazon-Chime-SMADRs/<YYYY>/<MM>/<DD>/<TransactionId>_<CallId>.json``
(date = UTC date of the leg's start time).

Typing: the twenty fields of the guide are JSON strings, as the guide shows every value
quoted (spec 04 §defects item 36: "all values as JSON strings, as shown"); the chimevoice
extension fields carry native JSON types (integers, ``null``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import datetime as _dt
import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from chimevoice.media.storage import atomic_write_bytes, fsync_directory
from chimevoice.text import escape_strings

__all__ = [
    "CDR_FOLDER",
    "SCHEMA_VERSION",
    "SERVICE_CODE",
    "STATUSES",
    "DIRECTIONS",
    "HANGUP_SOURCES",
    "TRIGGER_TYPES",
    "SPEC_FIELDS",
    "EXTENSION_FIELDS",
    "build_record",
    "billable_seconds",
    "usage_type_for",
    "record_relative_path",
    "CdrWriter",
]

CDR_FOLDER = "Amazon-Chime-SMADRs"
SCHEMA_VERSION = "2.0"
SERVICE_CODE = "AmazonChimeVoiceConnector"
STATUSES = ("Completed", "Failed")
DIRECTIONS = ("Inbound", "Outbound")
HANGUP_SOURCES = ("caller", "application", "system")
# Values of CallLegTriggerType: how the leg came to the SMA. The guide lists no values; these
# are the SIP rule trigger types plus the ways an SMA creates legs itself.
TRIGGER_TYPES = (
    "ToPhoneNumber",
    "RequestUriHostname",
    "CreateSipMediaApplicationCall",
    "CallAndBridge",
    "JoinChimeMeeting",
)

# Field order in the written JSON.
SPEC_FIELDS = (
    "AwsAccountId",
    "TransactionId",
    "CallId",
    "VoiceConnectorId",
    "Status",
    "BillableDurationSeconds",
    "SchemaVersion",
    "SourcePhoneNumber",
    "SourcePhoneNumberName",
    "DestinationPhoneNumber",
    "DestinationPhoneNumberName",
    "UsageType",
    "ServiceCode",
    "Direction",
    "TimeStampEpochSeconds",
    "Region",
    "SipRuleId",
    "SipApplicationId",
    "CallLegTriggerType",
    "BillableVoiceFocusSeconds",
)
EXTENSION_FIELDS = (
    "StartTimeEpochMilliseconds",
    "AnswerTimeEpochMilliseconds",
    "EndTimeEpochMilliseconds",
    "SipResponseCode",
    "SipCallId",
    "Transport",
    "SourceAddress",
    "HangupSource",
)

# AWS billing-region prefixes used in Price List usage types.
_REGION_PREFIX = {
    "us-east-1": "USE1",
    "us-east-2": "USE2",
    "us-west-1": "USW1",
    "us-west-2": "USW2",
    "ca-central-1": "CAN1",
    "eu-central-1": "EUC1",
    "eu-west-1": "EU",
    "eu-west-2": "EUW2",
    "eu-west-3": "EUW3",
    "eu-north-1": "EUN1",
    "ap-northeast-1": "APN1",
    "ap-northeast-2": "APN2",
    "ap-southeast-1": "APS1",
    "ap-southeast-2": "APS2",
    "ap-south-1": "APS3",
    "sa-east-1": "SAE1",
}

_E164_DIGITS = re.compile(r"^[1-9][0-9]{1,14}$")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")

TimeLike = float | int | _dt.datetime


def _epoch_ms(value: TimeLike | None, name: str) -> int | None:
    """Epoch milliseconds from epoch seconds (int/float, e.g. ``time.time()``) or an aware datetime."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name}: bool is not a time")
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}: naive datetime (give a timezone)")
        return int(round(value.timestamp() * 1000))
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{name}: not finite")
        return int(round(float(value) * 1000))
    raise TypeError(f"{name}: expected epoch seconds or datetime, got {type(value).__name__}")


def _pick_ms(time_value: TimeLike | None, ms_value: int | None, name: str) -> int | None:
    if time_value is not None and ms_value is not None:
        raise ValueError(f"give {name}_time or {name}_ms, not both")
    if ms_value is not None:
        if isinstance(ms_value, bool) or not isinstance(ms_value, int):
            raise TypeError(f"{name}_ms must be an int (epoch milliseconds)")
        return ms_value
    return _epoch_ms(time_value, f"{name}_time")


def billable_seconds(answer_ms: int | None, end_ms: int) -> int:
    """Answered duration rounded up to whole seconds (0 if never answered)."""
    if answer_ms is None:
        return 0
    elapsed = max(0, end_ms - answer_ms)
    return -(-elapsed // 1000)  # ceil without float error


def usage_type_for(region: str, direction: str) -> str:
    """Default ``UsageType``: ``<billing region prefix>-PSTNAudio-<inbound|outbound>-minutes`` (our convention)."""
    prefix = _REGION_PREFIX.get(region, region.upper() if region else "LOCAL")
    return f"{prefix}-PSTNAudio-{direction.lower()}-minutes"


def _phone(number: str | None) -> str:
    """E.164 with '+' when the value is a bare digit string (spec 04 item 36); other values unchanged."""
    if number is None:
        return ""
    number = str(number).strip()
    if _E164_DIGITS.match(number):
        return "+" + number
    return number


def build_record(
    *,
    aws_account_id: str,
    transaction_id: str,
    call_id: str,
    voice_connector_id: str,
    start_time: TimeLike | None = None,
    end_time: TimeLike | None = None,
    answer_time: TimeLike | None = None,
    start_ms: int | None = None,
    answer_ms: int | None = None,
    end_ms: int | None = None,
    status: str | None = None,
    answered: bool | None = None,
    source_phone_number: str | None = "",
    source_phone_number_name: str | None = "",
    destination_phone_number: str | None = "",
    destination_phone_number_name: str | None = "",
    direction: str = "Inbound",
    region: str = "",
    sip_rule_id: str | None = "",
    sip_application_id: str = "",
    call_leg_trigger_type: str = "ToPhoneNumber",
    voice_focus_seconds: float = 0,
    usage_type: str | None = None,
    service_code: str = SERVICE_CODE,
    schema_version: str = SCHEMA_VERSION,
    sip_response_code: int,
    sip_call_id: str = "",
    transport: str = "",
    source_address: str = "",
    hangup_source: str = "system",
) -> dict[str, Any]:
    """The CDR of one call leg (pure: no clock, no I/O).

    Times are given either as ``start_time`` / ``answer_time`` / ``end_time`` (epoch seconds
    such as ``time.time()``, or timezone-aware datetimes) or as ``start_ms`` / ``answer_ms`` /
    ``end_ms`` (integer epoch milliseconds) — one form per instant. The answer time is
    ``None`` for a leg that was never answered. ``status`` defaults to ``"Completed"`` when
    the leg was answered (``answered`` if given, else "an answer time is known") and
    ``"Failed"`` otherwise. ``sip_response_code`` is the final SIP code (100-699), or 0 when
    none is known. ``voice_focus_seconds`` is rounded up to whole seconds. ``usage_type``
    defaults to :func:`usage_type_for`.
    """
    start_ms = _pick_ms(start_time, start_ms, "start")
    end_ms = _pick_ms(end_time, end_ms, "end")
    answer_ms = _pick_ms(answer_time, answer_ms, "answer")
    if start_ms is None or end_ms is None:
        raise ValueError("start and end times are required")
    if end_ms < start_ms:
        raise ValueError("end_time before start_time")
    if answer_ms is not None and not start_ms <= answer_ms <= end_ms:
        raise ValueError("answer_time outside [start_time, end_time]")
    if status is None:
        was_answered = answered if answered is not None else answer_ms is not None
        status = "Completed" if was_answered else "Failed"
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}")
    if hangup_source not in HANGUP_SOURCES:
        raise ValueError(f"hangup_source must be one of {HANGUP_SOURCES}")
    if not call_leg_trigger_type:
        raise ValueError("call_leg_trigger_type is required")
    if isinstance(sip_response_code, bool) or not isinstance(sip_response_code, int):
        raise TypeError("sip_response_code must be an int")
    if sip_response_code != 0 and not 100 <= sip_response_code <= 699:
        raise ValueError("sip_response_code must be a SIP response code (100-699) or 0 (unknown)")
    if voice_focus_seconds < 0:
        raise ValueError("voice_focus_seconds must be >= 0")
    for name, value in (("transaction_id", transaction_id), ("call_id", call_id)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")

    record: dict[str, Any] = {
        "AwsAccountId": str(aws_account_id),
        "TransactionId": transaction_id,
        "CallId": call_id,
        "VoiceConnectorId": str(voice_connector_id or ""),
        "Status": status,
        "BillableDurationSeconds": str(billable_seconds(answer_ms, end_ms)),
        "SchemaVersion": str(schema_version),
        "SourcePhoneNumber": _phone(source_phone_number),
        "SourcePhoneNumberName": str(source_phone_number_name or ""),
        "DestinationPhoneNumber": _phone(destination_phone_number),
        "DestinationPhoneNumberName": str(destination_phone_number_name or ""),
        "UsageType": usage_type if usage_type else usage_type_for(region, direction),
        "ServiceCode": str(service_code),
        "Direction": direction,
        "TimeStampEpochSeconds": str(start_ms // 1000),
        "Region": str(region or ""),
        "SipRuleId": str(sip_rule_id or ""),
        "SipApplicationId": str(sip_application_id or ""),
        "CallLegTriggerType": str(call_leg_trigger_type),
        "BillableVoiceFocusSeconds": str(int(math.ceil(voice_focus_seconds))),
        # chimevoice extensions
        "StartTimeEpochMilliseconds": start_ms,
        "AnswerTimeEpochMilliseconds": answer_ms,
        "EndTimeEpochMilliseconds": end_ms,
        "SipResponseCode": sip_response_code,
        "SipCallId": str(sip_call_id or ""),
        "Transport": str(transport or "").upper(),
        "SourceAddress": str(source_address or ""),
        "HangupSource": hangup_source,
    }
    return record


def _safe_name(value: Any, field: str) -> str:
    text = str(value or "")
    safe = _UNSAFE_NAME.sub("_", text)
    if not safe or set(safe) <= {"."}:
        raise ValueError(f"record has no usable {field}: {value!r}")
    return safe


def record_relative_path(record: Mapping[str, Any]) -> Path:
    """``Amazon-Chime-SMADRs/YYYY/MM/DD/<TransactionId>_<CallId>.json`` for a record.

    The date is the UTC date of ``StartTimeEpochMilliseconds`` (falling back to
    ``TimeStampEpochSeconds``). Characters other than ``A-Z a-z 0-9 . _ -`` in the ids
    are replaced by ``_`` so an id can never add a path component.
    """
    if record.get("StartTimeEpochMilliseconds") is not None:
        seconds = int(record["StartTimeEpochMilliseconds"]) / 1000.0
    elif record.get("TimeStampEpochSeconds") not in (None, ""):
        seconds = float(record["TimeStampEpochSeconds"])
    else:
        raise ValueError("record has no start time")
    day = _dt.datetime.fromtimestamp(seconds, tz=_dt.timezone.utc)
    transaction_id = _safe_name(record.get("TransactionId"), "TransactionId")
    call_id = _safe_name(record.get("CallId"), "CallId")
    name = f"{transaction_id}_{call_id}.json"
    return Path(CDR_FOLDER, f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}", name)


def _encode(record: Mapping[str, Any]) -> bytes:
    """One JSON line (UTF-8). Bytes that were not UTF-8 on the wire (lone surrogates from
    pjsua2's ``surrogateescape``) are written as ``\\xNN`` text: the record is never lost
    to a ``UnicodeEncodeError`` (chimevoice.text)."""
    text = json.dumps(dict(record), ensure_ascii=False, allow_nan=False) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(escape_strings(dict(record)), ensure_ascii=False, allow_nan=False) + "\n"
        return text.encode("utf-8")


def _load_syncfs():
    """libc syncfs(fd): flush one filesystem (Linux); None elsewhere."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
        fn.argtypes = [ctypes.c_int]
        return fn
    except (OSError, AttributeError):
        return None


_syncfs = _load_syncfs()


def _makedirs_durable(directory: Path) -> None:
    """mkdir -p, fsync'ing the parent of every directory it creates (so new day folders survive a crash)."""
    missing = []
    d = directory
    while not d.is_dir():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        fsync_directory(d.parent)


class CdrWriter:
    """Writes CDRs under ``directory`` (the stand-in for the CDR S3 bucket)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path_for(self, record: Mapping[str, Any]) -> Path:
        return self.directory / record_relative_path(record)

    def write(self, record: Mapping[str, Any]) -> Path:
        """Atomically write ``record`` as one JSON object (UTF-8, trailing newline); returns the path.

        Temp file in the destination directory, write, flush, fsync, ``os.replace``, fsync
        of the directory. Writing the same leg again replaces the earlier record.
        """
        path = self.path_for(record)
        data = _encode(record)
        _makedirs_durable(path.parent)
        return atomic_write_bytes(path, data)

    def write_batch(self, records: list[Mapping[str, Any]]) -> list[Path | Exception]:
        """Write several records with one flush to disk (group commit).

        Each record goes to a temp file; then one ``syncfs`` makes them all durable,
        they are renamed into place, and each directory touched is fsynced once. The
        result is as durable as :meth:`write` per record, for a fraction of the fsyncs.
        Without ``syncfs`` (not Linux) every record is written with :meth:`write`.
        Returns, per record, its path or the exception that stopped it."""
        if len(records) == 1 or _syncfs is None:
            return [self._write_one(r) for r in records]
        staged: list[tuple[int, str, Path]] = []
        out: list[Path | Exception] = []
        for i, record in enumerate(records):
            try:
                path = self.path_for(record)
                data = _encode(record)
                _makedirs_durable(path.parent)
                fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fchmod(fd, 0o644)
                finally:
                    os.close(fd)
                staged.append((i, tmp, path))
                out.append(path)
            except Exception as exc:  # noqa: BLE001 - one bad record must not stop the others
                out.append(exc)
        if not staged:
            return out
        dirfd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            if _syncfs(dirfd) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed")
        finally:
            os.close(dirfd)
        touched: set[Path] = set()
        for i, tmp, path in staged:
            try:
                os.replace(tmp, path)
                touched.add(path.parent)
            except OSError as exc:
                out[i] = exc
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        for directory in touched:
            fsync_directory(directory)
        return out

    def _write_one(self, record: Mapping[str, Any]) -> Path | Exception:
        try:
            return self.write(record)
        except Exception as exc:  # noqa: BLE001
            return exc

    async def write_async(self, record: Mapping[str, Any]) -> Path:
        """:meth:`write` in a worker thread (keeps fsync off the event loop)."""
        return await asyncio.to_thread(self.write, record)
