"""The pjsua2 thread boundary: the only module in chimevoice that imports pjsua2.

One dedicated thread creates the pjsua2 library, runs ``libHandleEvents`` and
owns every pjsua2 object (calls, players, transports). The rest of the daemon
is asyncio and talks to this thread only through

* commands: typed values (:mod:`chimevoice.sip.commands`) that
  :meth:`SipEndpoint.send` puts on a thread-safe queue; the pjsua2 thread drains it
  between polls through one dispatch table (``_Core._dispatch``), and a command that
  fails comes back as ``CommandFailed`` carrying the command itself;
* events: plain dataclasses from :mod:`chimevoice.sip.events`, handed over in
  one batch per poll to the ``post`` callback (the daemon wraps it with
  ``loop.call_soon_threadsafe``);
* audio: a leg's audio is tapped only on request (:meth:`SipEndpoint.tap`), by a
  ``FrameTap`` port of our pjsua2 build (scripts/pjsua2/frametap.i). Each poll the
  captured PCM is handed to the ``on_audio`` callback in one batch.

pjsua2 runs with ``threadCnt = 0`` and ``mainThreadOnly = True`` so that every
callback arrives on this thread. No Python runs on pjmedia's clock thread (the
conference bridge): players are plain pjsua2 objects and the end of a playback
is a deadline this thread keeps.
"""
from __future__ import annotations

import heapq
import queue
import resource
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj
import structlog

from chimevoice.config import Listener
from chimevoice.osthread import name_thread, set_os_thread_name, set_realtime, thread_ids
from chimevoice.text import escape_undecodable as _text

from . import commands as sc
from . import events as ev
from .message import (
    body_shorter_than_declared,
    chime_sip_headers,
    info_dtmf,
    offers_srtp,
    parse_request,
    via_transport,
)

log = structlog.get_logger("chimevoice.sip")

_POLL_MS = 10
# A play's deadline falls this long after its nominal end: the bridge starts pulling
# a new player on its next 20 ms tick, and a late deadline only adds silence.
_END_MARGIN_S = 0.03
# Audio frames: 20 ms at the bridge clock. A tap buffers at most this much capture
# (older audio is dropped if nobody reads: 5 s rides out a starved pjsua2 thread) and this much
# queued playout.
_FRAME_MS = 20
_TAP_CAPTURE_MS = 5000
_TAP_PLAYOUT_MS = 2000
# Tapped audio is handed over every 100 ms (five frames): fewer, larger chunks for the
# media worker, at a latency DTMF detection and recordings do not notice.
_TAP_READ_S = 0.1
_GATE_CAUSES = ("draining", "auth_lockout", "source_rate", "rate")   # frametap.i GateReport's order
# SendDigits: a comma waits this long (03b §1.3 S2).
COMMA_PAUSE_MS = 500
# VoiceFocus toward other legs: the suppressor's maximum attenuation (as media/voicefocus.py).
_DENOISE_DB = -30
# How often the pjsua2 thread looks for live legs whose RTP totals are due.
_RTP_ROUND_S = 0.5
# Accounts kept for outbound calls (one per caller id); pjsua allows 64 in our build.
_MAX_DIAL_ACCOUNTS = 48
# PJSIP_ESESSIONTERMINATED: a command found the leg's INVITE session already gone.
_SESSION_TERMINATED = 171140


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    listeners: tuple[Listener, ...]
    rtp_port_start: int = 20000
    rtp_port_count: int = 10000
    rtp_stats_interval_s: float = 10.0      # a live leg's RTP totals are posted this often (RtpProgress)
    clock_realtime_priority: int = 0        # SCHED_RR priority of the conference clock thread (0: off)
    max_calls: int = 2048
    clock_rate: int = 8000
    user_agent: str = "chimevoice"
    pj_log_level: int = 1
    codec_priority: tuple[str, ...] = ("PCMU/8000", "PCMA/8000", "G722/16000")


class SipEndpoint:
    """asyncio-facing facade over the pjsua2 thread. Every method is thread-safe
    and returns at once; results arrive later as events."""

    def __init__(self, settings: EndpointSettings, post: Callable[[list[ev.SipEvent]], None],
                 on_audio: Callable[[list[tuple[str, str, bytes]]], None] | None = None,
                 audio_ready: Callable[[], bool] | None = None) -> None:
        """*post* receives the events of one poll iteration as a list, on the pjsua2 thread;
        it must only hand them over (e.g. ``loop.call_soon_threadsafe``). *on_audio*
        receives ``[(leg_id, track, pcm), ...]`` for tapped legs, also on the pjsua2
        thread; *track* is ``"in"`` (from the caller) or ``"out"`` (sent to the caller);
        *pcm* is 16-bit little-endian mono at the bridge clock rate. *audio_ready* (any
        thread, cheap) says whether the consumer has taken the last batch: while it says no,
        the taps are not read and the audio waits in them (up to their 5 s), so a consumer
        that falls behind gets one larger batch later instead of a queue of small ones."""
        self._settings = settings
        self._post = post
        self._on_audio = on_audio
        self._audio_ready = audio_ready
        self._commands: queue.SimpleQueue[sc.SipCommand] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._core: _Core | None = None
        self.bound: list[tuple[str, str, int]] = []

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout: float = 15.0) -> None:
        """Start the pjsua2 thread; raise if the library or a listener fails."""
        self._thread = threading.Thread(target=self._run, name="pjsua2", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("pjsua2 did not start in time")
        if self._start_error is not None:
            raise RuntimeError(f"SIP endpoint failed to start: {self._start_error}") from self._start_error

    def stop(self, timeout: float = 10.0) -> None:
        """Hang up every call, destroy the library and join the thread."""
        if self._thread is None:
            return
        self._commands.put(sc.Shutdown())
        self._thread.join(timeout)
        self._thread = None

    @property
    def alive(self) -> bool:
        """The pjsua2 thread is running (the watchdog pings only while it is)."""
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict[str, float]:
        """Gauges for /metrics, as the pjsua2 thread counted them at its last RTP round (a
        snapshot of plain numbers: reading them takes no pjsua call off its thread)."""
        core = self._core
        return dict(core.counts) if core is not None else {}

    # -- commands (any thread) -------------------------------------------
    def send(self, cmd: sc.SipCommand) -> None:
        """Hand a command to the pjsua2 thread (returns at once; results come as events)."""
        self._commands.put(cmd)

    # -- the pjsua2 thread -------------------------------------------------
    def _run(self) -> None:
        set_os_thread_name("cv-pjsua2")
        try:
            core = _Core(self._settings, self._post, self._commands, self._on_audio, self._audio_ready)
            core.create()
            self.bound = core.bound
            self._core = core
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        try:
            core.loop()
        finally:
            core.destroy()


class _Core:
    """State owned by the pjsua2 thread. Never touched from another thread."""

    def __init__(self, settings: EndpointSettings, post_batch: Callable[[list[ev.SipEvent]], None],
                 commands: queue.SimpleQueue,
                 on_audio: Callable[[list[tuple[str, str, bytes]]], None] | None = None,
                 audio_ready: Callable[[], bool] | None = None) -> None:
        self.pj = pj
        self.settings = settings
        self.post_batch = post_batch
        self.outbox: list[ev.SipEvent] = []
        self.commands = commands
        self.calls: dict[str, _Call] = {}
        self.players: dict[tuple[str, str], _Playback] = {}
        self.counts: dict[str, float] = {}          # _count(): read by SipEndpoint.stats (any thread)
        self.deadlines: list[tuple[float, int, tuple[str, str]]] = []   # heap of playback ends
        self.on_audio = on_audio
        self.audio_ready = audio_ready
        self.tapped: dict[str, _Call] = {}                  # legs with a FrameTap
        self.tap_dropped_bytes = 0                  # audio the released taps had to drop (overflow)
        self.clock_realtime = 0                     # the clock thread's SCHED_RR priority (0: normal)
        # Leg-to-leg audio (source, sink) -> applied (both legs had media); see LinkAudio.
        self.links: dict[tuple[str, str], bool] = {}
        self.links_of: dict[str, set[tuple[str, str]]] = {}
        # Accounts for outbound calls, one per (From URI, credentials); see _dial_account.
        self.dial_accounts: dict[tuple[str, Any, bool, bool], _Account] = {}
        self.senders: dict[tuple[str, str], _DigitSender] = {}
        self.send_heap: list[tuple[float, int, tuple[str, str]]] = []   # next step of each sender
        self._seq = 0
        self._next_tap_read = 0.0
        self._next_rtp_round = 0.0
        self.bound: list[tuple[str, str, int]] = []
        self.tls_transport: int | None = None      # the first tls listener: outbound TLS goes through it
        self.running = True
        self._garbage: list = []
        self.gate: sc.ConfigureGate | None = None   # the admission gate's settings, once configured
        self._gate_total = 0                        # its refusals reported so far
        self._gate_counts = (0, 0, 0, 0)            # per cause (draining, auth_lockout, source_rate, rate)

    # lifecycle
    def create(self) -> None:
        pj = self.pj
        s = self.settings
        _raise_fd_limit(s.max_calls * 4 + 256)
        _route_pjlib_log(s.pj_log_level)    # libCreate (pj_init) logs before libInit installs the writer
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = s.max_calls
        cfg.uaConfig.userAgent = s.user_agent
        cfg.logConfig.level = s.pj_log_level
        cfg.logConfig.consoleLevel = s.pj_log_level     # pjsua gives the writer what is <= consoleLevel
        self.log_writer = _LogWriter(_LogBudget() if s.pj_log_level < 4 else None)
        cfg.logConfig.writer = self.log_writer
        cfg.logConfig.decor = 0
        med = cfg.medConfig
        med.clockRate = s.clock_rate
        med.sndClockRate = s.clock_rate
        med.channelCount = 1
        med.noVad = True
        med.ecTailLen = 0           # no echo canceller: we are a server, not a handset
        med.quality = 4
        med.threadCnt = 1
        med.maxMediaPorts = s.max_calls * 4 + 64     # stream, player and two taps per call
        med.sndAutoCloseTime = -1   # keep the bridge clock running (see below)
        before = thread_ids()
        self.ep.libInit(cfg)
        inited = thread_ids()
        self.ep.audDevManager().setNullDev()
        self._media_threads(inited - before, thread_ids() - inited)
        kinds = {("udp", 4): pj.PJSIP_TRANSPORT_UDP, ("tcp", 4): pj.PJSIP_TRANSPORT_TCP,
                 ("tls", 4): pj.PJSIP_TRANSPORT_TLS, ("udp", 6): pj.PJSIP_TRANSPORT_UDP6,
                 ("tcp", 6): pj.PJSIP_TRANSPORT_TCP6, ("tls", 6): pj.PJSIP_TRANSPORT_TLS6}
        for lst in s.listeners:
            tc = pj.TransportConfig()
            tc.port = lst.port
            tc.boundAddress = lst.address
            if lst.transport == "tls":
                tc.tlsConfig.certFile = str(lst.certificate)
                tc.tlsConfig.privKeyFile = str(lst.private_key)
                if lst.ca_list:
                    tc.tlsConfig.CaListFile = str(lst.ca_list)
                # outbound TLS (origination routes) checks the far end's certificate and name
                tc.tlsConfig.verifyServer = bool(lst.verify_server)
                tc.tlsConfig.verifyClient = bool(lst.verify_client)
                tc.tlsConfig.requireClientCert = bool(lst.verify_client)
            kind = kinds[(lst.transport, 6 if ":" in lst.address else 4)]
            try:
                tid = self.ep.transportCreate(kind, tc)
            except pj.Error as exc:
                raise RuntimeError(f"cannot listen on {lst.transport}:{lst.address}:{lst.port}: "
                                   f"{exc.info()}") from None
            self.bound.append((lst.transport, lst.address, lst.port))
            if lst.transport == "tls" and self.tls_transport is None:
                self.tls_transport = tid
        self.ep.libStart()
        # pjsua opens the (null) sound device, which clocks the conference bridge, only on
        # the first connection and closes it when idle. Without the clock a call with
        # nothing playing sends no RTP at all (no keep-alive, no RFC 4733 events): open it
        # now and never close it.
        adm = self.ep.audDevManager()
        adm.getCaptureDevMedia().startTransmit(adm.getPlaybackDevMedia())
        self._set_codec_priorities()
        acfg = pj.AccountConfig()
        first = s.listeners[0]
        host = f"[{first.address}]" if ":" in first.address else first.address
        acfg.idUri = f"sip:chimevoice@{host}:{first.port}"
        acfg.mediaConfig.transportConfig.port = s.rtp_port_start
        acfg.mediaConfig.transportConfig.portRange = s.rtp_port_count
        if first.address not in ("0.0.0.0", "::"):
            # RTP on the address SIP listens on, so the SDP offers a reachable address.
            acfg.mediaConfig.transportConfig.boundAddress = first.address
        acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_OPTIONAL
        acfg.mediaConfig.srtpSecureSignaling = 0
        acfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_OPTIONAL
        self.account = _Account(self)
        self.account.create(acfg, True)
        self.acfg = acfg

    def _set_codec_priorities(self) -> None:
        preferred = list(self.settings.codec_priority)
        for info in self.ep.codecEnum2():
            cid = info.codecId
            prio = 0
            for i, name in enumerate(preferred):
                if cid.lower().startswith(name.lower()):
                    prio = 255 - i
                    break
            else:
                if cid.lower().startswith(("speex", "l16")):
                    prio = 0              # speex saturates the clock thread; L16 is wasteful
                elif cid.lower().startswith(("gsm", "opus")):
                    prio = 100
            self.ep.codecSetPriority(cid, prio)

    def post(self, event: ev.SipEvent) -> None:
        self.outbox.append(event)

    def flush(self) -> None:
        if self.outbox:
            batch, self.outbox = self.outbox, []
            self.post_batch(batch)

    def loop(self) -> None:
        while self.running:
            self.ep.libHandleEvents(_POLL_MS)
            self._garbage.clear()
            self._drain()
            self._expire_playbacks()
            if self.send_heap:
                self._run_senders()
            if (self.tapped and time.monotonic() >= self._next_tap_read
                    and (self.audio_ready is None or self.audio_ready())):
                self._next_tap_read = time.monotonic() + _TAP_READ_S
                self._read_taps()
            if time.monotonic() >= self._next_rtp_round:
                self._next_rtp_round = time.monotonic() + _RTP_ROUND_S
                self._sample_rtp()
                self._count()
            if self.gate is not None:
                self._report_gate()
            self.flush()

    def _media_threads(self, pjmedia: set[int], clock: set[int]) -> None:
        """Name the threads pjsua started (libInit: the media I/O worker and event manager;
        setNullDev: the null sound device's clock, which drives the conference bridge) and
        make the clock real-time. The clock mixes, encodes and feeds the taps of every leg
        each 20 ms; when it is starved of CPU it skips ticks and every call loses audio
        (recordings shorter than their call, measured: 2,020 of 7,776 with the daemon on one
        core). Its work is bounded by the ports admission allows, so SCHED_RR cannot run away
        with the core; the RTP receiving thread stays normal, as its work follows what the
        network sends (an RTP flood must not starve SIP)."""
        for tid in pjmedia:
            name_thread(tid, "cv-pjmedia")
        for tid in clock:
            name_thread(tid, "cv-clock")
        priority = self.settings.clock_realtime_priority
        if not priority:
            return
        errors = [err for err in (set_realtime(tid, priority) for tid in clock) if err]
        if clock and not errors:
            self.clock_realtime = priority
            log.info("media_clock_realtime", priority=priority, threads=len(clock))
        else:
            log.warning("media_clock_not_realtime", priority=priority,
                        error=errors[0] if errors else "no clock thread found",
                        hint="allow SCHED_RR: LimitRTPRIO= in the systemd unit (systemd/chimevoice.service) "
                             "or CAP_SYS_NICE; sip.rtp.realtime_priority: 0 turns this off")

    def _count(self) -> None:
        """What the pjsua2 thread holds, for :meth:`SipEndpoint.stats` (a leak of calls,
        players or taps, or of ports in pjmedia's conference bridge, shows here)."""
        self.counts = {"sip_conference_ports": float(self.ep.mediaActivePorts()),
                       "sip_legs": float(len(self.calls)), "sip_players": float(len(self.players)),
                       "sip_tapped_legs": float(len(self.tapped)),
                       "sip_tap_dropped_bytes": float(self.tap_dropped_bytes),
                       "sip_clock_realtime_priority": float(self.clock_realtime)}

    def destroy(self) -> None:
        try:
            for call in list(self.calls.values()):
                self.snapshot_rtp(call)
            self.ep.hangupAllCalls()
            for _ in range(40):
                self.ep.libHandleEvents(10)
        except Exception:  # noqa: BLE001 - best effort on shutdown
            pass
        self.players.clear()
        self.senders.clear()
        for call in list(self.tapped.values()):
            self._drop_taps(call)
        self.tapped.clear()
        self.calls.clear()
        self._garbage.clear()
        try:
            for acc in self.dial_accounts.values():
                acc.shutdown()
            self.dial_accounts.clear()
            self.account.shutdown()
            self.ep.libDestroy()
        except Exception as exc:  # noqa: BLE001
            log.warning("pjsua2_destroy_failed", error=str(exc))
        _route_pjlib_log(self.settings.pj_log_level)   # the writer is gone: anything later is JSON too

    # commands
    def _drain(self) -> None:
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return
            try:
                self._dispatch[type(cmd)](self, cmd)
            except self.pj.Error as exc:
                self.post(ev.CommandFailed(getattr(cmd, "leg_id", ""), cmd, _text(exc.info())))
                if exc.status == _SESSION_TERMINATED:
                    self._session_gone(getattr(cmd, "leg_id", ""))
            except Exception as exc:  # noqa: BLE001 - the SIP thread must survive
                leg = getattr(cmd, "leg_id", "")
                log.exception("sip_command_failed", command=type(cmd).__name__, leg_id=leg)
                self.post(ev.CommandFailed(leg, cmd, str(exc)))

    def _session_gone(self, leg_id: str) -> None:
        """pjsip ended the leg's INVITE session (a fuzzed request can make it) without a
        DISCONNECTED call state reaching us: report the leg gone, once, so its call ends
        and writes its CDR instead of staying in the registry (issue 11)."""
        call = self.calls.get(leg_id)
        if call is None or call.gone:
            return
        log.warning("leg_session_terminated", leg_id=leg_id)
        self._teardown(call)
        call.gone = True
        self._garbage.append(call)
        self.post(ev.CallDisconnected(leg_id, 0,
                                      "INVITE session terminated", by_remote=True))

    def _cmd_stop(self, cmd: sc.Shutdown) -> None:
        self.running = False

    def _op(self, code: int = 0, headers: tuple[tuple[str, str], ...] = ()):
        prm = self.pj.CallOpParam(True)
        prm.statusCode = code
        for name, value in headers:
            h = self.pj.SipHeader()
            h.hName = name
            h.hValue = value
            prm.txOption.headers.append(h)
        return prm

    def _cmd_ring(self, cmd: sc.Ring) -> None:
        call = self.calls.get(cmd.leg_id)
        if call and not call.answered:
            call.answer(self._op(180))

    def _cmd_answer(self, cmd: sc.Answer) -> None:
        call = self.calls.get(cmd.leg_id)
        if call and not call.answered:
            call.answered = True
            call.answer(self._op(200))

    def _cmd_reject(self, cmd: sc.Reject) -> None:
        call = self.calls.get(cmd.leg_id)
        if call:
            call.local_hangup = True
            call.hangup(self._op(cmd.status_code, cmd.headers))

    def _cmd_disconnect(self, cmd: sc.Disconnect) -> None:
        call = self.calls.get(cmd.leg_id)
        cause = cmd.cause
        if not call:
            return
        call.local_hangup = True
        if call.outbound and not call.answered:
            # CANCEL. pjsip waits for a provisional response (or Timer B, 32 s) before it can
            # send one; the leg is reported gone now and the call finishes in the background.
            call.abandoned = True
            self._teardown(call)
            try:
                call.hangup(self._op(0))
            except pj.Error:
                pass
            self.post(ev.CallDisconnected(cmd.leg_id, 487, "Request Terminated", by_remote=False))
            return
        headers: tuple[tuple[str, str], ...] = ()
        if cause:
            headers = (("Reason", f"SIP;cause={cause}"),)
        self.snapshot_rtp(call)     # pjsua skips onStreamDestroyed for a call we hang up
        if not call.outbound:
            # the caller's connection closed: the BYE opens a new one to its Contact (TLS from
            # our tls listener, the only way pjsip opens TLS)
            self.pj.unpinClosedDialogTransport(
                call.getId(), self.tls_transport if call.transport == "tls" and self.tls_transport is not None else -1)
        call.hangup(self._op(0 if call.answered else (cause or 480), headers))

    def _cmd_play(self, cmd: sc.Play) -> None:
        call = self.calls.get(cmd.leg_id)
        if call is None:
            return
        if call.audio is None:
            call.pending_plays.append(cmd)
            return
        self._start_player(call, cmd.play_id, cmd.path, cmd.repeat, cmd.duration_s)

    def _start_player(self, call: _Call, play_id: str, path: str, repeat: int, duration_s: float) -> None:
        # A plain (non-subclassed) player: no Python runs on pjmedia's clock thread.
        # The end of each play is a deadline kept here instead of the EOF callback;
        # NO_LOOP makes the player fall silent at its end, so a deadline a little past
        # the end never replays the start (repeats are restarted with setPos).
        player = pj.AudioMediaPlayer()
        player.createPlayer(path, pj.PJMEDIA_FILE_NO_LOOP)
        self._connect(player, call)
        pb = _Playback(player, call.leg_id, play_id, max(1, repeat), max(duration_s, 0.02))
        self.players[pb.key] = pb
        call.play_ids.add(play_id)
        self._arm(pb)

    def _arm(self, pb: _Playback) -> None:
        pb.generation += 1
        heapq.heappush(self.deadlines, (time.monotonic() + pb.duration_s + _END_MARGIN_S,
                                        pb.generation, pb.key))

    def _expire_playbacks(self) -> None:
        now = time.monotonic()
        while self.deadlines and self.deadlines[0][0] <= now:
            _, generation, key = heapq.heappop(self.deadlines)
            pb = self.players.get(key)
            if pb is None or pb.generation != generation:
                continue
            pb.remaining -= 1
            if pb.remaining > 0:
                pb.player.setPos(0)
                self._arm(pb)
                continue
            del self.players[key]
            owner = self.calls.get(key[0])
            if owner is not None:
                owner.play_ids.discard(key[1])
            self._release_player(pb, self.calls.get(key[0]))
            self.post(ev.PlaybackFinished(*key))

    def _cmd_stop_play(self, cmd: sc.StopPlay) -> None:
        leg_id, play_id = cmd.leg_id, cmd.play_id
        pb = self.players.pop((leg_id, play_id), None)
        call = self.calls.get(leg_id)
        if call is not None:
            call.play_ids.discard(play_id)
        if call:
            call.pending_plays = [p for p in call.pending_plays if p.play_id != play_id]
        if pb is not None:
            self._release_player(pb, call)

    def _release_player(self, pb: _Playback, call: _Call | None) -> None:
        if call is not None:
            self._disconnect(pb.player, call)
        self._garbage.append(pb.player)

    # what the leg hears: every source is mirrored to the leg's outgoing tap
    def _connect(self, src, call: _Call) -> None:
        src.startTransmit(call.hears)
        call.sources[id(src)] = src
        if call.tap_out is not None:
            src.startTransmit(call.tap_out)

    def _disconnect(self, src, call: _Call) -> None:
        if call.sources.pop(id(src), None) is None:
            return
        for sink in (call.hears, call.tap_out):
            if sink is not None:
                try:
                    src.stopTransmit(sink)
                except pj.Error:
                    pass

    # taps
    def _cmd_tap(self, cmd: sc.Tap) -> None:
        call = self.calls.get(cmd.leg_id)
        if call is None:
            return
        call.want_taps = (cmd.incoming, cmd.outgoing)
        if call.audio is not None:
            self._apply_taps(call)

    def _new_tap(self):
        tap = pj.FrameTap()
        tap.createTap(self.settings.clock_rate, self.settings.clock_rate * _FRAME_MS // 1000,
                      _TAP_CAPTURE_MS, _TAP_PLAYOUT_MS)
        return tap

    def _apply_taps(self, call: _Call) -> None:
        incoming, outgoing = call.want_taps
        if incoming and call.tap_in is None:
            call.tap_in = self._new_tap()
            call.audio.startTransmit(call.tap_in)
        elif not incoming and call.tap_in is not None:
            self._flush_tap(call, "in", call.tap_in)
            try:
                call.audio.stopTransmit(call.tap_in)
            except pj.Error:
                pass
            self._garbage.append(call.tap_in)
            call.tap_in = None
        if outgoing and call.tap_out is None:
            call.tap_out = self._new_tap()
            for src in call.sources.values():
                src.startTransmit(call.tap_out)
        elif not outgoing and call.tap_out is not None:
            self._flush_tap(call, "out", call.tap_out)
            for src in call.sources.values():
                try:
                    src.stopTransmit(call.tap_out)
                except pj.Error:
                    pass
            self._garbage.append(call.tap_out)
            call.tap_out = None
        if call.tap_in is not None or call.tap_out is not None:
            self.tapped[call.leg_id] = call
        else:
            self.tapped.pop(call.leg_id, None)

    def _flush_tap(self, call: _Call, track: str, tap) -> None:
        """The tap goes: deliver what it still holds, and account for what it had to drop."""
        data = tap.read()
        if data and self.on_audio is not None:
            self.on_audio([(call.leg_id, track, data)])
        dropped = tap.droppedBytes()
        if dropped:
            self.tap_dropped_bytes += dropped
            log.warning("tap_audio_dropped", leg_id=call.leg_id, track=track,
                        dropped_s=round(dropped / (2 * self.settings.clock_rate), 2))

    def _drop_taps(self, call: _Call) -> None:
        """The leg ended: deliver what the taps still hold, then release them."""
        call.want_taps = (False, False)
        if call.audio is not None:
            self._apply_taps(call)
            return
        for track, tap in (("in", call.tap_in), ("out", call.tap_out)):
            if tap is not None:
                self._flush_tap(call, track, tap)
                self._garbage.append(tap)
        call.tap_in = call.tap_out = None
        self.tapped.pop(call.leg_id, None)

    def _read_taps(self) -> None:
        batch: list[tuple[str, str, bytes]] = []
        for call in self.tapped.values():
            if call.tap_in is not None:
                data = call.tap_in.read()
                if data:
                    batch.append((call.leg_id, "in", data))
            if call.tap_out is not None:
                data = call.tap_out.read()
                if data:
                    batch.append((call.leg_id, "out", data))
        if batch and self.on_audio is not None:
            self.on_audio(batch)

    # SendDigits
    def _cmd_send_digits(self, cmd: sc.SendDigits) -> None:
        call = self.calls.get(cmd.leg_id)
        if call is None or call.audio is None:
            self.post(ev.CommandFailed(cmd.leg_id, cmd, "leg has no media"))
            return
        sender = _DigitSender(cmd.leg_id, cmd.send_id, cmd.digits, cmd.tone_ms, cmd.gap_ms,
                              rfc4733=call.remote_te)
        if sender.rfc4733:
            status = pj.setDtmfDuration(call.getId(), cmd.tone_ms)
            if status != 0:
                log.warning("dtmf_duration_not_set", leg_id=cmd.leg_id, status=status)
        self.senders[sender.key] = sender
        call.send_ids.add(cmd.send_id)
        self._schedule(sender, time.monotonic())

    def _schedule(self, sender: _DigitSender, when: float) -> None:
        self._seq += 1
        sender.generation = self._seq
        heapq.heappush(self.send_heap, (when, self._seq, sender.key))

    def _run_senders(self) -> None:
        now = time.monotonic()
        while self.send_heap and self.send_heap[0][0] <= now:
            _, generation, key = heapq.heappop(self.send_heap)
            sender = self.senders.get(key)
            if sender is None or sender.generation != generation:
                continue
            call = self.calls.get(sender.leg_id)
            if call is None:
                self._end_sender(sender, None)
                continue
            self._release_tone(sender, call)
            if sender.pos >= len(sender.digits):
                self._end_sender(sender, call)
                self.post(ev.DigitsSent(sender.leg_id, sender.send_id, sender.method))
                continue
            ch = sender.digits[sender.pos]
            sender.pos += 1
            if ch == ",":
                self._schedule(sender, now + COMMA_PAUSE_MS / 1000)
                continue
            if sender.rfc4733:
                call.dialDtmf(ch)
            else:
                sender.tone = self._tone(call, ch, sender.tone_ms)
            gap = sender.gap_ms if sender.pos < len(sender.digits) else 0
            self._schedule(sender, now + (sender.tone_ms + gap) / 1000)

    def _tone(self, call: _Call, digit: str, tone_ms: int):
        gen = pj.ToneGenerator()
        gen.createToneGenerator(self.settings.clock_rate, 1)
        d = pj.ToneDigit()
        d.digit = digit
        d.on_msec = tone_ms
        d.off_msec = 0
        d.volume = 0
        digits = pj.ToneDigitVector()
        digits.append(d)
        gen.playDigits(digits, False)
        self._connect(gen, call)
        return gen

    def _release_tone(self, sender: _DigitSender, call: _Call | None) -> None:
        if sender.tone is not None:
            if call is not None:
                self._disconnect(sender.tone, call)
            self._garbage.append(sender.tone)
            sender.tone = None

    def _end_sender(self, sender: _DigitSender, call: _Call | None) -> None:
        self.senders.pop(sender.key, None)
        if call is not None:
            call.send_ids.discard(sender.send_id)
        self._release_tone(sender, call)

    def _cmd_stop_digits(self, cmd: sc.StopDigits) -> None:
        sender = self.senders.get((cmd.leg_id, cmd.send_id))
        if sender is not None:
            self._end_sender(sender, self.calls.get(cmd.leg_id))

    # outbound calls
    def _cmd_dial(self, cmd: sc.Dial) -> None:
        tls = "transport=tls" in cmd.uri.lower()
        acc = self._dial_account(cmd.from_uri, cmd.credentials, cmd.srtp, tls)
        call = _Call(acc, pj.PJSUA_INVALID_ID)
        call.leg_id = cmd.leg_id
        call.outbound = True
        call.remote_te = True          # refined from the answer's SDP (tsx_state)
        self.calls[cmd.leg_id] = call
        acc.calls += 1
        try:
            call.makeCall(cmd.uri, self._op(0, cmd.headers))
        except pj.Error:
            self.calls.pop(cmd.leg_id, None)
            acc.calls -= 1
            raise

    def _dial_account(self, from_uri: str, creds: sc.Credentials | None, srtp: bool, tls: bool) -> _Account:
        """pjsua2 takes the From of an outbound INVITE (and its SRTP policy) from its
        account: one account per caller id, credentials, SRTP policy and TLS, made on first
        use; idle ones are dropped when the table is full (pjsua allows PJSUA_MAX_ACC accounts).
        A TLS account is bound to the tls listener: pjsip creates a TLS connection only from
        the listener the account selects (PJSIP_ETPNOTSUITABLE otherwise)."""
        key = (from_uri, creds, srtp, tls)
        acc = self.dial_accounts.get(key)
        if acc is not None:
            return acc
        if len(self.dial_accounts) >= _MAX_DIAL_ACCOUNTS:
            for k, idle in list(self.dial_accounts.items()):
                if idle.calls <= 0:
                    del self.dial_accounts[k]
                    idle.shutdown()
                    self._garbage.append(idle)
                    break
        cfg = pj.AccountConfig()
        cfg.idUri = from_uri
        base = self.acfg.mediaConfig.transportConfig
        cfg.mediaConfig.transportConfig.port = base.port
        cfg.mediaConfig.transportConfig.portRange = base.portRange
        cfg.mediaConfig.transportConfig.boundAddress = base.boundAddress
        cfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_MANDATORY if srtp else pj.PJMEDIA_SRTP_DISABLED
        cfg.mediaConfig.srtpSecureSignaling = 0    # TLS is the connector's rule (config check)
        if tls and self.tls_transport is not None:
            cfg.sipConfig.transportId = self.tls_transport
        cfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_OPTIONAL
        if creds is not None:
            cfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", creds.realm, creds.username, 0,
                                                           creds.password))
        acc = _Account(self)
        acc.create(cfg, False)
        self.dial_accounts[key] = acc
        return acc

    def _cmd_early_media(self, cmd: sc.EarlyMedia) -> None:
        call = self.calls.get(cmd.leg_id)
        if call and not call.answered and not call.outbound:
            call.answer(self._op(183))

    # leg-to-leg audio
    def _cmd_link(self, cmd: sc.LinkAudio) -> None:
        key = (cmd.source, cmd.sink)
        if key in self.links:
            return
        self.links[key] = False
        for leg in key:
            self.links_of.setdefault(leg, set()).add(key)
        self._apply_link(key)

    def _apply_link(self, key: tuple[str, str]) -> None:
        src, sink = self.calls.get(key[0]), self.calls.get(key[1])
        if self.links.get(key) is False and src is not None and sink is not None \
                and src.audio is not None and sink.audio is not None:
            self.links[key] = True
            if src.focus:
                self._denoise(sink, True)
            self._connect(src.audio, sink)

    def _cmd_unlink(self, cmd: sc.UnlinkAudio) -> None:
        self._drop_link((cmd.source, cmd.sink))

    def _drop_link(self, key: tuple[str, str], gone: tuple[_Call, Any] | None = None) -> None:
        applied = self.links.pop(key, None)
        for leg in key:
            keys = self.links_of.get(leg)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.links_of[leg]
        if not applied:
            return
        src, sink = self.calls.get(key[0]), self.calls.get(key[1])
        if gone is not None and gone[0].leg_id == key[0]:
            # The source leg's slot is gone with its connections: forget it on the sink.
            if sink is not None and gone[1] is not None:
                sink.sources.pop(id(gone[1]), None)
            return
        if gone is not None and gone[0].leg_id == key[1]:
            return                           # the sink's slot is gone: nothing to disconnect
        if src is not None and sink is not None and src.audio is not None:
            self._disconnect(src.audio, sink)

    # VoiceFocus toward the other legs
    def _cmd_voice_focus(self, cmd: sc.SetVoiceFocus) -> None:
        call = self.calls.get(cmd.leg_id)
        if call is None:
            return
        call.focus = cmd.enabled
        for src_id, sink_id in list(self.links_of.get(cmd.leg_id, ())):
            sink = self.calls.get(sink_id)
            if src_id == cmd.leg_id and sink is not None and self.links.get((src_id, sink_id)):
                self._denoise(sink, cmd.enabled or self._hears_focus(sink))

    def _hears_focus(self, sink: _Call) -> bool:
        """Whether *sink* hears a leg that has VoiceFocus on."""
        for src_id, dst_id in self.links_of.get(sink.leg_id, ()):
            src = self.calls.get(src_id)
            if dst_id == sink.leg_id and self.links.get((src_id, dst_id)) and src is not None and src.focus:
                return True
        return False

    def _denoise(self, call: _Call, on: bool) -> None:
        """Make *call* hear what it hears noise-suppressed (or stop): the first time, a
        DenoiseSink takes its place as a sink and every source moves over to it."""
        if call.denoise is not None:
            call.denoise.setEnabled(on)
            return
        if not on or call.audio is None:
            return
        sink = pj.DenoiseSink()
        sink.createSink(call.getId(), _DENOISE_DB)
        for src in call.sources.values():
            try:
                src.stopTransmit(call.audio)
            except pj.Error:
                pass
            src.startTransmit(sink)
        call.denoise = sink

    #: The one dispatch point of the pjsua2 boundary: command type -> handler.
    # the admission gate (frametap.i: a pjsip module ahead of pjsua's)
    def _cmd_configure_gate(self, cmd: sc.ConfigureGate) -> None:
        status = self.pj.gateConfigure(
            cmd.accepting, cmd.draining_retry_after_s, float(cmd.max_calls_per_second or 0.0), float(cmd.burst),
            float(cmd.per_source_rate or 0.0), float(cmd.per_source_burst), cmd.bypass_header,
            cmd.bypass_source)
        if status != 0:
            raise RuntimeError(f"gateConfigure failed: status {status}")
        self.gate = cmd

    def _cmd_lock_source(self, cmd: sc.LockSource) -> None:
        self.pj.gateLockSource(cmd.source, float(cmd.seconds))

    def _report_gate(self) -> None:
        total = self.pj.gateRefusedTotal()
        if total == self._gate_total:
            return
        r = self.pj.gateReport()
        counts = (r.draining, r.authLockout, r.sourceRate, r.rate)
        delta = tuple((cause, now - before) for cause, now, before
                      in zip(_GATE_CAUSES, counts, self._gate_counts) if now > before)
        self._gate_total, self._gate_counts = total, counts
        self.post(ev.GateRefusals("", delta, _text(r.lastSource), _text(r.lastCallId), int(r.lastRetryAfter)))

    def _gated(self, headers: dict[str, list[str]], source: str) -> bool:
        """Did the gate check this INVITE (it did unless off, or bypassed by the header from
        the bypass source)?"""
        gate = self.gate
        if gate is None or (gate.max_calls_per_second is None and gate.per_source_rate is None):
            return False
        return not (gate.bypass_header and gate.bypass_header.lower() in headers
                    and source == gate.bypass_source)

    _dispatch: dict[type, Callable[[_Core, Any], None]] = {
        sc.Ring: _cmd_ring, sc.Answer: _cmd_answer, sc.Reject: _cmd_reject,
        sc.Disconnect: _cmd_disconnect, sc.Play: _cmd_play, sc.StopPlay: _cmd_stop_play,
        sc.Tap: _cmd_tap, sc.SendDigits: _cmd_send_digits, sc.StopDigits: _cmd_stop_digits,
        sc.EarlyMedia: _cmd_early_media, sc.Dial: _cmd_dial, sc.LinkAudio: _cmd_link,
        sc.UnlinkAudio: _cmd_unlink, sc.SetVoiceFocus: _cmd_voice_focus, sc.ConfigureGate: _cmd_configure_gate,
        sc.LockSource: _cmd_lock_source, sc.Shutdown: _cmd_stop,
    }

    # callbacks from _Account/_Call
    def incoming(self, call: _Call, rdata) -> None:
        # pjsua2 strings hold the wire's non-UTF-8 bytes as lone surrogates: escape them
        # here, once, so every event, log line, handler event and CDR downstream can be
        # encoded (chimevoice/text.py).
        raw = rdata.wholeMsg
        text = _text(raw)
        _, ruri, headers, body = parse_request(text)
        # pjsip unescapes %XX in URI user parts in place in the receive buffer, so the text's
        # Request-URI, From and To may be damaged ("sip:%2B15550100000@" reads
        # "sip:+1555010000000@"): take what pjsip parsed, printed back (frametap.i rxParsedPart)
        ruri = _text(self.pj.rxParsedPart(rdata.pjRxData, 0)) or ruri
        for which, name in ((1, "from"), (2, "to")):
            printed = _text(self.pj.rxParsedPart(rdata.pjRxData, which)).partition(":")[2].strip()
            if printed:
                headers[name] = [printed]
        call.remote_te = "telephone-event" in body.lower()
        src = _text(rdata.srcAddress)
        host, _, port = src.rpartition(":")
        host = host.strip("[]")
        self.calls[call.leg_id] = call
        # the transport it really came on (our build's rxTransportName), not its Via's claim:
        # a peer must not pass an encrypted connector's TLS rule by writing "SIP/2.0/TLS"
        transport = self.pj.rxTransportName(rdata.pjRxData).lower().rstrip("6") or via_transport(headers)
        call.transport = transport
        # our requests in this dialog (the BYE) go back over the caller's TCP/TLS connection,
        # not a new one to its Contact (frametap.i: pinDialogTransport)
        self.pj.pinDialogTransport(call.getId(), rdata.pjRxData)

        def first(name: str) -> str:
            return headers.get(name, [""])[0]
        self.post(ev.IncomingCall(
            leg_id=call.leg_id, source_ip=host, source_port=int(port or 0),
            transport=transport, request_uri=ruri,
            from_uri=first("from"), to_uri=first("to"), sip_call_id=first("call-id"),
            headers=headers, sip_headers=chime_sip_headers(text), srtp_offered=offers_srtp(body),
            short_body=body_shorter_than_declared(raw, headers.get("content-length", [""])[0]),
            gated=self._gated(headers, host),
        ))

    def media_state(self, call: _Call) -> None:
        # hasMedia() is cheap; getInfo() builds a whole CallInfo (and its media list must be
        # read while the CallInfo is alive: a temporary's media vector is freed memory).
        if call.audio is not None or not call.hasMedia():
            return
        try:
            call.audio = call.getAudioMedia(-1)
        except pj.Error:
            return
        call.rtp_due = time.monotonic() + self.settings.rtp_stats_interval_s
        self.post(ev.MediaReady(call.leg_id, telephone_event=call.remote_te))
        if call.want_taps != (False, False):
            self._apply_taps(call)
        for key in list(self.links_of.get(call.leg_id, ())):
            self._apply_link(key)
        pending, call.pending_plays = call.pending_plays, []
        for play in pending:
            try:
                self._start_player(call, play.play_id, play.path, play.repeat, play.duration_s)
            except self.pj.Error as exc:
                self.post(ev.CommandFailed(call.leg_id, play, _text(exc.info())))

    def call_state(self, call: _Call) -> None:
        # Inbound legs: only the end of the call matters here, and isActive() is much cheaper
        # than getInfo(). Outbound legs also report their progress and their answer.
        if call.abandoned:                  # cancelled before an answer: already reported
            if not call.isActive():
                self._garbage.append(call)
            return
        if call.outbound:
            info = call.getInfo()
            state = info.state
            if state == self.pj.PJSIP_INV_STATE_EARLY and not call.progress:
                call.progress = True
                self.post(ev.OutgoingProgress(call.leg_id, int(info.lastStatusCode)))
            elif state == self.pj.PJSIP_INV_STATE_CONFIRMED and not call.answered:
                call.answered = True
                self.post(ev.OutgoingAnswered(call.leg_id, int(info.lastStatusCode)))
        elif call.isActive():
            return
        else:
            info = call.getInfo()
        if info.state == self.pj.PJSIP_INV_STATE_DISCONNECTED and not call.gone:
            call.gone = True
            self._teardown(call)
            self._garbage.append(call)
            self.post(ev.CallDisconnected(
                call.leg_id, int(info.lastStatusCode), _text(info.lastReason),
                by_remote=not call.local_hangup, connect_duration_s=info.connectDuration.sec
                + info.connectDuration.msec / 1000.0, rtp=call.rtp if call.rtp is not None else call.rtp_done))

    def _teardown(self, call: _Call) -> None:
        """The leg is gone: release what plays to it, its taps and its links. pjsua has
        already removed the leg's conference slot (and every connection to and from it), so
        nothing is disconnected from that slot here: only our bookkeeping is cleared."""
        gone, call.audio = call.audio, None
        for key in list(self.links_of.get(call.leg_id, ())):
            self._drop_link(key, gone=(call, gone))
        if call.outbound:
            call.account_ref.calls -= 1
        for play_id in list(call.play_ids):
            pb = self.players.pop((call.leg_id, play_id), None)
            if pb is not None:
                self._release_player(pb, call)
        call.play_ids.clear()
        for send_id in list(call.send_ids):
            sender = self.senders.get((call.leg_id, send_id))
            if sender is not None:
                self._end_sender(sender, call)
        if call.tap_in is not None or call.tap_out is not None:
            self._drop_taps(call)
        call.sources.clear()
        if call.denoise is not None:
            try:
                call.denoise.destroySink()
            except pj.Error:
                pass
            self._garbage.append(call.denoise)
            call.denoise = None
        if self.calls.get(call.leg_id) is call:
            del self.calls[call.leg_id]
        call.audio = None

    def _sample_rtp(self) -> None:
        """Post the RTP totals of the live legs that are due (each every rtp_stats_interval_s,
        from its media's start: spread over the rounds, not all at once)."""
        now = time.monotonic()
        interval = self.settings.rtp_stats_interval_s
        for call in list(self.calls.values()):
            if call.audio is None or call.rtp is not None or call.rtp_due > now:
                continue
            call.rtp_due = now + interval
            stats = self._rtp_totals(call)
            if stats is not None:
                receiving = True
                if stats.rx.packets == call.rx_sampled:
                    receiving = self._receiving(call)
                call.rx_sampled = stats.rx.packets
                self.post(ev.RtpProgress(call.leg_id, stats, receiving))

    def _receiving(self, call: _Call) -> bool:
        """Whether the leg's audio stream is negotiated to receive (the far end is to send)."""
        pj = self.pj
        for idx in range(4):
            try:
                return bool(call.getStreamInfo(idx).dir & pj.PJMEDIA_DIR_DECODING)
            except pj.Error:
                continue
        return False

    def _stream_stats(self, call: _Call, index: int | None = None) -> ev.RtpStats | None:
        for idx in (index,) if index is not None else range(4):
            try:
                rtcp = call.getStreamStat(idx).rtcp
            except pj.Error:
                continue                    # not an audio stream (or none at that index)
            return ev.RtpStats(
                rx=ev.RtpDirection(int(rtcp.rxStat.pkt), int(rtcp.rxStat.loss),
                                   rtcp.rxStat.jitterUsec.mean / 1000.0),
                tx=ev.RtpDirection(int(rtcp.txStat.pkt), int(rtcp.txStat.loss),
                                   rtcp.txStat.jitterUsec.mean / 1000.0))
        return None

    def _rtp_totals(self, call: _Call) -> ev.RtpStats | None:
        """The leg's RTP totals so far: the streams already replaced plus the live one."""
        return _plus(call.rtp_done, self._stream_stats(call))

    def snapshot_rtp(self, call: _Call) -> None:
        """Keep the leg's final RTP totals (``call.rtp``) while its stream still exists, before
        our own hangup (pjsua skips onStreamDestroyed then) or the shutdown."""
        if call.rtp is not None or call.audio is None:
            return
        call.rtp = self._rtp_totals(call)

    def stream_destroyed(self, call: _Call, index: int) -> None:
        """onStreamDestroyed: add the stream's totals to the leg's (``call.rtp_done``) -- when the
        far end ends the call, or when a re-INVITE (hold, a new codec) replaces the stream."""
        if call.rtp is not None or call.audio is None:
            return
        call.rtp_done = _plus(call.rtp_done, self._stream_stats(call, index))

    def dtmf(self, call: _Call, digit: str, method: int) -> None:
        kind = "sip-info" if method == self.pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
        self.post(ev.DtmfReceived(call.leg_id, digit, kind))

    def tsx_state(self, call: _Call, prm) -> None:
        """INFO requests pjsua leaves unanswered: application/dtmf carries a key press
        (application/dtmf-relay is handled by pjsua itself and arrives as dtmf())."""
        e = prm.e
        if e.type != self.pj.PJSIP_EVENT_TSX_STATE:
            return
        ts = e.body.tsxState
        tsx = ts.tsx
        if call.outbound:
            # The answer's SDP tells whether the far end takes RFC 4733 events.
            if (tsx.role == self.pj.PJSIP_ROLE_UAC and tsx.method == "INVITE"
                    and ts.type == self.pj.PJSIP_EVENT_RX_MSG and 180 <= tsx.statusCode < 300):
                body = parse_request(_text(ts.src.rdata.wholeMsg))[3]     # a response parses too
                if "m=audio" in body:
                    call.remote_te = "telephone-event" in body.lower()
            return
        if (tsx.role != self.pj.PJSIP_ROLE_UAS or tsx.state != self.pj.PJSIP_TSX_STATE_TRYING
                or tsx.method != "INFO"):
            return
        rdata = ts.src.rdata
        _, _, headers, body = parse_request(_text(rdata.wholeMsg))
        kind, digit = info_dtmf(headers.get("content-type", [""])[0], body)
        if kind == "pjsua":
            return
        if kind == "dtmf":
            code = 200 if digit is not None else 400
        else:
            code = 200 if kind == "empty" else 415
        status = self.pj.respondInDialog(tsx.pjTransaction, rdata.pjRxData, code)
        if status != 0:
            log.warning("info_response_failed", leg_id=call.leg_id, status=status)
        if digit is not None:
            self.post(ev.DtmfReceived(call.leg_id, digit, "sip-info"))


def _plus(a: ev.RtpStats | None, b: ev.RtpStats | None) -> ev.RtpStats | None:
    """The RTP totals of two streams of a leg, where None is no stream."""
    return b if a is None else a if b is None else a + b


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, wanted))
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


class _Account(pj.Account):
    def __init__(self, core: _Core) -> None:
        super().__init__()
        self.core = core
        self.calls = 0                  # outbound calls placed through it still up

    def onIncomingCall(self, prm) -> None:
        call = _Call(self, prm.callId)
        try:
            self.core.incoming(call, prm.rdata)
        except Exception:  # noqa: BLE001
            log.exception("incoming_call_failed")
            call.hangup(self.core._op(500))


class _Call(pj.Call):
    def __init__(self, acc: _Account, call_id: int) -> None:
        super().__init__(acc, call_id)
        self.core = acc.core
        self.leg_id = str(uuid.uuid4())
        self.account_ref = acc
        self.outbound = False               # a call we placed (Dial), not one we answer
        self.transport = "udp"              # inbound: the transport its INVITE really came on
        self.progress = False               # outbound: 180/183 seen
        self.abandoned = False              # outbound: cancelled by us, already reported gone
        self.answered = False
        self.gone = False                   # CallDisconnected posted (by call_state or _session_gone)
        self.local_hangup = False
        self.audio: Any = None              # the call's pjsua2 AudioMedia once media is up
        self.pending_plays: list[sc.Play] = []
        self.remote_te = False              # the offer carried telephone-event (RFC 4733)
        self.play_ids: set[str] = set()     # this leg's entries in _Core.players / senders
        self.send_ids: set[str] = set()
        self.sources: dict[int, Any] = {}      # media transmitting to this leg (pjsua2 AudioMedia)
        self.want_taps = (False, False)     # (incoming, outgoing) asked for
        self.tap_in: Any = None             # pjsua2 FrameTap ports
        self.tap_out: Any = None
        self.focus = False                  # VoiceFocus: legs that hear this one hear it suppressed
        self.denoise: Any = None            # a DenoiseSink in this leg's place as a sink, once made
        self.rtp_due = 0.0                  # when its live RTP totals are next posted (RtpProgress)
        self.rx_sampled = -1                # RTP packets received at the last RtpProgress
        self.rtp: ev.RtpStats | None = None  # the leg's final RTP totals, kept just before its stream goes
        self.rtp_done: ev.RtpStats | None = None  # totals of the streams already destroyed (re-INVITEs)

    @property
    def hears(self) -> Any:
        """The conference port that sources connect to for this leg to hear them."""
        return self.denoise if self.denoise is not None else self.audio

    def onCallState(self, prm) -> None:
        try:
            self.core.call_state(self)
        except Exception:  # noqa: BLE001
            log.exception("call_state_failed", leg_id=self.leg_id)

    def onCallMediaState(self, prm) -> None:
        if self.abandoned:
            return
        try:
            self.core.media_state(self)
        except Exception:  # noqa: BLE001
            log.exception("media_state_failed", leg_id=self.leg_id)

    def onStreamDestroyed(self, prm) -> None:
        try:
            self.core.stream_destroyed(self, prm.streamIdx)
        except Exception:  # noqa: BLE001
            log.exception("rtp_stats_failed", leg_id=self.leg_id)

    def onDtmfDigit(self, prm) -> None:
        if self.abandoned:
            return
        try:
            self.core.dtmf(self, prm.digit, prm.method)
        except Exception:  # noqa: BLE001
            log.exception("dtmf_failed", leg_id=self.leg_id)

    def onCallTsxState(self, prm) -> None:
        if self.abandoned:
            return
        try:
            self.core.tsx_state(self, prm)
        except Exception:  # noqa: BLE001
            log.exception("tsx_state_failed", leg_id=self.leg_id)


@dataclass(slots=True, eq=False)
class _Playback:
    player: "pj.AudioMediaPlayer"
    leg_id: str
    play_id: str
    remaining: int
    duration_s: float
    generation: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.leg_id, self.play_id)


@dataclass(slots=True, eq=False)
class _DigitSender:
    leg_id: str
    send_id: str
    digits: str
    tone_ms: int
    gap_ms: int
    rfc4733: bool
    pos: int = 0
    generation: int = 0
    tone: object = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.leg_id, self.send_id)

    @property
    def method(self) -> str:
        return "rfc4733" if self.rfc4733 else "inband"


def _pj_log(level: int, text: str) -> None:
    """One pjlib log line as a structlog event: pjlib levels 0-1 error, 2 warning, 3 info, 4+ debug."""
    msg = _text(text.strip())
    if msg:
        emit = log.error if level <= 1 else log.warning if level == 2 else log.info if level == 3 else log.debug
        emit("pjsip", pj_level=level, msg=msg)


class _LogBudget:
    """How many pjsip log lines may pass: pjsip logs every message it cannot parse at error level,
    with the message itself, so a flood of garbage would be a flood of log lines (and of disk).
    A token bucket: *rate* lines a second, bursts of *burst*; what it holds back is counted and
    reported in one ``pjsip_log_suppressed`` line before the next line that passes. Lines are cut
    to *max_chars*."""

    def __init__(self, rate: float = 20.0, burst: int = 100, max_chars: int = 4000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.max_chars, self.clock = rate, burst, max_chars, clock
        self.tokens = float(burst)
        self.last = clock()
        self.suppressed = 0

    def admit(self, msg: str) -> str | None:
        """*msg* (cut to size) if it may be logged now, else None (counted)."""
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1.0:
            self.suppressed += 1
            return None
        self.tokens -= 1.0
        if self.suppressed:
            log.warning("pjsip_log_suppressed", lines=self.suppressed,
                        limit_per_s=self.rate, reason="more pjsip log lines than the limit (malformed traffic?)")
            self.suppressed = 0
        if len(msg) > self.max_chars:
            msg = msg[:self.max_chars] + f" ... ({len(msg) - self.max_chars} more characters)"
        return msg


class _LogWriter(pj.LogWriter):
    """pjlib's log once libInit has run (delivered on the SIP thread: mainThreadOnly). Below
    debug level (pjsip level 4) the lines pass through a :class:`_LogBudget`; at debug, all do."""

    def __init__(self, budget: _LogBudget | None = None) -> None:
        super().__init__()
        self.budget = budget

    def write(self, entry) -> None:
        msg = entry.msg
        if self.budget is not None:
            msg = self.budget.admit(msg)
            if msg is None:
                return
        _pj_log(entry.level, msg)


_pjlib_log_func = None      # the ctypes callback below; pjlib keeps its address, so it lives forever


def _route_pjlib_log(level: int) -> None:
    """Until libInit installs the LogWriter, pjlib logs with its default writer, which prints plain
    text on stdout (pj_init in libCreate: "pjlib 2.12.1 for POSIX initialized", ...). The SWIG module
    does not wrap pj_log_set_log_func, but the extension exports it: call it through ctypes."""
    global _pjlib_log_func
    import ctypes
    import sys
    try:
        ext = sys.modules.get("_pjsua2") or getattr(pj, "_pjsua2")
        lib = ctypes.CDLL(ext.__file__)
        if _pjlib_log_func is None:
            def write(lvl: int, data: int, length: int) -> None:
                try:
                    _pj_log(lvl, ctypes.string_at(data, length).decode("utf-8", "replace"))
                except Exception:  # noqa: BLE001 - never raise into C
                    pass
            _pjlib_log_func = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)(write)
        lib.pj_log_set_decor(0)
        lib.pj_log_set_level(level)
        lib.pj_log_set_log_func(_pjlib_log_func)
    except (AttributeError, OSError) as exc:
        log.warning("pjlib_log_not_routed", error=str(exc))


__all__ = ["SipEndpoint", "EndpointSettings"]
