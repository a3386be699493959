r"""Spike encoders: turn intensities in [0, 1] into binary spike trains.

Every encoder takes ``x`` of shape ``[n_samples, n_features]`` (values within [0, 1], e.g.
:class:`neurocore.sw.datasets.Dataset` rows) and a number of time steps ``T >= 1``, and
returns a bool array ``[n_samples, T, n_features]`` (``out[i, t, j]``: feature ``j`` of
sample ``i`` spikes at step ``t``). All encoders are deterministic: the rate encoder for a
given ``seed``, the other two always.

Rate (Bernoulli), :func:`rate_encode`::

    s[i, t, j] = u[i, t, j] < x[i, j] * max_rate,    u ~ U[0, 1) i.i.d.

so that ``E[sum_t s[i, t, j]] = T * x[i, j] * max_rate``. The uniforms come from
``numpy.random.default_rng(seed).random(dtype=float64)`` drawn in C order of
``(sample, step, feature)``: sample 0's ``T * n_features`` draws (step-major) first, then
sample 1's, and so on. A sample's spikes therefore depend on the seed and on the samples
before it, never on those after it.

Constant current (integrate-and-fire with reset by subtraction), :func:`constant_current_encode`.
An IF neuron with threshold ``theta`` and membrane ``v_0 = 0`` receives the constant input
current ``x`` each step::

    v <- v + x;  if v >= theta: spike, v <- v - theta

With ``r = x / theta <= 1`` it spikes at step ``t`` (0-based) iff

    floor((t + 1) * r) > floor(t * r)

and has emitted exactly ``floor(T * r)`` spikes after ``T`` steps. This is the spike train
a constant bias current produces, i.e. the "constant current as direct input" encoding of
converted ANNs. The rule is evaluated exactly in fixed point: ``r`` is first quantised to
``q = round(r * 2**16)`` (round half to even), and the spike test is
``((t + 1) * q) >> 16 > (t * q) >> 16`` in int64, so no floating-point drift accumulates
over long trains. The spike count is ``floor(T * q / 2**16)``; it equals ``floor(T * r)``
whenever ``r`` is a multiple of ``2**-16`` and is within 1 of it for ``T <= 2**17``.

Latency (time to first spike), :func:`latency_encode`: one spike per feature at::

    t_spike = t_min + round((1 - x) * (L - 1 - t_min))     for x > 0;  no spike for x == 0

with ``L = window`` (default ``T``, ``t_min < L <= T``), so ``x = 1`` fires at ``t_min`` and the
faintest non-zero input at ``L - 1``; steps ``L .. T-1`` are silent (time for a network to
finish after its input). ``round`` is
round half to even (``numpy.rint``, like Python's ``round``), computed in float64.
"""
from __future__ import annotations

import inspect
import operator
from collections.abc import Callable

import numpy as np

__all__ = [
    "ENCODERS",
    "FIXED_POINT_BITS",
    "check_encoding",
    "constant_current_encode",
    "encode",
    "encoding_kwargs",
    "latency_encode",
    "rate_encode",
]

#: Fractional bits of the constant-current encoder's fixed-point input.
FIXED_POINT_BITS = 16

# Rate encoding draws its uniforms in chunks of about this many values to bound the
# float64 scratch memory; the chunking does not change the result.
_RATE_CHUNK = 1 << 22


def _check_x(x: object, who: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == np.bool_:
        a = a.astype(np.float64)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"{who}: x must be a real numeric array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(
            f"{who}: x must be 2-D [n_samples, n_features], got shape {a.shape} (use x[None] for one sample)"
        )
    a = a.astype(np.float64)
    if a.size and not (np.all(a >= 0.0) and np.all(a <= 1.0)):  # NaN fails both comparisons
        if np.isnan(a).any():
            raise ValueError(f"{who}: x contains NaN; values must be within [0, 1]")
        raise ValueError(f"{who}: x values must be within [0, 1], got min {a.min()}, max {a.max()}")
    return a


def _check_steps(steps: object, who: str) -> int:
    if isinstance(steps, bool):
        raise TypeError(f"{who}: steps must be an int, got bool")
    try:
        t = operator.index(steps)
    except TypeError:
        raise TypeError(f"{who}: steps must be an int, got {type(steps).__name__}") from None
    if t < 1:
        raise ValueError(f"{who}: steps must be >= 1, got {t}")
    return t


def _check_unit(value: object, name: str, who: str, *, low_open: bool = False) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{who}: {name} must be a number, got {type(value).__name__}") from None
    if not np.isfinite(v) or v > 1.0 or v < 0.0 or (low_open and v == 0.0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValueError(f"{who}: {name} must be within {interval}, got {value}")
    return v


def rate_encode(x: np.ndarray, steps: int, *, seed: int, max_rate: float = 1.0) -> np.ndarray:
    """Bernoulli rate code: spike with probability ``x * max_rate`` at every step.

    ``seed`` (a non-negative int) seeds ``numpy.random.default_rng``; the draw order is
    described in the module docstring. ``max_rate`` is within [0, 1].
    Returns bool ``[n_samples, steps, n_features]``.
    """
    who = "rate_encode"
    a = _check_x(x, who)
    t = _check_steps(steps, who)
    rate = _check_unit(max_rate, "max_rate", who)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{who}: seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    n, f = a.shape
    p = a * rate  # float64 [n, f]
    out = np.empty((n, t, f), dtype=np.bool_)
    per_sample = max(1, t * f)
    chunk = max(1, _RATE_CHUNK // per_sample)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        # Consecutive float64 draws from one Generator continue the same stream, so chunking
        # by whole samples gives exactly the draws of one rng.random((n, t, f)) call.
        u = rng.random((stop - start, t, f), dtype=np.float64)
        np.less(u, p[start:stop, None, :], out=out[start:stop])
    return out


def constant_current_encode(x: np.ndarray, steps: int, *, threshold: float = 1.0) -> np.ndarray:
    """Integrate-and-fire spike train of a constant input current ``x`` (reset by subtraction).

    Spike at step ``t`` iff ``floor((t + 1) * r) > floor(t * r)`` with ``r = x / threshold``,
    evaluated exactly after quantising ``r`` to ``FIXED_POINT_BITS`` fractional bits (see
    the module docstring). ``threshold`` must be positive and at least ``max(x)`` (an IF
    neuron emitting one binary spike per step cannot fire faster).
    Returns bool ``[n_samples, steps, n_features]``.
    """
    who = "constant_current_encode"
    a = _check_x(x, who)
    t_steps = _check_steps(steps, who)
    try:
        theta = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: threshold must be a number, got {type(threshold).__name__}") from None
    if not np.isfinite(theta) or theta <= 0.0:
        raise ValueError(f"{who}: threshold must be a positive finite number, got {threshold}")
    if a.size and a.max() > theta:
        raise ValueError(
            f"{who}: x / threshold must be <= 1 (at most one spike per step), "
            f"got max x {a.max()} with threshold {theta}"
        )
    one = 1 << FIXED_POINT_BITS
    q = np.rint(a / theta * one).astype(np.int64)  # [n, f], within 0 .. 2**16
    n, f = a.shape
    out = np.empty((n, t_steps, f), dtype=np.bool_)
    prev = np.zeros((n, f), dtype=np.int64)  # floor(t * q / 2**16) for the current t
    for t in range(t_steps):
        cur = ((t + 1) * q) >> FIXED_POINT_BITS
        np.greater(cur, prev, out=out[:, t, :])
        prev = cur
    return out


def latency_encode(x: np.ndarray, steps: int, *, t_min: int = 0, window: int | None = None) -> np.ndarray:
    """Time-to-first-spike code: one spike at ``t_min + round((1 - x) * (window - 1 - t_min))``.

    Features with ``x == 0`` never spike; ``round`` is round half to even. ``t_min`` is
    the time of the earliest (``x == 1``) spike, within ``0 .. window - 1``; ``window``
    (default ``steps``, at most ``steps``) is the step after the latest spike.
    Returns bool ``[n_samples, steps, n_features]``.
    """
    who = "latency_encode"
    a = _check_x(x, who)
    t_steps = _check_steps(steps, who)
    if isinstance(t_min, bool):
        raise TypeError(f"{who}: t_min must be an int, got bool")
    try:
        t0 = operator.index(t_min)
    except TypeError:
        raise TypeError(f"{who}: t_min must be an int, got {type(t_min).__name__}") from None
    if window is None:
        span = t_steps
    elif isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise TypeError(f"{who}: window must be an int, got {type(window).__name__}")
    elif not 1 <= window <= t_steps:
        raise ValueError(f"{who}: window must be within 1..steps = 1..{t_steps}, got {window}")
    else:
        span = int(window)
    if not 0 <= t0 <= span - 1:
        raise ValueError(f"{who}: t_min must be within 0..window-1 = 0..{span - 1}, got {t0}")
    n, f = a.shape
    times = t0 + np.rint((1.0 - a) * (span - 1 - t0)).astype(np.int64)  # [n, f]
    out = np.zeros((n, t_steps, f), dtype=np.bool_)
    ii, jj = np.nonzero(a > 0.0)
    out[ii, times[ii, jj], jj] = True
    return out


#: Encoder name -> function; the names accepted by :func:`encode`.
ENCODERS: dict[str, Callable[..., np.ndarray]] = {
    "rate": rate_encode,
    "current": constant_current_encode,
    "latency": latency_encode,
}


def encode(name: str, x: np.ndarray, steps: int, *, seed: int = 0, **kw) -> np.ndarray:
    """Encode ``x`` with the encoder called ``name`` (a key of :data:`ENCODERS`).

    ``seed`` is passed to encoders that take one (``"rate"``) and ignored by the
    deterministic ones; other keyword arguments go to the encoder unchanged.
    """
    try:
        fn = ENCODERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}") from None
    if "seed" in inspect.signature(fn).parameters:
        kw["seed"] = seed
    return fn(x, steps, **kw)


def encoding_kwargs(encoding: dict, encoder: str) -> dict:
    """The keyword arguments of ``encoder`` that an image's ``encoding`` section records
    (``max_rate`` of ``rate``, ``t_min`` and ``window`` of ``latency``), if the section is
    of that encoder; ``{}`` otherwise (an encoder chosen on the command line)."""
    if encoding.get("kind") != encoder or encoder not in ENCODERS:
        return {}
    names = [n for n, p in inspect.signature(ENCODERS[encoder]).parameters.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "seed"]
    return {n: encoding[n] for n in names if encoding.get(n) is not None}


def check_encoding(encoding: object) -> dict:
    """Check the ``encoding`` section of an image (how its inputs were encoded); returns it.

    A JSON object whose ``kind``, if given (not null), names an encoder of :data:`ENCODERS`, whose
    ``steps``, if given, is an int >= 1 and whose ``dataset``, if given, is a non-empty
    string: the fields ``neurocore run`` takes its defaults from. Other fields are
    free-form. Raises ``ValueError`` (one line naming the field).
    """
    if not isinstance(encoding, dict):
        raise ValueError(f"encoding must be a JSON object, got {type(encoding).__name__}")
    kind = encoding.get("kind")
    if kind is not None and (not isinstance(kind, str) or kind not in ENCODERS):
        raise ValueError(f"encoding: unknown encoder kind {kind!r:.40}; known: {', '.join(ENCODERS)}")
    if encoding.get("steps") is not None:
        try:
            _check_steps(encoding["steps"], "encoding")
        except TypeError as exc:
            raise ValueError(str(exc)) from None
    dataset = encoding.get("dataset")
    if dataset is not None and (not isinstance(dataset, str) or not dataset):
        raise ValueError(f"encoding: dataset must be a non-empty string, got {dataset!r:.40}")
    return encoding
