"""sip_rules.admission: token buckets on the call-set-up rate, per source and overall, and the
concurrent-call cap (time is an input: no clock, no sleeping)."""
from __future__ import annotations

import pytest

from sip_rules.admission import ADMITTED, Admission, Limits, Refused, TokenBucket


def test_a_bucket_starts_full_empties_and_refills_at_its_rate():
    b = TokenBucket(rate=10, burst=3, now=0.0)
    assert [b.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take(0.0) == pytest.approx(0.1)         # one token per 1/10 s
    assert b.take(0.05) == pytest.approx(0.05)
    assert b.take(0.1) == 0.0
    assert b.take(100.0) == 0.0 and b.tokens == pytest.approx(2.0)   # never more than burst


def test_bad_bucket_parameters_are_refused():
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, now=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0, now=0)


def test_the_overall_rate_admits_burst_then_rate_per_second():
    a = Admission(Limits(max_calls_per_second=100, burst=10, max_concurrent_calls=None), now=0.0)
    results = [a.admit("10.0.0.1", 0, 0.0) for _ in range(15)]
    assert results[:10] == [ADMITTED] * 10
    assert results[10:] == [Refused("rate", 1)] * 5
    # 200 INVITEs/s for 2 s against 100/s: about 100 admitted per second once the burst is gone
    admitted = sum(a.admit("10.0.0.1", 0, 1.0 + i / 200) is ADMITTED for i in range(400))
    assert 195 <= admitted <= 211


def test_retry_after_is_the_whole_seconds_until_a_token():
    a = Admission(Limits(max_calls_per_second=0.25, burst=1, max_concurrent_calls=None), now=0.0)
    assert a.admit("s", 0, 0.0) is ADMITTED
    assert a.admit("s", 0, 0.0) == Refused("rate", 4)
    assert a.admit("s", 0, 2.5) == Refused("rate", 2)


def test_the_concurrency_cap_refuses_at_the_limit():
    a = Admission(Limits(max_calls_per_second=None, max_concurrent_calls=3), now=0.0)
    assert a.admit("s", 2, 0.0) is ADMITTED
    assert a.admit("s", 3, 0.0) == Refused("concurrency", 1)
    assert a.admit("s", 2, 0.0) is ADMITTED


def test_one_flooding_source_does_not_use_up_the_others_budget():
    a = Admission(Limits(max_calls_per_second=50, burst=50, max_concurrent_calls=None,
                         per_source_rate=5, per_source_burst=5), now=0.0)
    flood = [a.admit("192.0.2.66", 0, i / 1000) for i in range(100)]     # 100 INVITEs in 0.1 s
    assert sum(r is ADMITTED for r in flood) == 5
    assert {r.cause for r in flood if isinstance(r, Refused)} == {"source_rate"}
    # the global bucket paid only for the 5 it admitted: 45 others still get through at once
    others = [a.admit(f"198.51.100.{i}", 0, 0.1) for i in range(45)]
    assert others == [ADMITTED] * 45


def test_a_call_refused_later_gives_its_source_token_back():
    a = Admission(Limits(max_calls_per_second=None, max_concurrent_calls=1, per_source_rate=1,
                         per_source_burst=1), now=0.0)
    assert a.admit("s", 1, 0.0) == Refused("concurrency", 1)      # the cap refused it ...
    assert a.admit("s", 0, 0.0) is ADMITTED                       # ... and the source's token is still there


def test_the_source_table_is_bounded_and_forgets_quiet_sources_first():
    a = Admission(Limits(max_calls_per_second=None, max_concurrent_calls=None, per_source_rate=1,
                         per_source_burst=2), now=0.0, max_sources=3)
    a.admit("busy", 0, 0.0)
    a.admit("busy", 0, 0.0)
    for s in ("q1", "q2"):
        a.admit(s, 0, 0.0)
    a.admit("new", 0, 1.0)            # q1 and q2 are full again at t=1; busy is not
    assert "busy" in a.sources and "new" in a.sources and len(a.sources) <= 3
    assert a.admit("busy", 0, 1.0) is ADMITTED and a.admit("busy", 0, 1.0) == Refused("source_rate", 1)


def test_off_switches_every_check_off():
    a = Admission(Limits(max_calls_per_second=None, max_concurrent_calls=None, per_source_rate=None), now=0.0)
    assert all(a.admit("s", 10**6, 0.0) is ADMITTED for _ in range(10000))


def test_reconfigure_applies_new_limits():
    a = Admission(Limits(max_calls_per_second=1, burst=1, max_concurrent_calls=None), now=0.0)
    a.admit("s", 0, 0.0)
    assert isinstance(a.admit("s", 0, 0.0), Refused)
    a.reconfigure(Limits(max_calls_per_second=100, burst=100, max_concurrent_calls=None), now=0.0)
    assert a.admit("s", 0, 0.0) is ADMITTED


# -- the admission section of the configuration ---------------------------------------------------

def _parse(text: str):
    from pathlib import Path

    from chimevoice.config import parse_config
    return parse_config("data_dir: /tmp/cv\n" + text, base_dir=Path("/tmp"))


def test_admission_defaults_and_off():
    from chimevoice.config import AdmissionConfig
    assert _parse("").admission == AdmissionConfig()
    a = _parse("admission: {max_calls_per_second: off, max_concurrent_calls: 10, per_source: {rate: 2.5}}").admission
    assert a.max_calls_per_second is None and a.max_concurrent_calls == 10
    assert a.per_source_rate == 2.5 and a.per_source_burst == 20


def test_admission_errors_name_their_line():
    from chimevoice.config import ConfigError
    with pytest.raises(ConfigError) as err:
        _parse("admission:\n  max_calls_per_second: 0\n  burst: 0\n  per_source: {burst: 3}\n  limit: 1\n")
    text = str(err.value)
    assert "<string>:3: admission.max_calls_per_second: must be greater than 0" in text
    assert "<string>:4: admission.burst:" in text
    assert "<string>:5: admission.per_source.rate: required key is missing" in text
    assert "<string>:6: admission.limit: unknown key" in text


def test_wrong_credentials_lock_a_source_out_for_a_while():
    lim = Limits(max_calls_per_second=None, max_concurrent_calls=None, auth_failures=3, auth_window_s=10,
                 auth_lockout_s=60)
    a = Admission(lim, now=0.0)
    assert [a.auth_failed("10.0.0.9", t) for t in (0.0, 1.0)] == [False, False]
    assert a.admit("10.0.0.9", 0, 1.5) is ADMITTED           # two wrong guesses: still let in
    assert a.auth_failed("10.0.0.9", 2.0) is True            # the third within 10 s locks it out
    assert a.admit("10.0.0.9", 0, 2.0) == Refused("auth_lockout", 60)
    assert a.admit("10.0.0.9", 0, 31.5) == Refused("auth_lockout", 31)
    assert a.admit("10.0.0.8", 0, 3.0) is ADMITTED           # another source is not
    assert a.auth_failed("10.0.0.9", 40.0) is False          # already locked: the lockout does not grow
    assert a.admit("10.0.0.9", 0, 62.0) is ADMITTED          # over
    # failures spread wider than the window never add up
    assert not any(a.auth_failed("10.0.0.7", t) for t in (0.0, 11.0, 22.0, 33.0, 44.0))
    # a reload keeps a lockout; auth_failures None never locks
    a.auth_failed("10.0.0.6", 100.0), a.auth_failed("10.0.0.6", 100.1), a.auth_failed("10.0.0.6", 100.2)
    a.reconfigure(lim, now=101.0)
    assert a.admit("10.0.0.6", 0, 101.0) == Refused("auth_lockout", 60)
    off = Admission(Limits(auth_failures=None), now=0.0)
    assert not any(off.auth_failed("s", i / 10) for i in range(50)) and off.admit("s", 0, 5.0) is ADMITTED


def test_the_lockout_table_is_bounded():
    a = Admission(Limits(max_calls_per_second=None, auth_failures=2), now=0.0, max_sources=100)
    for i in range(1000):
        a.auth_failed(f"10.1.{i // 250}.{i % 250}", 0.0)
    assert len(a.auth) <= 100


def test_a_gated_invite_is_checked_only_for_lockout_and_concurrency():
    """The SIP endpoint's gate (C, ahead of pjsua) ran the source and rate checks and took the
    tokens: admission must not take them a second time, but still applies the lockout it has
    just started (the gate hears of it a moment later) and the concurrency cap."""
    a = Admission(Limits(max_calls_per_second=1, burst=1, max_concurrent_calls=2, per_source_rate=1,
                         per_source_burst=1), now=0.0)
    assert [a.admit("s", 0, 0.0, gated=True) for _ in range(5)] == [ADMITTED] * 5
    assert a.overall is not None and a.overall.tokens == 1.0 and "s" not in a.sources
    assert a.admit("s", 2, 0.0, gated=True) == Refused("concurrency", 1)
    for _ in range(10):
        a.auth_failed("s", 0.0)
    assert a.admit("s", 0, 0.0, gated=True) == Refused("auth_lockout", 300)
    assert a.admit("s", 0, 0.0) == Refused("auth_lockout", 300)
    assert a.admit("t", 0, 0.0) is ADMITTED and a.admit("t", 0, 0.0) == Refused("source_rate", 1)
