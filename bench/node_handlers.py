#!/usr/bin/env python3
"""Node.js handlers next to Python ones: what an invocation costs in each runtime.

For the same trivial SIP media application handler (answer NEW_INBOUND_CALL with PlayAudio) in
Python (tests/lambda_bridge/handlers/chime_basic.py) and Node.js (tests/lambda_bridge/node_handlers/basic.js):

* cold start  -- a new invoker: worker spawned, handler loaded, first answer (median of --cold runs);
* warm        -- invocations on a warm worker, one at a time: p50 / p95 / max in ms (--runs);
* TypeScript  -- tests/lambda_bridge/node_handlers/ts bundled by esbuild: first start with an empty
  bundle cache, then with the cached bundle (median).

usage: .venv/bin/python bench/node_handlers.py [--runs 500] [--cold 5] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lambda_bridge import HandlerConfig, create_invoker  # noqa: E402
from lambda_bridge.node_invoker import runtime_dir  # noqa: E402

HANDLERS = ROOT / "tests" / "lambda_bridge"
EVENT = {"SchemaVersion": "1.0", "Sequence": 1, "InvocationEventType": "NEW_INBOUND_CALL",
         "CallDetails": {"TransactionId": "t", "Participants": [{"CallId": "c", "ParticipantTag": "LEG-A"}]}}


class _Quiet:
    def __getattr__(self, _name: str) -> Any:
        return lambda *_a, **_k: None


def config(runtime: str, **kw: Any) -> HandlerConfig:
    if runtime == "python":
        return HandlerConfig(type="python", target="chime_basic:handler", function_name="bench-py",
                             python_path=(str(HANDLERS / "handlers"),), workers=1, **kw)
    return HandlerConfig(type="nodejs", target="basic.handler", function_name="bench-node",
                         code_dir=str(HANDLERS / "node_handlers"), workers=1, **kw)


async def cold(cfg: HandlerConfig, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        inv = create_invoker(cfg, logger=_Quiet())
        t = time.perf_counter()
        await inv.invoke(EVENT)
        out.append((time.perf_counter() - t) * 1000)
        await inv.close()
    return out


async def warm(cfg: HandlerConfig, runs: int) -> list[float]:
    inv = create_invoker(cfg, logger=_Quiet())
    await inv.invoke(EVENT)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        await inv.invoke(EVENT)
        out.append((time.perf_counter() - t) * 1000)
    await inv.close()
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if shutil.which("node") is None or not (runtime_dir() / "node_modules").is_dir():
        print("node and .runtime/node are required: run scripts/bootstrap", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    for runtime in ("python", "nodejs"):
        c = await cold(config(runtime), args.cold)
        w = await warm(config(runtime), args.runs)
        results[runtime] = {"cold_ms_median": round(statistics.median(c), 1),
                            "warm_ms_p50": round(pct(w, 0.5), 2), "warm_ms_p95": round(pct(w, 0.95), 2),
                            "warm_ms_max": round(max(w), 2)}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "app"
        shutil.copytree(HANDLERS / "node_handlers" / "ts", src)
        cache = Path(tmp) / "runtime"
        cache.mkdir()
        (cache / "node_modules").symlink_to(runtime_dir() / "node_modules")
        import os
        os.environ["CHIMEVOICE_NODE_RUNTIME"] = str(cache)
        ts = HandlerConfig(type="nodejs", target="index.handler", function_name="bench-ts", code_dir=str(src),
                           workers=1)
        first = await cold(ts, 1)
        cached = await cold(ts, args.cold)
        del os.environ["CHIMEVOICE_NODE_RUNTIME"]
    results["typescript"] = {"first_start_with_bundling_ms": round(first[0], 1),
                             "start_with_cached_bundle_ms_median": round(statistics.median(cached), 1)}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, figures in results.items():
            print(f"{name:<11} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
