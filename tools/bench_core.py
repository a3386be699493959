"""The core cycle benchmark: clock cycles of the RTL per step, measured in co-simulation.

``neurocore bench core`` calls :func:`core_benchmark` and prints its dict (``--json``) or
:func:`format_core` of it. docs/benchmarks.md ("Core cycle counts (co-simulation)")
describes the networks and records measured figures; docs/hw.md gives the cycle cost of
every block.

What is measured. The generated Verilog of one :class:`CoreConfig` (default: the default
config, 256 neurons, 512 axons, 65,536 synapses, every feature) is built once with
:func:`neurocore.sim.cosim.build` and runs a few cases with
:func:`neurocore.sim.cosim.run_cases` (the cocotb testbench :mod:`neurocore.sim.cocotb_tb`).
After every step the testbench reads the core's registers LAST_STEP_CYCLES (STEP accepted
to done), LAST_STEP_SOPS, FEED_CYCLES (phase FEED: integration) and UPDATE_CYCLES (phase
UPDATE: neuron pass, beside it the trace sweep). Every case is also checked against the
golden model with :func:`neurocore.sim.cosim.compare` (spikes, final state, weights, SOPs).

The cases (each one sample of ``steps`` steps, from a cleared state):

* ``inference-F`` for every fan-out ``F`` of ``fan_outs``: learning off (LEARN = 0);
* ``neurons-half``: the first fan-out with half the neurons active (N_NEURONS = N/2), to
  separate the neuron pass's cost per neuron from its constant;
* ``learning``: the first fan-out with every host synapse plastic and learning on
  (LTD inline, trace sweep, LTP), when the config has ``learning``. LTP visits, for every
  fired neuron, the axons of its LTP range (``CoreProgram.ltp_ranges()``); its cycles
  are fitted against those visits and the updates (each write-back takes the single-port
  synapse memory for a cycle, except those that land after the last synapse read), and
  FEED against the SOPs and the LTD write-backs (one per plastic synapse visited).

The test network of a case (:func:`core_network`): ``n_neurons`` LIF neurons, every one an
output; ``min(A, S // F)`` axons, of which the last ``internal`` (at most 64) are driven by
neurons 0, 1, ... (routes), the others are host inputs; every axon has a row of exactly
``F`` synapses (``F <= n_neurons``) to the consecutive neurons ``first .. first+F-1``, with
``first`` uniform (rows overlap, so the accumulator's read-after-write forwarding is
exercised where one row ends on the neuron the next one starts with);
host-axon weights uniform in -4..12, internal-axon weights in -8..8; leak shift 2, reset to
zero, refractory 1, no WTA, theta 0. Each step ``k`` distinct host axons spike, ``k``
uniform in ``1..max_active``. The threshold is the smallest for which the golden model
gives at most ``firing_rate`` (default 5 %) spikes per neuron and step over the run
(bisection), so the network neither dies nor saturates. Everything derives from ``seed``.
"""
from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neurocore.hw.config import CoreConfig
from neurocore.hw.program import NO_ROUTE, RESET_TO_ZERO, CoreProgram, LearningParams, NeuronParams

__all__ = ["CORE_BENCH", "ODIN_CLOCKS_PER_SOP", "core_network", "core_benchmark", "format_core"]

# Defaults of the benchmark (docs/benchmarks.md). Change them only together with the doc.
CORE_BENCH = dict(
    steps=100,            # steps per case
    max_active=16,        # host axons active per step: uniform 1..max_active
    internal_axons=64,    # neurons routed to an internal axon (recurrence through the router)
    firing_rate=0.05,     # threshold calibrated to at most this many spikes per neuron-step
    host_weights=(-4, 12),
    internal_weights=(-8, 8),
    leak_shift=2,
    refractory=1,
    step_slack=1.1,       # the goal: step cycles <= (sops + neurons) x 1.1 + a small constant
)

# Context: ODIN (Frenkel et al., IEEE TBioCAS 2019), a 256-neuron 64k-synapse time-multiplexed
# crossbar core, spends about 2 clock cycles per synaptic operation.
ODIN_CLOCKS_PER_SOP = 2.0

# Learning parameters of the ``learning`` case: plastic range = the host weight range.
_LEARNING = LearningParams(a_plus=24, a_minus=16, shift=6, pre_decay_shift=2, post_decay_shift=2,
                           pre_jump=96, post_jump=96, w_min=CORE_BENCH["host_weights"][0],
                           w_max=CORE_BENCH["host_weights"][1])


def _network(config: CoreConfig, fan_out: int, n_neurons: int, steps: int, threshold: int, *,
             seed: int, max_active: int, internal_axons: int, plastic: bool):
    b = CORE_BENCH
    rng = np.random.default_rng([seed, fan_out, n_neurons])
    n_axons = min(config.axons, config.synapses // fan_out)
    n_internal = min(internal_axons, n_neurons, n_axons // 4)
    n_inputs = n_axons - n_internal
    if n_inputs < 1:
        raise ValueError(f"fan-out {fan_out} does not fit the config: {config.synapses} synapses "
                         f"hold {n_axons} axons of {fan_out}")
    if fan_out > n_neurons:
        raise ValueError(f"fan-out {fan_out} exceeds the {n_neurons} neurons: a row drives "
                         f"consecutive neurons, each at most once")
    axon = np.repeat(np.arange(n_axons, dtype=np.int64), fan_out)
    first = rng.integers(0, n_neurons - fan_out + 1, size=n_axons)
    target = np.repeat(first, fan_out) + np.tile(np.arange(fan_out, dtype=np.int64), n_axons)
    host = axon < n_inputs
    weight = np.where(host, rng.integers(b["host_weights"][0], b["host_weights"][1] + 1, size=axon.size),
                      rng.integers(b["internal_weights"][0], b["internal_weights"][1] + 1, size=axon.size))
    route = np.full(n_neurons, NO_ROUTE, np.int64)
    route[:n_internal] = n_inputs + np.arange(n_internal)
    neurons = NeuronParams.uniform(n_neurons, threshold=threshold, leak_shift=b["leak_shift"],
                                   reset_mode=RESET_TO_ZERO, refractory=b["refractory"])
    program = CoreProgram.from_synapses(
        config, n_inputs=n_inputs, n_axons=n_axons, axon=axon, target=target, weight=weight,
        plastic=host if plastic else None, neurons=neurons, route=route,
        outputs=np.arange(n_neurons), learning=_LEARNING if plastic else None)
    active = min(max_active, n_inputs)
    inputs = np.zeros((1, steps, n_inputs), bool)
    for t in range(steps):
        k = int(rng.integers(1, active + 1))
        inputs[0, t, rng.choice(n_inputs, k, replace=False)] = True
    return program, inputs


def core_network(config: CoreConfig, fan_out: int, *, n_neurons: int | None = None,
                 steps: int | None = None, seed: int = 0, max_active: int | None = None,
                 internal_axons: int | None = None, firing_rate: float | None = None,
                 plastic: bool = False):
    """The benchmark's test network for one fan-out (see the module docstring).

    Returns ``(program, inputs, learn)``, a case for :func:`neurocore.sim.cosim.run_cases`
    (``inputs``: bool ``[1, steps, n_inputs]``; ``learn`` is ``plastic``).
    """
    from neurocore.sim import golden

    b = CORE_BENCH
    n_neurons = config.neurons if n_neurons is None else n_neurons
    steps = b["steps"] if steps is None else steps
    kwargs = dict(seed=seed, max_active=b["max_active"] if max_active is None else max_active,
                  internal_axons=b["internal_axons"] if internal_axons is None else internal_axons,
                  plastic=plastic)
    rate = b["firing_rate"] if firing_rate is None else firing_rate
    if plastic and not config.learning:
        raise ValueError("a plastic benchmark network needs a config with learning")

    def firing(threshold):
        program, inputs = _network(config, fan_out, n_neurons, steps, threshold, **kwargs)
        result = golden.run(program, inputs[0], learn=plastic, record_neurons=True)
        return float(result.neuron_spikes.mean())

    lo, hi = 0, config.theta_max            # firing(hi) <= rate; find the smallest such
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if firing(mid) > rate:
            lo = mid
        else:
            hi = mid
    program, inputs = _network(config, fan_out, n_neurons, steps, hi, **kwargs)
    return program, inputs, plastic


def _step_profile(program: CoreProgram, inputs: np.ndarray, learn: bool) -> dict:
    """Per-step figures of one case from the golden model: SOPs, fired neurons, LTD
    write-backs (plastic synapses of the active axons), LTP updates and the axons the LTP
    engine visits (the LTP ranges of the fired neurons)."""
    from neurocore.sim import golden

    result = golden.run(program, inputs[0], learn=learn, record_neurons=True)
    fired = result.neuron_spikes                      # [T, n_neurons]
    counts = np.diff(program.ptr)
    routed = program.route != NO_ROUTE
    plastic_per_axon = np.bincount(program.synapse_axon()[program.plastic], minlength=program.n_axons)
    sops = np.zeros(len(fired), np.int64)
    ltd = np.zeros(len(fired), np.int64)
    for t in range(len(fired)):
        active = list(np.flatnonzero(inputs[0, t]))
        if t:
            active += list(program.route[fired[t - 1] & routed])
        sops[t] = counts[active].sum()
        ltd[t] = plastic_per_axon[active].sum() if learn else 0
    plastic_in = np.bincount(program.target[program.plastic], minlength=program.n_neurons)
    ltp = (fired * plastic_in).sum(axis=1) if learn else np.zeros(len(fired), np.int64)
    visits = np.zeros(len(fired), np.int64)
    if learn:
        _, range_count = program.ltp_ranges()
        visits = (fired * range_count).sum(axis=1)
    return {"sops": sops, "fired": fired.sum(axis=1), "ltd_writes": ltd, "ltp_updates": ltp,
            "ltp_visits": visits}


def _fit(columns, y):
    """Least-squares coefficients of ``y`` on ``columns`` and the largest |residual|.

    A column given as None (an indicator that is constant over the data, so that it cannot
    be told from the constant column) is left out and reported as coefficient None.
    """
    keep = [c is not None for c in columns]
    coef, residual = _lstsq([c for c in columns if c is not None], y)
    it = iter(coef)
    return [next(it) if k else None for k in keep], residual


def _indicator(values):
    """``values > 0`` as a column, or None when it is the same for every row."""
    flag = np.asarray(values) > 0
    return flag.astype(float) if 0 < flag.sum() < len(flag) else None


def _lstsq(columns, y):
    a = np.column_stack([np.asarray(c, float) for c in columns])
    y = np.asarray(y, float)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    residual = np.abs(a @ coef - y).max() if len(y) else 0.0
    return [round(float(c), 4) for c in coef], round(float(residual), 3)


def _si(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}"
    return f"{value:.3g} "


def core_benchmark(simulator: str = "verilator", fan_outs=(64, 256), *, config: CoreConfig | None = None,
                   steps: int | None = None, seed: int = 0, max_active: int | None = None,
                   learning: bool = True, work_dir=None, progress: bool = False) -> dict:
    """Run the core cycle benchmark in co-simulation; returns a JSON-able dict.

    ``config`` defaults to ``CoreConfig()``; ``learning`` adds the learning case (needs
    ``config.learning``). ``work_dir`` (default: a new temporary directory) receives the
    Verilog, the build and the simulator log. ``progress`` prints stage lines to stderr.
    """
    from neurocore.sim.cosim import available_simulators, build, compare, run_cases

    config = CoreConfig() if config is None else config
    fan_outs = tuple(int(f) for f in fan_outs)
    if not fan_outs or min(fan_outs) < 1:
        raise ValueError(f"fan_outs must be positive integers, got {fan_outs}")
    if simulator not in available_simulators():
        raise ValueError(f"simulator {simulator} is not installed "
                         f"(available: {', '.join(available_simulators()) or 'none'})")
    steps = CORE_BENCH["steps"] if steps is None else int(steps)
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="neurocore-bench-core-"))
    learning = learning and config.learning

    def say(message):
        if progress:
            print(f"bench core: {message}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    specs = [(f"inference-{f}", f, config.neurons, False) for f in fan_outs]
    if config.neurons >= 2:
        specs.append(("neurons-half", fan_outs[0], config.neurons // 2, False))
    if learning:
        specs.append(("learning", fan_outs[0], config.neurons, True))
    cases = []
    for name, fan_out, n_neurons, plastic in specs:
        cases.append(core_network(config, fan_out, n_neurons=n_neurons, steps=steps, seed=seed,
                                  max_active=max_active, plastic=plastic))
    network_seconds = time.perf_counter() - t0
    say(f"{len(cases)} networks built in {network_seconds:.1f} s; building the {simulator} model "
        f"in {work_dir}")

    t0 = time.perf_counter()
    build_dir = work_dir / simulator
    runner = build(config, simulator, build_dir)
    build_seconds = time.perf_counter() - t0
    say(f"built in {build_seconds:.1f} s; running {len(cases)} cases x {steps} steps")
    t0 = time.perf_counter()
    raws = run_cases(runner, config, cases, build_dir)
    run_seconds = time.perf_counter() - t0
    say(f"ran in {run_seconds:.1f} s; comparing with the golden model")

    per_case, mismatches, problems = {}, 0, []
    step_rows = []            # (case, sops, n_neurons, fired, step, feed, update) of inference cases
    neuron_rows = []          # (n_neurons, fired, update) of inference cases
    for (name, fan_out, n_neurons, plastic), case, raw in zip(specs, cases, raws):
        program, inputs, learn = case
        report = compare(program, inputs, learn, raw)
        prof = _step_profile(program, inputs, learn)
        sops = np.asarray(raw["step_sops"], np.int64)
        cycles = np.asarray(raw["step_cycles"], np.int64)
        feed = np.asarray(raw["step_feed_cycles"], np.int64)
        update = np.asarray(raw["step_update_cycles"], np.int64)
        case_problems = list(report.mismatches)
        if not np.array_equal(sops, prof["sops"]):
            t = int(np.flatnonzero(sops != prof["sops"])[0])
            case_problems.append(f"step {t}: RTL {int(sops[t])} SOPs, golden {int(prof['sops'][t])}")
        if learn and raw["registers"].get("LTP_UPDATES") != int(prof["ltp_updates"].sum()):
            case_problems.append(f"LTP updates: RTL {raw['registers'].get('LTP_UPDATES')}, "
                                 f"golden {int(prof['ltp_updates'].sum())}")
        if case_problems:
            mismatches += 1
            problems += [f"{name}: {p}" for p in case_problems[:5]]
        sim_cycles = raw["cycles_end"] - raw["cycles_start"]
        entry = {
            "fan_out": fan_out, "n_neurons": program.n_neurons, "n_axons": program.n_axons,
            "n_inputs": program.n_inputs, "synapses": program.n_synapses, "learn": learn,
            "threshold": int(program.neurons.threshold[0]), "steps": len(sops),
            "sops": int(sops.sum()), "output_spikes": int(prof["fired"].sum()),
            "firing_rate": round(float(prof["fired"].sum()) / (len(sops) * program.n_neurons), 4),
            "step_cycles": int(cycles.sum()), "feed_cycles": int(feed.sum()),
            "update_cycles": int(update.sum()),
            "feed_overhead_cycles": [int((feed - sops).min()), int((feed - sops).max())],
            "sop_per_clock_feed": round(float(sops.sum() / feed.sum()), 4),
            "sop_per_clock_step": round(float(sops.sum() / cycles.sum()), 4),
            "ok": not case_problems,
            "sim_cycles": int(sim_cycles), "wall_seconds": round(raw["wall_seconds"], 3),
            "load_seconds": round(raw.get("load_seconds", 0.0), 2),
        }
        if learn:
            ltp = cycles - feed - update - 2          # minus the STEP-accept and FINISH cycles
            entry.update({
                "ltp_updates": int(prof["ltp_updates"].sum()),
                "ltp_axons_visited": int(prof["ltp_visits"].sum()), "ltp_cycles": int(ltp.sum()),
                "weight_changes": report.weight_changes,
            })
            # LTP state: 1 cycle when nothing fired, else axons visited + updates (write-backs)
            # + fill/drain of the engine, less the write-backs that land in the drain.
            (per_visit, per_update, start, constant), residual = _fit(
                [prof["ltp_visits"], prof["ltp_updates"], _indicator(prof["fired"]), np.ones(len(ltp))], ltp)
            entry["ltp_fit"] = {"cycles_per_axon_visited": per_visit, "cycles_per_update": per_update,
                                "extra_if_any_fired": start, "constant": constant, "max_residual": residual}
            any_fired = prof["ltp_visits"] > 0
            rest = (ltp - prof["ltp_visits"] - prof["ltp_updates"])[any_fired]
            entry["ltp_minus_visits_updates"] = [int(rest.min()), int(rest.max())] if rest.size else None
            entry["ltd_writes"] = int(prof["ltd_writes"].sum())
            rest = (feed - sops - prof["ltd_writes"])[sops > 0]
            entry["feed_minus_sops_ltd_writes"] = [int(rest.min()), int(rest.max())] if rest.size else None
            entry["update_phase_cycles"] = [int(update.min()), int(update.max())]
            entry["trace_sweep_cycles"] = program.n_axons + 3
        else:
            for i in range(len(sops)):
                step_rows.append((name, sops[i], program.n_neurons, prof["fired"][i], cycles[i],
                                  feed[i], update[i]))
                neuron_rows.append((program.n_neurons, prof["fired"][i], update[i]))
        per_case[name] = entry

    # -- integration: FEED cycles against SOPs, per fan-out ------------------------------------
    integration = {}
    for name, fan_out, _, plastic in specs:
        if plastic or not name.startswith("inference-"):
            continue
        rows = [r for r in step_rows if r[0] == name]
        sops = np.array([r[1] for r in rows], float)
        feed = np.array([r[5] for r in rows], float)
        (slope, overhead), residual = _fit([sops, np.ones(len(sops))], feed)
        integration[str(fan_out)] = {
            "sops": int(sops.sum()), "feed_cycles": int(feed.sum()),
            "sop_per_clock": round(float(sops.sum() / feed.sum()), 4),
            "worst_step_sop_per_clock": round(float((sops / feed).min()), 4),
            "cycles_per_sop_fit": slope, "overhead_cycles_fit": overhead, "fit_max_residual": residual,
            "sustained_sop_per_clock": round(1 / slope, 4) if slope else None,
            "speedup_vs_odin": round(ODIN_CLOCKS_PER_SOP * float(sops.sum() / feed.sum()), 2),
        }

    # -- neuron pass: UPDATE cycles against neurons and candidates (= fired: no WTA) -------------
    n_col, f_col, u_col = (np.array(c, float) for c in zip(*neuron_rows))
    (per_neuron, per_candidate, commit, constant), residual = _fit(
        [n_col, f_col, _indicator(f_col), np.ones(len(n_col))], u_col)
    neuron_update = {
        "cycles_per_neuron": per_neuron, "cycles_per_candidate": per_candidate,
        "extra_if_any_candidate": commit, "constant": constant, "fit_max_residual": residual,
        "neurons_per_clock": round(1 / per_neuron, 4) if per_neuron else None,
        "update_cycles_without_candidates": {
            str(int(n)): int(u_col[(n_col == n) & (f_col == 0)].min())
            for n in np.unique(n_col) if ((n_col == n) & (f_col == 0)).any()},
    }

    # -- whole step against (sops + neurons) x slack + constant --------------------------------
    slack = CORE_BENCH["step_slack"]
    s_col = np.array([r[1] for r in step_rows], float)
    n_step = np.array([r[2] for r in step_rows], float)
    fired = np.array([r[3] for r in step_rows], float)
    c_col = np.array([r[4] for r in step_rows], float)
    excess = c_col - slack * (s_col + n_step)
    worst = int(np.argmax(c_col / (s_col + n_step)))
    rest = c_col - s_col - n_step          # spikes cost nothing; these networks have no WTA group
    step = {
        "steps": len(c_col),
        "worst_ratio": round(float((c_col / (s_col + n_step)).max()), 4),
        "worst_ratio_step": {"case": step_rows[worst][0], "sops": int(s_col[worst]),
                             "neurons": int(n_step[worst]), "fired": int(fired[worst]),
                             "cycles": int(c_col[worst])},
        "mean_ratio": round(float(c_col.sum() / (s_col + n_step).sum()), 4),
        "slack": slack,
        "constant_needed": int(np.ceil(max(0.0, float(excess.max())))),
        "model": "cycles = sops + neurons + K (no WTA group; each WTA candidate adds 1 cycle)",
        "model_K": [int(rest.min()), int(rest.max())],
    }

    # -- co-simulation speed -------------------------------------------------------------------
    sim_cycles = sum(e["sim_cycles"] for e in per_case.values())
    wall = sum(raw["wall_seconds"] for raw in raws)
    cosim = {
        "simulator": simulator, "sim_cycles": sim_cycles, "wall_seconds": round(wall, 3),
        "cycles_per_s": round(sim_cycles / wall) if wall else 0,
        "build_seconds": round(build_seconds, 1), "run_seconds": round(run_seconds, 1),
        "load_seconds": round(sum(e["load_seconds"] for e in per_case.values()), 1),
        "network_seconds": round(network_seconds, 1),
    }

    first = integration[str(fan_outs[0])] if integration else None
    goals = {
        "integration_sop_per_clock_ge_0.95": all(v["sop_per_clock"] >= 0.95 for k, v in integration.items()
                                                 if int(k) >= 64) if integration else None,
        "neuron_update_1_per_clock": bool(per_neuron <= 1.0 + 1e-3),
        "step_le_slack_plus_constant": step["constant_needed"],
    }
    result = {
        "benchmark": "core",
        "simulator": simulator,
        "config": config.to_dict(),
        "fan_outs": list(fan_outs),
        "steps": steps,
        "seed": seed,
        "max_active": CORE_BENCH["max_active"] if max_active is None else max_active,
        "firing_rate_target": CORE_BENCH["firing_rate"],
        "mismatches": mismatches,
        "problems": problems[:10],
        "integration": integration,
        "neuron_update": neuron_update,
        "step": step,
        "learning": per_case.get("learning"),
        "odin": {"clocks_per_sop": ODIN_CLOCKS_PER_SOP,
                 "core_clocks_per_sop": round(1 / first["sop_per_clock"], 4) if first else None},
        "cosim": cosim,
        "goals": goals,
        "cases": per_case,
        "work_dir": str(work_dir),
        "cpu_count": os.cpu_count(),
        "load_average": _load_average(),
        "python": platform.python_version(),
    }
    return result


def _load_average():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def format_core(result: dict) -> str:
    """A human-readable summary of a :func:`core_benchmark` result."""
    r = result
    cfg = r["config"]
    rows = [
        ("core", f"{cfg['neurons']} neurons, {cfg['axons']} axons, {cfg['synapses']} synapses "
                 f"(learning={cfg['learning']}, wta={cfg['wta']}, theta={cfg['adaptive_threshold']})"),
        ("simulator", f"{r['simulator']}; {len(r['cases'])} cases x {r['steps']} steps, seed {r['seed']}"),
        ("golden model", "agrees on every case" if not r["mismatches"]
         else f"{r['mismatches']} case(s) MISMATCH: " + "; ".join(r["problems"][:3])),
    ]
    for fan_out, v in r["integration"].items():
        rows.append((f"integration F={fan_out}",
                     f"{v['sop_per_clock']:.4f} SOP/clock over FEED ({v['sops']} SOPs in {v['feed_cycles']} "
                     f"cycles; fit {v['cycles_per_sop_fit']} cycles/SOP + {v['overhead_cycles_fit']} per "
                     f"step; worst step {v['worst_step_sop_per_clock']}); {v['speedup_vs_odin']}x ODIN"))
    nu = r["neuron_update"]
    rows.append(("neuron pass", f"{nu['cycles_per_neuron']} cycles/neuron + {nu['cycles_per_candidate']} "
                                f"per candidate (+ {nu['extra_if_any_candidate']} if any) + {nu['constant']} "
                                f"(fit, max residual {nu['fit_max_residual']})"))
    s = r["step"]
    rows.append(("whole step", f"worst cycles/(sops+neurons) {s['worst_ratio']} (mean {s['mean_ratio']}); "
                               f"needs constant {s['constant_needed']} at x{s['slack']}; "
                               f"{s['model']}, K in {s['model_K']}"))
    if r.get("learning"):
        lc = r["learning"]
        fit = lc["ltp_fit"]
        rows.append(("learning", f"{lc['ltp_updates']} LTP updates, {lc['ltp_axons_visited']} axons "
                                 f"visited in {lc['ltp_cycles']} LTP cycles "
                                 f"({fit['cycles_per_axon_visited']} cycles/axon visited + "
                                 f"{fit['cycles_per_update']} per update + "
                                 f"{fit['extra_if_any_fired']} if any neuron fired + {fit['constant']}, "
                                 f"max residual {fit['max_residual']}; LTP - visits - updates in "
                                 f"{lc['ltp_minus_visits_updates']}); FEED - SOPs - LTD write-backs in "
                                 f"{lc['feed_minus_sops_ltd_writes']} ({lc['ltd_writes']} write-backs); "
                                 f"UPDATE phase "
                                 f"{lc['update_phase_cycles']} cycles (trace sweep {lc['trace_sweep_cycles']}); "
                                 f"{lc['weight_changes']} weights changed"))
    c = r["cosim"]
    rows.append(("co-simulation", f"{_si(c['cycles_per_s'])}cycles/s ({c['sim_cycles']} cycles in "
                                  f"{c['wall_seconds']} s of stepping); build {c['build_seconds']} s, "
                                  f"load {c['load_seconds']} s, whole run {c['run_seconds']} s"))
    rows.append(("files", r["work_dir"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
