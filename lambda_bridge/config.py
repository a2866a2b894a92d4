"""Handler configuration (one per SIP media application)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

HANDLER_TYPES = ("python", "nodejs", "http", "lambda")


@dataclass(frozen=True)
class HandlerConfig:
    """How to invoke one SIP media application's handler.

    ``type``      ``"python"`` or ``"nodejs"`` (a Lambda-style function run in
                  worker processes), ``"http"`` (a JSON webhook) or ``"lambda"``
                  (a real AWS Lambda function invoked with boto3).
    ``target``    python: ``"package.module:function"`` (Lambda's
                  ``"module.function"`` spelling is accepted too); nodejs:
                  Lambda's ``"file.export"`` (``"index.handler"``,
                  ``"src/app.handler"``) or ``"file.ts:export"``; http: the
                  URL; lambda: function name, partial or full ARN.
    ``code_dir``  nodejs: the task root the file is relative to (default: the
                  daemon's working directory).
    ``node_modules`` nodejs: more ``node_modules`` folders ``require`` searches
                  after the task root's own (the application's ``package.json``
                  dependencies, installed per application).
    """

    type: str
    target: str
    function_name: str
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 20.0
    retry_after_s: float = 5.0
    max_retries: int = 1
    workers: int = 2
    python_path: tuple[str, ...] = ()
    aws_region: str = "us-east-1"
    aws_account_id: str = "111122223333"
    memory_limit_mb: int = 256
    endpoint_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    code_dir: str | None = None
    node_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in HANDLER_TYPES:
            raise ValueError(
                f"handler type must be one of {', '.join(HANDLER_TYPES)}, got {self.type!r}"
            )
        if not isinstance(self.target, str) or not self.target.strip():
            raise ValueError("handler target must be a non-empty string")
        if not isinstance(self.function_name, str) or not self.function_name:
            raise ValueError("function_name must be a non-empty string")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s!r}")
        if not self.retry_after_s > 0:
            raise ValueError(f"retry_after_s must be > 0, got {self.retry_after_s!r}")
        if int(self.max_retries) != self.max_retries or self.max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")
        if int(self.workers) != self.workers or self.workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {self.workers!r}")
        if not self.memory_limit_mb > 0:
            raise ValueError(f"memory_limit_mb must be > 0, got {self.memory_limit_mb!r}")
        if self.type == "python":
            split_python_target(self.target)  # raises ValueError when malformed
        if self.type == "nodejs":
            split_node_target(self.target)
        if self.type == "http" and not self.target.startswith(("http://", "https://")):
            raise ValueError(f"http handler target must be an http(s) URL, got {self.target!r}")
        # Normalise containers: YAML gives lists and may give non-string
        # environment values (a Lambda environment only holds strings).
        object.__setattr__(self, "python_path", tuple(str(p) for p in self.python_path))
        object.__setattr__(self, "node_modules", tuple(str(p) for p in self.node_modules))
        object.__setattr__(
            self, "environment", {str(k): _env_str(v) for k, v in dict(self.environment).items()}
        )
        object.__setattr__(self, "headers", {str(k): str(v) for k, v in dict(self.headers).items()})
        object.__setattr__(self, "aws_account_id", str(self.aws_account_id))

    # frozen dataclasses hash their fields; dicts are not hashable.
    def __hash__(self) -> int:
        return hash((self.type, self.target, self.function_name))


def _env_str(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def split_python_target(target: str) -> tuple[str, str]:
    """``"pkg.mod:func"`` or Lambda's ``"pkg/mod.func"`` -> (module, attribute path)."""
    target = target.strip()
    if ":" in target:
        module, _, func = target.partition(":")
    else:
        module, _, func = target.rpartition(".")
    module = module.replace("/", ".").strip()
    func = func.strip()
    if not module or not func:
        raise ValueError(
            f"python handler target must look like 'package.module:function', got {target!r}"
        )
    return module, func


def split_node_target(target: str) -> tuple[str, str]:
    """Lambda's ``"dir/file.export"`` (the export may be nested: ``file.a.b``) or
    ``"dir/file.ts:export"`` -> (file, export path); the file has no suffix in Lambda's spelling."""
    target = target.strip()
    if ":" in target:
        file, _, export = target.rpartition(":")
    else:
        head, slash, base = target.rpartition("/")
        name, dot, export = base.partition(".")
        file = f"{head}{slash}{name}" if dot else ""
    file, export = file.strip(), export.strip()
    if not file or not export or file.endswith("/") or export.startswith(".") or export.endswith("."):
        raise ValueError(
            f"nodejs handler target must look like Lambda's 'file.export' (index.handler) or "
            f"'file.ts:export', got {target!r}"
        )
    return file, export
