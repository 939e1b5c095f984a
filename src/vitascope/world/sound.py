"""The world's sound, as band envelopes and as a waveform.

Sound is described by the energy of N_BANDS log-spaced frequency bands at ENV_RATE steps per
second (four per frame at 12 fps). The simulator writes these envelopes; the model generates
them with the frames; `vocode` turns either into a 16 kHz waveform by shaping band-limited noise,
so a generated clip and a simulated one sound alike through the same decoder.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .scene import Scene, contacts

SAMPLE_RATE = 16_000
ENV_RATE = 48  # envelope steps per second
N_BANDS = 16
FLOOR = 1e-3  # amplitude of silence; the envelope's feature scale is log(amp / FLOOR)
BAND_EDGES = np.geomspace(60.0, 7600.0, N_BANDS + 1)
BAND_CENTRES = np.sqrt(BAND_EDGES[:-1] * BAND_EDGES[1:])


def amp_to_feature(amp: np.ndarray) -> np.ndarray:
    """Band amplitude (FLOOR..1) to a feature in [-1, 1]."""
    return (2 * np.log(np.clip(amp, FLOOR, 1.0) / FLOOR) / math.log(1 / FLOOR) - 1).astype(np.float32)


def feature_to_amp(feat: np.ndarray) -> np.ndarray:
    return FLOOR * np.exp((np.clip(feat, -1, 1) + 1) / 2 * math.log(1 / FLOOR))


def envelopes(scene: Scene, start: float, n_steps: int) -> np.ndarray:
    """Band amplitudes (n_steps, N_BANDS) of the scene's sound from time `start`."""
    t = start + np.arange(n_steps) / ENV_RATE
    amp = np.full((n_steps, N_BANDS), FLOOR * 1.5, np.float32)
    bands = np.arange(N_BANDS)
    rng = np.random.default_rng(scene.detail_seed + int(start * ENV_RATE))
    if scene.weather == "rain":  # steady broadband noise
        amp += (0.07 * (1 + 0.15 * rng.standard_normal((n_steps, N_BANDS)))).clip(0.02).astype(np.float32)
    elif scene.weather == "snow":  # a soft low wind
        swell = 0.035 * (1 + 0.4 * np.sin(2 * math.pi * 0.3 * t + scene.detail_seed % 7))
        shape = np.exp(-(((bands - 2.0) / 2.0) ** 2))
        amp += (swell[:, None] * shape[None, :]).astype(np.float32)
    end = start + n_steps / ENV_RATE
    for obj in scene.objects:
        big = obj.size == "big"
        peak, tau, loud = (4.0, 0.11, 1.0) if big else (9.0, 0.07, 0.55)
        spectrum = np.exp(-(((bands - peak) / 1.8) ** 2))
        for tc, speed in contacts(obj, end + 1.0):
            if tc >= end:
                break
            k0 = math.ceil((tc - start) * ENV_RATE - 1e-9)  # first step at or after the contact
            if k0 >= n_steps or tc + 6 * tau < start:
                continue
            a = loud * min(speed / 2.0, 1.0) ** 0.5
            dt = t - tc
            decay = np.where(dt >= -1e-9, np.exp(-np.clip(dt, 0, None) / tau), 0.0)
            amp += (a * decay[:, None] * spectrum[None, :]).astype(np.float32)
    return np.clip(amp, FLOOR, 1.0)


@lru_cache(maxsize=4)
def _carriers(n: int, seed: int = 1234) -> np.ndarray:
    """Unit-power band-limited noise, one row per band, n samples long, with its envelope made
    flat (divided by the magnitude of its analytic signal): narrow noise bands beat, and an onset
    that fell in a dip of its band's carrier was not heard (the simulator's own sound had a sound
    onset within a frame of 53 of 61 contacts of 40 scenes; with flat carriers, 59)."""
    from scipy.signal import hilbert

    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    out = np.empty((N_BANDS, n), np.float32)
    for b in range(N_BANDS):
        sel = (freqs >= BAND_EDGES[b]) & (freqs < BAND_EDGES[b + 1])
        x = np.fft.irfft(np.where(sel, spec, 0), n)
        x = x / (np.abs(hilbert(x)) + 1e-9)
        out[b] = x / (np.sqrt(np.mean(x**2)) + 1e-9)
    return out


def vocode(amp: np.ndarray, n_samples: int) -> np.ndarray:
    """Band amplitudes (steps, N_BANDS) at ENV_RATE to a mono float32 waveform in [-1, 1]."""
    if amp.ndim != 2 or amp.shape[1] != N_BANDS:
        raise ValueError(f"amp must have shape (steps, {N_BANDS}). Got {amp.shape}.")
    period = SAMPLE_RATE * 2  # carriers repeat every 2 s, long enough not to be heard
    carriers = _carriers(period)
    reps = -(-n_samples // period)
    car = np.tile(carriers, (1, reps))[:, :n_samples]
    # each envelope step is held from its onset, then eased into the next: sharp attacks stay sharp
    pos = np.arange(n_samples) / SAMPLE_RATE * ENV_RATE
    idx = np.minimum(pos.astype(np.int64), len(amp) - 1)
    nxt = np.minimum(idx + 1, len(amp) - 1)
    frac = (pos - idx).astype(np.float32)[:, None]
    env = amp[idx] * (1 - frac) + np.minimum(amp[idx], amp[nxt]) * frac
    wave = np.einsum("nb,bn->n", env.astype(np.float32), car) * 0.5
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def onsets(env: np.ndarray) -> list[float]:
    """Times (seconds) where a sound of band amplitudes (steps, N_BANDS) at ENV_RATE strikes: its
    energy below ~2.5 kHz (where percussion lives; rain's hiss is spread over all bands) jumps to
    at least 1.8x the step before and above the local median, at most one every 0.12 s.
    world/measure.py finds a clip's onsets so, from the envelopes `analyze` reads of its sound."""
    from scipy import ndimage

    energy = np.asarray(env, np.float32)[:, :12].sum(1)
    base = ndimage.median_filter(energy, size=9)
    out: list[float] = []
    for k in range(1, len(energy)):
        if energy[k] > 1.8 * energy[k - 1] and energy[k] > base[k] + 0.05:
            if not out or k / ENV_RATE - out[-1] > 0.12:
                out.append(k / ENV_RATE)
    return out


def analyze(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band amplitudes (steps, N_BANDS) at ENV_RATE of a waveform: the inverse of `vocode`."""
    wave = np.asarray(wave, np.float32).reshape(-1)
    if sample_rate != SAMPLE_RATE and len(wave):
        n = int(round(len(wave) * SAMPLE_RATE / sample_rate))
        wave = np.interp(np.arange(n) * sample_rate / SAMPLE_RATE, np.arange(len(wave)), wave).astype(np.float32)
    steps = int(round(len(wave) / SAMPLE_RATE * ENV_RATE))
    edges = np.round(np.arange(steps + 1) * SAMPLE_RATE / ENV_RATE).astype(int)
    nfft = 512
    freqs = np.fft.rfftfreq(nfft, 1 / SAMPLE_RATE)
    which = np.searchsorted(BAND_EDGES, freqs, side="right") - 1  # band of each bin, -1 / N_BANDS outside
    out = np.full((steps, N_BANDS), FLOOR, np.float32)
    for k in range(steps):
        seg = wave[edges[k] : edges[k + 1]]
        if len(seg) == 0:
            continue
        power = np.abs(np.fft.rfft(seg, nfft)) ** 2 * 2 / (len(seg) ** 2)
        for b in range(N_BANDS):
            sel = which == b
            out[k, b] = 2 * np.sqrt(power[sel].sum())  # vocode plays a band at half its amplitude
    return np.clip(out, FLOOR, 1.0)
