"""In-band DTMF detection (ITU-T Q.23 signals, Q.24 receiver limits) for 8 kHz mono audio.

One :class:`DtmfDetector` per call leg is fed the caller's audio in chunks of any size
(e.g. 20-250 ms as a recording grows); :meth:`DtmfDetector.feed` returns the digits whose
tone reached the minimum duration inside that chunk. Each key press is reported once.
Chunking does not change the result: blocks sit at fixed positions of the stream.

Algorithm (docs/dtmf.md has the details and the measured figures)
------------------------------------------------------------------
Blocks of ``BLOCK`` = 104 samples (13 ms), one every ``HOP`` = 26 samples (75 % overlap),
are correlated in one matrix product against precomputed rows for the 8 DTMF
frequencies (cos, sin, and t*cos, t*sin) and their 8 second harmonics (cos, sin).

Per block (vectorised over all blocks of a chunk):

* a joint least-squares fit of the 8 nominal tones gives 8 amplitudes free of the
  rectangular window's cross-talk; the strongest of each group must be
  ``DOMINANCE_DB`` above the other three of its group;
* the two chosen tones are fitted with a first-order frequency term (A + B*t)*e^{jwt};
  Im(B/A) is the block's frequency offset, and each tone's power is corrected for the
  block's roll-off at that offset (capped at the tolerance); the two tones must hold
  ``ENERGY_FRACTION`` of the block's energy and each be above ``MIN_LEVEL_DBM0``;
* the second harmonic of each tone is measured on what the fit leaves.

Consecutive candidate blocks of one digit form a run (a key press); until it is
reported, any other block ends it. From the minimum duration on, the run is checked as
a whole:

* frequency: the phase advance of each tone between blocks ``LAG`` hops apart,
  summed over the run, gives its offset to about 1 Hz at 15 dB SNR; accept within
  ``FREQ_TOLERANCE`` (Q.24: accept +-1.5 %, reject beyond +-3.5 %); the phase steps
  must be coherent (``MIN_COHERENCE``) and their frequency must not drift
  (``MAX_DRIFT_HZ_PER_S``): a steady tone, not a voice's gliding harmonics;
* twist (high group minus low group, from the corrected powers) in
  ``[-MAX_REVERSE_TWIST_DB, +MAX_NORMAL_TWIST_DB]``;
* second harmonics, averaged over the run, ``HARMONIC_DB`` below their tones.

A reported press ends only after an estimated gap of ``MIN_OFF_S`` (so a dropout of up
to 20 ms does not split it; a 40 ms pause separates two presses of the same key).

A different digit after a reported one is reported when it has lasted the minimum
duration itself (no pause needed). Times are stream times: seconds from the first sample
fed, or from ``t0`` (see :meth:`DtmfDetector.feed`).

Samples: int16 (scaled by 1/32768; other signed integers by their range) or float in
[-1, 1), any shape (flattened). 0 dBm0 is a sine 3.14 dB below
a full-scale sine (the mu-law digital milliwatt).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DtmfDetector", "DtmfHit", "DIGITS", "LOW_FREQS", "HIGH_FREQS", "dbm0_to_amplitude", "dtmf_tone"]

LOW_FREQS = (697.0, 770.0, 852.0, 941.0)
HIGH_FREQS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
DIGITS = "".join(KEYPAD)  # index = low * 4 + high

RATE = 8000
BLOCK = 104  # samples per analysis block (13 ms)
HOP = 26  # block advance (3.25 ms)
LAG = 2  # hops between the two phases of a frequency measurement (52 samples)
SPAN = BLOCK // HOP  # hops per block (4: the energy sum in _analyse is written out for it)
NCOL = 48  # correlation columns per block (see _tables)
MAX_STEPS = 32  # phase steps kept per run for the drift check
HARMONIC_CLASH_HZ = 110.0  # 2 x low tone this close to the high tone: harmonic not checked (2, 3, 6, B, C)

DBM0_BELOW_FULL_SCALE_DB = 3.14  # 0 dBm0 sine = full-scale sine - 3.14 dB


def dbm0_to_amplitude(dbm0: float) -> float:
    """Peak amplitude (full scale = 1) of a sine at ``dbm0``."""
    return float(10.0 ** ((dbm0 - DBM0_BELOW_FULL_SCALE_DB) / 20.0))


def dtmf_tone(digit: str, seconds: float = 0.1, level_dbm0: float = -10.0, rate: int = RATE) -> np.ndarray:
    """The dual tone of *digit* (``0-9 * # A-D``) as int16, each tone at *level_dbm0*, 5 ms ramps."""
    i = DIGITS.index(digit.upper())
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    amp = dbm0_to_amplitude(level_dbm0) * 32767
    x = amp * (np.sin(2 * np.pi * LOW_FREQS[i // 4] * t) + np.sin(2 * np.pi * HIGH_FREQS[i % 4] * t))
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * rate))
    return np.round(x * ramp).astype(np.int16)


@dataclass(frozen=True)
class DtmfHit:
    digit: str
    start_s: float  # estimated start of the tone (stream time)
    duration_s: float  # tone duration observed when the digit was reported (about MIN_ON_S)


class _Run:
    """Consecutive candidate blocks of one digit (a key press being measured)."""

    __slots__ = (
        "digit", "first", "last", "reported", "fmax",
        "q_lo", "q_hi", "aq_lo", "aq_hi", "pairs", "p_lo", "p_hi", "h_lo", "h_hi", "steps",
    )

    def __init__(self, digit: int, m: int):
        self.digit = digit
        self.first = m  # first and last candidate block
        self.last = m
        self.reported = False
        self.fmax = 0.0  # best energy fraction (a block fully inside the tone)
        self.q_lo = 0j  # sums of the lag products (phase advance) of each tone
        self.q_hi = 0j
        self.aq_lo = 0.0  # sums of their magnitudes (for the coherence)
        self.aq_hi = 0.0
        self.pairs = 0
        self.p_lo = 0.0  # sums of corrected tone powers (amplitude^2)
        self.p_hi = 0.0
        self.h_lo = 0.0  # sums of second-harmonic powers
        self.h_hi = 0.0
        self.steps: list | None = []  # (block, q_lo, q_hi) until the run is reported


class DtmfDetector:
    """Streaming DTMF detector for one audio stream (see the module docstring)."""

    # Q.24 limits: thresholds sit between the accept and the reject values
    FREQ_TOLERANCE = 0.025  # accept +-1.5 %, reject beyond +-3.5 %
    MAX_NORMAL_TWIST_DB = 6.0  # high group stronger: accept +4 dB, reject +8 dB
    MAX_REVERSE_TWIST_DB = 10.0  # low group stronger: accept 8 dB, reject 12 dB
    MIN_LEVEL_DBM0 = -30.0  # per tone: accept -25 dBm0, reject -35 dBm0
    MIN_ON_S = 0.030  # accept 40 ms, reject < 23 ms
    MIN_OFF_S = 0.030  # a 40 ms pause separates digits; a <= 20 ms dropout does not
    # talk-off guards
    ENERGY_FRACTION = 0.75  # the two tones' share of a block's energy
    DOMINANCE_DB = 4.0  # each chosen tone over the other three of its group (joint fit)
    HARMONIC_DB = 15.0  # second harmonics (run average) at least this far below their tones
    MIN_COHERENCE = 0.97  # |sum of phase steps| / sum of |phase steps| over a run
    MAX_DRIFT_HZ_PER_S = 650.0  # frequency drift within a run (speech glides, tones do not)

    def __init__(self, rate: int = RATE):
        if rate != RATE:
            raise ValueError(f"DtmfDetector works on {RATE} Hz audio (got {rate}); resample first")
        self.rate = rate
        t = _tables()
        self._seg_basis = t["seg_basis"]
        self._g16 = t["g16"]
        self._gather = t["gather"]
        self._solve = t["solve"]
        self._rot = t["rot"]
        self._harm_check = t["harm_check"]
        self._cap = self.FREQ_TOLERANCE * t["pair_freqs"]
        self._amp2_min = dbm0_to_amplitude(self.MIN_LEVEL_DBM0) ** 2
        self._dom = 10.0 ** (-self.DOMINANCE_DB / 10.0)
        self._harm = 10.0 ** (-self.HARMONIC_DB / 10.0)
        # screening: the offset correction raises a tone's power by at most 1 / _gain2(cap)
        gain = _gain2(self.FREQ_TOLERANCE * np.array(LOW_FREQS + HIGH_FREQS))
        self._screen_amp2 = 0.8 * float(gain.min()) * self._amp2_min
        self._screen_gain = 1.0 / np.array([gain[:4].min(), gain[4:].min()])  # per group
        self._screen_frac = 0.8 * self.ENERGY_FRACTION / (0.5 * BLOCK)
        # A chunk quieter than this cannot hold one block with both tones at the screening
        # level (a block with two tones of squared amplitude >= s has energy >= BLOCK * s;
        # a tenth of that leaves room for the fit's noise): skip the analysis outright.
        self._gate_energy = 0.1 * BLOCK * self._screen_amp2
        self._quiet = np.full(LAG, -1, dtype=np.int64)
        # block-to-tone edge offset (see _edge) is at most BLOCK * (1 - ENERGY_FRACTION) - HOP / 2
        self._edge_max = BLOCK * (1.0 - self.ENERGY_FRACTION) - HOP / 2.0
        on = self.MIN_ON_S * rate
        self._min_on_blocks = max(1, int(np.ceil((on - BLOCK + 2 * self._edge_max) / HOP)))
        # once block m fails, the gap after block `last` is at least (m + 1 - last) * HOP - BLOCK + 2 * edge
        off = self.MIN_OFF_S * rate
        self._min_off_blocks = int(np.ceil((off + BLOCK - 2 * self._edge_max) / HOP)) - 1
        self.reset()

    def reset(self) -> None:
        """Forget all audio and state (a new stream, times from 0)."""
        self._buf = np.zeros(0, dtype=np.float64)
        self._samples_in = 0  # samples fed so far
        self._base_s = 0.0  # stream time of sample 0
        self._next_block = 0  # index of the next block (it starts at sample _next_block * HOP)
        self._hist_a = np.zeros((LAG, 2), dtype=np.complex128)  # last LAG blocks' tone phasors
        self._hist_cls = np.full(LAG, -1, dtype=np.int64)
        self._cur: _Run | None = None  # the current press
        self._alt: _Run | None = None  # another digit, while the current press may still resume

    # ------------------------------------------------------------------------------
    def feed(self, samples: np.ndarray, t0: float | None = None) -> list[DtmfHit]:
        """Analyse the next chunk; return the digits reported in it.

        ``t0``: stream time (seconds) of this chunk's first sample; hits are timed from
        it. Without it, times continue from the previous chunk (0 = first sample fed).
        """
        x = np.asarray(samples)
        kind = x.dtype.kind
        if kind == "i":
            x = np.multiply(x, 1.0 / (1 << (8 * x.dtype.itemsize - 1)))  # float64; int16: / 32768
        elif kind == "f":
            x = x.astype(np.float64, copy=False)
        else:
            raise TypeError(f"unsupported sample dtype {x.dtype}")
        if x.ndim != 1:
            x = x.reshape(-1)
        if t0 is not None:
            self._base_s = float(t0) - self._samples_in / self.rate
        self._samples_in += x.size
        buf = np.concatenate((self._buf, x)) if self._buf.size else x
        if buf.size < BLOCK:
            self._buf = buf.copy()
            return []
        nb = (buf.size - BLOCK) // HOP + 1
        m0 = self._next_block
        self._next_block += nb
        if self._cur is None and self._alt is None and float(np.dot(buf, buf)) < self._gate_energy:
            # silence or faint line noise: what _analyse concludes when no block passes screening
            self._hist_cls = self._quiet if nb >= LAG else np.concatenate((self._hist_cls[nb:], self._quiet[:nb]))
            hits = []
        else:
            hits = self._analyse(buf, nb, m0)
        self._buf = buf[nb * HOP :].copy()
        return hits

    # ------------------------------------------------------------------------------
    def _analyse(self, buf: np.ndarray, nb: int, m0: int) -> list[DtmfHit]:
        # BLOCK = SPAN * HOP: correlate HOP-sample segments once, then add SPAN shifted copies
        seg = buf[: (nb + SPAN - 1) * HOP].reshape(-1, HOP)
        part = seg @ self._seg_basis  # (nb + SPAN - 1, SPAN * NCOL)
        # corr[m] = sum over j of part[m + j, j * NCOL : (j + 1) * NCOL]
        row = part.strides[0]
        shifted = np.ndarray((nb, SPAN, NCOL), np.float64, part, 0, (row, row + NCOL * 8, 8))
        corr = shifted.sum(axis=1)  # (nb, NCOL): correlations of each block
        se = np.einsum("ij,ij->i", seg, seg)
        energy = se[:nb] + se[1 : nb + 1] + se[2 : nb + 2] + se[3 : nb + 3]  # SPAN == 4
        # joint fit of the 8 nominal tones: amplitudes without the window's cross-talk
        a16 = corr[:, :16] @ self._g16
        amp = a16[:, 0::2] ** 2 + a16[:, 1::2] ** 2  # (nb, 8) squared amplitudes
        best = amp.reshape(nb, 2, 4).max(axis=2)  # strongest tone of each group
        # cheap necessary conditions of the checks below (with slack for the offset correction)
        ok = np.minimum(best[:, 0], best[:, 1]) >= self._screen_amp2
        ok &= best @ self._screen_gain >= self._screen_frac * energy
        if self._cur is None and self._alt is None and not ok.any():
            self._hist_cls = self._quiet if nb >= LAG else np.concatenate((self._hist_cls[nb:], self._quiet[:nb]))
            return []
        rows = np.arange(nb)
        lo = np.argmax(amp[:, :4], axis=1)
        hi = np.argmax(amp[:, 4:], axis=1)
        best_lo = best[:, 0]
        best_hi = best[:, 1]
        second_lo = np.partition(amp[:, :4], 2, axis=1)[:, 2]
        second_hi = np.partition(amp[:, 4:], 2, axis=1)[:, 2]
        ok &= (second_lo <= best_lo * self._dom) & (second_hi <= best_hi * self._dom)
        digit = lo * 4 + hi
        # the chosen pair fitted with a first-order frequency term, x ~ Re((A + B t) e^{jwk}),
        # and the harmonics' correlations less the fitted tones' share: one 12x12 product
        g = corr[rows[:, None], self._gather[digit]]
        fit = np.matmul(self._solve[digit], g[:, :, None])[:, :, 0]  # (nb, 12)
        a = fit[:, 0:8:4] - 1j * fit[:, 1:8:4]  # (nb, 2): A of the low and the high tone
        b = fit[:, 2:8:4] - 1j * fit[:, 3:8:4]
        p = a.real**2 + a.imag**2
        # frequency offset Im(B/A), used to undo the block's roll-off (up to the tolerance)
        df = (b * np.conj(a)).imag / np.maximum(p, 1e-30) * (RATE / (2.0 * np.pi * BLOCK))
        cap = self._cap[digit]
        p = p / _gain2(np.clip(df, -cap, cap))
        frac = (0.5 * BLOCK) * (p[:, 0] + p[:, 1]) / np.maximum(energy, 1e-30)
        ok &= frac >= self.ENERGY_FRACTION
        ok &= p.min(axis=1) >= self._amp2_min
        cls = np.where(ok, digit, -1)
        h = (fit[:, 8::2] ** 2 + fit[:, 9::2] ** 2) * (4.0 / (BLOCK * BLOCK)) * self._harm_check[digit]
        # phase advance of each tone over LAG hops (for blocks of the same digit)
        aall = np.concatenate((self._hist_a, a))
        clsall = np.concatenate((self._hist_cls, cls))
        self._hist_a = aall[-LAG:].copy()
        self._hist_cls = clsall[-LAG:].copy()
        q = aall[LAG:] * np.conj(aall[:-LAG]) * self._rot[digit]
        paired = clsall[:-LAG] == cls
        hits: list[DtmfHit] = []
        blocks = zip(cls.tolist(), paired.tolist(), q[:, 0].tolist(), q[:, 1].tolist(), p[:, 0].tolist(),
                     p[:, 1].tolist(), h[:, 0].tolist(), h[:, 1].tolist(), frac.tolist())
        for i, block in enumerate(blocks):
            self._step(m0 + i, block, hits)
        return hits

    def _step(self, m: int, block: tuple, hits: list) -> None:
        c = block[0]
        cur = self._cur
        if cur is not None and c != cur.digit:
            if not cur.reported:
                cur = self._cur = None  # a press is measured on contiguous blocks only
            elif m - cur.last >= self._min_off_blocks:
                # the reported press is over (the gap is long enough); a pending digit takes over
                alt = self._alt
                cur = self._cur = alt if alt is not None and alt.digit == c else None
                self._alt = None
        if cur is not None and c == cur.digit:
            self._extend(cur, m, block, hits)
            self._alt = None
            return
        alt = self._alt
        if c < 0:
            self._alt = None  # not contiguous any more
            return
        if cur is None:
            self._cur = _Run(c, m)
            self._extend(self._cur, m, block, hits)
            return
        # another digit while a reported press may still resume after a dropout: measure it aside
        if alt is None or alt.digit != c:
            alt = self._alt = _Run(c, m)
        self._extend(alt, m, block, hits)
        if alt.reported:
            self._cur, self._alt = alt, None

    def _extend(self, run: _Run, m: int, block: tuple, hits: list) -> None:
        _, paired, q_lo, q_hi, p_lo, p_hi, h_lo, h_hi, frac = block
        if paired and m - LAG >= run.first:
            if run.steps is not None:
                run.steps.append((m, q_lo, q_hi))
                if len(run.steps) > MAX_STEPS:
                    del run.steps[0]
            run.q_lo += q_lo
            run.q_hi += q_hi
            run.aq_lo += abs(q_lo)
            run.aq_hi += abs(q_hi)
            run.pairs += 1
        run.last = m
        run.p_lo += p_lo
        run.p_hi += p_hi
        run.h_lo += h_lo
        run.h_hi += h_hi
        if frac > run.fmax:
            run.fmax = frac
        if run.reported or run.last - run.first < self._min_on_blocks or run.pairs == 0:
            return
        edge = self._edge(run)
        duration = (run.last - run.first) * HOP + BLOCK - 2.0 * edge
        if duration >= self.MIN_ON_S * self.rate and self._accept(run):
            run.reported = True
            run.steps = None
            start = run.first * HOP + edge
            hits.append(DtmfHit(DIGITS[run.digit], self._base_s + start / self.rate, duration / self.rate))

    def _edge(self, run: _Run) -> float:
        """Samples from the start of a run's first block to the start of its tone.

        A block holding a share c of the tone has an energy fraction of about c * fmax
        (fmax: the fraction of a block fully inside the tone, lowered by noise), so the
        first candidate block holds at least ENERGY_FRACTION / fmax of the tone; on
        average it starts half a hop earlier than that.
        """
        cover = min(1.0, self.ENERGY_FRACTION / max(run.fmax, 1e-9))
        return BLOCK * (1.0 - cover) - HOP / 2.0

    def _accept(self, run: _Run) -> bool:
        """Run-level checks: steady frequencies within tolerance, twist, harmonics."""
        if abs(run.q_lo) < self.MIN_COHERENCE * run.aq_lo or abs(run.q_hi) < self.MIN_COHERENCE * run.aq_hi:
            return False
        lo, hi = divmod(run.digit, 4)
        to_hz = RATE / (2.0 * np.pi * LAG * HOP)
        if abs(np.angle(run.q_lo) * to_hz) > self.FREQ_TOLERANCE * LOW_FREQS[lo]:
            return False
        if abs(np.angle(run.q_hi) * to_hz) > self.FREQ_TOLERANCE * HIGH_FREQS[hi]:
            return False
        # drift: least-squares slope of the per-step frequencies (a pitch glide, not a tone)
        steps = np.array(run.steps)
        if steps.shape[0] >= 3:
            x = steps[:, 0].real - steps[:, 0].real.mean()
            f = np.angle(steps[:, 1:]) * to_hz
            slope = x @ (f - f.mean(axis=0)) / (x @ x) * (RATE / HOP)  # Hz per second
            if np.abs(slope).max() > self.MAX_DRIFT_HZ_PER_S:
                return False
        twist = 10.0 * np.log10(run.p_hi / run.p_lo)
        if not -self.MAX_REVERSE_TWIST_DB <= twist <= self.MAX_NORMAL_TWIST_DB:
            return False
        return run.h_lo <= self._harm * run.p_lo and run.h_hi <= self._harm * run.p_hi

    # convenience -----------------------------------------------------------------
    def detect(self, samples: np.ndarray) -> str:
        """Digits in ``samples`` as one string (fed as one chunk; state is kept)."""
        return "".join(h.digit for h in self.feed(samples))


def _gain2(df: np.ndarray) -> np.ndarray:
    """Power gain of a BLOCK-sample correlation for a tone ``df`` Hz off its frequency."""
    x = np.maximum(np.abs(np.asarray(df, dtype=np.float64)) * (np.pi / RATE), 1e-12)
    return (np.sin(BLOCK * x) / (BLOCK * np.sin(x))) ** 2


_TABLES: dict | None = None


def _tables() -> dict:
    """Correlation rows and least-squares matrices, shared by all detectors.

    basis columns: 0-15 cos/sin of the 8 tones (interleaved pairs), 16-31 t*cos/t*sin
    of the 8 tones (t = sample offset from the block centre / BLOCK), 32-47 cos/sin of
    the 8 second harmonics.
    """
    global _TABLES
    if _TABLES is None:
        k = np.arange(BLOCK, dtype=np.float64)
        t = (k - (BLOCK - 1) / 2.0) / BLOCK
        freqs = np.array(LOW_FREQS + HIGH_FREQS)
        w = 2.0 * np.pi * freqs / RATE
        cos = np.cos(np.outer(k, w))  # (BLOCK, 8)
        sin = np.sin(np.outer(k, w))
        cos2 = np.cos(np.outer(k, 2.0 * w))
        sin2 = np.sin(np.outer(k, 2.0 * w))
        inter = lambda a, b: np.stack((a, b), axis=2).reshape(BLOCK, -1)  # noqa: E731
        nominal = inter(cos, sin)  # columns 0-15
        slope = inter(t[:, None] * cos, t[:, None] * sin)  # columns 16-31
        harm = inter(cos2, sin2)  # columns 32-47
        basis = np.concatenate((nominal, slope, harm), axis=1)  # (BLOCK, NCOL)
        # rows for HOP-sample segments: segment j of a block uses rows j*HOP..(j+1)*HOP-1
        seg_basis = np.ascontiguousarray(np.concatenate([basis[j * HOP : (j + 1) * HOP] for j in range(SPAN)], axis=1))
        g16 = np.linalg.inv(nominal.T @ nominal)
        gather = np.empty((16, 12), dtype=np.int64)  # correlation columns used for each digit
        solve = np.zeros((16, 12, 12))  # [A B of both tones; harmonics less the tones' share]
        pair_freqs = np.empty((16, 2))
        harm_check = np.ones((16, 2))
        for d in range(16):
            lo, hi = divmod(d, 4)
            j, m = lo, 4 + hi
            gather[d] = [2 * j, 2 * j + 1, 16 + 2 * j, 17 + 2 * j, 2 * m, 2 * m + 1, 16 + 2 * m, 17 + 2 * m,
                         32 + 2 * j, 33 + 2 * j, 32 + 2 * m, 33 + 2 * m]
            cols = basis[:, gather[d]]
            fit, hrows = cols[:, :8], cols[:, 8:]
            ginv = np.linalg.inv(fit.T @ fit)
            solve[d, :8, :8] = ginv
            solve[d, 8:, :8] = -(hrows.T @ fit) @ ginv
            solve[d, 8:, 8:] = np.eye(4)
            pair_freqs[d] = freqs[j], freqs[m]
            # a low tone's harmonic this close to the high tone is not separable in one block
            if abs(2.0 * freqs[j] - freqs[m]) < HARMONIC_CLASH_HZ:
                harm_check[d, 0] = 0.0
        rot = np.exp(-1j * w * LAG * HOP)
        rot = np.stack([rot[[d // 4, 4 + d % 4]] for d in range(16)])
        _TABLES = {"seg_basis": seg_basis, "g16": g16, "gather": gather, "solve": solve, "rot": rot,
                   "pair_freqs": pair_freqs, "harm_check": harm_check}
    return _TABLES
