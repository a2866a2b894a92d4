"""Wiring: configuration -> SIP endpoint, handler invokers, call manager; run until a signal."""
from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import structlog

from lambda_bridge import HandlerConfig, create_invoker

from .api.control import CallControl
from .calls import CallManager
from .calls.control import ManagerCallControl
from .calls.probing import OptionsProber
from .cdr import CdrWriter
from .config import Config, SipMediaApplication
from .media.audio import AudioCache
from .media.storage import BucketStore
from .media.worker import MediaEvent, MediaWorker, recover_recordings
from .metrics import Metrics
from .sip.commands import Tap
from .sip.events import SipEvent

log = structlog.get_logger("chimevoice.daemon")


def handler_config(app: SipMediaApplication, config_dir: Path, cfg: Config | None = None) -> HandlerConfig:
    """The invoker's view of an application. With the whole configuration ``cfg``: the variables that
    point its SDKs at chimevoice's endpoints (``aws_local.handler_environment``; the application's own
    ``environment`` wins) and its installed ``requirements.txt`` packages (``packages``) on its path."""
    h = app.handler
    python_path = tuple(str(p) for p in h.python_path) or (str(config_dir),)
    environment = dict(h.environment)
    if cfg is not None:
        from .aws_local import handler_environment
        from .packages import installed_dir
        environment = {**handler_environment(cfg), **environment}
        if h.type == "python":
            deps = installed_dir(cfg.data_dir, app.id, Path(python_path[0]))
            if deps is not None:
                python_path = (python_path[0], str(deps), *python_path[1:])
    return HandlerConfig(
        type=h.type, target=h.target, function_name=app.name, environment=environment,
        timeout_s=h.timeout_s, retry_after_s=h.retry_after_s, max_retries=h.max_retries,
        workers=h.workers, python_path=python_path,
        aws_region=app.aws_region, aws_account_id=app.aws_account_id,
        memory_limit_mb=h.memory_limit_mb, endpoint_url=h.endpoint_url, headers=dict(h.headers),
        code_dir=str(h.code_dir or config_dir) if h.type == "nodejs" else None)


def voice_focus_factory():
    """What makes one VoiceFocus noise suppressor (one per leg that enables it)."""
    from .media.voicefocus import VoiceFocus
    return VoiceFocus


def endpoint_settings(cfg: Config):
    from .sip.endpoint import EndpointSettings
    return EndpointSettings(
        listeners=cfg.sip.listeners,
        rtp_port_start=cfg.sip.rtp.port_start, rtp_port_count=cfg.sip.rtp.port_count,
        user_agent=cfg.sip.user_agent,
        pj_log_level=4 if cfg.logging.level == "debug" else 1)


class Daemon:
    def __init__(self, cfg: Config, *, drain_timeout_s: float = 10.0, http: tuple[str, int] | None = None) -> None:
        self.cfg = cfg
        self.drain_timeout_s = drain_timeout_s
        self.http = http
        self.metrics = Metrics()
        self.stopping = asyncio.Event()

    async def run(self) -> int:
        from .sip.endpoint import SipEndpoint  # needs the pjsua2 server build

        cfg = self.cfg
        loop = asyncio.get_running_loop()
        data = cfg.data_dir
        for d in (data, *cfg.buckets.values()):
            Path(d).mkdir(parents=True, exist_ok=True)
        config_dir = Path(cfg.source).resolve().parent if cfg.source and cfg.source != "<string>" else Path.cwd()
        aws = await self._start_aws_local()
        if aws is False:
            return 1
        invokers = {app.id: create_invoker(handler_config(app, config_dir, cfg),
                                           logger=log.bind(sip_media_application=app.id))
                    for app in cfg.sip_media_applications}
        audio = AudioCache(data / "audio-cache", rate=8000)
        journal = data / "recordings-open"
        for path in recover_recordings(journal):
            log.warning("recording_recovered", path=path)
        manager = CallManager(cfg, None, invokers, audio=audio,  # type: ignore[arg-type]
                              buckets=BucketStore(dict(cfg.buckets)), cdr=CdrWriter(data),
                              metrics=self.metrics, loop=loop)
        endpoint: SipEndpoint | None = None
        def post_media(event: MediaEvent) -> None:       # on the media thread
            loop.call_soon_threadsafe(manager.on_media_event, event)

        def post_sip(batch: list[SipEvent]) -> None:      # on the pjsua2 thread
            loop.call_soon_threadsafe(manager.on_sip_events, batch)

        def set_taps(leg: str, incoming: bool, outgoing: bool) -> None:
            if endpoint is not None:
                endpoint.send(Tap(leg, incoming, outgoing))

        media = MediaWorker(post_media, set_taps, journal_dir=journal,
                            voice_focus_factory=voice_focus_factory())
        endpoint = SipEndpoint(endpoint_settings(cfg), post_sip, on_audio=media.on_audio)
        manager.sip = endpoint
        manager.media = media
        polly = None
        if aws is not None:
            manager.object_written = aws.object_written
            from .api.polly import PollyServer
            polly = PollyServer(manager.prompts.speech, aws.keys, cfg.aws_local.polly_listen)
            try:
                await polly.start()
            except OSError as exc:
                log.error("aws_local_start_failed", error=f"polly: {exc}")
                await aws.stop()
                return 1
        media.start()
        try:
            endpoint.start()
        except RuntimeError as exc:
            log.error("sip_start_failed", error=str(exc))
            for inv in invokers.values():
                await inv.close()
            media.stop()
            if polly is not None:
                await polly.stop()
            if aws is not None:
                await aws.stop()
            return 1
        prober = OptionsProber(manager.dialer.health, metrics=self.metrics,
                               bind=cfg.sip.listeners[0].address if cfg.sip.listeners else "0.0.0.0")
        await prober.start()                          # OPTIONS to origination routes (docs/trunks.md)
        for transport, address, port in endpoint.bound:
            log.info("sip_listening", transport=transport, address=address, port=port)
        runner = await self._start_http(manager, endpoint.bound) if self.http else None
        api = await self._start_api(ManagerCallControl(manager)) if cfg.api.listen else None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        log.info("chimevoice_ready", applications=len(invokers), rules=len(cfg.sip_rules),
                 data_dir=str(data))
        await self.stopping.wait()
        if api is not None:
            await api.stop()                          # no new API calls while draining
        log.info("shutting_down", active_calls=manager.active_calls, drain_timeout_s=self.drain_timeout_s)
        await prober.stop()
        await manager.drain(self.drain_timeout_s)
        if runner is not None:
            await runner.cleanup()
        await loop.run_in_executor(None, endpoint.stop)
        await loop.run_in_executor(None, media.stop)      # open recordings are closed and fsynced
        for inv in invokers.values():
            await inv.close()
        if polly is not None:
            await polly.stop()
        if aws is not None:
            await aws.stop()                              # after the handlers that use it
        log.info("stopped", calls_total=self.metrics.counter("calls_total"))
        return 0

    async def _start_aws_local(self):
        """The embedded DynamoDB and S3 endpoint (docs/aws-local.md): an AwsLocal, None when
        ``aws_local`` is off, False when it cannot start (logged)."""
        cfg = self.cfg
        if not cfg.aws_local.enabled:
            return None
        from .aws_local import AwsLocal, AwsLocalError
        aws = AwsLocal(cfg.aws_local, cfg.data_dir, cfg.buckets,
                       accept_keys={k.access_key_id: k.secret_access_key for k in cfg.api.access_keys})
        try:
            await aws.start()
        except (AwsLocalError, OSError) as exc:
            log.error("aws_local_start_failed", error=str(exc))
            return False
        return aws

    async def _start_api(self, control: CallControl):
        """The call-control API (docs/api.md) on ``api.listen``."""
        from .api import ApiServer  # aiohttp and botocore are loaded only when the API is on
        server = ApiServer(self.cfg, control, metrics=self.metrics)
        await server.start()
        return server

    async def _start_http(self, manager: CallManager, listeners: list[tuple[str, str, int]] | None = None):
        from aiohttp import web

        from .status import StatusService, add_routes

        async def metrics(_request):
            if manager.media is not None:
                for name, value in manager.media.stats().items():
                    self.metrics.gauge(name, value)
            return web.Response(text=self.metrics.render(), content_type="text/plain")

        async def health(_request):
            return web.json_response({"status": "ok" if manager.accepting else "draining",
                                      "active_calls": manager.active_calls})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/health", health)
        paths = ["/metrics", "/health", *add_routes(app, StatusService(manager, listeners=listeners or ()))]
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        assert self.http is not None
        await web.TCPSite(runner, self.http[0], self.http[1]).start()
        log.info("http_listening", address=self.http[0], port=self.http[1], paths=paths)
        return runner
