"""``neurocore bench``: performance benchmarks (``bench golden`` for now)."""
from __future__ import annotations

from .cli_common import UsageError, add_command, non_negative_int, positive_int, print_json

DESCRIPTION = """\
Performance benchmarks. Each target is a subcommand:

  golden   throughput of the numba golden model: synaptic operations per
           second and neuron updates per second (see docs/benchmarks.md)"""

EXAMPLES = """\
neurocore bench golden
neurocore bench golden --json --steps 200 --repeats 5"""

GOLDEN_DESCRIPTION = """\
Measure the numba golden model's throughput on the standard benchmark network
(4096 LIF neurons, 4096 inputs x fan-out 256, about 1M synapses; see
docs/benchmarks.md): synaptic operations per second (SOP/s) and neuron updates
per second, single-threaded, best of --repeats runs, numba compilation excluded."""

GOLDEN_EXAMPLES = """\
neurocore bench golden                         # standard input length, text table
neurocore bench golden --json                  # machine-readable result
neurocore bench golden --steps 100 --repeats 1 # quick run"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "bench", help="performance benchmarks (golden model)",
                         description=DESCRIPTION, examples=EXAMPLES)
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True, title="targets")
    golden = add_command(targets, "golden", help="golden-model throughput: SOP/s, neuron updates/s",
                         description=GOLDEN_DESCRIPTION, examples=GOLDEN_EXAMPLES)
    golden.add_argument("--json", action="store_true", help="print the result as JSON")
    golden.add_argument("--steps", type=positive_int, default=None, metavar="N",
                        help="time steps per run (default: the benchmark's own)")
    golden.add_argument("--repeats", type=positive_int, default=3, metavar="R",
                        help="timed repetitions, the best is reported (default: %(default)s)")
    golden.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                        help="seed of the benchmark network and inputs (default: %(default)s)")
    golden.set_defaults(func=run_golden)


def run_golden(args) -> int:
    try:
        from .bench import format_golden, golden_benchmark
    except ImportError as exc:
        raise UsageError(f"the golden benchmark is not available in this installation ({exc})") from None
    result = golden_benchmark(steps=args.steps, seed=args.seed, repeats=args.repeats)
    if args.json:
        print_json(result)
    else:
        print(format_golden(result))
    return 0
