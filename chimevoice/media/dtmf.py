"""In-band DTMF detection (ITU-T Q.23 signals, Q.24 receiver limits) for 8 kHz mono audio.

One :class:`DtmfDetector` per call leg is fed the caller's audio in chunks of any size
(20-250 ms as a recording grows); :meth:`DtmfDetector.feed` returns the digits whose
tone reached the minimum duration inside that chunk. Each key press is reported once.

Algorithm (docs/dtmf.md has the details and the measured figures)
------------------------------------------------------------------
* Blocks of ``BLOCK`` = 104 samples (13 ms) every ``HOP`` = 26 samples (75 % overlap).
  Every block is correlated, as one matrix product, against precomputed cos/sin rows
  for the 8 DTMF frequencies and their 8 second harmonics (a vectorised Goertzel).
* A block is a candidate for a digit when, for the strongest low-group and high-group
  bins:
    - each is ``DOMINANCE_DB`` above the other bins of its group;
    - a least-squares fit of the two nominal sinusoids explains at least
      ``ENERGY_FRACTION`` of the block's energy (tones must be most of the signal);
    - each tone is above ``MIN_LEVEL_DBM0``;
    - each tone's second harmonic, after removing the fitted tones' leakage, is
      ``HARMONIC_DB`` below the tone (talk-off guard).
* Consecutive candidate blocks of one digit form a run. The phase advance of each tone
  between blocks two hops apart measures its frequency offset precisely (≈1 Hz at
  15 dB SNR), so the ±1.5 % accept / ±3.5 % reject tolerance is decided on frequency,
  not on amplitude. The run must also be phase-coherent (a steady tone, not a glide),
  and its twist (corrected for the bin's roll-off at the measured offset) must lie in
  ``[-MAX_REVERSE_TWIST_DB, MAX_NORMAL_TWIST_DB]``.
* A run is reported when its estimated tone duration reaches ``MIN_ON_S``; it ends only
  after an estimated gap of ``MIN_OFF_S``, so a dropout of up to 20 ms does not split
  a press, while a 40 ms inter-digit pause separates two presses of the same key.

Samples: int16 (scaled by 1/32768) or float in [-1, 1). 0 dBm0 is taken as a sine
3.14 dB below a full-scale sine (the mu-law digital milliwatt).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DtmfDetector", "DtmfHit", "DIGITS", "LOW_FREQS", "HIGH_FREQS", "dbm0_to_amplitude"]

LOW_FREQS = (697.0, 770.0, 852.0, 941.0)
HIGH_FREQS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
DIGITS = "".join(KEYPAD)  # row-major: index = low * 4 + high

RATE = 8000
BLOCK = 104  # samples per analysis block (13 ms at 8 kHz)
HOP = 26  # block advance (3.25 ms)
LAG = 2  # blocks between the two phase measurements of a frequency estimate (52 samples)

DBM0_BELOW_FULL_SCALE_DB = 3.14  # 0 dBm0 sine = full-scale sine - 3.14 dB


def dbm0_to_amplitude(dbm0: float) -> float:
    """Peak amplitude (full scale = 1) of a sine at ``dbm0``."""
    return float(10.0 ** ((dbm0 - DBM0_BELOW_FULL_SCALE_DB) / 20.0))


@dataclass(frozen=True)
class DtmfHit:
    digit: str
    start_s: float  # estimated start of the tone
    duration_s: float  # tone duration observed when the digit was reported (>= MIN_ON_S)


class _Run:
    """Consecutive candidate blocks of one digit (a key press being measured)."""

    __slots__ = ("digit", "first", "last", "count", "reported", "q_lo", "q_hi", "a_lo", "a_hi", "pairs", "p_lo", "p_hi")

    def __init__(self, digit: int, m: int):
        self.digit = digit
        self.first = m
        self.last = m
        self.count = 0
        self.reported = False
        self.q_lo = 0j  # sum of lag products (phase advance) per tone
        self.q_hi = 0j
        self.a_lo = 0.0  # sum of |lag product| (for coherence)
        self.a_hi = 0.0
        self.pairs = 0
        self.p_lo = 0.0  # sum of fitted tone powers (amplitude^2)
        self.p_hi = 0.0


class DtmfDetector:
    """Streaming DTMF detector for one audio stream (see the module docstring)."""

    # Q.24-derived limits (accept / reject values in the comments; thresholds between them)
    FREQ_TOLERANCE = 0.025  # accept +-1.5 %, reject beyond +-3.5 %
    MAX_NORMAL_TWIST_DB = 6.0  # high group stronger: accept +4 dB, reject +8 dB
    MAX_REVERSE_TWIST_DB = 10.0  # low group stronger: accept 8 dB, reject 12 dB
    MIN_LEVEL_DBM0 = -30.0  # per tone: accept -25 dBm0, reject -35 dBm0
    MIN_ON_S = 0.031  # accept 40 ms, reject < 23 ms
    MIN_OFF_S = 0.030  # a 40 ms pause separates digits; a <= 20 ms dropout does not
    # talk-off guards
    ENERGY_FRACTION = 0.70  # the two fitted tones' share of the block energy
    DOMINANCE_DB = 6.0  # strongest bin over the other bins of its group
    HARMONIC_DB = 15.0  # second harmonic at least this far below its tone
    MIN_COHERENCE = 0.90  # |sum of phase steps| / sum |phase steps| over a run
    EDGE = 13.0  # samples: offset between a block edge and the tone edge it detects (calibrated)

    def __init__(self, rate: int = RATE):
        if rate != RATE:
            raise ValueError(f"DtmfDetector works on {RATE} Hz audio (got {rate}); resample first")
        self.rate = rate
        tables = _tables()
        self._basis = tables["basis"]
        self._ginv = tables["ginv"]
        self._hcross = tables["hcross"]
        self._rot = tables["rot"]
        self._amp2_min = dbm0_to_amplitude(self.MIN_LEVEL_DBM0) ** 2
        self._dom = 10.0 ** (-self.DOMINANCE_DB / 10.0)
        self._harm = 10.0 ** (-self.HARMONIC_DB / 10.0)
        on = self.MIN_ON_S * rate
        # a run spans (last - first) * HOP + BLOCK - 2 * EDGE samples
        self._min_on_blocks = int(np.ceil((on - BLOCK + 2 * self.EDGE) / HOP))
        off = self.MIN_OFF_S * rate
        # the gap after block `last` is at least (m + 1 - last) * HOP - BLOCK + 2 * EDGE once block m failed
        self._min_off_blocks = int(np.ceil((off + BLOCK - 2 * self.EDGE) / HOP)) - 1
        self.reset()

    def reset(self) -> None:
        """Forget all audio and state (a new stream, times from 0)."""
        self._buf = np.zeros(0, dtype=np.float64)
        self._samples_in = 0  # samples fed so far
        self._base_s = 0.0  # stream time of sample 0
        self._next_block = 0  # index of the next block to analyse (starts at _next_block * HOP)
        self._hist_x = np.zeros((LAG, 8), dtype=np.complex128)
        self._hist_cls = np.full(LAG, -1, dtype=np.int64)
        self._cur: _Run | None = None  # current press
        self._alt: _Run | None = None  # a different digit seen while the current press may still resume

    # ------------------------------------------------------------------------------
    def feed(self, samples: np.ndarray, t0: float | None = None) -> list[DtmfHit]:
        """Analyse the next chunk; return the digits reported in it.

        ``t0``: stream time (seconds) of this chunk's first sample; hits are timed from
        it. Without it, times continue from the previous chunk (0 = first sample fed).
        """
        x = np.asarray(samples)
        if x.ndim != 1:
            x = x.reshape(-1)
        if x.dtype.kind == "f":
            x = x.astype(np.float64, copy=False)
        elif x.dtype.kind in "iu":
            x = x.astype(np.float64) * (1.0 / 32768.0)
        else:
            raise TypeError(f"unsupported sample dtype {x.dtype}")
        if t0 is not None:
            self._base_s = float(t0) - self._samples_in / self.rate
        self._samples_in += x.size
        buf = np.concatenate((self._buf, x)) if self._buf.size else x
        if buf.size < BLOCK:
            self._buf = buf.copy()
            return []
        nb = (buf.size - BLOCK) // HOP + 1
        frames = np.lib.stride_tricks.sliding_window_view(buf, BLOCK)[: (nb - 1) * HOP + 1 : HOP]
        m0 = self._next_block
        self._next_block += nb
        hits = self._analyse(frames, m0)
        self._buf = buf[nb * HOP :].copy()
        return hits

    # ------------------------------------------------------------------------------
    def _analyse(self, frames: np.ndarray, m0: int) -> list[DtmfHit]:
        nb = frames.shape[0]
        corr = frames @ self._basis  # (nb, 32): cos of 16 freqs, then sin of 16 freqs
        energy = np.einsum("ij,ij->i", frames, frames)
        cc, cs = corr[:, :16], corr[:, 16:]
        power = cc * cc + cs * cs  # ∝ squared amplitude per frequency
        rows = np.arange(nb)
        plo, phi = power[:, 0:4], power[:, 4:8]
        lo = np.argmax(plo, axis=1)
        hi = np.argmax(phi, axis=1)
        best_lo = plo[rows, lo]
        best_hi = phi[rows, hi]
        # strongest *other* bin of each group
        other_lo = np.partition(plo, 2, axis=1)[:, 2]
        other_hi = np.partition(phi, 2, axis=1)[:, 2]
        ok = (other_lo <= best_lo * self._dom) & (other_hi <= best_hi * self._dom)
        digit = lo * 4 + hi
        # least-squares fit of the two nominal tones: c^T G^-1 c is the energy they explain
        c4 = np.stack((cc[rows, lo], cs[rows, lo], cc[rows, 4 + hi], cs[rows, 4 + hi]), axis=1)
        coef = np.einsum("nij,nj->ni", self._ginv[digit], c4)
        explained = np.einsum("ni,ni->n", c4, coef)
        ok &= explained >= self.ENERGY_FRACTION * energy
        amp2_lo = coef[:, 0] ** 2 + coef[:, 1] ** 2
        amp2_hi = coef[:, 2] ** 2 + coef[:, 3] ** 2
        ok &= (amp2_lo >= self._amp2_min) & (amp2_hi >= self._amp2_min)
        # second harmonics: correlation left after removing the fitted tones' leakage
        ch = np.stack((cc[rows, 8 + lo], cs[rows, 8 + lo], cc[rows, 12 + hi], cs[rows, 12 + hi]), axis=1)
        ch -= np.einsum("nij,nj->ni", self._hcross[digit], coef)
        scale = 4.0 / (BLOCK * BLOCK)  # correlation^2 -> amplitude^2 (for an on-bin sine)
        h_lo = (ch[:, 0] ** 2 + ch[:, 1] ** 2) * scale
        h_hi = (ch[:, 2] ** 2 + ch[:, 3] ** 2) * scale
        ok &= (h_lo <= amp2_lo * self._harm) & (h_hi <= amp2_hi * self._harm)
        cls = np.where(ok, digit, -1)

        # phase advance over LAG blocks for each frequency (only used for candidate blocks)
        xc = cc[:, :8] - 1j * cs[:, :8]
        xall = np.concatenate((self._hist_x, xc))
        clsall = np.concatenate((self._hist_cls, cls))
        self._hist_x = xall[-LAG:].copy()
        self._hist_cls = clsall[-LAG:].copy()
        if self._cur is None and self._alt is None and not ok.any():
            return []
        lagprod = xall[LAG:] * np.conj(xall[:-LAG]) * self._rot
        q_lo = lagprod[rows, lo]
        q_hi = lagprod[rows, 4 + hi]
        paired = clsall[:-LAG] == cls  # the block LAG hops earlier holds the same digit
        hits: list[DtmfHit] = []
        for i in range(nb):
            self._step(m0 + i, int(cls[i]), bool(paired[i]), q_lo[i], q_hi[i], amp2_lo[i], amp2_hi[i], hits)
        return hits

    def _step(self, m: int, c: int, paired: bool, q_lo: complex, q_hi: complex, a_lo: float, a_hi: float, hits: list) -> None:
        cur = self._cur
        if cur is not None and c != cur.digit and m - cur.last >= self._min_off_blocks:
            # the current press is over (long enough gap); a pending other digit takes over
            cur, self._alt = self._alt, None
            if cur is not None and c != cur.digit and m - cur.last >= self._min_off_blocks:
                cur = None
            self._cur = cur
        if cur is not None and c == cur.digit:
            self._extend(cur, m, paired, q_lo, q_hi, a_lo, a_hi, hits)
            self._alt = None
            return
        if c < 0:
            return
        if cur is None or not cur.reported:
            # nothing reported for the current run: start over with the new digit
            self._cur, self._alt = _Run(c, m), None
            self._extend(self._cur, m, paired, q_lo, q_hi, a_lo, a_hi, hits)
            return
        # a reported press may still resume after a dropout: measure the other digit aside
        alt = self._alt
        if alt is None or alt.digit != c or m - alt.last >= self._min_off_blocks:
            alt = self._alt = _Run(c, m)
        self._extend(alt, m, paired, q_lo, q_hi, a_lo, a_hi, hits)
        if alt.reported:
            self._cur, self._alt = alt, None

    def _extend(self, run: _Run, m: int, paired: bool, q_lo: complex, q_hi: complex, a_lo: float, a_hi: float, hits: list) -> None:
        if paired and m - LAG >= run.first:
            run.q_lo += q_lo
            run.q_hi += q_hi
            run.a_lo += abs(q_lo)
            run.a_hi += abs(q_hi)
            run.pairs += 1
        run.last = m
        run.count += 1
        run.p_lo += a_lo
        run.p_hi += a_hi
        if run.reported or run.last - run.first < self._min_on_blocks or run.pairs == 0:
            return
        if self._accept(run):
            run.reported = True
            start = run.first * HOP + self.EDGE
            end = run.last * HOP + BLOCK - self.EDGE
            hits.append(DtmfHit(DIGITS[run.digit], self._base_s + start / self.rate, (end - start) / self.rate))

    def _accept(self, run: _Run) -> bool:
        """Run-level checks: frequency offset, phase coherence, twist."""
        lo, hi = divmod(run.digit, 4)
        span = run.last - run.first + 1
        if run.count < 0.75 * span:  # mostly candidate blocks, not a patchwork
            return False
        if abs(run.q_lo) < self.MIN_COHERENCE * run.a_lo or abs(run.q_hi) < self.MIN_COHERENCE * run.a_hi:
            return False
        to_hz = RATE / (2.0 * np.pi * LAG * HOP)
        df_lo = np.angle(run.q_lo) * to_hz
        df_hi = np.angle(run.q_hi) * to_hz
        f_lo, f_hi = LOW_FREQS[lo], HIGH_FREQS[hi]
        if abs(df_lo) > self.FREQ_TOLERANCE * f_lo or abs(df_hi) > self.FREQ_TOLERANCE * f_hi:
            return False
        # twist, with each tone's power corrected for the block's roll-off at its offset
        p_lo = run.p_lo / _gain2(df_lo)
        p_hi = run.p_hi / _gain2(df_hi)
        twist = 10.0 * np.log10(p_hi / p_lo)
        return -self.MAX_REVERSE_TWIST_DB <= twist <= self.MAX_NORMAL_TWIST_DB

    # convenience -----------------------------------------------------------------
    def detect(self, samples: np.ndarray) -> str:
        """Digits in ``samples`` as one string (feeds them as one chunk; keeps state)."""
        return "".join(h.digit for h in self.feed(samples))


def _gain2(df: float) -> float:
    """Power gain of a BLOCK-sample rectangular correlation for a tone ``df`` Hz off the bin."""
    x = np.pi * df / RATE
    if abs(x) < 1e-12:
        return 1.0
    return float((np.sin(BLOCK * x) / (BLOCK * np.sin(x))) ** 2)


_TABLES: dict | None = None


def _tables() -> dict:
    global _TABLES
    if _TABLES is None:
        k = np.arange(BLOCK, dtype=np.float64)
        freqs = np.array(LOW_FREQS + HIGH_FREQS)
        allf = np.concatenate((freqs, 2.0 * freqs))
        w = 2.0 * np.pi * allf / RATE
        cos = np.cos(np.outer(k, w))  # (BLOCK, 16)
        sin = np.sin(np.outer(k, w))
        basis = np.ascontiguousarray(np.concatenate((cos, sin), axis=1))
        ginv = np.empty((16, 4, 4))
        hcross = np.empty((16, 4, 4))
        for d in range(16):
            lo, hi = divmod(d, 4)
            fund = np.stack((cos[:, lo], sin[:, lo], cos[:, 4 + hi], sin[:, 4 + hi]), axis=1)
            harm = np.stack((cos[:, 8 + lo], sin[:, 8 + lo], cos[:, 12 + hi], sin[:, 12 + hi]), axis=1)
            ginv[d] = np.linalg.inv(fund.T @ fund)
            hcross[d] = harm.T @ fund  # correlation of each harmonic row with each fitted basis vector
        rot = np.exp(-1j * w[:8] * LAG * HOP)
        _TABLES = {"basis": basis, "ginv": ginv, "hcross": hcross, "rot": rot}
    return _TABLES
