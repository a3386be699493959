"""Brian2 side of benchmarks/brian2_compare.py: run the exported network in Brian2.

Run with the Brian2 virtualenv's python (benchmarks/.venv-brian2), never imported by
neurocore itself:

    .venv-brian2/bin/python brian2_side.py --network net.npz --out spikes.npz --workdir DIR

It reads the network and input spikes exported by brian2_compare.py, builds the model
with Brian2's ``cpp_standalone`` device (single-threaded: no OpenMP), compiles it once,
runs the binary ``--repeats`` times and prints one JSON object on the last line of stdout.

Mapping of one neurocore step (docs/core-spec.md, section 5) onto Brian2
-------------------------------------------------------------------------

Brian2's default schedule within a time step is ``groups`` (state update),
``thresholds``, ``synapses``, ``resets``. A neuron variable ``acc`` plays the core's
accumulator, and the input is shifted by one Brian2 step so that each neurocore phase
runs in the right order:

* Brian2 step ``k`` (``k = 0 .. T``), slot ``groups``: a ``run_regularly`` operation does
  phase 2 of neurocore step ``k - 1``: ``v = v - floor(v / 2**leak_shift) + acc + bias``,
  then ``acc = 0``.
* slot ``thresholds``: ``v >= threshold`` (neurons), and the ``SpikeGeneratorGroup``
  emits the host input spikes of neurocore step ``k``;
* slot ``synapses``: ``on_pre: acc_post += w`` integrates them (phase 1 of step ``k``);
* slot ``resets``: ``v -= threshold`` (reset by subtraction) or ``v = 0``.

A Brian2 spike at step ``k`` is therefore a neurocore spike at step ``k - 1``; Brian2 runs
``T + 1`` steps (``dt`` = 1 ms, a label only). All values are integers held in floats
(``--float``: Brian2's ``core.default_float_dtype``; float32 by default, the faster of the
two here, and exact because every value of a 24-bit membrane is below 2^24 in magnitude;
float64 is exact up to 2^53), and ``floor(v / 2**k)`` equals ``v >> k`` for integers, so
the arithmetic is exact; only the membrane saturation (``sat_V``, never reached by the standard network)
and refractoriness / WTA / learning (unused) are not modelled, and the script refuses a
network that uses them.

Timing
------

``device.build(compile=True, run=False)`` generates and compiles the C++ project (timed
separately as ``build_seconds``, not part of the comparison). Each repeat then runs the
binary with ``device.run()`` (brian2_compare.py runs this script with ``--repeats 1`` for
the spikes and then re-runs the binary itself, the way ``device.run()`` does, interleaved
with golden-model runs, using ``run_command`` / ``run_info`` from the JSON); ``run_seconds`` is the duration of Brian2's simulation loop
(``Network::run`` in the generated C++), which Brian2 writes to
``results/last_run_info.txt`` and exposes as ``device._last_run_time``. Without OpenMP
Brian2 measures it with ``std::clock()`` (the process's CPU time; for one thread, the wall
time of the loop minus time the process was descheduled). It excludes process start-up,
loading of the synapse arrays and writing results, which ``process_seconds`` (wall time of
``device.run()``) includes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--network", required=True, help="npz written by brian2_compare.py")
    parser.add_argument("--out", required=True, help="npz to write the spikes to")
    parser.add_argument("--workdir", required=True, help="directory for the generated C++ project")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--float", choices=("float32", "float64"), default="float32",
                        help="Brian2's default float type (both hold the standard network's "
                             "integers exactly: |v| < 2^23)")
    parser.add_argument("--profile", action="store_true",
                        help="also report Brian2's per-code-object profile (extra timing calls)")
    args = parser.parse_args(argv)

    import brian2
    from brian2 import (Network, NeuronGroup, SpikeGeneratorGroup, SpikeMonitor, Synapses, defaultclock,
                        device, ms, prefs, second, set_device)

    net = np.load(args.network)
    n_neurons = int(net["n_neurons"])
    n_inputs = int(net["n_inputs"])
    steps = int(net["steps"])
    params = {}
    for name in ("threshold", "leak_shift", "reset_mode", "bias", "refractory", "theta", "wta_group"):
        values = net[name]
        if not (values == values[0]).all():
            raise SystemExit(f"brian2_side: per-neuron {name} must be uniform, it is not")
        params[name] = int(values[0])
    if params["refractory"] or params["theta"] or params["wta_group"] or int(net["n_routed"]):
        raise SystemExit("brian2_side: refractoriness, theta, WTA and routes are not modelled")

    set_device("cpp_standalone", build_on_run=False, directory=args.workdir)
    prefs.devices.cpp_standalone.openmp_threads = 0      # single thread, no OpenMP
    prefs.codegen.target = "cpp"
    prefs.core.default_float_dtype = getattr(np, args.float)
    defaultclock.dt = 1 * ms

    # Host input spikes of neurocore step t are emitted in Brian2 step t (see module doc).
    in_step = net["in_step"].astype(np.int64)
    in_index = net["in_index"].astype(np.int64)
    order = np.lexsort((in_index, in_step))
    generator = SpikeGeneratorGroup(n_inputs, in_index[order], in_step[order] * ms, sorted=True,
                                    name="inputs")

    leak = params["leak_shift"]
    decay = f"v - floor(v / {2 ** leak}.0)" if leak > 0 else "v"
    reset = "v -= threshold" if params["reset_mode"] == 1 else "v = 0"
    neurons = NeuronGroup(n_neurons, "v : 1\nacc : 1", threshold="v >= threshold", reset=reset,
                          namespace={"threshold": float(params["threshold"])}, name="neurons")
    neurons.run_regularly(f"v = {decay} + acc + {float(params['bias'])}\nacc = 0", when="groups",
                          name="neurons_update")
    synapses = Synapses(generator, neurons, "w : 1 (constant)", on_pre="acc_post += w", name="synapses")
    synapses.connect(i=net["syn_axon"].astype(np.int64), j=net["syn_target"].astype(np.int64))
    synapses.w = net["syn_weight"].astype(getattr(np, args.float))
    monitor = SpikeMonitor(neurons, name="spikes")
    network = Network(generator, neurons, synapses, monitor)
    network.run((steps + 1) * ms, profile=args.profile)

    t0 = time.perf_counter()
    device.build(directory=args.workdir, compile=True, run=False, with_output=False)
    build_seconds = time.perf_counter() - t0

    run_times, process_times, profile = [], [], None
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        device.run(directory=args.workdir, with_output=False)
        process_times.append(time.perf_counter() - t0)
        run_times.append(float(device._last_run_time))
    if args.profile:
        profile = [(name, float(seconds / second)) for name, seconds in network.profiling_info]

    run_cmd = prefs.devices.cpp_standalone.run_cmd_unix
    run_cmd = [run_cmd] if isinstance(run_cmd, str) else run_cmd
    spike_index = np.asarray(monitor.i[:], np.int64)
    spike_step = np.rint(np.asarray(monitor.t[:] / ms)).astype(np.int64) - 1
    np.savez_compressed(args.out, index=spike_index, step=spike_step)
    result = {
        "brian2": brian2.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "device": "cpp_standalone",
        "openmp_threads": int(prefs.devices.cpp_standalone.openmp_threads),
        "float": args.float,
        "compile_args": list(prefs.codegen.cpp.extra_compile_args_gcc),
        "build_seconds": build_seconds,
        "run_seconds": min(run_times),
        "run_seconds_all": run_times,
        "process_seconds": min(process_times),
        "process_seconds_all": process_times,
        "output_spikes": int(len(spike_index)),
        "profile": profile,
        # How to run the compiled simulation again without Python (what device.run() does),
        # so that brian2_compare.py can interleave Brian2 and golden-model repeats.
        "run_command": list(run_cmd) + ["--results_dir", device.results_dir],
        "run_cwd": os.path.abspath(args.workdir),
        "run_env": {**prefs.devices.cpp_standalone.run_environment_variables,
                    **device.run_environment_variables},
        "run_info": os.path.join(device.results_dir, "last_run_info.txt"),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
