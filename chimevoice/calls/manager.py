"""The front of the call path: SIP events in, admission and routing, one driver per call.

:class:`CallManager` admits an INVITE (``routing.route_call``: Voice Connector, allow
list, digest, SIP rule), creates the call's :class:`~.driver.CallDriver` and
:class:`~chimevoice.engine.transaction.Transaction`, and hands every later SIP or
media event to the driver that owns the leg (found in the :mod:`.registry`). It also
drains the daemon: refuse new calls, wait, hang up the rest, keep every CDR.
"""
from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from lambda_bridge import Invoker
from sip_rules.admission import CAUSES, Admission, Refused

from ..actions import REGISTRY
from ..cdr import CdrWriter
from ..config import Config, SipMediaApplication
from ..engine import inputs as I
from ..engine.directory import Directory
from ..engine.events import Participant
from ..engine.transaction import Limits as TxLimits
from ..engine.transaction import Target, Transaction
from ..media import worker as mw
from ..media.audio import AudioCache
from ..media.storage import BucketStore
from ..metrics import Metrics
from ..routing import Rejection, route_call
from ..sip import commands as sc
from ..sip import events as ev
from ..speech import Synthesizer, make_synthesizer
from .cdrs import CdrBatcher
from .dialing import HAIRPIN_HEADER, Dialer
from .driver import CallDriver, MediaControl, Services, SipControl, now_ms
from .journal import CdrJournal
from .legs import LegRecord
from .prompts import PromptService
from .registry import CallRegistry, LocalCallRegistry

log = structlog.get_logger("chimevoice.calls")
#: At most one ``call_refused`` log line per cause in this many seconds (a flood must not
#: become a flood of log lines); the line counts the refusals it stands for.
REFUSAL_LOG_INTERVAL_S = 1.0
DRAINING_RETRY_AFTER_S = 5          # the Retry-After of a 503 while draining


def _directory(cfg: Config, dialer: Dialer) -> Directory:
    return Directory(
        phone_numbers=frozenset(dialer.numbers),
        voice_connectors=frozenset(vc.id for vc in cfg.voice_connectors
                                   if vc.origination is not None and not vc.origination.disabled),
        sip_media_applications=frozenset(app.id for app in cfg.sip_media_applications))


class CallManager:
    def __init__(self, cfg: Config, sip: SipControl, invokers: dict[str, Invoker], *,
                 audio: AudioCache, buckets: BucketStore, cdr: CdrWriter, metrics: Metrics,
                 speech: Synthesizer | None = None, media: MediaControl | None = None,
                 registry: CallRegistry[CallDriver] | None = None,
                 loop: asyncio.AbstractEventLoop | None = None, journal: CdrJournal | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.loop = loop or asyncio.get_event_loop()
        self.calls: CallRegistry[CallDriver] = registry if registry is not None else LocalCallRegistry()
        self.cdrs = CdrBatcher(cdr, self.loop, journal)
        self.cdrs.on_idle = self._check_idle
        self.prompts = PromptService(audio, buckets, speech or _synthesizer(cfg), self.loop)
        self.auth_secret = secrets.token_bytes(32)
        self.dialer = Dialer(cfg, hairpin_secret=self.auth_secret)
        self.services = Services(cfg=cfg, sip=sip, media=media, invokers=invokers, prompts=self.prompts,
                                 buckets=buckets, cdrs=self.cdrs, metrics=metrics, registry=self.calls,
                                 dialer=self.dialer, loop=self.loop, ended=self._call_ended)
        self._accepting = True
        self.directory = _directory(cfg, self.dialer)
        self.limits = TxLimits(unanswered_timeout_s=cfg.sip.unanswered_timeout_s)
        self.admission = Admission(cfg.admission, time.monotonic())
        self._refusals: dict[str, tuple[float, int]] = {}       # cause -> (last log line, refused since)
        #: Services of earlier configurations whose calls are still up, with the invokers
        #: that the newer configuration no longer uses (closed when those calls end).
        self.retired: list[tuple[Services, list[Invoker]]] = []
        self.generation = 0
        # counters with known labels are on /metrics from the start, at 0
        for cause in (*CAUSES, "draining"):
            metrics.inc("admission_refusals_total", 0, cause=cause)
        for kind in ("internal", "sip_command_failed"):
            metrics.inc("errors_total", 0, type=kind)
        metrics.inc("auth_failures_total", 0)
        metrics.inc("auth_lockouts_total", 0)
        self.idle = asyncio.Event()         # set when no call is live and every CDR is on disk
        self.object_written: Callable[[str], None] | None = None
        """Told the path of each recording closed in a bucket directory (the embedded S3 endpoint)."""
        self.idle.set()

    # wiring (the endpoint and the media worker are created after the manager)
    @property
    def sip(self) -> SipControl:
        return self.services.sip

    @sip.setter
    def sip(self, value: SipControl) -> None:
        self.services.sip = value
        self._configure_gate()

    @property
    def accepting(self) -> bool:
        """New calls are admitted (False while draining: 503, cause ``draining``)."""
        return self._accepting

    @accepting.setter
    def accepting(self, value: bool) -> None:
        if value != self._accepting:
            self._accepting = value
            self._configure_gate()

    def _configure_gate(self) -> None:
        """Tell the endpoint's admission gate the limits and the drain state: it refuses what
        it can before pjsua makes a call (sip/commands.py ConfigureGate)."""
        lim = self.cfg.admission
        self.services.sip.send(sc.ConfigureGate(
            accepting=self._accepting, draining_retry_after_s=DRAINING_RETRY_AFTER_S,
            max_calls_per_second=lim.max_calls_per_second, burst=lim.burst,
            per_source_rate=lim.per_source_rate, per_source_burst=lim.per_source_burst,
            bypass_header=HAIRPIN_HEADER, bypass_source=self.dialer.local[0].strip("[]")))

    @property
    def media(self) -> Any:
        return self.services.media

    @media.setter
    def media(self, value: Any) -> None:
        self.services.media = value

    # -- events (called on the loop) -----------------------------------------
    def on_sip_events(self, batch: list[ev.SipEvent]) -> None:
        for event in batch:
            self.on_sip_event(event)

    def on_sip_event(self, event: ev.SipEvent) -> None:
        try:
            if isinstance(event, ev.IncomingCall):
                self._incoming(event)
                return
            if isinstance(event, ev.GateRefusals):
                self._gate_refused(event)
                return
            driver = self.calls.by_leg(event.leg_id)
            if driver is not None and not driver.finished:
                driver.on_sip_event(event)
        except Exception:  # noqa: BLE001 - one call's bug must not stop the daemon
            log.exception("sip_event_failed", sip_event=type(event).__name__)
            self.metrics.inc("errors_total", type="internal")

    def on_media_event(self, event: mw.MediaEvent) -> None:
        """An event of the media worker, on the loop."""
        if isinstance(event, mw.RecordingStopped) and self.object_written is not None and event.error is None:
            self.object_written(event.path)     # before the handler hears of it (docs/aws-local.md)
        try:
            driver = self.calls.by_leg(event.leg_id)
            if driver is not None and not driver.finished:
                driver.on_media_event(event)
        except Exception:  # noqa: BLE001
            log.exception("media_event_failed", media_event=type(event).__name__)
            self.metrics.inc("errors_total", type="internal")

    # -- admission --------------------------------------------------------------
    def _incoming(self, call: ev.IncomingCall) -> None:
        self.metrics.inc("sip_invites_total")
        sip = self.services.sip
        if not self.accepting:
            self._refuse(call, "draining", DRAINING_RETRY_AFTER_S)
            return
        hairpin = self._hairpin(call)
        if hairpin is None:                # a leg of a call already admitted is not a new call
            decision = self.admission.admit(call.source_ip, len(self.calls), time.monotonic(),
                                            gated=call.gated)
            if isinstance(decision, Refused):
                self._refuse(call, decision.cause, decision.retry_after_s)
                return
        route = route_call(self.cfg, call, auth_secret=self.auth_secret, trusted=hairpin is not None,
                           hairpin_sma=hairpin[1] if hairpin else None)
        if isinstance(route, Rejection):
            if route.bad_credentials and hairpin is None:
                self._wrong_credentials(call)
            level = log.info if route.status_code == 401 else log.warning
            level("call_rejected", sip_status=route.status_code, reason=route.reason,
                  source=f"{call.source_ip}:{call.source_port}", transport=call.transport,
                  request_uri=call.request_uri, sip_call_id=call.sip_call_id)
            sip.send(sc.Reject(call.leg_id, route.status_code, route.headers))
            self.metrics.inc("calls_rejected_total", code=str(route.status_code))
            return
        tx_id = str(uuid.uuid4())
        start_ms = now_ms()
        shown = {k: v for k, v in call.sip_headers.items() if k.lower() != HAIRPIN_HEADER.lower()}
        participant = Participant(call.leg_id, "LEG-A", route.called, route.caller, "Inbound",
                                  start_ms, sip_headers=shown or None)
        targets = [Target(app.id, app.aws_account_id, app.aws_region) for app in route.applications]
        tx = Transaction(transaction_id=tx_id, leg_a=participant, targets=targets,
                         sip_rule_id=route.rule.id or None, registry=REGISTRY, limits=self.limits,
                         directory=self.directory)
        bound = log.bind(TransactionId=tx_id, CallId=call.leg_id)
        driver = CallDriver(tx, self.services, bound, voice_connector_id=route.connector.id,
                            sip_rule_id=route.rule.id)
        self.calls.add(tx_id, driver)
        driver.add_leg(LegRecord(call.leg_id, "Inbound", route.caller, route.called, start_ms,
                                 sip_call_id=call.sip_call_id, transport=call.transport,
                                 source_address=f"{call.source_ip}:{call.source_port}",
                                 trigger_type=route.rule.trigger_type))
        self.idle.clear()
        self.metrics.inc("calls_total")
        self.metrics.gauge("calls_active", len(self.calls))
        bound.info("call_routed", called=route.called, caller=route.caller, transport=call.transport,
                   source=f"{call.source_ip}:{call.source_port}", sip_call_id=call.sip_call_id,
                   voice_connector=route.connector.id, sip_rule=route.rule.id,
                   sip_media_application=route.applications[0].id)
        driver.feed(I.InboundCallRouted())

    def _wrong_credentials(self, call: ev.IncomingCall) -> None:
        """Counted per source by admission; enough of them lock the source out (cause auth_lockout)."""
        self.metrics.inc("auth_failures_total")
        if self.admission.auth_failed(call.source_ip, time.monotonic()):
            lim = self.cfg.admission
            self.services.sip.send(sc.LockSource(call.source_ip, lim.auth_lockout_s))
            self.metrics.inc("auth_lockouts_total")
            log.warning("auth_lockout", source=call.source_ip, failures=lim.auth_failures,
                        window_s=lim.auth_window_s, lockout_s=lim.auth_lockout_s, sip_call_id=call.sip_call_id,
                        reason="too many INVITEs with wrong digest credentials (password guessing?)")

    def _refuse(self, call: ev.IncomingCall, cause: str, retry_after_s: int) -> None:
        """503 with Retry-After; counted by cause; logged at most once a second per cause."""
        self.services.sip.send(sc.Reject(call.leg_id, 503, (("Retry-After", str(retry_after_s)),)))
        self._count_refusals(cause, 1, f"{call.source_ip}:{call.source_port}", call.sip_call_id, retry_after_s,
                             "admission")

    def _gate_refused(self, report: ev.GateRefusals) -> None:
        """INVITEs the endpoint's gate refused before a call was made: counted and logged as
        if refused here (they never reach :meth:`_incoming`)."""
        for cause, n in report.counts:
            self.metrics.inc("sip_invites_total", n)
            self._count_refusals(cause, n, report.source, report.sip_call_id, report.retry_after_s, "sip_gate")

    def _count_refusals(self, cause: str, n: int, source: str, sip_call_id: str, retry_after_s: int,
                        stage: str) -> None:
        """*stage*: where the 503 was made, ``sip_gate`` (the endpoint's gate, before pjsua made a
        call) or ``admission`` (here, for the checks the gate does not make)."""
        self.metrics.inc("calls_rejected_total", n, code="503")
        self.metrics.inc("admission_refusals_total", n, cause=cause)
        now = time.monotonic()
        last, count = self._refusals.get(cause, (float("-inf"), 0))
        count += n
        if now - last >= REFUSAL_LOG_INTERVAL_S:
            log.warning("call_refused", cause=cause, sip_status=503, retry_after_s=retry_after_s,
                        refused=count, source=source, sip_call_id=sip_call_id, active_calls=len(self.calls),
                        stage=stage)
            self._refusals[cause] = (now, 0)
        else:
            self._refusals[cause] = (last, count)

    def _hairpin(self, call: ev.IncomingCall) -> tuple[str, str] | None:
        """(leg id, SMA id or "") when *call* is one this server placed to itself (a bridge to
        one of its numbers or SIP media applications, signed by the dialler), else None."""
        for value in call.headers.get(HAIRPIN_HEADER.lower(), []):
            found = self.dialer.verify_hairpin(value)
            if found is not None:
                return found
        return None

    # -- outbound calls (the call-control API) -------------------------------------
    def start_outbound(self, app: SipMediaApplication, from_number: str, to_number: str,
                       sip_headers: dict[str, str]) -> CallDriver:
        """A new transaction whose LEG-A is an outbound call from *from_number* to
        *to_number*; the caller feeds it ``OutboundCallRequested``."""
        tx_id = str(uuid.uuid4())
        leg_id = str(uuid.uuid4())
        participant = Participant(leg_id, "LEG-A", to_number, from_number, "Outbound", now_ms())
        tx = Transaction(transaction_id=tx_id, leg_a=participant,
                         targets=[Target(app.id, app.aws_account_id, app.aws_region)],
                         sip_rule_id=None, registry=REGISTRY, limits=self.limits, directory=self.directory)
        connector = next((vc for vc in self.cfg.voice_connectors if from_number in vc.phone_numbers), None)
        bound = log.bind(TransactionId=tx_id, CallId=leg_id)
        driver = CallDriver(tx, self.services, bound,
                            voice_connector_id=connector.id if connector else "",
                            sip_rule_id="")
        self.calls.add(tx_id, driver)
        self.idle.clear()
        self.metrics.inc("calls_total")
        self.metrics.gauge("calls_active", len(self.calls))
        bound.info("outbound_call_requested", to=to_number, caller=from_number,
                   sip_media_application=app.id, sip_headers=sorted(sip_headers))
        return driver

    # -- a new configuration (SIGHUP) ------------------------------------------------
    def reload(self, cfg: Config, invokers: dict[str, Invoker]) -> list[Invoker]:
        """Use *cfg* and *invokers* for every call that starts from now on. Calls in progress
        keep the :class:`Services` they started with (configuration, invokers, dialler); the
        invokers the new configuration does not reuse are closed once their calls have ended
        (returned at once when no call uses them, for the caller to close)."""
        old = self.services
        dialer = Dialer(cfg, hairpin_secret=self.auth_secret)
        # One health table for the OPTIONS prober: kept per connector whose origination is unchanged.
        health = self.dialer.health
        for vc_id in list(health):
            if vc_id not in dialer.health:
                del health[vc_id]
        for vc_id, fresh in dialer.health.items():
            before = old.cfg.voice_connector(vc_id)
            now = cfg.voice_connector(vc_id)
            if vc_id not in health or before is None or now is None or before.origination != now.origination:
                health[vc_id] = fresh
        dialer.health = health
        self.cfg = cfg
        self.dialer = dialer
        self.services = dataclasses.replace(old, cfg=cfg, invokers=dict(invokers), dialer=dialer)
        self.directory = _directory(cfg, dialer)
        self.limits = TxLimits(unanswered_timeout_s=cfg.sip.unanswered_timeout_s)
        if cfg.admission != old.cfg.admission:
            self.admission.reconfigure(cfg.admission, time.monotonic())
            self._configure_gate()
        self.generation += 1
        kept = {id(inv) for inv in invokers.values()}
        unused = [inv for inv in old.invokers.values() if id(inv) not in kept]
        if unused:
            self.retired.append((old, unused))
        return self._release_retired()

    def _release_retired(self) -> list[Invoker]:
        """Invokers of earlier configurations that no live call uses any more."""
        live = {id(d.s) for d in self.calls}
        free: list[Invoker] = []
        keep: list[tuple[Services, list[Invoker]]] = []
        for services, invokers in self.retired:
            if id(services) in live:
                keep.append((services, invokers))
            else:
                free.extend(invokers)
        self.retired = keep
        return free

    # -- the end of calls ---------------------------------------------------------
    def _call_ended(self, driver: CallDriver) -> None:
        if self.retired:
            for inv in self._release_retired():
                self.loop.create_task(inv.close())
                log.info("handler_pool_retired")
        self._check_idle()

    def _check_idle(self) -> None:
        if not len(self.calls) and not self.cdrs.pending:
            self.idle.set()

    @property
    def active_calls(self) -> int:
        return len(self.calls)

    async def drain(self, timeout: float) -> None:
        """Refuse new calls (503) and wait up to *timeout* for live ones to end;
        then hang the rest up and wait for their CDRs."""
        self.accepting = False
        if len(self.calls):
            log.info("draining", active_calls=len(self.calls), timeout_s=timeout)
            try:
                await asyncio.wait_for(self.idle.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        for driver in self.calls:
            for leg_id, rec in driver.legs.items():
                if rec.end_ms is None:
                    self.services.sip.send(sc.Disconnect(leg_id, 0))
        try:
            await asyncio.wait_for(self.idle.wait(), 5)
        except asyncio.TimeoutError:
            log.warning("calls_left_at_shutdown", count=len(self.calls))
        self.prompts.close()
        self.cdrs.close()     # nothing is lost: every queued CDR is written


def _synthesizer(cfg: Config) -> Synthesizer:
    """The configured text-to-speech: local espeak-ng, or Amazon Polly (speech.engine: polly)."""
    sp = cfg.speech
    if sp.engine == "polly":
        return make_synthesizer("polly", cfg.data_dir / "speech-cache", region=sp.polly_region,
                                endpoint_url=sp.polly_endpoint_url)
    return make_synthesizer("local", cfg.data_dir / "speech-cache")
