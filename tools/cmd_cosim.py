"""``neurocore cosim``: run random programs on the RTL (cocotb) and the golden model, compare."""
from __future__ import annotations

from .cli_common import UsageError, add_command, non_negative_int, positive_int, print_json

DESCRIPTION = """\
Co-simulate the core: generate random programs (every feature, learning off and
on, three width configurations), run each on the generated Verilog under cocotb
and on the golden model, and compare every output spike and, at the end, v,
refrac, theta, traces and every weight read back over the host interface.
Exit status 1 when any program mismatches."""

EXAMPLES = """\
neurocore cosim --random 50 --seed 1 --json
neurocore cosim --random 10 --simulator icarus
neurocore cosim --random 4 --waves --work-dir build/cosim   # FST/VCD waveforms"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "cosim", help="RTL vs golden model on random programs",
                         description=DESCRIPTION, examples=EXAMPLES)
    parser.add_argument("--random", type=positive_int, required=True, metavar="N",
                        help="number of random programs")
    parser.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                        help="seed of the program generator (default: %(default)s)")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                        help="HDL simulator (default: %(default)s)")
    parser.add_argument("--waves", action="store_true",
                        help="dump waveforms (Verilator: FST, Icarus: FST) into the work directory")
    parser.add_argument("--work-dir", metavar="DIR", default=None,
                        help="where the Verilog, builds and waveforms go (default: a new temporary directory)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..sim.cosim import available_simulators, random_cosim

    if args.simulator not in available_simulators():
        raise UsageError(f"simulator {args.simulator} is not installed "
                         f"(available: {', '.join(available_simulators()) or 'none'})")
    summary = random_cosim(args.random, args.seed, simulator=args.simulator, work_dir=args.work_dir,
                           waves=args.waves, progress=not args.json)
    if args.json:
        print_json(summary)
    else:
        print(f"{summary['programs']} programs ({summary['learning_programs']} with learning) on "
              f"{summary['simulator']}: {summary['mismatches']} mismatches")
        print(f"  {summary['steps']} steps, {summary['sops']} synaptic ops, {summary['cycles']} cycles "
              f"({summary['sop_per_cycle']} SOP/cycle), {summary['output_spikes']} output spikes, "
              f"{summary['weight_changes']} weights changed by learning")
        print(f"  build {summary['build_seconds']} s, simulation {summary['sim_seconds']} s "
              f"({summary['sim_cycles_per_s']} simulated cycles/s); files in {summary['work_dir']}")
        for failure in summary["failures"]:
            print(f"  case {failure['case']} (learn={failure['learn']}): {'; '.join(failure['problems'][:3])}")
    return 1 if summary["mismatches"] else 0
