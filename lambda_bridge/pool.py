"""A pool of Lambda-like worker processes per handler, for every runtime.

:class:`PoolInvoker` is runtime-neutral: :mod:`lambda_bridge.python_invoker`
(``python -m lambda_bridge.python_worker``) and :mod:`lambda_bridge.node_invoker`
(``node lambda_bridge/node/worker.js``) say how to start a worker; both
workers speak the protocol of docs/worker-protocol.md.

Isolation model
---------------
* every :class:`~lambda_bridge.HandlerConfig` gets its own pool of worker
  processes, started lazily, at
  most ``cfg.workers`` of them (plus one extra for a retry when all are busy);
* a worker runs ONE invocation at a time, like a Lambda execution
  environment, and keeps the handler module imported between invocations
  (module-level state persists, as in a warm Lambda);
* the daemon talks to a worker over a socketpair (newline-delimited JSON);
  the worker's stdout/stderr are pipes read line by line and logged as
  ``handler_output``;
* the daemon never blocks on a worker: a hanging handler is SIGKILLed at the
  deadline (its whole process group), a crashed one (``os._exit``, signal) is
  reported as ``Runtime.ExitError`` and replaced lazily, a worker whose max
  RSS exceeds ``memory_limit_mb`` after an invocation is recycled.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import secrets
import signal
import socket
import time
import uuid
from collections import deque
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from .base import BaseInvoker
from .config import HandlerConfig
from .errors import HandlerFailed, HandlerUnreachable, InvalidHandlerOutput

BRIDGE_ROOT = str(Path(__file__).resolve().parent.parent)
MESSAGE_LIMIT = 64 * 1024 * 1024  # Lambda's own response limit is 6 MB
_MAX_OUTPUT_LINE = 64 * 1024
_OUTPUT_SYNC_WAIT_S = 1.0
_TERMINATE_GRACE_S = 2.0
_DEADLINE_TOLERANCE_S = 0.05


def _silence(fut: asyncio.Future[Any]) -> None:
    """Avoid 'exception was never retrieved' for futures nobody awaited."""

    def _cb(f: asyncio.Future[Any]) -> None:
        if not f.cancelled():
            f.exception()

    fut.add_done_callback(_cb)


def describe_exit(returncode: int | None) -> str:
    """Like Lambda's ``Runtime exited with error: ...`` wording."""
    if returncode is None:
        return "unknown"
    if returncode < 0:
        try:
            name = signal.strsignal(-returncode) or f"signal {-returncode}"
        except ValueError:
            name = f"signal {-returncode}"
        return f"signal: {name.lower()}"
    return f"exit status {returncode}"


class _WorkerProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Signals the worker's exit as soon as it is reaped.

    ``Process.wait()`` also waits for the stdout/stderr pipes to close, which
    never happens while a subprocess started by the handler holds them."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exit_future: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exit_future.done():
            self.exit_future.set_result(None)


class _OutputStream:
    """Reads one of a worker's stdout/stderr pipes and logs its lines."""

    def __init__(self, worker: _Worker, name: str, reader: asyncio.StreamReader) -> None:
        self.worker = worker
        self.name = name
        self.reader = reader
        self.synced = -1
        self.eof = False
        self._marker = b"\x00" + worker.token.encode() + b":"
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def run(self) -> None:
        buf = b""
        try:
            while True:
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                buf += chunk
                while True:
                    idx = buf.find(b"\n")
                    if idx < 0:
                        break
                    line, buf = buf[:idx], buf[idx + 1 :]
                    self._line(line)
                if len(buf) > _MAX_OUTPUT_LINE:
                    self._emit(buf[:_MAX_OUTPUT_LINE] + b"... [line truncated]")
                    buf = b""
            if buf:
                self._line(buf)
        except (ConnectionError, OSError):
            pass
        finally:
            self.eof = True
            self._wake()

    def _line(self, raw: bytes) -> None:
        pos = raw.find(self._marker)
        if pos >= 0:
            try:
                seq = int(raw[pos + len(self._marker) :])
            except ValueError:
                seq = None
            if seq is not None:
                if pos:
                    self._emit(raw[:pos])
                self.synced = max(self.synced, seq)
                self._wake()
                return
        self._emit(raw)

    def _emit(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if not text.strip():
            return
        w = self.worker
        fields: dict[str, Any] = dict(w.log_context)
        fields["aws_request_id"] = w.request_id
        w.invoker._info("handler_output", fields, stream=self.name, pid=w.pid, line=text)

    def _wake(self) -> None:
        keep = []
        for seq, fut in self._waiters:
            if self.eof or seq <= self.synced:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((seq, fut))
        self._waiters = keep

    async def wait_synced(self, seq: int, timeout: float) -> None:
        if self.eof or self.synced >= seq:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            pass


class _Worker:
    """One worker process (one Lambda execution environment)."""

    def __init__(self, invoker: PoolInvoker, number: int) -> None:
        loop = asyncio.get_running_loop()
        self.invoker = invoker
        self.number = number
        self.token = secrets.token_hex(8)
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.ready: asyncio.Future[bool] = loop.create_future()  # True, or init error
        self.exited: asyncio.Future[int | None] = loop.create_future()  # returncode
        _silence(self.ready)
        self.pending: asyncio.Future[dict[str, Any]] | None = None  # reply of the running invocation
        self.seq = 0
        self.request_id: str | None = None
        self.log_context: dict[str, Any] = {}
        self.dead = False
        self.kill_reason: str | None = None
        self.retiring = False
        self.streams: list[_OutputStream] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._writer: asyncio.StreamWriter | None = None
        self._msg_task: asyncio.Task[None] | None = None
        self._transport: asyncio.SubprocessTransport | None = None
        self._exit_future: asyncio.Future[None] | None = None

    # ---------------------------------------------------------- lifecycle
    @property
    def usable(self) -> bool:
        return (
            not self.dead
            and not self.retiring
            and not (self.ready.done() and (self.ready.cancelled() or self.ready.exception()))
        )

    async def start(self) -> None:
        inv = self.invoker
        try:
            await inv.prepare()
        except HandlerUnreachable as exc:
            self._start_failed(exc, exc.message)
            return
        if inv.closed or self.kill_reason is not None:
            self._start_failed(RuntimeError("invoker closed"), f"{inv.cfg.function_name}: invoker is closed")
            return
        parent_sock, child_sock = socket.socketpair()
        argv = inv.worker_argv(child_sock.fileno(), self.token)
        try:
            loop = asyncio.get_running_loop()
            try:
                transport, protocol = await loop.subprocess_exec(
                    lambda: _WorkerProtocol(limit=2**16, loop=loop),
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    pass_fds=(child_sock.fileno(),),
                    env=inv.worker_environment(),
                    cwd=inv.task_root,
                    # own process group: Ctrl-C goes to the daemon only, and a
                    # kill reaches the handler's own subprocesses too
                    start_new_session=True,
                )
            finally:
                child_sock.close()
            self._transport = transport
            self._exit_future = protocol.exit_future
            self.proc = asyncio.subprocess.Process(transport, protocol, loop)
            self.pid = self.proc.pid
            reader, writer = await asyncio.open_unix_connection(
                sock=parent_sock, limit=MESSAGE_LIMIT
            )
        except Exception as exc:  # noqa: BLE001 - reported as HandlerUnreachable
            parent_sock.close()
            self._start_failed(exc)
            return
        self._writer = writer
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.streams = [
            _OutputStream(self, "stdout", self.proc.stdout),
            _OutputStream(self, "stderr", self.proc.stderr),
        ]
        self._msg_task = asyncio.ensure_future(self._read_messages(reader))
        self.tasks = [
            self._msg_task,
            *(asyncio.ensure_future(s.run()) for s in self.streams),
            asyncio.ensure_future(self._watch()),
        ]
        inv._info("handler_worker_started", None, pid=self.pid, worker=self.number)
        if self.kill_reason is not None or inv.closed:  # killed (deadline, close) while being spawned
            self.kill(self.kill_reason or "invoker closed")

    def _start_failed(self, exc: BaseException, message: str | None = None) -> None:
        inv = self.invoker
        self.dead = True
        if self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        err = HandlerUnreachable(
            message or f"{inv.cfg.function_name}: cannot start a {inv.runtime} worker: {exc}"
        )
        inv._error("handler_worker_start_failed", None, error=str(exc))
        if not self.ready.done():
            self.ready.set_exception(err)
        if not self.exited.done():
            self.exited.set_result(None)
        inv._on_worker_exit(self)

    async def _read_messages(self, reader: asyncio.StreamReader) -> None:
        inv = self.invoker
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                # a reply above MESSAGE_LIMIT: the stream is unusable now
                if self.pending is not None and not self.pending.done():
                    self.pending.set_exception(
                        InvalidHandlerOutput(
                            f"{inv.cfg.function_name}: response larger than {MESSAGE_LIMIT} bytes"
                        )
                    )
                self.kill("response too large")
                return
            except (ConnectionError, OSError):
                return
            if not line:
                return
            try:
                msg = json.loads(line)
            except ValueError:
                inv._error("handler_protocol_error", None, pid=self.pid, line=line[:200].decode("utf-8", "replace"))
                continue
            mtype = msg.get("type")
            if mtype == "ready":
                if not self.ready.done():
                    self.ready.set_result(True)
            elif mtype == "init_error":
                error_type = msg.get("errorType", "")
                error_message = msg.get("errorMessage", "")
                inv._error(
                    "handler_init_failed",
                    None,
                    pid=self.pid,
                    target=inv.cfg.target,
                    error_type=error_type,
                    error_message=error_message,
                    stack_trace="".join(msg.get("stackTrace") or []),
                )
                if not self.ready.done():
                    self.ready.set_exception(
                        HandlerUnreachable(
                            f"{inv.cfg.function_name}: cannot load handler {inv.cfg.target!r}: "
                            f"{error_type}: {error_message}"
                        )
                    )
            elif mtype in ("result", "error", "invalid_output"):
                if (
                    self.pending is not None
                    and not self.pending.done()
                    and msg.get("seq") == self.seq
                ):
                    self.pending.set_result(msg)

    async def _watch(self) -> None:
        inv = self.invoker
        assert self.proc is not None
        assert self._exit_future is not None and self._transport is not None
        await self._exit_future
        returncode = self._transport.get_returncode()
        # like a Lambda environment being reset: nothing the handler started
        # (subprocesses in the worker's process group) outlives the runtime
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        # a final message written just before exiting is still in the socket
        if self._msg_task is not None and not self._msg_task.done():
            await asyncio.wait({self._msg_task}, timeout=0.5)
        self.dead = True
        desc = describe_exit(returncode)
        if not self.ready.done():
            self.ready.set_exception(
                HandlerUnreachable(
                    f"{inv.cfg.function_name}: invoker closed while its worker was starting"
                    if inv.closed
                    else f"{inv.cfg.function_name}: worker for {inv.cfg.target!r} exited during init: {desc}"
                )
            )
        crashed_mid_invocation = self.pending is not None and not self.pending.done()
        if crashed_mid_invocation:
            assert self.pending is not None
            if inv.closed:
                self.pending.set_exception(
                    HandlerUnreachable(f"{inv.cfg.function_name}: invoker closed during the invocation")
                )
            else:
                self.pending.set_exception(
                    HandlerFailed(
                        "Runtime.ExitError",
                        f"RequestId: {self.request_id} Error: Runtime exited with error: {desc}",
                    )
                )
        if self.kill_reason is None and not self.retiring and not inv.closed:
            fields: dict[str, Any] = dict(self.log_context) if crashed_mid_invocation else {}
            if crashed_mid_invocation:
                fields["aws_request_id"] = self.request_id
            inv._error(
                "handler_worker_exited",
                fields,
                pid=self.pid,
                returncode=returncode,
                reason=desc,
                during_invocation=crashed_mid_invocation,
            )
        if self._writer is not None:
            self._writer.close()
        # output readers end when the pipes close (bounded: a grandchild may hold them)
        stream_tasks = [t for t in self.tasks[1:3] if not t.done()]
        if stream_tasks:
            await asyncio.wait(stream_tasks, timeout=0.5)
        self._transport.close()  # pipes too, even if something still holds them
        if not self.exited.done():
            self.exited.set_result(returncode)
        inv._on_worker_exit(self)

    # ---------------------------------------------------------- invocation
    def send_invoke(
        self, event_json: str, request_id: str, deadline_ms: int, ctx: Mapping[str, Any]
    ) -> asyncio.Future[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        self.seq += 1
        self.request_id = request_id
        self.log_context = {k: v for k, v in ctx.items() if k != "aws_request_id"}
        self.pending = loop.create_future()
        _silence(self.pending)
        if self.dead or self._writer is None or self._writer.is_closing():
            self.pending.set_exception(
                HandlerFailed("Runtime.ExitError", f"RequestId: {request_id} Error: worker is gone")
            )
            return self.pending
        head = json.dumps(
            {"type": "invoke", "seq": self.seq, "request_id": request_id, "deadline_ms": deadline_ms}
        )
        self._writer.write((head[:-1] + ', "event": ' + event_json + "}\n").encode("utf-8"))
        return self.pending

    async def wait_output(self, seq: int, timeout: float) -> None:
        for stream in self.streams:
            await stream.wait_synced(seq, timeout)

    def finish_invocation(self) -> None:
        self.request_id = None
        self.log_context = {}
        self.pending = None

    @property
    def busy(self) -> bool:
        return self.pending is not None and not self.pending.done()

    # ---------------------------------------------------------- stopping
    def kill(self, reason: str) -> None:
        """SIGKILL the worker and everything it started (its process group)."""
        if self.kill_reason is None:
            self.kill_reason = reason
        self.dead = True
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                proc.kill()
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        """Ask the worker to exit: an idle worker gets a shutdown message and
        EOF on its socket (it returns from its main loop); a busy or starting
        one, which cannot read them, gets SIGTERM.  The caller escalates to
        SIGKILL after a grace period."""
        self.retiring = True
        idle = self.ready.done() and not self.busy
        if self._writer is not None and not self._writer.is_closing():
            try:
                self._writer.write(b'{"type": "shutdown"}\n')
            except (ConnectionError, RuntimeError):
                pass
            self._writer.close()
        proc = self.proc
        if not idle and proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                try:
                    proc.terminate()
                except ProcessLookupError:
                    pass


class PoolInvoker(BaseInvoker):
    """A pool of worker processes for one handler; subclasses say how to start a worker.

    ``worker_argv(fd, token)`` is the command line of a worker talking over the
    inherited socket ``fd``; ``worker_environment()`` its environment;
    ``task_root`` its working directory; ``prepare()`` (optional, async) runs
    before a worker is spawned (bundling a TypeScript handler, for example) and
    raises :class:`HandlerUnreachable` when the handler cannot be started."""

    runtime = "worker"  # for messages: "cannot start a <runtime> worker"

    def __init__(self, cfg: HandlerConfig, logger: Any) -> None:
        super().__init__(cfg, logger)
        self.task_root = os.getcwd()
        self._workers: set[_Worker] = set()  # members of the pool
        self._live: set[_Worker] = set()  # processes not yet exited (pool + retiring)
        self._idle: list[_Worker] = []
        self._waiters: deque[asyncio.Future[_Worker | None]] = deque()
        self._background: set[asyncio.Task[None]] = set()  # drains, reaps
        self._starting: set[asyncio.Task[None]] = set()
        self._counter = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def worker_argv(self, fd: int, sync_token: str) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def worker_environment(self) -> dict[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    async def prepare(self) -> None:
        """Before a worker starts; raise HandlerUnreachable when it cannot."""

    def lambda_environment(self, execution_env: str, handler: str) -> dict[str, str]:
        """The daemon's environment plus what the Lambda runtime sets before the handler
        loads (the function's own ``environment`` is applied by the caller, last)."""
        cfg = self.cfg
        env = dict(os.environ)
        today = _dt.datetime.now(_dt.timezone.utc)
        env.update(
            {
                "AWS_REGION": cfg.aws_region,
                "AWS_DEFAULT_REGION": cfg.aws_region,
                "AWS_LAMBDA_FUNCTION_NAME": cfg.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(cfg.memory_limit_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{cfg.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"{today:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_EXECUTION_ENV": execution_env,
                "LAMBDA_TASK_ROOT": self.task_root,
                "_HANDLER": handler,
                "TZ": ":UTC",
            }
        )
        return env

    # ---------------------------------------------------------- pool
    def _spawn(self) -> _Worker:
        self._counter += 1
        worker = _Worker(self, self._counter)
        self._workers.add(worker)
        self._live.add(worker)
        task = asyncio.ensure_future(worker.start())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)
        return worker

    def _spawn_task(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _acquire(self, extra_ok: bool) -> _Worker:
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise HandlerUnreachable(f"{self.cfg.function_name}: invoker is closed")
            while self._idle:
                worker = self._idle.pop()  # LIFO: the warmest worker first
                if worker.usable:
                    return worker
                self._drop(worker, kill=True)
            limit = self.cfg.workers + (1 if extra_ok else 0)
            if len(self._workers) < limit:
                return self._spawn()
            fut: asyncio.Future[_Worker | None] = loop.create_future()
            self._waiters.append(fut)
            try:
                woken = await fut
            except asyncio.CancelledError:
                handed = fut.result() if fut.done() and not fut.cancelled() else None
                if handed is not None:
                    self._release(handed)
                else:
                    try:
                        self._waiters.remove(fut)
                    except ValueError:
                        pass
                raise
            if woken is not None:
                return woken

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _release(self, worker: _Worker) -> None:
        worker.finish_invocation()
        if worker not in self._workers:
            return
        if self._closed or not worker.usable:
            self._drop(worker, kill=True)
            return
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(worker)
                return
        if len(self._workers) > self.cfg.workers:
            # the extra worker started for a retry: do not keep it
            self._drop(worker, kill=False)
            return
        self._idle.append(worker)

    def _drop(self, worker: _Worker, *, kill: bool) -> None:
        self._workers.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        if kill:
            worker.kill(worker.kill_reason or "dropped")
        else:
            worker.terminate()
            self._spawn_task(self._reap(worker))
        self._wake_one()

    async def _reap(self, worker: _Worker) -> None:
        """After terminate(): SIGKILL if still alive after the grace period."""
        try:
            await asyncio.wait_for(asyncio.shield(worker.exited), _TERMINATE_GRACE_S)
        except asyncio.TimeoutError:
            worker.kill("did not exit in time after being retired")

    def _on_worker_exit(self, worker: _Worker) -> None:
        self._live.discard(worker)
        if worker in self._workers:
            self._workers.discard(worker)
            if worker in self._idle:
                self._idle.remove(worker)
            self._wake_one()

    # ---------------------------------------------------------- invocation
    async def _attempt(
        self, number: int, deadline: float, event_json: str, request_id: str, ctx: dict[str, Any]
    ) -> Any:
        loop = asyncio.get_running_loop()
        worker = await self._acquire(extra_ok=number > 0)
        op: asyncio.Future[Any] = worker.ready
        msg: dict[str, Any] | None = None
        try:
            if not worker.ready.done():
                await asyncio.shield(worker.ready)
            worker.ready.result()  # raises the init error
            deadline_ms = int((time.time() + (deadline - loop.time())) * 1000)
            op = worker.send_invoke(event_json, request_id, deadline_ms, ctx)
            msg = await asyncio.shield(op)
            if not (isinstance(msg, dict) and msg.get("quiet")):
                await worker.wait_output(
                    worker.seq, max(0.01, min(_OUTPUT_SYNC_WAIT_S, deadline - loop.time()))
                )
        except asyncio.CancelledError:
            self._detach(worker, op, deadline)
            raise
        except BaseException:
            self._release(worker)
            raise
        self._after_invocation(worker, msg)
        return self._interpret(msg, ctx, worker)

    def _after_invocation(self, worker: _Worker, msg: dict[str, Any] | None) -> None:
        limit_kb = self.cfg.memory_limit_mb * 1024
        rss_kb = int((msg or {}).get("max_rss_kb") or 0)
        if rss_kb > limit_kb and worker in self._workers:
            self._warning(
                "handler_worker_recycled",
                None,
                pid=worker.pid,
                max_rss_mb=round(rss_kb / 1024, 1),
                memory_limit_mb=self.cfg.memory_limit_mb,
            )
            worker.finish_invocation()
            self._drop(worker, kill=False)
            return
        self._release(worker)

    def _detach(self, worker: _Worker, op: asyncio.Future[Any], deadline: float) -> None:
        """The attempt was cancelled: another attempt answered, the deadline
        passed or the caller gave up.  A worker still busy at the deadline is
        killed; one that finishes before it goes back to the pool."""
        if op.done():
            self._finish_detached(worker, op)
            return
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= _DEADLINE_TOLERANCE_S:
            self._kill_at_deadline(worker)
            return
        self._spawn_task(self._drain(worker, op, remaining))

    async def _drain(self, worker: _Worker, op: asyncio.Future[Any], remaining: float) -> None:
        done, _ = await asyncio.wait({op}, timeout=remaining)
        if done:
            self._finish_detached(worker, op)
        else:
            self._kill_at_deadline(worker)

    def _finish_detached(self, worker: _Worker, op: asyncio.Future[Any]) -> None:
        msg = None
        if not op.cancelled() and op.exception() is None:
            result = op.result()
            msg = result if isinstance(result, dict) else None
        if msg is not None and msg.get("type") == "error":
            self._log_function_error(
                msg, {"aws_request_id": worker.request_id, **worker.log_context}, worker, late=True
            )
        self._after_invocation(worker, msg)

    def _kill_at_deadline(self, worker: _Worker) -> None:
        if worker.dead:
            self._release(worker)
            return
        fields = dict(worker.log_context)
        fields["aws_request_id"] = worker.request_id
        self._warning("handler_worker_killed", fields, pid=worker.pid, reason="deadline passed")
        worker.kill("deadline passed")
        self._release(worker)  # not usable any more: dropped from the pool

    def _log_function_error(
        self, msg: dict[str, Any], ctx: Mapping[str, Any], worker: _Worker, late: bool = False
    ) -> None:
        self._error(
            "handler_error",
            ctx,
            pid=worker.pid,
            error_type=msg.get("errorType", ""),
            error_message=msg.get("errorMessage", ""),
            stack_trace="".join(msg.get("stackTrace") or []),
            **({"late": True} if late else {}),
        )

    def _interpret(self, msg: dict[str, Any] | None, ctx: Mapping[str, Any], worker: _Worker) -> Any:
        assert msg is not None
        mtype = msg.get("type")
        if mtype == "result":
            return msg.get("payload")
        if mtype == "error":
            self._log_function_error(msg, ctx, worker)
            raise HandlerFailed(
                msg.get("errorType", ""),
                msg.get("errorMessage", ""),
                stack_trace=msg.get("stackTrace") or [],
            )
        if mtype == "invalid_output":
            raise InvalidHandlerOutput(f"{self.cfg.function_name}: {msg.get('errorMessage', '')}")
        raise InvalidHandlerOutput(f"{self.cfg.function_name}: unexpected worker reply {mtype!r}")

    # ---------------------------------------------------------- shutdown
    async def close(self) -> None:
        if self._closed and not self._live and not self._background and not self._starting:
            return
        self._closed = True
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the waiter sees _closed and raises
        for task in list(self._background):
            task.cancel()  # drains and reaps: every worker is stopped below
        # let spawns in progress register their process
        starting = [t for t in self._starting if not t.done()]
        if starting:
            await asyncio.wait(starting, timeout=_TERMINATE_GRACE_S)
        workers = list(self._live)
        self._workers.clear()
        self._idle.clear()
        for worker in workers:
            worker.terminate()
        pending = [w.exited for w in workers if not w.exited.done()]
        if pending:
            await asyncio.wait(pending, timeout=_TERMINATE_GRACE_S)
        for worker in workers:
            if not worker.exited.done():
                worker.kill("did not exit on close")
        pending = [w.exited for w in workers if not w.exited.done()]
        if pending:
            await asyncio.wait(pending, timeout=_TERMINATE_GRACE_S)
        for worker in workers:
            for task in worker.tasks:
                if not task.done():
                    task.cancel()
        leftovers = [t for w in workers for t in w.tasks if not t.done()]
        leftovers += [t for t in self._background if not t.done()]
        if leftovers:
            await asyncio.wait(leftovers, timeout=_TERMINATE_GRACE_S)
