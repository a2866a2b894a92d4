"""Configuration check that needs processes: load every ``python`` handler once.

``load_config`` stays pure (it reads YAML); ``check-config`` and ``run`` call
:func:`check_handlers` next, which loads each Python handler in a worker the
way the daemon will (``lambda_bridge.preflight``: same ``python_path``,
``environment`` and Lambda variables; nothing is invoked) and reports a
module that does not import or a function that does not exist as a
:class:`ConfigIssue` on the line of the application's ``target`` key.
"""
from __future__ import annotations

from pathlib import Path

from lambda_bridge import HandlerConfig

from .config import Config, ConfigError, ConfigIssue, SipMediaApplication, load_config

DEFAULT_TIMEOUT_S = 10.0


def handler_config(app: SipMediaApplication, config_dir: Path) -> HandlerConfig:
    """The handler bridge's configuration of *app* (the daemon's and the preflight's)."""
    h = app.handler
    return HandlerConfig(
        type=h.type, target=h.target, function_name=app.name, environment=dict(h.environment),
        timeout_s=h.timeout_s, retry_after_s=h.retry_after_s, max_retries=h.max_retries,
        workers=h.workers, python_path=tuple(str(p) for p in h.python_path) or (str(config_dir),),
        aws_region=app.aws_region, aws_account_id=app.aws_account_id,
        memory_limit_mb=h.memory_limit_mb, endpoint_url=h.endpoint_url, headers=dict(h.headers))


def config_dir(cfg: Config) -> Path:
    """The folder handlers without ``python_path`` are imported from (as ``Daemon.run``)."""
    return Path(cfg.source).resolve().parent if cfg.source and cfg.source != "<string>" else Path.cwd()


def check_handlers(cfg: Config, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[ConfigIssue]:
    """One issue per Python handler that does not load, in file order (none: all load)."""
    apps = [(i, app) for i, app in enumerate(cfg.sip_media_applications) if app.handler.type == "python"]
    if not apps:
        return []
    from lambda_bridge.preflight import check_python_handlers

    folder = config_dir(cfg)
    problems = check_python_handlers([handler_config(app, folder) for _, app in apps], timeout_s)
    issues = [ConfigIssue(f"sip_media_applications[{i}].handler.target", app.handler.target_line, problem)
              for (i, app), problem in zip(apps, problems, strict=True) if problem is not None]
    return sorted(issues, key=lambda issue: issue.line or 0)


def load_checked_config(path: str | Path) -> Config:
    """What ``check-config`` and ``run`` accept: the file loads (``load_config``) and every
    Python handler in it loads; otherwise ConfigError with all the issues."""
    cfg = load_config(path)
    issues = check_handlers(cfg)        # each python handler loaded once, not invoked
    if issues:
        raise ConfigError(issues, str(path))
    return cfg


def summary(cfg: Config, path: str | Path) -> str:
    """check-config's line for a good file."""
    return (f"{path}: OK ({len(cfg.voice_connectors)} voice connectors, "
            f"{len(cfg.sip_media_applications)} SIP media applications, {len(cfg.sip_rules)} SIP rules, "
            f"{len(cfg.sip.listeners)} listeners)")


__all__ = ["check_handlers", "config_dir", "handler_config", "load_checked_config", "summary"]
