"""CDRs in group commits: records of calls that end close together share one flush."""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..cdr import CdrWriter
from ..osthread import set_os_thread_name
from .journal import CdrJournal

#: Records that arrive within this window go to disk in one batch.
CDR_BATCH_S = 0.05


class CdrBatcher:
    """Queues CDR records and writes them on their own thread, in order, off the loop
    (one ``syncfs`` per batch: :meth:`CdrWriter.write_batch`). Every queued record is
    written before :meth:`close` returns."""

    def __init__(self, writer: CdrWriter, loop: asyncio.AbstractEventLoop,
                 journal: CdrJournal | None = None) -> None:
        self.writer = writer
        self.loop = loop
        self.journal = journal          # open legs' CDRs, for recovery after kill -9
        self.pending = 0                        # queued or being written
        self._queue: list[tuple[Any, Mapping[str, Any]]] = []
        self._draining = False
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cdr",
                                          initializer=set_os_thread_name, initargs=("cv-cdr",))
        #: Called after each batch with no record left pending (the manager's idle check).
        self.on_idle: Callable[[], None] = lambda: None

    def journal_leg(self, fields: Mapping[str, Any]) -> None:
        """A leg's CDR fields as they stand (``build_record`` keywords), in the journal."""
        if self.journal is not None:
            self.journal.leg(_key(fields["transaction_id"], fields["call_id"]), fields)

    def submit(self, record: Mapping[str, Any], log: Any) -> None:
        """Queue *record*; *log* (a bound logger) reports its outcome."""
        self.pending += 1
        self._queue.append((log, record))
        if not self._draining:
            # Gather what ends in the next moment into one batch: one flush for all of it.
            self._draining = True
            self.loop.call_later(CDR_BATCH_S, self._drain)

    def _drain(self) -> None:
        batch, self._queue = self._queue, []
        if not batch:
            self._draining = False
            return
        future = self.loop.run_in_executor(self._thread, self.writer.write_batch, [r for _, r in batch])
        future.add_done_callback(lambda f: self._done(batch, f))

    def _done(self, batch: list[tuple[Any, Mapping[str, Any]]], future: asyncio.Future) -> None:
        self.pending -= len(batch)
        exc = future.exception()
        results = [exc] * len(batch) if exc is not None else future.result()
        for (log, record), result in zip(batch, results):
            if isinstance(result, BaseException):
                log.error("cdr_write_failed", error=repr(result))     # the journal keeps it
            else:
                log.debug("cdr_written", path=str(result))
                if self.journal is not None:
                    self.journal.done(_key(str(record["TransactionId"]), str(record["CallId"])))
        self._drain()
        if not self.pending:
            self.on_idle()

    def close(self) -> None:
        """Wait for the writer thread: nothing queued is lost. The journal file goes when
        every leg's CDR is on disk (else the next start writes the rest)."""
        self._thread.shutdown(wait=True)
        if self.journal is not None:
            self.journal.close()


def _key(transaction_id: str, call_id: str) -> str:
    return f"{transaction_id}/{call_id}"
