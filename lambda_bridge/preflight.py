"""Load ``python`` and ``nodejs`` handlers once, without invoking them (``check-config``, start-up).

Each handler is loaded in ONE worker process started exactly as the invoker
starts its workers (same command line, ``python_path``, working directory and
environment, Lambda variables included), so module-level code runs as it will
on the first call.  The worker's first message says whether the module
imported and the function exists (``ready``) or not (``init_error``); the
check then shuts the worker down and kills its process group.  Nothing is
invoked.  A TypeScript Node handler is bundled first (the bundle is cached for the
daemon); a bundling error is the answer then, with esbuild's ``file:line:col``.

    problems = check_handlers([cfg_a, cfg_b], timeout_s=10)
    # [None, "Runtime.HandlerNotFound: Handler 'handlr' missing on module 'index' (...)"]
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .config import HandlerConfig
from .errors import HandlerUnreachable
from .node_invoker import NodeInvoker
from .pool import MESSAGE_LIMIT, PoolInvoker, describe_exit
from .python_invoker import PythonInvoker

DEFAULT_TIMEOUT_S = 10.0
_OUTPUT_TAIL = 4096
_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
# Node: "    at fn (/abs/file.js:3:9)", "    at /abs/file.js:3:9", a SyntaxError's "/abs/file.js:2"
_NODE_FRAME = re.compile(r"(?:\(|at |^)((?:file://)?/[^():\s]+):(\d+)(?::\d+)?\)?\s*$")
POOL_TYPES = ("python", "nodejs")


class _NoLog:
    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *_a, **_k: None


def _location(trace: Sequence[str]) -> str | None:
    """``file:line`` of the innermost frame outside the import machinery."""
    for entry in reversed(list(trace or ())):
        for path, line in reversed(_FRAME.findall(entry)):
            if "<frozen " not in path and "importlib" not in path:
                return f"{path}:{line}"
    return None


def _node_location(trace: Sequence[str]) -> str | None:
    """``file:line`` of the first frame in the handler's own code (not node's, not the worker's)."""
    worker_dir = str(NodeInvoker.worker_dir())
    for entry in trace or ():
        m = _NODE_FRAME.search(entry.rstrip("\n"))
        if m and not m.group(1).startswith(worker_dir) and "node:" not in m.group(1):
            return f"{m.group(1).removeprefix('file://')}:{m.group(2)}"
    return None


def describe_init_error(msg: Mapping[str, Any], inv: PoolInvoker) -> str:
    """One line for a worker's ``init_error`` message."""
    error_type = msg.get("errorType") or "Runtime.InitError"
    text = f"{error_type}: {msg.get('errorMessage', '')}"
    notes = []
    if msg.get("hint"):
        notes.append(msg["hint"])
    if isinstance(inv, NodeInvoker):
        if error_type == "Runtime.ImportModuleError":
            notes.append("task root: " + inv.task_root)
        if error_type != "Runtime.HandlerNotFound":
            where = _node_location(msg.get("stackTrace") or ())
            if where:
                notes.append(f"raised at {where}")
    elif error_type == "Runtime.ImportModuleError" and isinstance(inv, PythonInvoker):
        module, _, function = inv.cfg.target.partition(":")
        if module.endswith(".py") and function:
            notes.append(f"a module is named without .py: write {module[:-3]}:{function}")
        notes.append("python_path: " + (", ".join(inv.python_path) or inv.task_root))
    elif error_type not in ("Runtime.HandlerNotFound", "Runtime.MalformedHandlerName",
                            "Runtime.BuiltInModuleConflict", "Runtime.UserCodeSyntaxError"):
        where = _location(msg.get("stackTrace") or ())
        if where:
            notes.append(f"raised at {where}")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _invoker(cfg: HandlerConfig) -> PoolInvoker:
    if cfg.type == "nodejs":
        return NodeInvoker(cfg, _NoLog())
    return PythonInvoker(cfg, _NoLog())


async def check_handler(cfg: HandlerConfig, timeout_s: float = DEFAULT_TIMEOUT_S) -> str | None:
    """Load ``cfg``'s handler (python or nodejs) in a worker; None if it loads, else what went wrong."""
    inv = _invoker(cfg)
    try:
        await inv.prepare()
    except HandlerUnreachable as exc:
        return exc.message
    parent_sock, child_sock = socket.socketpair()
    try:
        proc = await asyncio.create_subprocess_exec(
            *inv.worker_argv(child_sock.fileno(), secrets.token_hex(8)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            pass_fds=(child_sock.fileno(),),
            env=inv.worker_environment(),
            cwd=inv.task_root,
            start_new_session=True,
        )
    except OSError as exc:
        parent_sock.close()
        return f"cannot start a {inv.runtime} worker: {exc}"
    finally:
        child_sock.close()
    output = bytearray()

    async def drain() -> None:          # the handler may print at import: never block it
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            output.extend(chunk)
            del output[:-_OUTPUT_TAIL]

    drainer = asyncio.ensure_future(drain())
    reader, writer = await asyncio.open_unix_connection(sock=parent_sock, limit=MESSAGE_LIMIT)
    try:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout_s)
        except asyncio.TimeoutError:
            return (f"the handler module did not load within {timeout_s:g} s "
                    "(does its module-level code hang?)")
        except (ValueError, ConnectionError, OSError) as exc:
            return f"unreadable answer from the worker: {exc}"
        if not line:
            await _reaped(proc, 2.0)
            await asyncio.wait({drainer}, timeout=0.5)
            last = [ln for ln in output.decode("utf-8", "replace").replace("\x00", "\n").splitlines()
                    if ln.strip()]
            tail = f"; last output: {last[-1].strip()[:300]}" if last else ""
            return f"the worker exited while loading the handler: {describe_exit(proc.returncode)}{tail}"
        try:
            msg = json.loads(line)
        except ValueError:
            return f"unreadable answer from the worker: {line[:200]!r}"
        if msg.get("type") == "ready":
            return None
        if msg.get("type") == "init_error":
            return describe_init_error(msg, inv)
        return f"unexpected answer from the worker: {msg.get('type')!r}"
    finally:
        try:
            writer.write(b'{"type": "shutdown"}\n')
        except (ConnectionError, RuntimeError):
            pass
        writer.close()
        await _reaped(proc, 1.0)
        try:                              # whatever module-level code started goes too
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        await _reaped(proc, 2.0)
        drainer.cancel()


async def _reaped(proc: asyncio.subprocess.Process, timeout: float) -> None:
    """Wait for the worker to exit (bounded: ``wait()`` also waits for its pipes, which a
    process that left its group may hold)."""
    if proc.returncode is None:
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            pass


check_python_handler = check_handler  # the older name


async def check_handlers_async(cfgs: Sequence[HandlerConfig],
                               timeout_s: float = DEFAULT_TIMEOUT_S) -> list[str | None]:
    """:func:`check_handler` for every config, in parallel; results in order."""
    return list(await asyncio.gather(*(check_handler(c, timeout_s) for c in cfgs)))


def check_handlers(cfgs: Sequence[HandlerConfig],
                   timeout_s: float = DEFAULT_TIMEOUT_S) -> list[str | None]:
    """Blocking version (runs its own event loop): for the command line, before the daemon's loop."""
    if not cfgs:
        return []
    return asyncio.run(check_handlers_async(cfgs, timeout_s))


check_python_handlers = check_handlers
check_python_handlers_async = check_handlers_async

__all__ = ["DEFAULT_TIMEOUT_S", "POOL_TYPES", "check_handler", "check_handlers", "check_handlers_async",
           "check_python_handler", "check_python_handlers", "check_python_handlers_async", "describe_init_error"]
