"""``nodejs`` handlers: the worker pool (:mod:`lambda_bridge.pool`) running
``lambda_bridge/node/worker.js``, a Lambda-like Node.js runtime.

* The handler is Lambda's ``file.export`` (``index.handler``, ``src/app.handler``) or
  ``file.ext:export``, relative to the task root (``cfg.code_dir``, else the daemon's working
  directory). ``.js``, ``.mjs`` and ``.cjs`` files are loaded as they are (``require`` or
  ``import``); a TypeScript entry (``.ts``, ``.mts``, ``.cts``) is bundled with esbuild first
  (:func:`bundle`, cached by the files it read).
* What Lambda's Node runtime provides is resolvable without the handler bundling it: ``aws-sdk``
  v2 and ``@aws-sdk/*`` v3 from the runtime directory (``.runtime/node`` beside the package,
  installed by scripts/bootstrap; ``CHIMEVOICE_NODE_RUNTIME`` overrides it), through
  ``NODE_PATH`` for ``require`` and a resolve hook for ``import``.
* ``node/preload.js`` is loaded before the handler: aws-sdk v2 clients honour
  ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` as boto3 and v3 do.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from .config import HandlerConfig, split_node_target
from .errors import HandlerUnreachable
from .pool import BRIDGE_ROOT, PoolInvoker

NODE_DIR = Path(__file__).resolve().parent / "node"
JS_SUFFIXES = (".js", ".mjs", ".cjs")
TS_SUFFIXES = (".ts", ".mts", ".cts")
NODE_RUNTIME = "nodejs20.x"
_BUNDLE_TIMEOUT_S = 60.0

__all__ = ["NodeInvoker", "bundle", "node_binary", "resolve_entry", "runtime_dir"]


def runtime_dir() -> Path:
    """Where the runtime's npm packages are (``<dir>/node_modules``)."""
    configured = os.environ.get("CHIMEVOICE_NODE_RUNTIME")
    return Path(configured) if configured else Path(BRIDGE_ROOT) / ".runtime" / "node"


def node_binary() -> str | None:
    return os.environ.get("CHIMEVOICE_NODE") or shutil.which("node")


def resolve_entry(task_root: str, target: str) -> Path | None:
    """The file a handler target names: as written when it has a suffix, else the first of
    ``.js .mjs .cjs .ts .mts .cts`` that exists (Lambda looks for the first three)."""
    file, _ = split_node_target(target)
    base = Path(task_root, file)
    if base.suffix in JS_SUFFIXES + TS_SUFFIXES and base.is_file():
        return base
    for suffix in JS_SUFFIXES + TS_SUFFIXES:
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


async def bundle(entry: Path, cache_root: Path) -> Path:
    """Bundle a TypeScript (or multi-file) entry with esbuild into ``cache_root``; reuse the
    bundle while none of the files it was built from changed.  The runtime's packages
    (``aws-sdk``, ``@aws-sdk/*``) stay external, as on Lambda.  Raises HandlerUnreachable with
    esbuild's messages (``file:line:col: ERROR: ...``)."""
    entry = entry.resolve()
    key = hashlib.sha256(str(entry).encode()).hexdigest()[:16]
    out_dir = cache_root / "bundles" / key
    out_dir.mkdir(parents=True, exist_ok=True)
    # one builder at a time per entry (two applications, check-config and a daemon...)
    lock = os.open(out_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        return await _bundle_locked(entry, out_dir, cache_root)
    finally:
        os.close(lock)  # releases the lock


async def _bundle_locked(entry: Path, out_dir: Path, cache_root: Path) -> Path:
    out = out_dir / (entry.stem + ".js")
    stamps = out_dir / "inputs.json"
    try:
        recorded = json.loads(stamps.read_text())
        if out.is_file() and all(_stamp(p) == s for p, s in recorded.items()):
            return out
    except (OSError, ValueError, AttributeError):
        pass
    esbuild = cache_root / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        found = shutil.which("esbuild")
        if found is None:
            raise HandlerUnreachable(
                f"{entry}: TypeScript handlers are bundled with esbuild, which is not installed in "
                f"{cache_root} (run scripts/bootstrap)"
            )
        esbuild = Path(found)
    meta = out_dir / "meta.json"
    proc = await asyncio.create_subprocess_exec(
        str(esbuild), str(entry), "--bundle", "--platform=node", "--target=node20", "--format=cjs",
        "--sourcemap", f"--outfile={out}", f"--metafile={meta}", "--log-level=error", "--color=false",
        "--external:aws-sdk", "--external:@aws-sdk/*",
        cwd=str(entry.parent), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), _BUNDLE_TIMEOUT_S)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise HandlerUnreachable(f"{entry}: esbuild did not finish within {_BUNDLE_TIMEOUT_S:g} s") from None
    if proc.returncode != 0:
        raise HandlerUnreachable(
            "esbuild could not bundle the handler: " + _esbuild_errors(output.decode("utf-8", "replace"), entry.parent)
        )
    inputs = json.loads(meta.read_text()).get("inputs", {})
    files = [str((entry.parent / name).resolve()) for name in inputs]
    stamps.write_text(json.dumps({p: _stamp(p) for p in files}))
    return out


_ESBUILD_ERROR = re.compile(r"\[ERROR\]\s*(.+)")
_ESBUILD_WHERE = re.compile(r"^\s+(\S.*?):(\d+):(\d+):\s*$")


def _esbuild_errors(text: str, cwd: Path) -> str:
    """esbuild's report as ``/abs/file.ts:LINE:COL: message`` lines."""
    out: list[str] = []
    message: str | None = None
    for line in text.splitlines():
        m = _ESBUILD_ERROR.search(line)
        if m:
            if message is not None:
                out.append(message)
            message = m.group(1).strip()
            continue
        w = _ESBUILD_WHERE.match(line)
        if w and message is not None:
            out.append(f"{(cwd / w.group(1)).resolve()}:{w.group(2)}:{w.group(3)}: {message}")
            message = None
    if message is not None:
        out.append(message)
    return "; ".join(out) or text.strip()


class NodeInvoker(PoolInvoker):
    """Invoker for ``type: nodejs`` handlers."""

    runtime = "node"

    @staticmethod
    def worker_dir() -> Path:
        return NODE_DIR

    def __init__(self, cfg: HandlerConfig, logger: Any) -> None:
        super().__init__(cfg, logger)
        self.task_root = os.path.abspath(cfg.code_dir) if cfg.code_dir else os.getcwd()
        self.runtime_dir = runtime_dir()
        self.entry: Path | None = None  # the bundle when the handler is TypeScript
        self._prepare_lock = asyncio.Lock()

    async def prepare(self) -> None:
        if node_binary() is None:
            raise HandlerUnreachable(
                f"{self.cfg.function_name}: node is not installed (Node.js 20: run scripts/bootstrap)"
            )
        async with self._prepare_lock:
            source = resolve_entry(self.task_root, self.cfg.target)
            if source is not None and source.suffix in TS_SUFFIXES:
                self.entry = await bundle(source, self.runtime_dir)
            else:
                self.entry = None  # the worker finds (or reports) the file as Lambda does

    def worker_argv(self, fd: int, sync_token: str) -> list[str]:
        node = node_binary() or "node"
        heap_mb = max(64, int(self.cfg.memory_limit_mb * 0.9))  # as Lambda's Node bootstrap
        argv = [
            node,
            "--enable-source-maps",
            f"--max-old-space-size={heap_mb}",
            "--require",
            str(NODE_DIR / "preload.js"),
            str(NODE_DIR / "worker.js"),
            "--fd",
            str(fd),
            "--handler",
            self.cfg.target,
            "--task-root",
            self.task_root,
            "--account-id",
            self.cfg.aws_account_id,
            "--sync-token",
            sync_token,
        ]
        if self.entry is not None:
            argv += ["--entry", str(self.entry)]
        setpriv = shutil.which("setpriv")
        if setpriv:  # die with the daemon, as the Python worker does with prctl
            argv = [setpriv, "--pdeathsig", "KILL", *argv]
        return argv

    def worker_environment(self) -> dict[str, str]:
        cfg = self.cfg
        modules = str(self.runtime_dir / "node_modules")
        node_path = [os.path.join(self.task_root, "node_modules"), *cfg.node_modules, modules, self.task_root]
        env = self.lambda_environment(f"AWS_Lambda_{NODE_RUNTIME}", cfg.target)
        env.update(
            {
                "LAMBDA_RUNTIME_DIR": str(NODE_DIR),
                "NODE_PATH": os.pathsep.join(node_path),
                # where the resolve hook retries an ES module's bare imports, in order
                "CHIMEVOICE_NODE_MODULES": os.pathsep.join([*cfg.node_modules, modules]),
            }
        )
        env.pop("NODE_OPTIONS", None)  # the daemon's own node options are not the function's
        env.update(cfg.environment)
        return env
