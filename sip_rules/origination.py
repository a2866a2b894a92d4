"""Origination (outbound) trunks of a Voice Connector: routes, host choice, failover, OPTIONS health.

The values mirror Amazon Chime SDK Voice ``PutVoiceConnectorOrigination``
(``Origination {Routes: [OriginationRoute{Host, Port, Protocol, Priority, Weight}], Disabled}``)
with two additions: ``tls`` as a protocol (default port 5061) and digest credentials that the far
end may challenge outbound requests with.

Three pure cores, no I/O, time and randomness passed in:

* :func:`plan_attempts` - the order in which to try the hosts for one call (priority, then an
  RFC 2782 weighted random order; hosts marked down go last).
* :func:`after_failure` - after one host failed: try the next host or stop and report.
* :class:`OriginationHealth` - OPTIONS probing as a state machine with one entry point,
  :meth:`OriginationHealth.handle`, fed typed inputs (ticks, probe and call results) and giving
  typed outputs (send an OPTIONS, a route went down / came back up).

:func:`origination_problems` validates an :class:`Origination` built in code (the configuration
loader reports the same problems with file lines).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import quote

__all__ = [
    "DEFAULT_DOWN_AFTER",
    "DEFAULT_HOLD_DOWN_S",
    "DEFAULT_OPTIONS_INTERVAL_S",
    "DEFAULT_PORTS",
    "DEFAULT_PROBE_TIMEOUT_S",
    "HOST_FAILURE_CODES",
    "MAX_PRIORITY",
    "MAX_ROUTES",
    "MAX_WEIGHT",
    "PROTOCOLS",
    "CallAttemptAnswered",
    "CallAttemptFailed",
    "HealthInput",
    "HealthOutput",
    "Origination",
    "OriginationCredentials",
    "OriginationHealth",
    "OriginationProblem",
    "OriginationRoute",
    "Outcome",
    "ProbeAnswered",
    "ProbeFailed",
    "RandomLike",
    "RouteDown",
    "RouteHealthLike",
    "RouteUp",
    "SendOptions",
    "Tick",
    "after_failure",
    "host_problem",
    "is_host_failure",
    "normalize_route_host",
    "origination_problems",
    "plan_attempts",
]

#: Transport protocols of a route (Chime has TCP and UDP; ``tls`` is ours).
PROTOCOLS = ("udp", "tcp", "tls")
#: Port used when a route gives none.
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
#: Priority and weight run 1..100 (botocore ``OriginationRoute``: min 1, max 100).
MIN_PRIORITY, MAX_PRIORITY = 1, 100
MIN_WEIGHT, MAX_WEIGHT = 1, 100
#: Routes per origination.
MAX_ROUTES = 20
DEFAULT_OPTIONS_INTERVAL_S = 30.0
DEFAULT_PROBE_TIMEOUT_S = 5.0
DEFAULT_DOWN_AFTER = 2
DEFAULT_HOLD_DOWN_S = 60.0
#: Responses that say "this host cannot take requests now" rather than "this request failed".
HOST_FAILURE_CODES = frozenset({408, 503})
_USER_SAFE = "+-_.!~*'()&=$,;?/"  # RFC 3261 unreserved and user-unreserved characters


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class OriginationRoute:
    """One host that outbound calls may be sent to (Chime ``OriginationRoute``)."""

    host: str
    """DNS name or IP literal, lower-case, IPv6 without brackets, no port, no scheme."""
    port: int = 5060
    """Port of the host, 1..65535 (5060 for udp/tcp, 5061 for tls when not given)."""
    protocol: str = "udp"
    """``udp``, ``tcp`` or ``tls`` (lower-case)."""
    priority: int = 1
    """1..100; lower numbers are tried first."""
    weight: int = 1
    """1..100; among routes of one priority, the share of calls tried on this host first."""

    @property
    def key(self) -> str:
        """Identity of the route in the health table and logs: ``protocol:host:port``."""
        return f"{self.protocol}:{self.hostport}"

    @property
    def hostport(self) -> str:
        """``host:port``, IPv6 literals in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def uri(self, user: str | None = None) -> str:
        """The SIP URI to send a request to, e.g. ``sip:+15550100000@sbc1.example.com:5060;transport=udp``.

        ``transport`` is always explicit; TLS is ``sip:...;transport=tls`` (what pjsua2 accepts;
        ``sips:`` would also demand TLS on every hop after this one). Without ``user`` the URI
        addresses the host itself (OPTIONS probes).
        """
        userinfo = quote(user, safe=_USER_SAFE) + "@" if user else ""
        return f"sip:{userinfo}{self.hostport};transport={self.protocol}"


@dataclass(frozen=True, slots=True)
class OriginationCredentials:
    """Digest credentials used when the far end challenges an outbound request (401/407)."""

    username: str
    """Digest user name; not empty."""
    password: str = field(repr=False)
    """Digest password; not empty; never shown by ``repr()``."""
    realm: str | None = None
    """Answer only challenges of this realm; None answers any realm."""

    def answers(self, realm: str) -> bool:
        """True when a challenge for ``realm`` should be answered with these credentials."""
        return self.realm is None or self.realm == realm


@dataclass(frozen=True, slots=True)
class Origination:
    """Where a Voice Connector sends outbound calls (Chime ``Origination`` plus credentials)."""

    routes: tuple[OriginationRoute, ...] = ()
    """The hosts, in configuration order (:func:`plan_attempts` orders them per call)."""
    credentials: OriginationCredentials | None = None
    """Digest credentials for challenges from these hosts, or None."""
    disabled: bool = False
    """True: no outbound calls through this connector (Chime ``Disabled``)."""
    options_interval_s: float = DEFAULT_OPTIONS_INTERVAL_S
    """Seconds between OPTIONS probes of each route; 0 disables probing."""


@dataclass(frozen=True, slots=True)
class OriginationProblem:
    """One reason an :class:`Origination` is not valid."""

    field: tuple[str | int, ...]
    """Where: ``("routes", 1, "port")``; ``()`` for the origination as a whole."""
    message: str
    """What is wrong, as a sentence fragment (``"must be between 1 and 65535, got 0"``)."""


# --------------------------------------------------------------------------- validation

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def normalize_route_host(host: str) -> str | None:
    """The canonical form of a route host (lower-case, no trailing dot, IPv6 unbracketed), or None."""
    return None if host_problem(host) else _canonical_host(host)


def _canonical_host(host: str) -> str:
    text = host.strip().lower().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def host_problem(host: str) -> str | None:
    """Why ``host`` is not a DNS name or IP literal usable as a route host, or None when it is."""
    if not isinstance(host, str) or not host.strip():
        return "must not be empty"
    text = host.strip().lower()
    if "://" in text or re.match(r"(sips?|tel):", text):
        return f"{host!r}: write the host only, without a scheme"
    if any(c in text for c in "@/;?"):
        return f"{host!r}: write the host only (no user, path or URI parameters)"
    if text.startswith("["):
        if text.endswith("]") and _is_ipv6(text[1:-1]):
            return None
        if "]:" in text:
            return f"{host!r}: put the port in the port key, not in host"
        return f"{host!r} is not a valid IPv6 literal"
    if ":" in text:
        if _is_ipv6(text):
            return None
        if text.count(":") == 1:
            return f"{host!r}: put the port in the port key, not in host"
        return f"{host!r} is not a valid IP address"
    text = text.rstrip(".")
    try:
        ipaddress.IPv4Address(text)
        return None
    except ValueError:
        pass
    labels = text.split(".")
    if not 0 < len(text) <= 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return f"{host!r} is not a valid host name or IP address"
    if labels[-1].isdigit():
        return f"{host!r} is not a valid IPv4 address"
    return None


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
        return True
    except ValueError:
        return False


def origination_problems(origination: Origination) -> tuple[OriginationProblem, ...]:
    """Every problem of ``origination``, in route order; empty when it is valid.

    Routes: a valid host (:func:`host_problem`, in canonical form), port 1..65535, protocol in
    :data:`PROTOCOLS`, priority and weight 1..100, no two routes with the same host, port and
    protocol, at most :data:`MAX_ROUTES`. An enabled origination needs at least one route.
    Credentials: non-empty username and password. ``options_interval_s`` >= 0.
    """
    problems: list[OriginationProblem] = []
    routes = origination.routes
    if len(routes) > MAX_ROUTES:
        problems.append(OriginationProblem(("routes",), f"at most {MAX_ROUTES} routes allowed, got {len(routes)}"))
    if not routes and not origination.disabled:
        problems.append(OriginationProblem(("routes",), "an enabled origination needs at least one route"))
    seen: dict[str, int] = {}
    for index, route in enumerate(routes):
        where = ("routes", index)
        problem = host_problem(route.host)
        if problem is not None:
            problems.append(OriginationProblem((*where, "host"), problem))
        elif _canonical_host(route.host) != route.host:
            problems.append(OriginationProblem((*where, "host"), f"write {_canonical_host(route.host)!r}"))
        for name, value, low, high in (
            ("port", route.port, 1, 65535),
            ("priority", route.priority, MIN_PRIORITY, MAX_PRIORITY),
            ("weight", route.weight, MIN_WEIGHT, MAX_WEIGHT),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append(OriginationProblem((*where, name), f"must be between {low} and {high}, got {value!r}"))
        if route.protocol not in PROTOCOLS:
            problems.append(
                OriginationProblem((*where, "protocol"), f"{route.protocol!r} is not one of {', '.join(PROTOCOLS)}")
            )
        if problem is None:
            key = OriginationRoute(_canonical_host(route.host), route.port, route.protocol).key
            if key in seen:
                problems.append(OriginationProblem(where, f"same host, port and protocol as routes[{seen[key]}]"))
            seen.setdefault(key, index)
    credentials = origination.credentials
    if credentials is not None:
        for name in ("username", "password"):
            value = getattr(credentials, name)
            if not isinstance(value, str) or not value:
                problems.append(OriginationProblem(("credentials", name), "must be a non-empty string"))
        if credentials.realm is not None and not credentials.realm:
            problems.append(OriginationProblem(("credentials", "realm"), "must not be empty (omit it for any realm)"))
    interval = origination.options_interval_s
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval >= 0:
        problems.append(OriginationProblem(("options_interval_s",), f"must be 0 or more, got {interval!r}"))
    return tuple(problems)


# --------------------------------------------------------------------------- host choice


class RandomLike(Protocol):
    """What :func:`plan_attempts` needs from its randomness (e.g. a ``random.Random``)."""

    def random(self) -> float: ...


@runtime_checkable
class RouteHealthLike(Protocol):
    """What :func:`plan_attempts` needs from a health table (e.g. :class:`OriginationHealth`)."""

    def is_down(self, route_key: str, now: float) -> bool: ...


def plan_attempts(
    origination: Origination,
    health: RouteHealthLike | None,
    now: float,
    rng: RandomLike,
) -> tuple[OriginationRoute, ...]:
    """The hosts to try for one call, in order; empty when the origination is disabled.

    Routes are grouped by priority, lowest number first. Within one priority they are put in a
    weighted random order, RFC 2782 style: weighted sampling without replacement, so a route of
    weight ``w`` comes first in ``w / (sum of the group's weights)`` of the calls. Routes that
    ``health`` marks down at ``now`` are not dropped but moved after every healthy route (ordered
    among themselves the same way): a host that is merely believed dead is still tried when
    nothing else is left, so a total outage, or a health table that is wrong, never makes the
    call fail without an attempt. ``health`` None means every route is healthy. ``rng.random()``
    is called once per route of a group with two or more routes.
    """
    if origination.disabled:
        return ()
    healthy: list[OriginationRoute] = []
    down: list[OriginationRoute] = []
    for route in origination.routes:
        (down if health is not None and health.is_down(route.key, now) else healthy).append(route)
    return _ordered(healthy, rng) + _ordered(down, rng)


def _ordered(routes: Sequence[OriginationRoute], rng: RandomLike) -> tuple[OriginationRoute, ...]:
    result: list[OriginationRoute] = []
    for priority in sorted({route.priority for route in routes}):
        result.extend(_weighted_order([route for route in routes if route.priority == priority], rng))
    return tuple(result)


def _weighted_order(group: list[OriginationRoute], rng: RandomLike) -> list[OriginationRoute]:
    remaining = list(group)
    order: list[OriginationRoute] = []
    while len(remaining) > 1:
        total = sum(route.weight for route in remaining)
        point = rng.random() * total
        running = 0.0
        chosen = len(remaining) - 1  # rounding guard: rng.random() < 1 always lands inside
        for index, route in enumerate(remaining):
            running += route.weight
            if point < running:
                chosen = index
                break
        order.append(remaining.pop(chosen))
    return order + remaining


# --------------------------------------------------------------------------- failover


class Outcome(enum.Enum):
    """What to do after one host failed to take a call."""

    TRY_NEXT = "try_next"
    """The host, not the call, failed: try the next host of the plan (if any)."""
    STOP = "stop"
    """The far end gave a final answer about the call: stop and report it to the caller."""


def after_failure(status_code: int | None, transport_error: bool = False, timed_out: bool = False) -> Outcome:
    """Whether a failed attempt on one host moves on to the next host.

    TRY_NEXT on a timeout (no final response), a transport error (connection refused or reset,
    TLS handshake, ICMP unreachable), 408 Request Timeout and any 5xx (500, 502, 503, 504, ...):
    the host or its network could not handle the call, another may. STOP on 3xx (redirects are
    not followed), other 4xx (404, 480, 484, 486, ...) and 6xx (600, 603, 604, 606): a final
    answer about the called party, which another host of the same carrier would repeat. 401
    and 407 normally never arrive here (digest authentication answers them); if they do, the
    credentials were refused and the answer is STOP. A status below 300 is not a failure
    (``ValueError``).
    """
    if transport_error or timed_out or status_code is None:
        return Outcome.TRY_NEXT
    if status_code < 300:
        raise ValueError(f"{status_code} is not a failure")
    if status_code == 408 or 500 <= status_code <= 599:
        return Outcome.TRY_NEXT
    return Outcome.STOP


def is_host_failure(status_code: int | None, transport_error: bool = False, timed_out: bool = False) -> bool:
    """Whether a result counts against the host's health (probe or call attempt).

    A timeout, a transport error, 408 and 503 mean the host cannot take requests. Every other
    response (also 404, 486, 500, 603) proves the host is up and answering, even if this
    request failed.
    """
    return transport_error or timed_out or status_code is None or status_code in HOST_FAILURE_CODES


# --------------------------------------------------------------------------- health (OPTIONS probing)


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: send due probes, time out unanswered ones, lapse hold-downs."""

    now: float
    """Monotonic seconds."""


@dataclass(frozen=True, slots=True)
class ProbeAnswered:
    """A response to an OPTIONS probe arrived."""

    route_key: str
    """:attr:`OriginationRoute.key` of the probed route."""
    status_code: int
    """SIP status of the response."""
    now: float
    """Monotonic seconds."""


@dataclass(frozen=True, slots=True)
class ProbeFailed:
    """An OPTIONS probe failed without a response (transport error, or the shell's own timeout)."""

    route_key: str
    """:attr:`OriginationRoute.key` of the probed route."""
    now: float
    """Monotonic seconds."""
    reason: str = "transport error"
    """For logs: ``"transport error"``, ``"timeout"``, ..."""


@dataclass(frozen=True, slots=True)
class CallAttemptFailed:
    """A call attempt on the route failed in a way that :func:`is_host_failure` counts."""

    route_key: str
    """:attr:`OriginationRoute.key` of the route tried."""
    reason: str
    """For logs: ``"timeout"``, ``"transport error"``, ``"503"``, ..."""
    now: float
    """Monotonic seconds."""


@dataclass(frozen=True, slots=True)
class CallAttemptAnswered:
    """The route answered a call attempt with a response that is not a host failure."""

    route_key: str
    """:attr:`OriginationRoute.key` of the route tried."""
    now: float
    """Monotonic seconds."""


HealthInput = Tick | ProbeAnswered | ProbeFailed | CallAttemptFailed | CallAttemptAnswered


@dataclass(frozen=True, slots=True)
class SendOptions:
    """Send an OPTIONS request to ``route.uri()`` and report the result."""

    route: OriginationRoute
    """The route to probe."""


@dataclass(frozen=True, slots=True)
class RouteDown:
    """The route is now considered down: :func:`plan_attempts` tries it last."""

    route: OriginationRoute
    """The route."""
    reason: str
    """For logs, e.g. ``"2 consecutive failures, last: OPTIONS timeout"``."""


@dataclass(frozen=True, slots=True)
class RouteUp:
    """The route is considered up again."""

    route: OriginationRoute
    """The route."""
    reason: str
    """For logs: ``"OPTIONS answered 200"``, ``"call answered"``, ``"hold-down expired"``."""


HealthOutput = SendOptions | RouteDown | RouteUp


@dataclass(slots=True)
class _RouteState:
    route: OriginationRoute
    failures: int = 0
    down: bool = False
    last_failure_at: float = 0.0
    next_probe_at: float | None = None  # None: probe on the next tick
    probe_sent_at: float | None = None  # an unanswered probe is outstanding


class OriginationHealth:
    """Health of the routes of one origination, from OPTIONS probes and call results.

    Feed every input to :meth:`handle` and carry out the outputs it returns. Rules:

    * Every route starts up. With ``interval_s`` > 0 each route is probed on the first
      :class:`Tick` and then every ``interval_s`` seconds, down routes too (that is how they
      come back). A probe not answered within ``probe_timeout_s`` (at most ``interval_s``)
      fails on the next tick after that; the shell need not time probes out itself.
    * A failure is a failed probe, a probe answered 408 or 503 (:func:`is_host_failure`), or a
      :class:`CallAttemptFailed`. After ``down_after`` consecutive failures the route goes
      down (:class:`RouteDown`), so calls stop waiting for a dead host's timeout.
    * Any other probe response (200, but also 404, 405, 500: the host is answering) and any
      :class:`CallAttemptAnswered` reset the count and bring a down route up (:class:`RouteUp`).
    * A :class:`ProbeFailed` or failing answer for a probe that is no longer outstanding (it
      was already timed out) is ignored; a late answer that shows the host alive still counts.
    * With probing disabled (``interval_s`` 0) nothing would ever bring a down route back, so
      ``hold_down_s`` after its last failure it comes up on probation: one more failure marks
      it down again.
    * Inputs for unknown route keys are ignored (routes changed by a reload).
    """

    def __init__(
        self,
        routes: Iterable[OriginationRoute],
        *,
        interval_s: float = DEFAULT_OPTIONS_INTERVAL_S,
        probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
        down_after: int = DEFAULT_DOWN_AFTER,
        hold_down_s: float = DEFAULT_HOLD_DOWN_S,
    ) -> None:
        if interval_s < 0 or probe_timeout_s <= 0 or down_after < 1 or hold_down_s <= 0:
            raise ValueError("interval_s >= 0, probe_timeout_s > 0, down_after >= 1, hold_down_s > 0")
        self.interval_s = float(interval_s)
        self.probe_timeout_s = min(float(probe_timeout_s), self.interval_s) if interval_s else float(probe_timeout_s)
        self.down_after = int(down_after)
        self.hold_down_s = float(hold_down_s)
        self._states: dict[str, _RouteState] = {}
        for route in routes:
            self._states.setdefault(route.key, _RouteState(route))

    @classmethod
    def for_origination(cls, origination: Origination, **settings: float) -> OriginationHealth:
        """A health table for ``origination``'s routes, probing every ``options_interval_s``."""
        return cls(origination.routes, interval_s=origination.options_interval_s, **settings)  # type: ignore[arg-type]

    # -- queries

    def is_down(self, route_key: str, now: float) -> bool:
        """True when the route is down at ``now`` (unknown keys are up)."""
        state = self._states.get(route_key)
        return state is not None and state.down and not self._hold_down_over(state, now)

    def down_routes(self, now: float) -> tuple[OriginationRoute, ...]:
        """The routes down at ``now``, in configuration order."""
        return tuple(state.route for key, state in self._states.items() if self.is_down(key, now))

    # -- the entry point

    def handle(self, event: HealthInput) -> tuple[HealthOutput, ...]:
        """Apply one input; return what to do (probes to send) and what changed (down/up)."""
        if isinstance(event, Tick):
            return self._tick(event.now)
        state = self._states.get(event.route_key)
        if state is None:
            return ()
        if isinstance(event, ProbeAnswered):
            outstanding = state.probe_sent_at is not None
            state.probe_sent_at = None
            if not is_host_failure(event.status_code):
                return self._answered(state, f"OPTIONS answered {event.status_code}")
            return self._failed(state, f"OPTIONS answered {event.status_code}", event.now) if outstanding else ()
        if isinstance(event, ProbeFailed):
            if state.probe_sent_at is None:
                return ()
            state.probe_sent_at = None
            return self._failed(state, f"OPTIONS {event.reason}", event.now)
        if isinstance(event, CallAttemptFailed):
            return self._failed(state, f"call attempt {event.reason}", event.now)
        if isinstance(event, CallAttemptAnswered):
            return self._answered(state, "call answered")
        raise TypeError(f"not a health input: {event!r}")

    # -- transitions

    def _hold_down_over(self, state: _RouteState, now: float) -> bool:
        return self.interval_s == 0 and now - state.last_failure_at >= self.hold_down_s

    def _tick(self, now: float) -> tuple[HealthOutput, ...]:
        outputs: list[HealthOutput] = []
        for state in self._states.values():
            if state.probe_sent_at is not None and now - state.probe_sent_at >= self.probe_timeout_s:
                state.probe_sent_at = None
                outputs.extend(self._failed(state, "OPTIONS timeout", now))
            if state.down and self._hold_down_over(state, now):
                state.down = False
                state.failures = self.down_after - 1
                outputs.append(RouteUp(state.route, "hold-down expired"))
            if self.interval_s > 0 and state.probe_sent_at is None:
                if state.next_probe_at is None or now >= state.next_probe_at:
                    state.probe_sent_at = now
                    state.next_probe_at = now + self.interval_s
                    outputs.append(SendOptions(state.route))
        return tuple(outputs)

    def _failed(self, state: _RouteState, reason: str, now: float) -> tuple[HealthOutput, ...]:
        state.failures += 1
        state.last_failure_at = now
        if state.down or state.failures < self.down_after:
            return ()
        state.down = True
        return (RouteDown(state.route, f"{state.failures} consecutive failures, last: {reason}"),)

    def _answered(self, state: _RouteState, reason: str) -> tuple[HealthOutput, ...]:
        state.failures = 0
        if not state.down:
            return ()
        state.down = False
        return (RouteUp(state.route, reason),)
