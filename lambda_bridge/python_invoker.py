"""``python`` handlers: the worker pool (:mod:`lambda_bridge.pool`) running
``python -m lambda_bridge.python_worker``, a Lambda-like Python runtime."""

from __future__ import annotations

import os
import sys
from typing import Any

from .config import HandlerConfig
from .pool import BRIDGE_ROOT, MESSAGE_LIMIT, PoolInvoker, describe_exit

__all__ = ["MESSAGE_LIMIT", "PythonInvoker", "describe_exit"]


class PythonInvoker(PoolInvoker):
    """Invoker for ``type: python`` handlers."""

    runtime = "python"

    def __init__(self, cfg: HandlerConfig, logger: Any) -> None:
        super().__init__(cfg, logger)
        self.python_path = tuple(os.path.abspath(p) for p in cfg.python_path)
        self.task_root = self.python_path[0] if self.python_path else os.getcwd()

    def worker_argv(self, fd: int, sync_token: str) -> list[str]:
        """The command line of a worker that talks over the socket ``fd``."""
        argv = [
            sys.executable,
            "-m",
            "lambda_bridge.python_worker",
            "--fd",
            str(fd),
            "--handler",
            self.cfg.target,
            "--account-id",
            self.cfg.aws_account_id,
            "--sync-token",
            sync_token,
        ]
        for entry in self.python_path:
            argv += ["--path", entry]
        return argv

    def worker_environment(self) -> dict[str, str]:
        cfg = self.cfg
        inherited = os.environ.get("PYTHONPATH")
        # handler paths first, then the function's own PYTHONPATH if it sets
        # one, then what the worker needs to import lambda_bridge itself
        py_path = [*self.python_path]
        if cfg.environment.get("PYTHONPATH"):
            py_path.append(cfg.environment["PYTHONPATH"])
        py_path.append(BRIDGE_ROOT)
        if inherited:
            py_path.append(inherited)
        env = self.lambda_environment(
            f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}", cfg.target
        )
        env["PYTHONPATH"] = os.pathsep.join(py_path)
        env.update(cfg.environment)  # the function's configuration wins...
        env["PYTHONPATH"] = os.pathsep.join(py_path)  # ...but must keep lambda_bridge importable
        return env
