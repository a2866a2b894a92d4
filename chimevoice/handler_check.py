"""Configuration check that needs processes: load every ``python`` and ``nodejs`` handler once.

``load_config`` stays pure (it reads YAML); ``check-config`` and ``run`` call
:func:`check_handlers` next, which loads each Python handler in a worker the
way the daemon will (``lambda_bridge.preflight``: same ``python_path`` or
``code_dir``, ``environment`` and Lambda variables; a TypeScript handler is
bundled; nothing is invoked) and reports a module that does not import (or
bundle) or a function that does not exist as a
:class:`ConfigIssue` on the line of the application's ``target`` key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lambda_bridge import HandlerConfig

from .config import Config, ConfigError, ConfigIssue, SipMediaApplication, load_config

DEFAULT_TIMEOUT_S = 10.0


def handler_config(app: SipMediaApplication, config_dir: Path, cfg: Config | None = None) -> HandlerConfig:
    """The invoker's view of an application. With the whole configuration ``cfg``: the variables that
    point its SDKs at chimevoice's endpoints (``aws_local.handler_environment``; the application's own
    ``environment`` wins) and its installed ``requirements.txt`` packages (``packages``) on its path."""
    h = app.handler
    python_path = tuple(str(p) for p in h.python_path) or (str(config_dir),)
    environment = dict(h.environment)
    node_modules: tuple[str, ...] = ()
    if cfg is not None:
        from .aws_local import handler_environment
        from .packages import installed_dir
        environment = {**handler_environment(cfg), **environment}
        if h.type == "python":
            deps = installed_dir(cfg.data_dir, app.id, Path(python_path[0]))
            if deps is not None:
                python_path = (python_path[0], str(deps), *python_path[1:])
        elif h.type == "nodejs":
            deps = installed_dir(cfg.data_dir, app.id, Path(h.code_dir or config_dir), node=True)
            if deps is not None:
                node_modules = (str(deps / "node_modules"),)
    return HandlerConfig(
        type=h.type, target=h.target, function_name=app.name, environment=environment,
        timeout_s=h.timeout_s, retry_after_s=h.retry_after_s, max_retries=h.max_retries,
        workers=h.workers, python_path=python_path,
        aws_region=app.aws_region, aws_account_id=app.aws_account_id,
        memory_limit_mb=h.memory_limit_mb, endpoint_url=h.endpoint_url, headers=dict(h.headers),
        code_dir=str(h.code_dir or config_dir) if h.type == "nodejs" else None, node_modules=node_modules)


def config_dir(cfg: Config) -> Path:
    """The folder handlers without ``python_path`` are imported from (as ``Daemon.run``)."""
    return Path(cfg.source).resolve().parent if cfg.source and cfg.source != "<string>" else Path.cwd()


def check_handlers(cfg: Config, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[ConfigIssue]:
    """One issue per Python or Node.js handler that does not load, in file order (none: all load)."""
    apps = [(i, app) for i, app in enumerate(cfg.sip_media_applications) if app.handler.type in ("python", "nodejs")]
    if not apps:
        return []
    from lambda_bridge.preflight import check_handlers as check_pool_handlers

    folder = config_dir(cfg)
    problems = check_pool_handlers([handler_config(app, folder, cfg) for _, app in apps], timeout_s)
    issues = [ConfigIssue(f"sip_media_applications[{i}].handler.target", app.handler.target_line, problem)
              for (i, app), problem in zip(apps, problems, strict=True) if problem is not None]
    return sorted(issues, key=lambda issue: issue.line or 0)


def load_checked_config(path: str | Path) -> Config:
    """What ``check-config`` and ``run`` accept: the file loads (``load_config``) and every
    Python and Node.js handler in it loads; otherwise ConfigError with all the issues."""
    import sys

    from .packages import install_requirements

    cfg = load_config(path)
    # each handler's requirements.txt, installed once per application (chimevoice.packages)
    issues = install_requirements(cfg, config_dir(cfg), lambda line: print(line, file=sys.stderr, flush=True))
    if issues:
        raise ConfigError(issues, str(path))
    issues = check_handlers(cfg)        # each python/nodejs handler loaded once, not invoked
    if issues:
        raise ConfigError(issues, str(path))
    return cfg


def log_warnings(cfg: Config, path: str | Path | None, log: Any) -> None:
    """One ``config_warning`` line per :attr:`Config.warnings` (``run`` and a reload)."""
    for warning in cfg.warnings:
        log.warning("config_warning", config=path, line=warning.line, key=warning.path, message=warning.message)


def summary(cfg: Config, path: str | Path) -> str:
    """check-config's line for a good file."""
    return (f"{path}: OK ({len(cfg.voice_connectors)} voice connectors, "
            f"{len(cfg.sip_media_applications)} SIP media applications, {len(cfg.sip_rules)} SIP rules, "
            f"{len(cfg.sip.listeners)} listeners)")


__all__ = ["check_handlers", "config_dir", "handler_config", "load_checked_config", "log_warnings", "summary"]
