"""``neurocore bench``: performance benchmarks (``bench golden``, ``bench core``)."""
from __future__ import annotations

from .cli_common import (MAX_BENCH_STEPS, UsageError, add_command, add_json_argument, add_seed_argument,
                         add_steps_argument, add_subcommands, positive_int, print_result)
from .cli_io import check_simulation

DESCRIPTION = """\
Performance benchmarks. Each target is a subcommand:

  golden   throughput of the numba golden model: synaptic operations per
           second and neuron updates per second (see docs/benchmarks.md)
  core     clock cycles of the RTL core per step in co-simulation (cocotb):
           SOP per clock, neuron pass, whole step, co-simulation speed"""

EXAMPLES = """\
neurocore bench golden
neurocore bench golden --json --steps 200 --repeats 5
neurocore bench core --json"""

GOLDEN_DESCRIPTION = """\
Measure the numba golden model's throughput on the standard benchmark network
(4096 LIF neurons, 4096 inputs x fan-out 256, about 1M synapses; see
docs/benchmarks.md): synaptic operations per second (SOP/s) and neuron updates
per second, single-threaded, best of --repeats runs, numba compilation excluded."""

GOLDEN_EXAMPLES = """\
neurocore bench golden                         # standard input length, text table
neurocore bench golden --json                  # machine-readable result
neurocore bench golden --steps 100 --repeats 1 # quick run"""


CORE_DESCRIPTION = """\
Measure the RTL core's clock cycles per time step in co-simulation: the generated
Verilog (default CoreConfig: 256 neurons, 512 axons, 65536 synapses) runs deterministic
test networks under cocotb (fan-out 64 and 256 lists, learning off; half the neurons;
learning on) and is checked against the golden model. Reports integration SOP per
clock (FEED phase), the neuron pass's cycles per neuron, whole-step cycles against
(SOPs + neurons) x 1.1 + a constant, the LTP cost, and the co-simulation speed
(simulated cycles per second). Takes several minutes with Verilator (build about
1 minute, loading and reading back 64k synapses through cocotb most of the rest).
Exit status 1 when the RTL and the golden model disagree (see docs/benchmarks.md)."""

CORE_EXAMPLES = """\
neurocore bench core                            # Verilator, text summary
neurocore bench core --json                     # machine-readable result
neurocore bench core --simulator icarus --fan-out 64 --steps 20   # quicker, smaller run"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "bench", help="performance benchmarks (golden model, RTL core)",
                         description=DESCRIPTION, examples=EXAMPLES)
    targets = add_subcommands(parser, dest="target", metavar="TARGET", title="targets")
    golden = add_command(targets, "golden", help="golden-model throughput: SOP/s, neuron updates/s",
                         description=GOLDEN_DESCRIPTION, examples=GOLDEN_EXAMPLES)
    add_json_argument(golden)
    add_steps_argument(golden, "time steps per run (default: the benchmark's own)",
                       maximum=MAX_BENCH_STEPS, metavar="N")
    golden.add_argument("--repeats", type=positive_int, default=3, metavar="R",
                        help="timed repetitions, the best is reported (default: %(default)s)")
    add_seed_argument(golden, "seed of the benchmark network and inputs")
    golden.set_defaults(func=run_golden)

    core = add_command(targets, "core", help="RTL cycle counts in co-simulation: SOP/clock, cycles/step",
                       description=CORE_DESCRIPTION, examples=CORE_EXAMPLES)
    core.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                      help="HDL simulator (default: %(default)s)")
    add_json_argument(core)
    core.add_argument("--fan-out", type=positive_int, action="append", default=None, metavar="F",
                      dest="fan_outs", help="fan-out of the inference networks; repeat for several "
                                            "(default: 64 and 256)")
    add_steps_argument(core, "time steps per case (default: the benchmark's own, 100)", metavar="N")
    add_seed_argument(core, "seed of the test networks and inputs")
    core.add_argument("--no-learning", action="store_true", help="skip the learning case")
    core.add_argument("--work-dir", metavar="DIR", default=None,
                      help="where the Verilog, the build and the logs go (default: a new temporary directory)")
    core.set_defaults(func=run_core)


def run_golden(args) -> int:
    try:
        from .bench import format_golden, golden_benchmark
    except ImportError as exc:
        raise UsageError(f"the golden benchmark is not available in this installation ({exc})") from None
    result = golden_benchmark(steps=args.steps, seed=args.seed, repeats=args.repeats)
    print_result(result, args.json, format_golden)
    return 0


def run_core(args) -> int:
    from .bench_core import core_benchmark, format_core

    check_simulation(args)
    result = core_benchmark(args.simulator, tuple(args.fan_outs or (64, 256)), steps=args.steps,
                            seed=args.seed, learning=not args.no_learning, work_dir=args.work_dir,
                            progress=not args.json)
    print_result(result, args.json, format_core)
    return 1 if result["mismatches"] else 0
