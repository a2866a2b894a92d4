"""Counters, gauges and histograms at the seams, rendered in Prometheus text format."""
from __future__ import annotations

import bisect
from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{v}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Metrics:
    _BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20)
    #: Histograms whose values are smaller than latencies (seconds).
    _FINE = {"rtp_jitter_seconds": (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5)}

    def __init__(self) -> None:
        self.counters: dict[tuple[str, Labels], float] = defaultdict(float)
        self.gauges: dict[str, float] = {}
        # histograms: (name, labels) -> counts per bucket (+Inf last), sum, count
        self.hist: dict[tuple[str, Labels], list[int]] = {}
        self.hist_sum: dict[tuple[str, Labels], float] = defaultdict(float)
        self.hist_count: dict[tuple[str, Labels], int] = defaultdict(int)

    def inc(self, name: str, value: float = 1, **labels: str) -> None:
        self.counters[(name, tuple(sorted(labels.items())))] += value

    def gauge(self, name: str, value: float) -> None:
        self.gauges[name] = value

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        bounds = self._FINE.get(name, self._BUCKETS)
        buckets = self.hist.setdefault(key, [0] * (len(bounds) + 1))
        buckets[bisect.bisect_left(bounds, value)] += 1
        self.hist_sum[key] += value
        self.hist_count[key] += 1

    def counter(self, name: str, **labels: str) -> float:
        return self.counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def counter_sum(self, name: str) -> float:
        """*name* summed over all its label sets."""
        return sum(v for (n, _), v in self.counters.items() if n == name)

    def histogram(self, name: str) -> list[int]:
        """The bucket counts of *name* summed over all its label sets (zeros when unseen)."""
        out = [0] * (len(self._FINE.get(name, self._BUCKETS)) + 1)
        for (n, _), counts in self.hist.items():
            if n == name:
                out = [a + b for a, b in zip(out, counts)]
        return out

    def render(self) -> str:
        lines: list[str] = []
        for (name, labels), value in sorted(self.counters.items()):
            lines.append(f"chimevoice_{name}{_labels(labels)} {value:g}")
        for name, value in sorted(self.gauges.items()):
            lines.append(f"chimevoice_{name} {value:g}")
        for key, counts in sorted(self.hist.items()):
            name, labels = key
            acc = 0
            for le, n in zip((*self._FINE.get(name, self._BUCKETS), "+Inf"), counts):
                acc += n
                le_label = 'le="' + str(le) + '"'
                lines.append(f"chimevoice_{name}_bucket{_labels(labels, le_label)} {acc}")
            lines.append(f"chimevoice_{name}_sum{_labels(labels)} {self.hist_sum[key]:g}")
            lines.append(f"chimevoice_{name}_count{_labels(labels)} {self.hist_count[key]}")
        return "\n".join(lines) + "\n"
