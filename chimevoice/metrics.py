"""Counters, gauges and summaries at the seams, rendered in Prometheus text format."""
from __future__ import annotations

import bisect
from collections import defaultdict


class Metrics:
    _BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20)

    def __init__(self) -> None:
        self.counters: dict[tuple[str, tuple], float] = defaultdict(float)
        self.gauges: dict[str, float] = {}
        self.hist: dict[str, list[int]] = {}
        self.hist_sum: dict[str, float] = defaultdict(float)
        self.hist_count: dict[str, int] = defaultdict(int)

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        self.counters[(name, tuple(sorted(labels.items())))] += value

    def gauge(self, name: str, value: float) -> None:
        self.gauges[name] = value

    def observe(self, name: str, value: float) -> None:
        buckets = self.hist.setdefault(name, [0] * (len(self._BUCKETS) + 1))
        buckets[bisect.bisect_left(self._BUCKETS, value)] += 1
        self.hist_sum[name] += value
        self.hist_count[name] += 1

    def counter(self, name: str, **labels: str) -> float:
        return self.counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        for (name, labels), value in sorted(self.counters.items()):
            lab = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"chimevoice_{name}{{{lab}}} {value:g}" if lab else f"chimevoice_{name} {value:g}")
        for name, value in sorted(self.gauges.items()):
            lines.append(f"chimevoice_{name} {value:g}")
        for name, counts in sorted(self.hist.items()):
            acc = 0
            for le, n in zip((*self._BUCKETS, "+Inf"), counts):
                acc += n
                lines.append(f'chimevoice_{name}_bucket{{le="{le}"}} {acc}')
            lines.append(f"chimevoice_{name}_sum {self.hist_sum[name]:g}")
            lines.append(f"chimevoice_{name}_count {self.hist_count[name]}")
        return "\n".join(lines) + "\n"
