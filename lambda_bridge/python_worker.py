"""Worker process for ``python`` handlers: a small Lambda-like Python runtime.

Started by :mod:`lambda_bridge.python_invoker` as::

    python -m lambda_bridge.python_worker --fd N --handler pkg.mod:func \
        --account-id 111122223333 --sync-token TOKEN

The Lambda environment variables (AWS_REGION, AWS_LAMBDA_FUNCTION_NAME, ...)
are already in this process's environment when it starts, i.e. before the
handler module is imported.

Protocol with the daemon: newline-delimited JSON over the socket inherited as
fd N (never stdout/stderr: handlers print).  Messages from the daemon::

    {"type": "invoke", "seq": 1, "request_id": "...", "deadline_ms": 1700000000000,
     "event": {...}}
    {"type": "shutdown"}

Messages to the daemon::

    {"type": "ready", "pid": 123, "max_rss_kb": 12345}
    {"type": "init_error", "errorType": "Runtime.ImportModuleError", "errorMessage": "...",
     "stackTrace": [...], "hint": "did you mean 'handler'?"}     (hint: optional)
    {"type": "result", "seq": 1, "max_rss_kb": 23456, "payload": <JSON value>}
    {"type": "error", "seq": 1, "max_rss_kb": ..., "errorType": "ValueError",
     "errorMessage": "...", "stackTrace": [...]}
    {"type": "invalid_output", "seq": 1, "max_rss_kb": ..., "errorMessage": "..."}

After each invocation the worker flushes stdout/stderr and writes a sync
marker line (NUL + token + seq) on both, so the daemon can attribute every
output line to its request id before it returns the answer.
"""

from __future__ import annotations

import argparse
import asyncio
import decimal
import difflib
import importlib
import importlib.abc
import inspect
import io
import json
import logging
import os
import resource
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TextIO

# ---------------------------------------------------------------- logging

_CURRENT_REQUEST_ID: str | None = None
# Set when the running invocation wrote to stdout/stderr: only then does the worker
# write the sync markers (and the daemon wait for them) that tie output to the invocation.
_WROTE = False


class _Unbuffered:
    """Like the Lambda runtime: stdout/stderr are flushed on every write."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.stream, attr)

    def write(self, msg: str) -> int:
        global _WROTE
        _WROTE = True
        n = self.stream.write(msg)
        self.stream.flush()
        return n

    def writelines(self, msgs: Iterable[str]) -> None:
        global _WROTE
        _WROTE = True
        self.stream.writelines(msgs)
        self.stream.flush()


class _StandardLogSink:
    def log(self, msg: str, frame_type: bytes | None = None) -> None:
        sys.stdout.write(msg)

    def log_error(self, message_lines: Iterable[str]) -> None:
        sys.stdout.write("\r".join(message_lines) + "\n")


class LambdaLoggerHandler(logging.Handler):
    def __init__(self, log_sink: _StandardLogSink) -> None:
        super().__init__()
        self.log_sink = log_sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            self.log_sink.log(msg)
        except Exception:  # pragma: no cover - mirrors logging.Handler
            self.handleError(record)


class LambdaLoggerFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _CURRENT_REQUEST_ID or ""
        record.tenant_id = None
        return True


def _setup_logging() -> _StandardLogSink:
    sink = _StandardLogSink()
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    handler = LambdaLoggerHandler(sink)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(LambdaLoggerFilter())
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging._nameToLevel:  # noqa: SLF001 - as the Lambda runtime does
        root.setLevel(level)
    return sink


# ---------------------------------------------------------------- older botocore


class _BotocoreEndpoints(importlib.abc.MetaPathFinder):
    """Makes a botocore without configured endpoints (before botocore 1.31 / boto3 1.28, which a
    handler may bundle in its own folder) honour ``AWS_ENDPOINT_URL_<SERVICE>`` and
    ``AWS_ENDPOINT_URL`` as newer ones do: when ``botocore.session`` is imported, its
    ``Session.create_client`` is wrapped to pass that endpoint when the caller gives none. A botocore
    that reads the variables itself is left alone."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "botocore.session":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        _patch_create_client(module)


def _patch_create_client(session_module: Any) -> None:
    try:
        import botocore.configprovider as provider
    except ImportError:  # pragma: no cover - every botocore has it
        return
    if hasattr(provider, "ConfiguredEndpointProvider"):
        return  # this botocore reads AWS_ENDPOINT_URL_* itself
    session_class = session_module.Session
    original = session_class.create_client

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        # positional: region_name, api_version, use_ssl, verify, endpoint_url, ...
        if len(args) < 5 and kwargs.get("endpoint_url") is None:
            url = _configured_endpoint(self, service_name, args[1] if len(args) > 1 else kwargs.get("api_version"))
            if url:
                kwargs["endpoint_url"] = url
        return original(self, service_name, *args, **kwargs)

    create_client.__doc__ = original.__doc__
    session_class.create_client = create_client


def _configured_endpoint(session: Any, service_name: str, api_version: str | None) -> str | None:
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    try:
        service_id = str(session.get_service_model(service_name, api_version).service_id)
    except Exception:  # noqa: BLE001 - an unknown service: create_client will say so
        service_id = service_name
    name = "AWS_ENDPOINT_URL_" + service_id.replace(" ", "_").replace("-", "_").upper()
    return os.environ.get(name) or os.environ.get("AWS_ENDPOINT_URL") or None


def _install_botocore_endpoints() -> None:
    if any(key.startswith("AWS_ENDPOINT_URL") for key in os.environ):
        sys.meta_path.insert(0, _BotocoreEndpoints())


# ---------------------------------------------------------------- context


class LambdaContext:
    """The ``context`` argument, with the attributes of Lambda's Python runtime."""

    def __init__(self, invoke_id: str, epoch_deadline_time_in_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = invoke_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = None
        self.client_context = None
        self.identity = None
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self) -> int:
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def log(self, msg: object) -> None:
        for handler in logging.getLogger().handlers:
            if hasattr(handler, "log_sink"):
                handler.log_sink.log(str(msg))
                return
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )


# ---------------------------------------------------------------- marshalling


def _default(obj: object) -> int | float:
    # The Lambda runtime encodes Decimal (e.g. from DynamoDB) as a number.
    if isinstance(obj, decimal.Decimal):
        if obj.is_nan():
            return float("nan")
        if obj == obj.to_integral_value():
            return int(obj)
        return float(obj)
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")


def _to_json(obj: object) -> str:
    return json.dumps(obj, default=_default)


class _MarshalError(Exception):
    pass


def _marshal_response(response: object) -> str:
    if isinstance(response, (bytes, bytearray, memoryview)):
        # Lambda sends bytes through as the raw payload: it must be JSON to be usable.
        try:
            text = bytes(response).decode("utf-8")
            json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise _MarshalError(f"handler returned bytes that are not JSON: {exc}") from None
        return text
    try:
        return _to_json(response)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise _MarshalError(f"Unable to marshal response: {exc}") from None


# ---------------------------------------------------------------- handler loading


class _InitError(Exception):
    def __init__(self, error_type: str, message: str, trace: list[str] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []
        self.hint = hint


def _split_target(target: str) -> tuple[str, str]:
    if ":" in target:
        module, _, func = target.partition(":")
    else:
        module, _, func = target.rpartition(".")
    return module.replace("/", ".").strip(), func.strip()


def _load_handler(target: str) -> Callable[..., object]:
    modname, fname = _split_target(target)
    if not modname or not fname:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{target}'")
    if modname.split(".")[0] in sys.builtin_module_names:
        raise _InitError(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {modname} as a handler module",
        )
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:
        raise _InitError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{modname}': {exc}",
            traceback.format_exception(exc),
        ) from None
    except SyntaxError as exc:
        raise _InitError(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{modname}': {exc}",
            [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}'],
        ) from None
    except BaseException as exc:  # noqa: BLE001 - user code at import time
        raise _InitError(
            type(exc).__name__,
            f"error while importing module '{modname}': {exc}",
            traceback.format_exception(exc),
        ) from None
    obj: object = module
    for part in fname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            names = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
            close = difflib.get_close_matches(part, names, n=1)
            raise _InitError(
                "Runtime.HandlerNotFound",
                f"Handler '{fname}' missing on module '{modname}'",
                hint=f"did you mean '{close[0]}'?" if close else None,
            ) from None
    if not callable(obj):
        raise _InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{fname}' on module '{modname}' is not callable",
        )
    return obj


# ---------------------------------------------------------------- main loop


_status_fd: list[int] = []


def _max_rss_kb() -> int:
    """Peak resident set size of this process image, in KiB.

    Linux: VmHWM from /proc (``ru_maxrss`` would include the RSS of the
    daemon at fork time, as it survives execve). /proc/self/status stays open:
    one pread per invocation."""
    try:
        if not _status_fd:
            _status_fd.append(os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC))
        data = os.pread(_status_fd[0], 8192, 0)
        i = data.find(b"VmHWM:")
        if i >= 0:
            return int(data[i + 6:data.index(b"\n", i)].split()[0])
    except (OSError, ValueError, IndexError):
        pass
    rss = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS


def _set_parent_death_signal() -> None:
    """Die with the daemon even if a handler hangs (Linux only)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort
        pass


def _flush_and_sync(token: str, seq: int) -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001
            pass
    marker = f"\x00{token}:{seq}\n".encode()
    for fd in (1, 2):
        try:
            os.write(fd, marker)
        except OSError:
            pass


def _extract_trace(tb: TracebackType | None) -> list[str]:
    frames: list[traceback.FrameSummary] = traceback.extract_tb(tb)
    # drop this module's own frames, as Lambda drops bootstrap.py's
    while frames and frames[0].filename == __file__:
        frames = frames[1:]
    return traceback.format_list(frames)


def main(argv: list[str] | None = None) -> int:
    global _CURRENT_REQUEST_ID, _WROTE

    parser = argparse.ArgumentParser(prog="lambda_bridge.python_worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--handler", required=True)
    parser.add_argument("--account-id", default="111122223333")
    parser.add_argument("--sync-token", default="lambda_bridge_sync")
    parser.add_argument("--path", action="append", default=[])
    args = parser.parse_args(argv)

    sock = socket.socket(fileno=args.fd)
    os.set_inheritable(args.fd, False)  # handler subprocesses must not hold it
    _set_parent_death_signal()
    rfile = sock.makefile("rb")

    def send(msg_text: str) -> None:
        sock.sendall(msg_text.encode("utf-8") + b"\n")

    for entry in reversed(args.path):
        if entry not in sys.path:
            sys.path.insert(0, entry)

    for stream in (sys.stdout, sys.stderr):
        try:
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(encoding="utf-8", errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    sys.stdout = _Unbuffered(sys.stdout)
    sys.stderr = _Unbuffered(sys.stderr)
    _setup_logging()
    _install_botocore_endpoints()       # before the handler's module imports its (maybe old) boto3

    region = os.environ.get("AWS_REGION", "us-east-1")
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
    invoked_function_arn = f"arn:aws:lambda:{region}:{args.account_id}:function:{function_name}"

    try:
        handler = _load_handler(args.handler)
    except _InitError as exc:
        _flush_and_sync(args.sync_token, 0)
        send(
            json.dumps(
                {
                    "type": "init_error",
                    "errorType": exc.error_type,
                    "errorMessage": exc.message,
                    "stackTrace": exc.trace,
                    **({"hint": exc.hint} if exc.hint else {}),
                }
            )
        )
        return 1

    loop = asyncio.new_event_loop()  # one event loop per worker, for async handlers
    asyncio.set_event_loop(loop)

    _flush_and_sync(args.sync_token, 0)
    send(json.dumps({"type": "ready", "pid": os.getpid(), "max_rss_kb": _max_rss_kb()}))

    while True:
        line = rfile.readline()
        if not line:
            return 0  # the daemon closed the socket
        msg = json.loads(line)
        mtype = msg.get("type")
        if mtype == "shutdown":
            return 0
        if mtype != "invoke":
            continue
        seq = int(msg["seq"])
        request_id = msg["request_id"]
        _CURRENT_REQUEST_ID = request_id
        _WROTE = False
        context = LambdaContext(request_id, int(msg["deadline_ms"]), invoked_function_arn)
        reply: dict[str, Any]
        payload_text: str | None = None
        try:
            result = handler(msg["event"], context)
            if inspect.isawaitable(result):
                result = loop.run_until_complete(result)
            payload_text = _marshal_response(result)
            reply = {"type": "result", "seq": seq}
        except _MarshalError as exc:
            reply = {"type": "invalid_output", "seq": seq, "errorMessage": str(exc)}
        except Exception as exc:  # noqa: BLE001 - as Lambda: SystemExit ends the runtime
            reply = {
                "type": "error",
                "seq": seq,
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": _extract_trace(exc.__traceback__),
            }
        if _WROTE or "stackTrace" in reply:
            _flush_and_sync(args.sync_token, seq)
        else:
            reply["quiet"] = True           # nothing written: no markers to wait for
        reply["max_rss_kb"] = _max_rss_kb()
        text = json.dumps(reply)
        if payload_text is not None:
            text = text[:-1] + ', "payload": ' + payload_text + "}"
        send(text)
        _CURRENT_REQUEST_ID = None


if __name__ == "__main__":
    sys.exit(main())
