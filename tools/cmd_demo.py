"""``neurocore demo``: build a small spiking network, run it on the golden model, report."""
from __future__ import annotations

from .cli_common import add_command, non_negative_int, positive_int, print_json

DESCRIPTION = """\
Build a small spiking network in code and run it on the numba golden model:
64 rate-coded pixels of noisy 8x8 patterns (X, O, T, L) -> 16 LIF template
detectors -> 4 output neurons in one winner-take-all group. Prints the core
config, the network size, synaptic operations, spikes per output, the
classification of each sample, SOP/s and the timing (first call, which includes
numba's compile or cache load, and the steady-state run)."""

EXAMPLES = """\
neurocore demo                       # text report
neurocore demo --json                # the same report as JSON
neurocore demo --steps 128 --seed 3  # longer samples, other noise"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "demo", help="run a small SNN on the golden model and report",
                         description=DESCRIPTION, examples=EXAMPLES)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--steps", type=positive_int, default=64, metavar="T",
                        help="time steps per sample (default: %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                        help="seed of the network's random choices and the input noise (default: %(default)s)")
    parser.add_argument("--samples", type=positive_int, default=8, metavar="B",
                        help="number of samples, the four patterns in turn (default: %(default)s)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .demo import format_demo, run_demo

    result = run_demo(steps=args.steps, seed=args.seed, samples=args.samples)
    if args.json:
        print_json(result)
    else:
        print(format_demo(result))
    return 0
