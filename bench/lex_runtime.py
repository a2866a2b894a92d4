"""Measure the local Lex V2 runtime (chimevoice/api/lex_runtime.py, docs/decisions.md).

One LexRuntime core over the pizza bot, served three ways on 127.0.0.1:
- hypercorn (what chimevoice runs): boto3 over HTTP/1.1, and @aws-sdk/client-lex-runtime-v2 (v3) over h2c;
- aiohttp (HTTP/1.1 only, for comparison: the server the rest of chimevoice's API uses).
Prints RecognizeText latency p50/p99 over N requests each, hypercorn's import time and the resident
memory the first server added. Bounded loops, loopback only.

    .venv/bin/python bench/lex_runtime.py [--requests 300]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from aiohttp import web  # noqa: E402

from chimevoice.api.lex_runtime import HttpRequest, LexRuntime, LexRuntimeServer  # noqa: E402

KEY, SECRET = "bench", "bench-secret"
BOT = {"botId": "LOCALPIZZA", "botAliasId": "TSTALIASID", "localeId": "en_US"}
NODE_SCRIPT = r"""
const { LexRuntimeV2Client, RecognizeTextCommand } = require('@aws-sdk/client-lex-runtime-v2');
(async () => {
  const [url, n] = [process.argv[1], Number(process.argv[2])];
  const c = new LexRuntimeV2Client({ endpoint: url, region: 'us-east-1',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench-secret' } });
  const bot = { botId: 'LOCALPIZZA', botAliasId: 'TSTALIASID', localeId: 'en_US' };
  await c.send(new RecognizeTextCommand({ ...bot, sessionId: 'warm', text: 'order pizza' }));
  const ms = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await c.send(new RecognizeTextCommand({ ...bot, sessionId: `node-${i % 20}`, text: 'I want a large pizza' }));
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  c.destroy();
  console.log(JSON.stringify(ms));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def figures(name: str, ms: list[float]) -> None:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"{name:44s} n={len(ms):4d}  p50 {statistics.median(ms):6.2f} ms  p99 {p99:6.2f} ms")


def boto3_latency(url: str, n: int) -> list[float]:
    lex = boto3.client("lexv2-runtime", endpoint_url=url, region_name="us-east-1",
                       aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    lex.recognize_text(text="order pizza", sessionId="warm", **BOT)
    out = []
    for i in range(n):
        begun = time.perf_counter()
        lex.recognize_text(text="I want a large pizza", sessionId=f"py-{i % 20}", **BOT)
        out.append((time.perf_counter() - begun) * 1000)
    return out


def aiohttp_app(runtime: LexRuntime) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        response = await runtime.handle(HttpRequest(request.method, request.raw_path, tuple(request.headers.items()),
                                                    await request.read(), f"http://{request.host}"))
        return web.Response(status=response.status, body=response.body, headers=dict(response.headers))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    n = min(parser.parse_args().requests, 5000)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    run = lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result(30)  # noqa: E731

    begun = time.perf_counter()
    import hypercorn.asyncio  # noqa: F401
    print(f"hypercorn import: {(time.perf_counter() - begun) * 1000:.0f} ms")
    bots = {"LOCALPIZZA": ROOT / "config" / "bots" / "pizza.yaml"}
    before = rss_kb()
    port = free_port()
    server = LexRuntimeServer(LexRuntime(bots, {KEY: SECRET}), ("127.0.0.1", port))
    run(server.start())
    url = f"http://127.0.0.1:{port}"
    figures("hypercorn HTTP/1.1, boto3", boto3_latency(url, n))
    print(f"resident memory added by hypercorn + the runtime: {rss_kb() - before} KiB")
    node = shutil.which("node")
    modules = ROOT / ".runtime" / "node" / "node_modules"
    if node and (modules / "@aws-sdk" / "client-lex-runtime-v2").is_dir():
        out = subprocess.run([node, "-e", NODE_SCRIPT, url, str(n)], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "NODE_PATH": str(modules)})
        if out.returncode == 0:
            figures("hypercorn h2c, @aws-sdk/client-lex-runtime-v2", json.loads(out.stdout.splitlines()[-1]))
        else:
            print("node v3 run failed:", out.stderr[-500:])
    else:
        print("node or .runtime/node's @aws-sdk/client-lex-runtime-v2 missing: h2c skipped")
    run(server.stop())

    port = free_port()
    runner = web.AppRunner(aiohttp_app(LexRuntime(bots, {KEY: SECRET})), access_log=None)
    run(runner.setup())
    run(web.TCPSite(runner, "127.0.0.1", port).start())
    figures("aiohttp HTTP/1.1, boto3 (comparison)", boto3_latency(f"http://127.0.0.1:{port}", n))
    run(runner.cleanup())
    loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
