"""``chimevoice check-handler PATH``: what a Lambda handler needs, before the first call.

PATH is a handler file, ``FILE.py:FUNCTION`` or a repository folder; the handler is found as
``chimevoice init`` finds it (:mod:`.init_cmd`: a SAM/serverless ``Handler:`` line, else the ranked
``handler(event, context)`` functions). Then:

* a Python or Node.js handler is loaded once in a worker, exactly as ``check-config`` loads it
  (``lambda_bridge.preflight``: module imported, function looked up, nothing invoked);
* its code (and the modules it imports from its own folder) is scanned without running it for the AWS
  SDK calls it makes -- boto3 ``client``/``resource`` objects and the methods called on them, AWS SDK
  for JavaScript v2 (``new AWS.DynamoDB.DocumentClient()``) and v3 (``@aws-sdk/client-*`` commands) --
  and for the environment variables it reads;
* each service and operation is marked served by chimevoice or not, as a call made by the handler
  today would actually go (chimevoice's API serves ``chime-sdk-voice`` operations only, and only to a
  client pointed at it; everything else reaches AWS with the daemon's credentials, or fails).

A Node.js handler is loaded the same way, in a Node worker (``type: nodejs``; a TypeScript entry is
bundled first).

Exit status: 0 when the handler loads (operations that are not served are warnings); 1 when no
handler is found or it does not load; 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import ast
import asyncio
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, TextIO

from .init_cmd import (
    _NODE_ENV,
    _NODE_ENV_DESTRUCTURE,
    NODE_SUFFIXES,
    RUNTIME_VARS,
    Candidate,
    _env,
    _parse,
    _show,
    find_candidates,
    node_files,
    node_handlers,
    read_templates,
    scan_handler,
)

# what lambda_bridge's worker sets itself, as the Lambda runtime does (PythonInvoker.worker_environment)
SET_BY_CHIMEVOICE = {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION",
                     "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
                     "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT", "_HANDLER", "TZ",
                     "PYTHONPATH", "NODE_PATH", "LAMBDA_RUNTIME_DIR"}


# --------------------------------------------------------------------------- what is served

def _api_operations() -> tuple[str, ...]:
    from .api.server import IMPLEMENTED
    return IMPLEMENTED


#: what chimevoice/api/lex_runtime.py answers (StartConversation, the event stream, is refused)
LEX_RUNTIME_OPERATIONS = ("RecognizeText", "RecognizeUtterance", "PutSession", "GetSession", "DeleteSession")


def served(service: str, operation: str) -> tuple[bool, str]:
    """Whether a handler's call of *operation* on *service* is answered by chimevoice, and how."""
    if service == "chime-sdk-voice":
        if operation in _api_operations():
            return True, ("chimevoice's API (docs/api.md), only when api.listen is set and the client is pointed "
                          "at it: endpoint_url=http://ADDR:PORT, or AWS_ENDPOINT_URL_CHIME_SDK_VOICE in the "
                          "handler's environment (chimevoice sets it when aws_local is on), signed with an "
                          "api.access_keys key; otherwise it reaches AWS")
        return False, "not implemented by chimevoice's API (it has " + ", ".join(_api_operations()) + ")"
    if service == "chime":
        return False, ("the legacy 'chime' service: chimevoice's API speaks chime-sdk-voice only "
                       "(use boto3.client('chime-sdk-voice'), same operation)")
    if service == "polly":
        if operation in ("SynthesizeSpeech", "DescribeVoices"):
            return True, ("the embedded endpoint (aws_local, docs/aws-local.md): chimevoice's own speech engine, "
                          "via AWS_ENDPOINT_URL_POLLY, which chimevoice sets when aws_local is on; else AWS")
        return False, "not served by aws_local's Polly (SynthesizeSpeech and DescribeVoices only): reaches AWS"
    if service == "lexv2-runtime":
        if operation in LEX_RUNTIME_OPERATIONS:
            return True, ("the embedded endpoint (aws_local, docs/aws-local.md#lex): the local bots of bots.local, "
                          "via AWS_ENDPOINT_URL_LEX_RUNTIME_V2, which chimevoice sets when aws_local is on; else AWS")
        return False, ("not served by aws_local's Lex runtime (" + ", ".join(LEX_RUNTIME_OPERATIONS)
                       + "): reaches AWS")
    if service == "lex-runtime":
        return False, "not served: Lex V1; chimevoice's local bots answer lexv2-runtime and StartBotConversation"
    if service == "s3":
        return True, ("the embedded endpoint (aws_local, docs/aws-local.md): the buckets: folders served as S3, "
                      "the same objects PlayAudio and recordings use, via AWS_ENDPOINT_URL_S3, which chimevoice "
                      "sets when aws_local is on; else AWS")
    if service == "dynamodb":
        return True, ("the embedded endpoint (aws_local, docs/aws-local.md): dynalite, tables kept under the "
                      "data directory, via AWS_ENDPOINT_URL_DYNAMODB, which chimevoice sets when aws_local is "
                      "on; else AWS")
    return False, "not served by chimevoice: reaches AWS with the daemon's credentials"


# --------------------------------------------------------------------------- report records

@dataclass
class SdkCall:
    service: str
    operation: str
    where: str


@dataclass
class ServiceUse:
    service: str
    operation: str
    where: list[str]
    served: bool
    note: str


@dataclass
class EnvUse:
    name: str
    where: str
    required: bool
    default: str | None
    at_import: bool
    set_by: str          # "", "chimevoice" (as Lambda), "inherited" (Lambda sets it; chimevoice passes the daemon's)


@dataclass
class Report:
    path: str
    language: str = "python"
    handler: dict[str, str] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)
    loaded: bool | None = None
    load_error: str | None = None
    files: list[str] = field(default_factory=list)
    aws: list[ServiceUse] = field(default_factory=list)
    environment: list[EnvUse] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    status: int = 0


def summarize(calls: Iterable[SdkCall]) -> list[ServiceUse]:
    rows: dict[tuple[str, str], ServiceUse] = {}
    for c in calls:
        row = rows.get((c.service, c.operation))
        if row is None:
            ok, note = served(c.service, c.operation)
            rows[(c.service, c.operation)] = ServiceUse(c.service, c.operation, [c.where], ok, note)
        elif c.where not in row.where:
            row.where.append(c.where)
    return sorted(rows.values(), key=lambda r: (r.service, r.operation))


# --------------------------------------------------------------------------- Python: boto3

@lru_cache(maxsize=1)
def _services() -> frozenset[str]:
    import botocore.session
    return frozenset(botocore.session.get_session().get_available_services())


@lru_cache(maxsize=64)
def _operations(service: str) -> dict[str, str]:
    """snake_case method -> operation name, from botocore's model."""
    import botocore.session
    from botocore import xform_name
    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:                       # noqa: BLE001 - an unknown model: no mapping
        return {}
    return {xform_name(name): name for name in model.operation_names}


def _camel(method: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in method.split("_"))


# boto3 conveniences that are not operations -> the operation they make
_CLIENT_EXTRAS = {"upload_file": "PutObject", "upload_fileobj": "PutObject", "download_file": "GetObject",
                  "download_fileobj": "GetObject", "batch_writer": "BatchWriteItem"}
_RESOURCE_ACTIONS = {("s3", "get"): "GetObject", ("s3", "put"): "PutObject", ("s3", "delete"): "DeleteObject",
                     ("s3", "load"): "HeadObject", ("s3", "copy_from"): "CopyObject"}
_NOT_CALLS = {"get_paginator", "get_waiter", "generate_presigned_url", "can_paginate", "close", "meta",
              "exceptions", "Table", "Bucket", "Object", "ObjectSummary", "Queue", "Topic", "filter", "all",
              "limit", "page_size"}


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class _Boto3(ast.NodeVisitor):
    """Clients and resources made with ``.client("svc")`` / ``.resource("svc")`` and the methods called
    on them (names bound anywhere in the scanned files; scopes are ignored, as init's scan does)."""

    def __init__(self) -> None:
        self.bound: dict[str, tuple[str, str]] = {}       # name -> (service, "client" | "resource" | "sub")
        self.calls: list[SdkCall] = []
        self.file = Path()

    def _maker(self, node: ast.expr) -> tuple[str, str] | None:
        """(service, kind) when *node* makes a client, a resource or a resource's sub-object."""
        if not isinstance(node, ast.Call):
            return None
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name in ("client", "resource"):
            arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "service_name"),
                                                      None)
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value in _services():
                return arg.value, name
        if isinstance(func, ast.Attribute) and func.attr[:1].isupper():     # ddb.Table(...), s3.Object(...)
            owner = self._owner(func.value)
            if owner and owner[1] in ("resource", "sub"):
                return owner[0], "sub"
        return None

    def _owner(self, node: ast.expr) -> tuple[str, str] | None:
        made = self._maker(node)
        if made:
            return made
        key = _dotted(node)
        return self.bound.get(key) if key else None

    def bind(self, tree: ast.Module) -> None:
        for _ in range(2):                         # twice: a sub-object bound before its resource is seen
            for node in ast.walk(tree):
                value: ast.expr | None = None
                targets: list[ast.expr] = []
                if isinstance(node, ast.Assign):
                    value, targets = node.value, list(node.targets)
                elif isinstance(node, ast.AnnAssign) and node.value is not None:
                    value, targets = node.value, [node.target]
                elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                    value, targets = node.context_expr, [node.optional_vars]
                if value is None:
                    continue
                made = self._maker(value)
                if made:
                    for target in targets:
                        key = _dotted(target)
                        if key:
                            self.bound[key] = made

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = self._owner(func.value)
            if owner is not None:
                self._record(owner, func.attr, node)
        self.generic_visit(node)

    def _record(self, owner: tuple[str, str], method: str, node: ast.Call) -> None:
        service, kind = owner
        ops = _operations(service)
        operation: str | None = None
        if method in ("get_paginator", "generate_presigned_url", "get_waiter") and node.args:
            arg = node.args[0]
            if method != "get_waiter" and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                operation = ops.get(arg.value)
        elif method in _NOT_CALLS or method.startswith("_") or method[:1].isupper():
            operation = None
        elif method in ops:
            operation = ops[method]
        elif method in _CLIENT_EXTRAS:
            operation = _CLIENT_EXTRAS[method]
        elif (service, method) in _RESOURCE_ACTIONS and kind == "sub":
            operation = _RESOURCE_ACTIONS[(service, method)]
        elif kind != "client":
            operation = f"{method} (resource action)"
        elif re.fullmatch(r"[a-z][a-z0-9_]*", method):    # not (or no longer) in this botocore's model
            operation = _camel(method)
        if operation:
            self.calls.append(SdkCall(service, operation, f"{self.file.name}:{node.lineno}"))


def scan_boto3(files: Iterable[Path]) -> list[SdkCall]:
    trees = [(f, t) for f in files if (t := _parse(f)) is not None]
    scanner = _Boto3()
    for _, tree in trees:
        scanner.bind(tree)
    for file, tree in trees:
        scanner.file = file
        scanner.visit(tree)
    return scanner.calls


# --------------------------------------------------------------------------- Node.js: AWS SDK v2 and v3

# SDK v2 class names (AWS.DynamoDB) and v3 package names (client-dynamodb) -> botocore service names
_NODE_SERVICES = {"dynamodb": "dynamodb", "s3": "s3", "polly": "polly", "chimesdkvoice": "chime-sdk-voice",
                  "chime-sdk-voice": "chime-sdk-voice", "chime": "chime", "lexruntimev2": "lexv2-runtime",
                  "lex-runtime-v2": "lexv2-runtime", "lexruntime": "lex-runtime", "lex-runtime-service": "lex-runtime",
                  "secretsmanager": "secretsmanager", "ssm": "ssm", "sns": "sns", "sqs": "sqs", "lambda": "lambda",
                  "sts": "sts", "kinesis": "kinesis", "transcribeservice": "transcribe", "transcribe": "transcribe"}
# DynamoDB DocumentClient (v2 methods, v3 lib-dynamodb commands) -> DynamoDB operations
_DOCUMENT = {"get": "GetItem", "put": "PutItem", "update": "UpdateItem", "delete": "DeleteItem", "query": "Query",
             "scan": "Scan", "batchGet": "BatchGetItem", "batchWrite": "BatchWriteItem",
             "transactGet": "TransactGetItems", "transactWrite": "TransactWriteItems"}
_V2_NEW = re.compile(r"(?:(?:const|let|var)\s+|this\.)?(\w+)?\s*=?\s*new\s+(?:AWS\.)?([A-Z][A-Za-z0-9]*)"
                     r"(\.DocumentClient)?\s*\(")
_V3_IMPORT = re.compile(r"(?:import\s*\{([^}]*)\}\s*from|(?:const|let|var)\s*\{([^}]*)\}\s*=\s*require\()\s*"
                        r"[\"']@aws-sdk/(client|lib)-([\w-]+)[\"']")
_COMMAND = re.compile(r"new\s+(\w+?)Command\s*\(")


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _node_service(name: str) -> str:
    key = name.lower()
    return _NODE_SERVICES.get(key, key if key in _services() else name)


def scan_node_text(text: str, file: str) -> list[SdkCall]:
    calls: list[SdkCall] = []
    uses_v2 = bool(re.search(r"""(?:require\(\s*|from\s+)["']aws-sdk(?:/clients/\w+)?["']""", text)) \
        or "AWS." in text
    if uses_v2:
        objects: dict[str, tuple[str, bool]] = {}     # variable -> (service, document client)
        for m in _V2_NEW.finditer(text):
            var, klass, document = m.group(1), m.group(2), bool(m.group(3))
            if klass.endswith("Command") or klass.endswith("Client") and not document:
                continue                                # v3 clients/commands, scanned below
            service = _node_service(klass)
            if service not in _services() and klass.lower() not in _NODE_SERVICES:
                continue                                # new Date(), new Map(), ...
            if var:
                objects[var] = (service, document)
        for var, (service, document) in objects.items():
            for m in re.finditer(rf"\b{re.escape(var)}\s*\.\s*(\w+)\s*\(", text):
                method = m.group(1)
                if method in ("promise", "then", "on", "send"):
                    continue
                operation = _DOCUMENT.get(method) if document else method[:1].upper() + method[1:]
                if operation:
                    calls.append(SdkCall(service, operation, f"{file}:{_line(text, m.start())}"))
    commands: dict[str, tuple[str, bool]] = {}      # XxxCommand -> (service, from lib-dynamodb)
    for m in _V3_IMPORT.finditer(text):
        names = m.group(1) or m.group(2) or ""
        service = _node_service(m.group(4))
        for raw in names.split(","):
            name = re.split(r"\s+as\s+|\s*:\s*", raw.strip())[0]
            if name.endswith("Command"):
                commands[name] = (service, m.group(3) == "lib")
    for m in _COMMAND.finditer(text):
        command = m.group(1) + "Command"
        service, document = commands.get(command, ("?", False))
        operation = m.group(1)
        if document:
            operation = {"Get": "GetItem", "Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                         "BatchGet": "BatchGetItem", "BatchWrite": "BatchWriteItem"}.get(operation, operation)
        if service == "?" and not re.search(r"@aws-sdk/", text):
            continue
        calls.append(SdkCall(service, operation, f"{file}:{_line(text, m.start())}"))
    return calls


def scan_node_env(text: str, file: str) -> dict[str, EnvUse]:
    found: dict[str, EnvUse] = {}
    hits = [(m.group(1) or m.group(2), m.start()) for m in _NODE_ENV.finditer(text)]
    for m in _NODE_ENV_DESTRUCTURE.finditer(text):
        for raw in m.group(1).split(","):
            name = re.split(r"\s*[:=]\s*", raw.strip())[0]
            if re.fullmatch(r"[A-Za-z_]\w*", name):
                hits.append((name, m.start()))
    for name, offset in sorted(hits, key=lambda h: h[1]):
        found.setdefault(name, EnvUse(name, f"{file}:{_line(text, offset)}", False, None, False, _set_by(name)))
    return found


# --------------------------------------------------------------------------- environment, loading

def _set_by(name: str) -> str:
    if name in SET_BY_CHIMEVOICE:
        return "chimevoice"
    return "inherited" if name in RUNTIME_VARS else ""


_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")


def _import_line(files: Iterable[Path], module: str) -> str | None:
    """file:line of the import of *module* (or of a parent package) in the scanned files."""
    for file in files:
        tree = _parse(file)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if not node.level else []
            if any(n == module or n.startswith(module + ".") or module.startswith(n + ".") for n in names if n):
                return f"{_show(file)}:{node.lineno}"
    return None


def load_python(candidate: Candidate, environment: dict[str, str], timeout_s: float) -> str | None:
    """None when the handler loads in a worker (nothing invoked), else why not."""
    from lambda_bridge.config import HandlerConfig
    from lambda_bridge.preflight import check_python_handler
    cfg = HandlerConfig(type="python", target=candidate.target, function_name=candidate.root.name or "lambda",
                        environment=environment, python_path=(str(candidate.root),))
    return asyncio.run(check_python_handler(cfg, timeout_s))


# --------------------------------------------------------------------------- the command

def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "check-handler", help="list the AWS services and variables a handler uses, and what chimevoice serves",
        description="Find the Lambda handler in PATH (a file, FILE.py:FUNCTION or a repository folder, as "
        "init does), load a Python or Node.js handler once in a worker (not invoked), scan its code for the "
        "AWS SDK operations and environment variables it uses and say which operations chimevoice serves "
        "locally. Exit status 0 when the handler loads (operations not served are warnings), 1 when no "
        "handler is found or it does not load, 2 on bad arguments.")
    p.add_argument("path", metavar="PATH", help="handler file, FILE.py:FUNCTION or repository folder")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", type=_env,
                   help="environment variable for loading the handler (repeatable); literal values of a "
                   "SAM/serverless template are used too")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for the handler "
                   "module to load (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def check(raw: str, env: dict[str, str] | None = None, timeout_s: float = 10.0) -> Report:
    report = Report(raw)
    path, function = Path(raw).expanduser(), None
    if not path.exists() and ":" in raw:
        file_part, _, function = raw.rpartition(":")
        path = Path(file_part).expanduser()
    if not path.exists():
        report.load_error, report.status, report.loaded = f"{raw}: no such file or directory", 1, False
        return report
    path = path.resolve()
    hints = read_templates(path if path.is_dir() else path.parent)
    candidates = [] if path.suffix in NODE_SUFFIXES else find_candidates(path, hints, function)
    hinted_node = any(r.startswith("nodejs") for r in hints.runtimes)
    if not candidates or (hinted_node and candidates[0].score < 1000):
        node = node_handlers(path, hints)
        if node or path.suffix in NODE_SUFFIXES:
            return _check_node(report, path, node, env, timeout_s)
        report.status, report.loaded = 1, False
        report.load_error = ("no handler found: no top-level handler(event, context) or lambda_handler(event, "
                             "context)" + (f" (template Handler: {', '.join(hints.handlers)})" if hints.handlers
                                           else "") + "; name it: chimevoice check-handler FILE.py:FUNCTION")
        return report
    best = candidates[0]
    report.handler = {"file": _show(best.file), "function": best.function, "target": best.target,
                      "python_path": _show(best.root), "why": best.why}
    report.others = [f"{_show(c.file)}: {c.function}" for c in candidates[1:6]]
    scan = scan_handler(best)
    report.files = [_show(f) for f in scan.files]
    report.aws = summarize(scan_boto3(scan.files))
    report.environment = [EnvUse(r.name, r.where, r.required, r.default, r.at_import, _set_by(r.name))
                          for r in scan.env.values()]
    environment = {**hints.environment, **(env or {})}
    problem = load_python(best, environment, timeout_s)
    report.loaded = problem is None
    if problem is not None:
        missing = _MISSING_MODULE.search(problem)
        where = _import_line(scan.files, missing.group(1)) if missing else None
        report.load_error = problem + (f" (imported at {where})" if where else "")
        report.status = 1
        absent = [r.name for r in scan.env.values() if r.at_import and r.required and r.name not in environment
                  and not _set_by(r.name)]
        if absent:
            report.notes.append("read at import without a default: " + ", ".join(absent)
                                + " (give them with --env NAME=VALUE)")
    return report


def _check_node(report: Report, path: Path, found: list[str], environment: dict[str, str] | None = None,
                timeout_s: float = 10.0) -> Report:
    report.language = "node"
    base = path if path.is_dir() else path.parent
    entry = [base / f.split(":")[0] for f in found] or [path]
    report.handler = {"file": ", ".join(found) or path.name}
    files = node_files(entry)
    report.files = [_show(f) for f in files]
    calls: list[SdkCall] = []
    env: dict[str, EnvUse] = {}
    for file in files:
        text = file.read_text(errors="replace")
        calls.extend(scan_node_text(text, file.name))
        for name, use in scan_node_env(text, file.name).items():
            env.setdefault(name, use)
    report.aws = summarize(calls)
    report.environment = list(env.values())
    targets = [_node_target(f) for f in found]
    if not targets:
        report.status, report.loaded = 1, False
        report.load_error = f"no exports.handler (or export const handler) found in {path.name}"
        return report
    report.handler["target"], report.handler["code_dir"] = targets[0], _show(base)
    problem = load_node(targets[0], base, {**read_templates(base).environment, **(environment or {})}, timeout_s)
    report.loaded = problem is None
    if problem is not None:
        report.load_error, report.status = problem, 1
    report.notes.append(f"run it with handler: {{type: nodejs, target: {targets[0]}, code_dir: {_show(base)}}}")
    return report


def _node_target(found: str) -> str:
    """``"src/index.js: exports.handler"`` -> Lambda's ``"src/index.handler"``."""
    file, _, export = found.partition(": ")
    stem = file.rsplit(".", 1)[0] if "." in file.rsplit("/", 1)[-1] else file
    return f"{stem}.{export.removeprefix('exports.')}"


def load_node(target: str, code_dir: Path, environment: dict[str, str], timeout_s: float) -> str | None:
    """None when the Node.js handler loads in a worker (nothing invoked), else why not."""
    from lambda_bridge.config import HandlerConfig
    from lambda_bridge.preflight import check_handler
    cfg = HandlerConfig(type="nodejs", target=target, function_name=code_dir.name or "lambda",
                        environment=environment, code_dir=str(code_dir))
    return asyncio.run(check_handler(cfg, timeout_s))


def render(report: Report, out: TextIO) -> None:
    w = out.write
    if report.handler:
        h = report.handler
        if report.language == "python":
            w(f"Handler: {h['file']}, function {h['function']} ({h['why']})\n")
            w(f"  target: {h['target']}   python_path: {h['python_path']}\n")
        else:
            w(f"Node.js handler: {h['file']}\n")
        if len(report.files) > 1:
            w(f"  scanned with: {', '.join(report.files[1:])}\n")
        if report.others:
            w(f"  also looks like a handler: {'; '.join(report.others)}\n")
    if report.language == "node" and report.handler.get("target"):
        w(f"  target: {report.handler['target']}   code_dir: {report.handler['code_dir']}\n")
    if report.language == "python" or report.loaded is not None:
        if report.loaded:
            w("Load: OK (module imported, function found, not invoked)\n")
        else:
            w(f"Load: FAILED: {report.load_error}\n")
    if report.aws:
        w(f"AWS SDK calls ({len(report.aws)}):\n")
        ws = max(len(r.service) for r in report.aws)
        wo = max(len(r.operation) for r in report.aws)
        wl = max(len(", ".join(r.where[:3])) for r in report.aws)
        w(f"  {'SERVICE':<{ws}}  {'OPERATION':<{wo}}  {'WHERE':<{wl}}  SERVED BY CHIMEVOICE\n")
        for r in report.aws:
            where = ", ".join(r.where[:3]) + (f" +{len(r.where) - 3}" if len(r.where) > 3 else "")
            w(f"  {r.service:<{ws}}  {r.operation:<{wo}}  {where:<{wl}}  "
              f"{'yes, via the API*' if r.served else 'no'}\n")
        notes: dict[str, list[str]] = {}
        for r in report.aws:
            notes.setdefault(("* " if r.served else "") + r.service + ": " + r.note, []).append(r.operation)
        for text in notes:
            w(f"  {text}\n")
    elif report.handler:
        w("AWS SDK calls: none found\n")
    if report.environment:
        w(f"Environment variables ({len(report.environment)}):\n")
        width = max(len(e.name) for e in report.environment)
        wwhere = max(len(e.where) for e in report.environment)
        for e in report.environment:
            kind = "required" if e.required else f"default {e.default!r}" if e.default is not None else "optional"
            by = {"chimevoice": "set by chimevoice, as by Lambda",
                  "inherited": "set by Lambda; chimevoice passes the daemon's own value"}.get(e.set_by, "")
            extra = ", ".join(x for x in (kind if report.language == "python" else "",
                                          "at import" if e.at_import else "", by) if x)
            w(f"  {e.name:<{width}}  {e.where:<{wwhere}}{'  ' + extra if extra else ''}\n".rstrip() + "\n")
    elif report.handler:
        w("Environment variables: none found\n")
    for note in report.notes:
        w(f"note: {note}\n")
    unserved = [r for r in report.aws if not r.served]
    if unserved:
        w(f"warning: {len(unserved)} operation{'s' if len(unserved) != 1 else ''} not served by chimevoice: "
          "they go to AWS (daemon's credentials) or fail\n")
    if not report.handler and report.load_error:
        w(f"chimevoice: {report.load_error}\n")


def to_json(report: Report) -> dict[str, Any]:
    return asdict(report)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    report = check(args.path, dict(args.env), args.timeout)
    if args.json:
        out.write(json.dumps(to_json(report), indent=2) + "\n")
    else:
        render(report, out)
    return report.status


__all__ = ["Report", "SdkCall", "ServiceUse", "EnvUse", "add_parser", "check", "run", "scan_boto3",
           "scan_node_text", "served", "summarize"]
