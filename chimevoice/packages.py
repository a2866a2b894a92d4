"""A Python handler's own dependencies, installed per application as a deployment package carries
them (docs/aws-local.md): a ``requirements.txt`` beside the handler (in the first ``python_path``
folder) is installed with ``pip install --target`` into
``<data_dir>/packages/<application id>/<sha256 of the file>/``, which the worker puts on its path
after the handler's folder. ``check-config`` and ``run`` do it, with a progress line; the same file
is installed once (the folder is kept until the file changes).
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .config import Config, ConfigIssue

__all__ = ["REQUIREMENTS", "install_requirements", "installed_dir", "target_dir"]

REQUIREMENTS = "requirements.txt"
_DONE = ".chimevoice-installed"
PIP_TIMEOUT_S = 900.0


def _app_root(data_dir: Path, app_id: str) -> Path:
    return Path(data_dir) / "packages" / app_id


def target_dir(data_dir: Path, app_id: str, task_root: Path) -> Path | None:
    """Where this application's requirements.txt goes (None: it has none)."""
    file = Path(task_root) / REQUIREMENTS
    if not file.is_file():
        return None
    digest = hashlib.sha256(file.read_bytes()).hexdigest()[:16]
    return _app_root(data_dir, app_id) / digest


def installed_dir(data_dir: Path, app_id: str, task_root: Path) -> Path | None:
    """The folder of the installed requirements of the application, when they are installed."""
    target = target_dir(data_dir, app_id, task_root)
    return target if target is not None and (target / _DONE).is_file() else None


def install_requirements(cfg: Config, config_dir: Path, progress: Callable[[str], None]) -> list[ConfigIssue]:
    """Install the requirements.txt of every Python handler that has one and is not installed yet;
    one issue (on the line of the handler's target) per installation that failed."""
    issues: list[ConfigIssue] = []
    for index, app in enumerate(cfg.sip_media_applications):
        if app.handler.type != "python":
            continue
        task_root = Path(app.handler.python_path[0]) if app.handler.python_path else config_dir
        target = target_dir(cfg.data_dir, app.id, task_root)
        if target is None or (target / _DONE).is_file():
            continue
        requirements = task_root / REQUIREMENTS
        progress(f"chimevoice: installing {requirements} for {app.name} into {target} ...")
        begun = time.monotonic()
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--target", str(partial), "-r", str(requirements),
                 "--disable-pip-version-check", "--no-input", "--quiet"],
                capture_output=True, text=True, timeout=PIP_TIMEOUT_S, cwd=str(task_root))
            failure = None if result.returncode == 0 else (result.stderr or result.stdout).strip()[-800:]
        except (OSError, subprocess.TimeoutExpired) as exc:
            failure = str(exc)
        if failure is not None:
            shutil.rmtree(partial, ignore_errors=True)
            issues.append(ConfigIssue(f"sip_media_applications[{index}].handler.target", app.handler.target_line,
                                      f"pip could not install {requirements}: {failure}"))
            continue
        (partial / _DONE).write_text(requirements.read_text())
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        for old in target.parent.iterdir():          # earlier versions of the file
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
        progress(f"chimevoice: installed {requirements} for {app.name} in {time.monotonic() - begun:.1f} s")
    return issues
