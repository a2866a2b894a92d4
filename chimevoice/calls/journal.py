"""A write-ahead journal of open call legs, so that ``kill -9`` loses no CDR.

A CDR is written when its transaction ends, in 50 ms group commits (:mod:`.cdrs`). A daemon killed
in between, or while calls are up, would lose the records of those legs. So each leg's CDR fields
are appended to a journal when the leg starts, when it is answered and when it ends, and a line
marks it done once its CDR is on disk. Lines go out with ``os.write`` on an ``O_APPEND``
descriptor: once written they are in the page cache and survive the process (not a power loss).
A heartbeat keeps the file's modification time within a second of the daemon's last moment.

At start-up, before new calls, :func:`recover` replays the journals of earlier runs: each leg not
marked done gets its CDR — with its real end when the end was journaled, else ending at the
journal's last heartbeat with ``HangupSource: system`` and SIP code 0 — and the journal is
removed. The journal is compacted (open legs only) when it grows past ``max_bytes``.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..cdr import CdrWriter, build_record

JOURNAL_SUFFIX = ".journal"


class CdrJournal:
    """The running daemon's journal (one file per run, under *directory*)."""

    def __init__(self, directory: Path, *, max_bytes: int = 8 << 20,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.clock = clock
        self.legs: dict[str, dict[str, Any]] = {}       # key -> the leg's latest CDR fields
        self.path: Path | None = None
        self._fd: int | None = None
        self._size = 0
        self._serial = 0

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._new_file()

    def _new_file(self) -> None:
        self._serial += 1
        path = self.directory / f"{os.getpid()}-{int(self.clock() * 1000)}-{self._serial}{JOURNAL_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        old_fd, old_path = self._fd, self.path
        self._fd, self.path, self._size = fd, path, 0
        for key, fields in self.legs.items():            # compaction: the open legs only
            self._append({"k": key, "f": fields})
        if old_fd is not None:
            os.close(old_fd)
        if old_path is not None:
            old_path.unlink(missing_ok=True)

    def _append(self, entry: Mapping[str, Any]) -> None:
        if self._fd is None:
            return
        data = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, data)
        self._size += len(data)

    def leg(self, key: str, fields: Mapping[str, Any]) -> None:
        """The leg *key* has these CDR fields now (``build_record`` keywords; ``end_ms`` None
        while it is up)."""
        self.legs[key] = dict(fields)
        self._append({"k": key, "f": self.legs[key]})

    def done(self, key: str) -> None:
        """The leg's CDR is on disk."""
        if self.legs.pop(key, None) is None:
            return
        self._append({"k": key, "d": 1})
        if self._size > self.max_bytes:
            self._new_file()

    def heartbeat(self) -> None:
        if self.path is not None:
            try:
                os.utime(self.path)
            except OSError:
                pass

    def close(self) -> None:
        """At a clean stop: the file goes when no leg is left open (else the next start recovers them)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.path is not None and not self.legs:
            self.path.unlink(missing_ok=True)


def replay(path: Path) -> dict[str, dict[str, Any]]:
    """The legs a journal left open: key -> their last fields (a torn last line is skipped)."""
    legs: dict[str, dict[str, Any]] = {}
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("k"), str):
                continue
            if entry.get("d"):
                legs.pop(entry["k"], None)
            elif isinstance(entry.get("f"), dict):
                legs[entry["k"]] = entry["f"]
    return legs


def recovered_fields(fields: Mapping[str, Any], crashed_ms: int) -> dict[str, Any]:
    """The CDR fields of a leg left open at *crashed_ms*: its journaled end if it had ended,
    else that moment, ended by the system."""
    out = dict(fields)
    if out.get("end_ms") is None:
        start = int(out.get("start_ms") or crashed_ms)
        out["end_ms"] = max(crashed_ms, start, int(out.get("answer_ms") or 0))
        out["hangup_source"] = "system"
        out.setdefault("sip_response_code", 0)
    return out


def recover(directory: Path, writer: CdrWriter, log: Any) -> int:
    """Write the CDRs earlier runs left open (see the module docstring); returns how many."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    written = 0
    for path in sorted(directory.glob(f"*{JOURNAL_SUFFIX}")):
        try:
            crashed_ms = int(path.stat().st_mtime * 1000)
            legs = replay(path)
        except OSError as exc:
            log.error("cdr_journal_unreadable", path=str(path), error=str(exc))
            continue
        ok = True
        for key, fields in legs.items():
            try:
                record = build_record(**recovered_fields(fields, crashed_ms))
                writer.write(record)
            except Exception as exc:  # noqa: BLE001 - one bad entry must not stop the others
                ok = False
                log.error("cdr_recovery_failed", key=key, path=str(path), error=repr(exc))
                continue
            written += 1
            log.warning("cdr_recovered", TransactionId=record["TransactionId"], CallId=record["CallId"],
                        status=record["Status"], ended_by_crash=fields.get("end_ms") is None)
        if ok:
            path.unlink(missing_ok=True)
    return written
