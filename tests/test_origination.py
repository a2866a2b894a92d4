"""Origination trunks (sip_rules.origination): host choice, failover, OPTIONS health."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from sip_rules.origination import (
    CallAttemptAnswered,
    CallAttemptFailed,
    Origination,
    OriginationCredentials,
    OriginationHealth,
    OriginationRoute,
    Outcome,
    ProbeAnswered,
    ProbeFailed,
    RouteDown,
    RouteUp,
    SendOptions,
    Tick,
    after_failure,
    host_problem,
    is_host_failure,
    normalize_route_host,
    origination_problems,
    plan_attempts,
)

A = OriginationRoute("sbc-a.example.com", 5060, "udp", priority=1, weight=80)
B = OriginationRoute("sbc-b.example.com", 5060, "udp", priority=1, weight=20)
C = OriginationRoute("10.0.0.3", 5061, "tls", priority=2, weight=1)


class FixedHealth:
    """A health table with a fixed set of down route keys."""

    def __init__(self, *down: OriginationRoute) -> None:
        self.down = {route.key for route in down}

    def is_down(self, route_key: str, now: float) -> bool:
        return route_key in self.down


# --------------------------------------------------------------------------- values


def test_route_uri_and_key() -> None:
    assert A.uri("+15550100000") == "sip:+15550100000@sbc-a.example.com:5060;transport=udp"
    assert C.uri("+15550100000") == "sip:+15550100000@10.0.0.3:5061;transport=tls"
    v6 = OriginationRoute("2001:db8::1", 5060, "tcp")
    assert v6.uri("alice") == "sip:alice@[2001:db8::1]:5060;transport=tcp"
    assert v6.key == "tcp:[2001:db8::1]:5060"
    assert A.uri() == "sip:sbc-a.example.com:5060;transport=udp"
    assert A.uri("a b") == "sip:a%20b@sbc-a.example.com:5060;transport=udp"


def test_credentials_hide_password_and_match_realm() -> None:
    credentials = OriginationCredentials("chime", "s3cret")
    assert "s3cret" not in repr(credentials)
    assert credentials.answers("any.realm")
    assert OriginationCredentials("chime", "x", "carrier").answers("carrier")
    assert not OriginationCredentials("chime", "x", "carrier").answers("other")


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("", "must not be empty"),
        ("sip:sbc.example.com", "without a scheme"),
        ("https://sbc.example.com", "without a scheme"),
        ("sbc.example.com:5060", "port key"),
        ("[2001:db8::1]:5060", "port key"),
        ("chime@sbc.example.com", "host only"),
        ("10.0.0.300", "not a valid IPv4 address"),
        ("-bad.example.com", "not a valid host name"),
        ("[nope]", "not a valid IPv6 literal"),
    ],
)
def test_host_problems(host: str, fragment: str) -> None:
    problem = host_problem(host)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    ("host", "normalised"),
    [
        ("SBC1.Example.com.", "sbc1.example.com"),
        ("10.0.0.2", "10.0.0.2"),
        ("[2001:DB8:0::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("localhost", "localhost"),
    ],
)
def test_host_normalisation(host: str, normalised: str) -> None:
    assert host_problem(host) is None
    assert normalize_route_host(host) == normalised


def test_origination_problems() -> None:
    assert origination_problems(Origination((A, B, C))) == ()
    assert origination_problems(Origination((), disabled=True)) == ()
    bad = Origination(
        (
            OriginationRoute("sbc.example.com:5060", 0, "sctp", priority=0, weight=101),
            A,
            OriginationRoute("SBC-A.example.com", 5060, "udp"),
            OriginationRoute("sbc-a.example.com", 5060, "udp"),
        ),
        credentials=OriginationCredentials("", "", ""),
        options_interval_s=-1,
    )
    fields = {problem.field for problem in origination_problems(bad)}
    assert {
        ("routes", 0, "host"),
        ("routes", 0, "port"),
        ("routes", 0, "protocol"),
        ("routes", 0, "priority"),
        ("routes", 0, "weight"),
        ("routes", 2, "host"),  # not in canonical form
        ("routes", 2),  # ... and once normalised a duplicate of routes[1]
        ("routes", 3),  # duplicate of routes[1]
        ("credentials", "username"),
        ("credentials", "password"),
        ("credentials", "realm"),
        ("options_interval_s",),
    } == fields
    assert any("routes[1]" in problem.message for problem in origination_problems(bad))
    many = Origination(tuple(OriginationRoute(f"h{i}.example.com") for i in range(21)))
    assert [p.message for p in origination_problems(many)] == ["at most 20 routes allowed, got 21"]
    assert [p.message for p in origination_problems(Origination(()))] == [
        "an enabled origination needs at least one route"
    ]


# --------------------------------------------------------------------------- host choice


def test_priority_order() -> None:
    low = OriginationRoute("low.example.com", priority=5)
    high = OriginationRoute("high.example.com", priority=1)
    middle = OriginationRoute("middle.example.com", priority=3)
    plan = plan_attempts(Origination((low, high, middle)), None, 0.0, random.Random(7))
    assert plan == (high, middle, low)


def test_weight_distribution() -> None:
    rng = random.Random(2024)
    origination = Origination((A, B, C))
    firsts: Counter[OriginationRoute] = Counter()
    for _ in range(10_000):
        plan = plan_attempts(origination, None, 0.0, rng)
        assert set(plan[:2]) == {A, B} and plan[2] == C  # every host once; priority 2 last
        firsts[plan[0]] += 1
    assert abs(firsts[A] / 10_000 - 0.80) < 0.02
    assert abs(firsts[B] / 10_000 - 0.20) < 0.02


def test_weighted_sampling_without_replacement_three_ways() -> None:
    rng = random.Random(5)
    routes = tuple(OriginationRoute(f"h{w}.example.com", weight=w) for w in (60, 30, 10))
    firsts: Counter[str] = Counter()
    for _ in range(10_000):
        plan = plan_attempts(Origination(routes), None, 0.0, rng)
        assert sorted(route.host for route in plan) == sorted(route.host for route in routes)
        firsts[plan[0].host] += 1
    assert [round(firsts[route.host] / 10_000, 1) for route in routes] == [0.6, 0.3, 0.1]


def test_down_hosts_go_last() -> None:
    rng = random.Random(1)
    origination = Origination((A, B, C))
    for _ in range(50):
        assert plan_attempts(origination, FixedHealth(A), 0.0, rng)[1:] == (C, A)
    assert plan_attempts(origination, FixedHealth(C), 0.0, rng)[2] == C
    everything_down = plan_attempts(origination, FixedHealth(A, B, C), 0.0, rng)
    assert set(everything_down[:2]) == {A, B} and everything_down[2] == C  # still attempted, in order


def test_disabled_origination_plans_nothing() -> None:
    assert plan_attempts(Origination((A, B), disabled=True), None, 0.0, random.Random(1)) == ()


# --------------------------------------------------------------------------- failover


@pytest.mark.parametrize(
    ("status", "transport_error", "timed_out", "outcome"),
    [
        (None, False, True, Outcome.TRY_NEXT),
        (None, True, False, Outcome.TRY_NEXT),
        (408, False, False, Outcome.TRY_NEXT),
        (500, False, False, Outcome.TRY_NEXT),
        (502, False, False, Outcome.TRY_NEXT),
        (503, False, False, Outcome.TRY_NEXT),
        (504, False, False, Outcome.TRY_NEXT),
        (302, False, False, Outcome.STOP),
        (401, False, False, Outcome.STOP),
        (403, False, False, Outcome.STOP),
        (404, False, False, Outcome.STOP),
        (480, False, False, Outcome.STOP),
        (486, False, False, Outcome.STOP),
        (600, False, False, Outcome.STOP),
        (603, False, False, Outcome.STOP),
    ],
)
def test_failover_decisions(status: int | None, transport_error: bool, timed_out: bool, outcome: Outcome) -> None:
    assert after_failure(status, transport_error, timed_out) is outcome


def test_success_is_not_a_failure() -> None:
    with pytest.raises(ValueError):
        after_failure(200, False, False)


@pytest.mark.parametrize(
    ("status", "transport_error", "timed_out", "failure"),
    [
        (None, False, True, True),
        (None, True, False, True),
        (408, False, False, True),
        (503, False, False, True),
        (200, False, False, False),
        (404, False, False, False),
        (405, False, False, False),
        (500, False, False, False),
        (603, False, False, False),
    ],
)
def test_host_failure_classification(status: int | None, transport_error: bool, timed_out: bool, failure: bool) -> None:
    assert is_host_failure(status, transport_error, timed_out) is failure


# --------------------------------------------------------------------------- health


def test_probes_are_sent_every_interval() -> None:
    health = OriginationHealth((A, B), interval_s=30)
    assert health.handle(Tick(100.0)) == (SendOptions(A), SendOptions(B))
    assert health.handle(ProbeAnswered(A.key, 200, 100.1)) == ()
    assert health.handle(ProbeAnswered(B.key, 200, 100.2)) == ()
    assert health.handle(Tick(110.0)) == ()
    assert health.handle(Tick(129.9)) == ()
    assert health.handle(Tick(130.0)) == (SendOptions(A), SendOptions(B))


def test_route_down_after_two_failures_and_up_after_one_answer() -> None:
    health = OriginationHealth((A,), interval_s=30, probe_timeout_s=5, down_after=2)
    assert health.handle(Tick(0.0)) == (SendOptions(A),)
    assert health.handle(ProbeFailed(A.key, 0.5, "transport error")) == ()
    assert not health.is_down(A.key, 0.5)
    assert health.handle(Tick(30.0)) == (SendOptions(A),)
    # no answer: the probe times out on a later tick
    assert health.handle(Tick(34.9)) == ()
    (down,) = health.handle(Tick(35.0))
    assert isinstance(down, RouteDown) and down.route == A and "OPTIONS timeout" in down.reason
    assert health.is_down(A.key, 35.0) and health.down_routes(35.0) == (A,)
    assert health.handle(Tick(60.0)) == (SendOptions(A),)  # down routes are still probed
    assert health.handle(ProbeAnswered(A.key, 404, 60.2)) == (RouteUp(A, "OPTIONS answered 404"),)
    assert not health.is_down(A.key, 60.2)


def test_503_and_408_answers_count_as_failures() -> None:
    health = OriginationHealth((A,), interval_s=10, down_after=2)
    health.handle(Tick(0.0))
    assert health.handle(ProbeAnswered(A.key, 503, 0.1)) == ()
    health.handle(Tick(10.0))
    (down,) = health.handle(ProbeAnswered(A.key, 408, 10.1))
    assert isinstance(down, RouteDown) and "OPTIONS answered 408" in down.reason


def test_late_results_of_a_timed_out_probe() -> None:
    health = OriginationHealth((A,), interval_s=30, probe_timeout_s=5, down_after=3)
    health.handle(Tick(0.0))
    health.handle(Tick(5.0))  # timed out: failure 1
    assert health.handle(ProbeFailed(A.key, 6.0, "timeout")) == ()  # not counted twice
    assert health.handle(ProbeAnswered(A.key, 503, 6.0)) == ()  # not counted twice either
    health.handle(CallAttemptFailed(A.key, "timeout", 7.0))  # failure 2
    health.handle(ProbeAnswered(A.key, 200, 8.0))  # a late 200 proves the host alive: reset
    assert health.handle(CallAttemptFailed(A.key, "timeout", 9.0)) == ()
    assert health.handle(CallAttemptFailed(A.key, "timeout", 9.5)) == ()
    assert isinstance(health.handle(CallAttemptFailed(A.key, "503", 9.9))[0], RouteDown)


def test_call_results_feed_the_health_table() -> None:
    health = OriginationHealth((A, B), interval_s=30, down_after=2)
    assert health.handle(CallAttemptFailed(A.key, "timeout", 1.0)) == ()
    (down,) = health.handle(CallAttemptFailed(A.key, "transport error", 2.0))
    assert down == RouteDown(A, "2 consecutive failures, last: call attempt transport error")
    assert health.handle(CallAttemptFailed(A.key, "timeout", 3.0)) == ()  # already down: no repeat
    plan = plan_attempts(Origination((A, B)), health, 3.0, random.Random(3))
    assert plan == (B, A)
    assert health.handle(CallAttemptAnswered(A.key, 4.0)) == (RouteUp(A, "call answered"),)
    assert health.handle(CallAttemptAnswered(A.key, 5.0)) == ()


def test_answer_resets_consecutive_count() -> None:
    health = OriginationHealth((A,), interval_s=0, down_after=2)
    health.handle(CallAttemptFailed(A.key, "timeout", 1.0))
    health.handle(CallAttemptAnswered(A.key, 2.0))
    assert health.handle(CallAttemptFailed(A.key, "timeout", 3.0)) == ()
    assert not health.is_down(A.key, 3.0)


def test_without_probing_a_down_route_comes_back_on_probation() -> None:
    health = OriginationHealth((A,), interval_s=0, down_after=2, hold_down_s=60)
    assert health.handle(Tick(0.0)) == ()  # probing disabled: no OPTIONS
    health.handle(CallAttemptFailed(A.key, "timeout", 10.0))
    assert isinstance(health.handle(CallAttemptFailed(A.key, "timeout", 20.0))[0], RouteDown)
    assert health.is_down(A.key, 79.9)
    assert not health.is_down(A.key, 80.0)  # the query agrees with the tick below
    assert health.handle(Tick(80.0)) == (RouteUp(A, "hold-down expired"),)
    (down,) = health.handle(CallAttemptFailed(A.key, "timeout", 85.0))  # one failure is enough now
    assert isinstance(down, RouteDown)


def test_with_probing_down_routes_stay_down_until_answered() -> None:
    health = OriginationHealth((A,), interval_s=30, down_after=1, hold_down_s=60)
    health.handle(CallAttemptFailed(A.key, "timeout", 0.0))
    assert health.is_down(A.key, 1000.0)


def test_unknown_route_keys_are_ignored() -> None:
    health = OriginationHealth((A,), interval_s=30)
    assert health.handle(ProbeAnswered("udp:gone.example.com:5060", 200, 1.0)) == ()
    assert health.handle(CallAttemptFailed("udp:gone.example.com:5060", "timeout", 1.0)) == ()
    assert not health.is_down("udp:gone.example.com:5060", 1.0)


def test_for_origination_uses_options_interval() -> None:
    health = OriginationHealth.for_origination(Origination((A,), options_interval_s=0))
    assert health.interval_s == 0 and health.handle(Tick(0.0)) == ()
    with pytest.raises(ValueError):
        OriginationHealth((A,), down_after=0)
