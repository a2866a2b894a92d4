"""Wiring: configuration -> SIP endpoint, handler invokers, call manager; run until a signal."""
from __future__ import annotations

import asyncio
import dataclasses
import gc
import ipaddress
import signal
import sys
from pathlib import Path

import structlog

from lambda_bridge import HandlerConfig, Invoker, create_invoker

from .api.control import CallControl
from .api.lex_runtime import LexRuntimeServer
from .calls import CallManager
from .calls.control import ManagerCallControl
from .calls.journal import CdrJournal
from .calls.journal import recover as recover_cdrs
from .calls.probing import OptionsProber
from .cdr import CdrWriter
from .config import Config, ConfigError
from .gcstats import GcStats
from .handler_check import config_dir as config_dir_of
from .handler_check import handler_config, load_checked_config, log_warnings
from .media.audio import AudioCache
from .media.storage import BucketStore
from .media.worker import MediaEvent, MediaWorker, open_recordings, recover_recordings
from .metrics import Metrics
from .sdnotify import Notifier
from .sip.commands import Tap
from .sip.events import SipEvent

log = structlog.get_logger("chimevoice.daemon")


def voice_focus_factory():
    """What makes one VoiceFocus noise suppressor (one per leg that enables it)."""
    from .media.voicefocus import VoiceFocus
    return VoiceFocus


def endpoint_settings(cfg: Config):
    from .sip.endpoint import EndpointSettings
    return EndpointSettings(
        listeners=cfg.sip.listeners,
        rtp_port_start=cfg.sip.rtp.port_start, rtp_port_count=cfg.sip.rtp.port_count,
        rtp_stats_interval_s=cfg.sip.rtp.stats_interval_s,
        clock_realtime_priority=cfg.sip.rtp.realtime_priority,
        user_agent=cfg.sip.user_agent,
        pj_log_level=4 if cfg.logging.level == "debug" else 1)


#: What a reload (SIGHUP) cannot change in a running daemon; a new value is logged as
#: needing a restart and the running value stays.
RESTART_ONLY = ("data_dir", "logging", "speech", "buckets", "api", "aws_local")
RESTART_ONLY_SIP = ("listeners", "rtp", "user_agent")


def restart_needed(old: Config, new: Config) -> list[str]:
    """The keys whose new value a reload does not apply."""
    keys = [k for k in RESTART_ONLY if getattr(old, k) != getattr(new, k)]
    keys += [f"sip.{k}" for k in RESTART_ONLY_SIP if getattr(old.sip, k) != getattr(new.sip, k)]
    return keys


def status_line(manager: CallManager) -> str:
    """The one-line STATUS= for systemd (``systemctl status``)."""
    state = "accepting calls" if manager.accepting else "draining"
    return f"{manager.active_calls} calls active, {state}"



def freeze_startup_objects() -> int:
    """Move every object alive after start-up (modules, configuration, the pjsua2 proxies) out
    of the cyclic collector's reach (``gc.freeze``), so its full collections walk only what
    calls allocate. Without it a full collection under 200 new calls/s walked the whole heap
    and held the GIL for about 80 ms: the p99 of call set-up (docs/decisions.md, "The garbage
    collector"). Returns the number of objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

class Daemon:
    def __init__(self, cfg: Config, *, drain_timeout_s: float = 10.0, http: tuple[str, int] | None = None,
                 config_path: str | None = None, notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        self.drain_timeout_s = drain_timeout_s
        self.http = http
        self.config_path = config_path
        self.notifier = notifier if notifier is not None else Notifier.from_env()
        self.metrics = Metrics()
        self.gc_stats = GcStats()
        self.stopping = asyncio.Event()
        self.manager: CallManager | None = None
        self.handler_configs: dict[str, HandlerConfig] = {}
        self.exit_when_idle = False
        self._reloading: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.api = None
        self.lex: LexRuntimeServer | None = None

    async def run(self) -> int:
        from .sip.endpoint import SipEndpoint  # needs the pjsua2 server build

        cfg = self.cfg
        loop = asyncio.get_running_loop()
        data = cfg.data_dir
        for d in (data, *cfg.buckets.values()):
            Path(d).mkdir(parents=True, exist_ok=True)
        aws = await self._start_aws_local()
        if aws is False:
            return 1
        invokers = self._invokers(cfg, {})
        audio = AudioCache(data / "audio-cache", rate=8000)
        journal = data / "recordings-open"
        cut_recordings = open_recordings(journal)     # repaired beside new calls, once SIP is up
        cdr_writer = CdrWriter(data)
        cdr_journal_dir = data / "cdr-journal"      # open legs' CDRs: kill -9 loses none (calls/journal.py)
        recovered = await loop.run_in_executor(None, recover_cdrs, cdr_journal_dir, cdr_writer, log)
        if recovered:
            log.warning("cdrs_recovered", count=recovered, journal=str(cdr_journal_dir))
        cdr_journal = CdrJournal(cdr_journal_dir)
        cdr_journal.open()
        manager = CallManager(cfg, None, invokers, audio=audio,  # type: ignore[arg-type]
                              buckets=BucketStore(dict(cfg.buckets)), cdr=cdr_writer,
                              metrics=self.metrics, loop=loop, journal=cdr_journal)
        self._spawn(self._journal_heartbeat(cdr_journal))
        self.manager = manager
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
        endpoint = SipEndpoint(endpoint_settings(cfg), post_sip, on_audio=media.on_audio,
                               audio_ready=media.audio_ready)
        manager.sip = endpoint
        manager.media = media
        polly = lex = None
        if aws is not None:
            manager.object_written = aws.object_written
            from .api.lex_runtime import LexRuntime
            from .api.polly import PollyServer
            polly = PollyServer(manager.prompts.speech, aws.keys, cfg.aws_local.polly_listen)
            # the Lex V2 runtime over the local bots StartBotConversation serves (docs/aws-local.md#lex)
            lex = self.lex = LexRuntimeServer(LexRuntime(cfg.bots.local, aws.keys, synthesizer=manager.prompts.speech),
                                              cfg.aws_local.lex_listen)
            try:
                await polly.start()
                await lex.start()
            except OSError as exc:
                log.error("aws_local_start_failed", error=f"{'lex_runtime' if polly.started else 'polly'}: {exc}")
                await polly.stop()
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
            if lex is not None:
                await lex.stop()
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
        self.api = api
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        self._reloading = asyncio.Lock()
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload(prober)))
        frozen = freeze_startup_objects()
        self.gc_stats.install()
        log.info("chimevoice_ready", applications=len(invokers), rules=len(cfg.sip_rules),
                 data_dir=str(data), gc_frozen_objects=frozen)
        self.notifier.ready(status_line(manager))
        self._spawn(self._keepalive(manager, endpoint))
        if cut_recordings:
            self._spawn(self._repair_recordings(cut_recordings))
        await self.stopping.wait()
        self.notifier.stopping(f"stopping, {manager.active_calls} calls active")
        loop.remove_signal_handler(signal.SIGHUP)
        if api is not None:
            await api.stop()                          # no new API calls while draining
        log.info("shutting_down", active_calls=manager.active_calls, drain_timeout_s=self.drain_timeout_s)
        await prober.stop()
        await manager.drain(self.drain_timeout_s)
        for task in list(self._tasks):
            task.cancel()
        if runner is not None:
            await runner.cleanup()
        await loop.run_in_executor(None, endpoint.stop)
        await loop.run_in_executor(None, media.stop)      # open recordings are closed and fsynced
        for inv in [*manager.services.invokers.values(), *(i for _, invs in manager.retired for i in invs)]:
            await inv.close()
        if lex is not None:
            await lex.stop()
        if polly is not None:
            await polly.stop()
        if aws is not None:
            await aws.stop()                              # after the handlers that use it
        self.gc_stats.uninstall()
        log.info("stopped", calls_total=self.metrics.counter("calls_total"))
        self.notifier.close()
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

    async def _journal_heartbeat(self, journal: CdrJournal) -> None:
        """The CDR journal's mtime is the daemon's last moment (the end of calls cut by a crash)."""
        while True:
            journal.heartbeat()
            await asyncio.sleep(1.0)

    async def _repair_recordings(self, entries: list[Path]) -> None:
        """Repair the recordings a crash cut short (each a valid WAV already, up to its last header
        refresh), off the event loop: a thousand of them cost seconds of fsyncs, which must not
        delay the first new call."""
        log.info("recordings_recovering", count=len(entries))
        paths = await asyncio.get_running_loop().run_in_executor(None, recover_recordings, entries)
        for path in paths:
            log.warning("recording_recovered", path=path)
        log.info("recordings_recovered", count=len(paths))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _invokers(self, cfg: Config, current: dict[str, Invoker]) -> dict[str, Invoker]:
        """One invoker per application of *cfg*: the one in *current* when its handler's
        configuration is unchanged, else a new one (a new worker pool)."""
        folder = config_dir_of(cfg)
        out: dict[str, Invoker] = {}
        configs: dict[str, HandlerConfig] = {}
        for app in cfg.sip_media_applications:
            hc = handler_config(app, folder, cfg)
            configs[app.id] = hc
            if app.id in current and self.handler_configs.get(app.id) == hc:
                out[app.id] = current[app.id]
            else:
                out[app.id] = create_invoker(hc, logger=log.bind(sip_media_application=app.id))
        self.handler_configs = configs
        return out

    async def reload(self, prober: OptionsProber | None = None) -> bool:
        """SIGHUP: read the configuration file again (as check-config does: every Python
        handler must load) and use it for new calls; calls in progress keep theirs. A file
        that does not validate is refused with its errors and the running configuration stays."""
        assert self.manager is not None and self._reloading is not None
        manager = self.manager
        async with self._reloading:
            if self.config_path is None:
                log.warning("config_reload_refused", reason="the daemon was not started from a file")
                return False
            self.notifier.reloading()
            log.info("config_reloading", config=self.config_path)
            try:
                new = await asyncio.get_running_loop().run_in_executor(None, load_checked_config, self.config_path)
            except ConfigError as exc:
                log.error("config_reload_refused", config=self.config_path,
                          errors=[issue.format(exc.source) for issue in exc.errors])
                self.metrics.inc("config_reloads_total", result="refused")
                self.notifier.ready(status_line(manager))
                return False
            old = manager.cfg
            later = restart_needed(old, new)
            new = dataclasses.replace(new, **{k: getattr(old, k) for k in RESTART_ONLY},
                                      sip=dataclasses.replace(new.sip, **{k: getattr(old.sip, k)
                                                                          for k in RESTART_ONLY_SIP}))
            invokers = self._invokers(new, manager.services.invokers)
            for inv in manager.reload(new, invokers):
                await inv.close()
                log.info("handler_pool_retired")
            self.cfg = new
            if self.api is not None:
                self.api.reload(new)
            if self.lex is not None:                  # the Lex runtime serves the new bots.local
                self.lex.runtime.local_bots = dict(new.bots.local)
            if prober is not None:
                await prober.start()
            self.metrics.inc("config_reloads_total", result="applied")
            log_warnings(new, self.config_path, log)
            log.info("config_reloaded", config=self.config_path, generation=manager.generation,
                     applications=len(new.sip_media_applications), rules=len(new.sip_rules),
                     voice_connectors=len(new.voice_connectors), active_calls=manager.active_calls,
                     restart_needed=later)
            self.notifier.ready(status_line(manager))
            return True

    def drain(self, *, exit_when_idle: bool = False, resume: bool = False) -> dict:
        """``chimevoice drain``: refuse new calls (503, cause ``draining``) and let live ones
        finish; with *exit_when_idle* the daemon then shuts down; *resume* takes calls again."""
        assert self.manager is not None
        manager = self.manager
        if resume:
            manager.accepting = True
            self.exit_when_idle = False
            log.info("drain_cancelled", active_calls=manager.active_calls)
        else:
            manager.accepting = False
            if exit_when_idle and not self.exit_when_idle:
                self.exit_when_idle = True
                self._spawn(self._exit_when_idle())
            log.info("draining_requested", active_calls=manager.active_calls, exit_when_idle=exit_when_idle)
        self.notifier.status(status_line(manager))
        return {"draining": not manager.accepting, "active_calls": manager.active_calls,
                "exit_when_idle": self.exit_when_idle}

    async def _exit_when_idle(self) -> None:
        assert self.manager is not None
        await self.manager.idle.wait()
        if self.exit_when_idle:
            log.info("drained", calls_total=self.metrics.counter("calls_total"))
            self.stopping.set()

    async def _keepalive(self, manager: CallManager, endpoint) -> None:
        """STATUS= with the call count, and WATCHDOG=1 every half WATCHDOG_USEC while the loop
        runs and the pjsua2 thread is alive (a stuck loop or a dead SIP thread stops the pings,
        and systemd restarts the service)."""
        interval = self.notifier.watchdog_interval_s or 5.0
        last = ""
        while True:
            if self.notifier.watchdog_usec and endpoint.alive:
                self.notifier.watchdog()
            line = status_line(manager)
            if line != last:
                self.notifier.status(line)
                last = line
            await asyncio.sleep(interval)

    async def _start_api(self, control: CallControl):
        """The call-control API (docs/api.md) on ``api.listen``."""
        from .api import ApiServer  # aiohttp and botocore are loaded only when the API is on
        server = ApiServer(self.cfg, control, metrics=self.metrics)
        await server.start()
        return server

    async def _start_http(self, manager: CallManager, listeners: list[tuple[str, str, int]] | None = None):
        from aiohttp import web

        from .malloc import malloc_usage
        from .status import StatusService, add_routes

        async def metrics(_request):
            sip_stats = getattr(manager.services.sip, "stats", None)
            gauges = {**(manager.media.stats() if manager.media is not None else {}),
                      **(sip_stats() if callable(sip_stats) else {}), **malloc_usage(),
                      **self.gc_stats.stats(),
                      # what the interpreter holds: a leak of Python objects or of tasks shows here
                      "python_allocated_blocks": sys.getallocatedblocks(),
                      "asyncio_tasks": len(asyncio.all_tasks())}
            for name, value in gauges.items():
                self.metrics.gauge(name, value)
            return web.Response(text=self.metrics.render(), content_type="text/plain")

        async def health(_request):
            return web.json_response({"status": "ok" if manager.accepting else "draining",
                                      "active_calls": manager.active_calls})

        async def drain(request):
            if not _loopback(request.remote):
                return web.json_response({"error": "drain is accepted from loopback only"}, status=403)
            q = request.query
            return web.json_response(self.drain(exit_when_idle=q.get("exit") in ("1", "true"),
                                                resume=q.get("resume") in ("1", "true")))

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/health", health)
        app.router.add_post("/drain", drain)
        paths = ["/metrics", "/health", "/drain",
                 *add_routes(app, StatusService(manager, listeners=listeners or ()))]
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        assert self.http is not None
        await web.TCPSite(runner, self.http[0], self.http[1]).start()
        log.info("http_listening", address=self.http[0], port=self.http[1], paths=paths)
        return runner


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False
