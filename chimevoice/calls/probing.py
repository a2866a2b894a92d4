"""OPTIONS probing of origination routes, so that a dead host is skipped without a timeout.

The decisions are :class:`sip_rules.origination.OriginationHealth`'s (a sans-IO state
machine per Voice Connector, shared with the :class:`~.dialing.Dialer`); this module only
ticks it once a second, sends the ``OPTIONS`` requests it asks for and feeds the answers
back. Requests go out from asyncio sockets of their own (UDP: one socket for every probe;
TCP and TLS: one connection per probe), not through pjsua2: a probe is one request and one
response, and keeping it out of the pjsua2 thread keeps that thread for calls.
"""
from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections.abc import Callable

import structlog

from sip_rules.origination import (
    OriginationHealth,
    OriginationRoute,
    ProbeAnswered,
    ProbeFailed,
    RouteDown,
    RouteUp,
    SendOptions,
    Tick,
)

from ..metrics import Metrics

log = structlog.get_logger("chimevoice.probing")

TICK_S = 1.0
TCP_TIMEOUT_S = 5.0


def options_request(route: OriginationRoute, local: str, call_id: str, transport: str) -> bytes:
    """One OPTIONS request to *route* (RFC 3261 §11), ``Call-ID`` *call_id*."""
    branch = "z9hG4bK" + secrets.token_hex(8)
    via = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}[transport]
    return (f"OPTIONS {route.uri()} SIP/2.0\r\n"
            f"Via: SIP/2.0/{via} {local};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:chimevoice@{local}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{route.hostport}>\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            f"Contact: <sip:chimevoice@{local}>\r\n"
            "Accept: application/sdp\r\n"
            "User-Agent: chimevoice\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def parse_response(data: bytes) -> tuple[int, str] | None:
    """(status, Call-ID) of a SIP response, else None."""
    try:
        text = data.decode("utf-8", "replace")
        first, _, rest = text.partition("\r\n")
        proto, code, _ = first.split(" ", 2)
        if not proto.startswith("SIP/2.0"):
            return None
        call_id = ""
        for line in rest.split("\r\n"):
            name, sep, value = line.partition(":")
            if sep and name.strip().lower() in ("call-id", "i"):
                call_id = value.strip()
                break
        return int(code), call_id
    except (ValueError, IndexError):
        return None


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_response: Callable[[int, str], None]) -> None:
        self.on_response = on_response

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        parsed = parse_response(data)
        if parsed is not None:
            self.on_response(*parsed)


class OptionsProber:
    """Ticks every origination's health table and carries out its OPTIONS requests."""

    def __init__(self, health: dict[str, OriginationHealth], *, metrics: Metrics, bind: str = "127.0.0.1",
                 ca_file: str | None = None) -> None:
        self.health = health
        self.metrics = metrics
        self.bind = bind
        self.ssl = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        self._udp: asyncio.DatagramTransport | None = None
        self._local = bind
        self._pending: dict[str, tuple[str, str, float]] = {}   # Call-ID -> (connector, route key, sent)
        self._task: asyncio.Task[None] | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start probing (a no-op when already running or when no route asks for probes)."""
        if self._task is not None or not any(h.interval_s > 0 for h in self.health.values()):
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._answered),
                                                           local_addr=(self.bind, 0))
        self._udp = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self._local = f"{host}:{port}"
        self._task = loop.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for task in list(self._conns):
            task.cancel()
        if self._udp is not None:
            self._udp.close()

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            for call_id, (_, _, sent) in list(self._pending.items()):
                if now - sent > 60:                 # long timed out by the health table
                    del self._pending[call_id]
            for vc_id, health in self.health.items():
                self._outputs(vc_id, health.handle(Tick(now)))
            await asyncio.sleep(TICK_S)

    def _outputs(self, vc_id: str, outputs: tuple[object, ...]) -> None:
        for out in outputs:
            if isinstance(out, SendOptions):
                self._send(vc_id, out.route)
            elif isinstance(out, RouteDown):
                log.warning("origination_route_down", voice_connector=vc_id, route=out.route.key, reason=out.reason)
                self.metrics.inc("origination_route_changes_total", state="down")
            elif isinstance(out, RouteUp):
                log.info("origination_route_up", voice_connector=vc_id, route=out.route.key, reason=out.reason)
                self.metrics.inc("origination_route_changes_total", state="up")

    def _send(self, vc_id: str, route: OriginationRoute) -> None:
        call_id = f"{secrets.token_hex(8)}@chimevoice-probe"
        self._pending[call_id] = (vc_id, route.key, time.monotonic())
        if route.protocol == "udp":
            assert self._udp is not None
            try:
                self._udp.sendto(options_request(route, self._local, call_id, "udp"), (route.host, route.port))
            except OSError as exc:
                self._failed(call_id, f"transport error: {exc}")
            return
        task = asyncio.get_running_loop().create_task(self._stream(call_id, route))
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    async def _stream(self, call_id: str, route: OriginationRoute) -> None:
        tls = route.protocol == "tls"
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                route.host, route.port, ssl=self.ssl if tls else None,
                server_hostname=route.host if tls else None), TCP_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            self._failed(call_id, f"transport error: {exc!r}")
            return
        try:
            host, port = writer.get_extra_info("sockname")[:2]
            writer.write(options_request(route, f"{host}:{port}", call_id, route.protocol))
            await writer.drain()
            data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TCP_TIMEOUT_S)
            parsed = parse_response(data)
            if parsed is not None:
                self._answered(parsed[0], call_id)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            self._failed(call_id, f"no response: {exc!r}")
        finally:
            writer.close()

    def _answered(self, status: int, call_id: str) -> None:
        if status < 200:
            return                                  # a provisional response: wait for the final one
        found = self._pending.pop(call_id, None)
        if found is not None:
            vc_id, key, _ = found
            self._outputs(vc_id, self.health[vc_id].handle(ProbeAnswered(key, status, time.monotonic())))

    def _failed(self, call_id: str, reason: str) -> None:
        found = self._pending.pop(call_id, None)
        if found is not None:
            vc_id, key, _ = found
            self._outputs(vc_id, self.health[vc_id].handle(ProbeFailed(key, time.monotonic(), reason)))
