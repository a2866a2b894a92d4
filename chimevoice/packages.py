"""A handler's own dependencies, installed per application as a deployment package carries them
(docs/aws-local.md):

* ``python``: a ``requirements.txt`` beside the handler (in the first ``python_path`` folder) is
  installed with ``pip install --target`` into ``<data_dir>/packages/<application id>/<hash>/``,
  which the worker puts on its path after the handler's folder;
* ``nodejs``: a ``package.json`` with ``dependencies`` in the handler's ``code_dir`` — unless the
  folder has its own ``node_modules`` (a bundled deployment package) — is installed with
  ``npm ci`` (with its ``package-lock.json``) or ``npm install``, ``--omit=dev``, into the same
  kind of folder; its ``node_modules`` is searched by ``require`` after the task root's own.

``check-config`` and ``run`` do it, with a progress line; the same files are installed once (the
folder is kept until they change).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .config import Config, ConfigIssue

__all__ = ["PACKAGE_JSON", "REQUIREMENTS", "install_requirements", "installed_dir", "target_dir"]

REQUIREMENTS = "requirements.txt"
PACKAGE_JSON = "package.json"
PACKAGE_LOCK = "package-lock.json"
_DONE = ".chimevoice-installed"
PIP_TIMEOUT_S = 900.0


def _app_root(data_dir: Path, app_id: str) -> Path:
    return Path(data_dir) / "packages" / app_id


def _node_dependencies(task_root: Path) -> bool:
    """The folder's package.json names dependencies that are not bundled beside it."""
    manifest = Path(task_root) / PACKAGE_JSON
    if not manifest.is_file() or (Path(task_root) / "node_modules").is_dir():
        return False
    try:
        deps = json.loads(manifest.read_text()).get("dependencies")
    except (ValueError, AttributeError, OSError):
        return True                   # npm says what is wrong with it, on the target's line
    return bool(deps)


def target_dir(data_dir: Path, app_id: str, task_root: Path, *, node: bool = False) -> Path | None:
    """Where this application's requirements.txt (or package.json) goes (None: nothing to install)."""
    root = Path(task_root)
    if node:
        if not _node_dependencies(root):
            return None
        files = [root / PACKAGE_JSON, root / PACKAGE_LOCK]
    else:
        files = [root / REQUIREMENTS]
        if not files[0].is_file():
            return None
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files if f.is_file())).hexdigest()[:16]
    return _app_root(data_dir, app_id) / digest


def installed_dir(data_dir: Path, app_id: str, task_root: Path, *, node: bool = False) -> Path | None:
    """The folder of the installed dependencies of the application, when they are installed."""
    target = target_dir(data_dir, app_id, task_root, node=node)
    return target if target is not None and (target / _DONE).is_file() else None


def _install_command(task_root: Path, partial: Path, node: bool) -> list[str]:
    if not node:
        return [sys.executable, "-m", "pip", "install", "--target", str(partial), "-r",
                str(task_root / REQUIREMENTS), "--disable-pip-version-check", "--no-input", "--quiet"]
    shutil.copy(task_root / PACKAGE_JSON, partial / PACKAGE_JSON)
    lock = task_root / PACKAGE_LOCK
    if lock.is_file():
        shutil.copy(lock, partial / PACKAGE_LOCK)
    return ["npm", "ci" if lock.is_file() else "install", "--omit=dev", "--no-audit", "--no-fund",
            "--loglevel=error", "--prefix", str(partial)]


def install_requirements(cfg: Config, config_dir: Path, progress: Callable[[str], None]) -> list[ConfigIssue]:
    """Install the requirements.txt of every Python handler and the package.json dependencies of
    every Node.js handler that has them and are not installed yet; one issue (on the line of the
    handler's target) per installation that failed."""
    issues: list[ConfigIssue] = []
    for index, app in enumerate(cfg.sip_media_applications):
        if app.handler.type not in ("python", "nodejs"):
            continue
        node = app.handler.type == "nodejs"
        if node:
            task_root = Path(app.handler.code_dir or config_dir)
        else:
            task_root = Path(app.handler.python_path[0]) if app.handler.python_path else config_dir
        target = target_dir(cfg.data_dir, app.id, task_root, node=node)
        if target is None or (target / _DONE).is_file():
            continue
        requirements = task_root / (PACKAGE_JSON if node else REQUIREMENTS)
        tool = "npm" if node else "pip"
        progress(f"chimevoice: installing {requirements} for {app.name} into {target} ...")
        begun = time.monotonic()
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            result = subprocess.run(_install_command(task_root, partial, node),
                                    capture_output=True, text=True, timeout=PIP_TIMEOUT_S, cwd=str(task_root))
            failure = None if result.returncode == 0 else (result.stderr or result.stdout).strip()[-800:]
        except (OSError, subprocess.TimeoutExpired) as exc:
            failure = str(exc)
        if failure is not None:
            shutil.rmtree(partial, ignore_errors=True)
            issues.append(ConfigIssue(f"sip_media_applications[{index}].handler.target", app.handler.target_line,
                                      f"{tool} could not install {requirements}: {failure}"))
            continue
        (partial / _DONE).write_text(requirements.read_text())
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        for old in target.parent.iterdir():          # earlier versions of the file
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
        progress(f"chimevoice: installed {requirements} for {app.name} in {time.monotonic() - begun:.1f} s")
    return issues
