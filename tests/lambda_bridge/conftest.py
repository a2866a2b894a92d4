from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lambda_bridge import HandlerConfig, create_invoker

HANDLERS_DIR = Path(__file__).parent / "handlers"
NODE_HANDLERS_DIR = Path(__file__).parent / "node_handlers"


class ListLogger:
    """A structlog-style logger (``.info/.warning/.error(event, **kw)``) that keeps records."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def _log(self, level: str, event: str, **kw: Any) -> None:
        self.records.append({"level": level, "event": event, **kw})

    def info(self, event: str, **kw: Any) -> None:
        self._log("info", event, **kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._log("warning", event, **kw)

    def error(self, event: str, **kw: Any) -> None:
        self._log("error", event, **kw)

    def bind(self, **kw: Any) -> "ListLogger":
        return self

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["event"] == name]

    def output_lines(self) -> list[str]:
        return [r["line"] for r in self.events("handler_output")]


@pytest.fixture
def logger() -> ListLogger:
    return ListLogger()


@pytest.fixture
async def make_invoker(logger):
    """``make_invoker(**HandlerConfig fields)``; every invoker is closed after the test."""
    created = []

    def factory(**kw: Any):
        log = kw.pop("logger", logger)
        kw.setdefault("function_name", "test-fn")
        if kw.get("type") == "nodejs":
            kw.setdefault("code_dir", str(NODE_HANDLERS_DIR))
        elif kw.get("type", "python") == "python":
            kw.setdefault("type", "python")
            kw.setdefault("python_path", (str(HANDLERS_DIR),))
        cfg = HandlerConfig(**kw)
        inv = create_invoker(cfg, logger=log)
        created.append(inv)
        return inv

    yield factory
    await asyncio.gather(*(inv.close() for inv in created))


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def pid_exists(pid: int) -> bool:
    """True while /proc has an entry (zombies included)."""
    return Path(f"/proc/{pid}").exists()


async def wait_until(predicate, timeout: float = 3.0, interval: float = 0.02) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()
