"""``neurocore synth``: synthesise, place and route the core for an FPGA; report fit and Fmax."""
from __future__ import annotations

from .cli_common import (UsageError, add_command, add_config_argument, add_json_argument, add_seed_argument,
                         positive_float_up_to, print_error, print_result)
from .cli_io import load_source, output_path, parse_config

TARGET_NAMES = ("ice40-up5k", "ecp5-25k", "ecp5-85k")   # = neurocore.tools.synth_flow.TARGETS

DESCRIPTION = """\
Synthesise the core for an FPGA with Yosys, place and route it with nextpnr
(the YoWASP builds: pip install 'neurocore[fpga]'), and report the resources
used against the device's (logic cells or LUT4s, flip-flops, block RAMs,
SPRAMs, DSPs), the Fmax reached against --clock, and whether the core fits.

Targets: ice40-up5k (iCE40 UP5K, SG48; default clock 40 MHz; Yosys maps
multipliers to SB_MAC16, and the flow gives its 4 SPRAMs to the single-port
memories that save the most block RAMs per SPRAM; those lose their power-up
contents, which SPRAM cannot have, so with --image the report lists what the
host must write at boot; --zero-init keeps every memory in block RAM),
ecp5-25k and ecp5-85k (LFE5U-25F / -85F, CABGA381; default clock 100 MHz).
On every target the single-port memories (their read port is off whenever
they write) are marked as having no defined read-during-write, which spares
Yosys a bypass register per data bit.

The core is wrapped in a 4-pin I/O harness (its inputs shifted in from one
pin, its outputs XOR-reduced to one), whose flip-flops are included in the
figures. A run takes from about a minute (small cores) to many minutes; the
first run of each tool also compiles it (a few minutes, once).

Exit status: 0 the core fits and meets the clock, 1 it does not fit or misses
the clock (the report says what overflowed and by how much), 2 usage errors
and missing tools."""

EXAMPLES = """\
neurocore synth --target ice40-up5k                 # default CoreConfig at 40 MHz
neurocore synth --target ecp5-25k --clock 100 --json
neurocore synth --target ice40-up5k --config '{"synapses": 4096, "learning": false}'
neurocore synth --target ecp5-85k --image build/digits-img --work-dir build/synth-85k"""


_clock = positive_float_up_to(2000, "a clock in MHz (0 < MHz <= 2000)")


def register(subparsers) -> None:
    parser = add_command(subparsers, "synth", help="FPGA synthesis: fit and Fmax (Yosys + nextpnr)",
                         description=DESCRIPTION, examples=EXAMPLES)
    parser.add_argument("--target", required=True, choices=TARGET_NAMES, metavar="TARGET",
                        help=f"the FPGA: {', '.join(TARGET_NAMES)}")
    add_config_argument(parser, "CoreConfig fields as a JSON object or a JSON file (default: the defaults; "
                                "with --image: the image's config, which it must match)")
    parser.add_argument("--image", metavar="DIR", default=None,
                        help="bake a compiled image directory into the memories and registers")
    parser.add_argument("--learn", action="store_true",
                        help="with --image: the LEARN register resets to 1 (STDP on for every STEP)")
    parser.add_argument("--clock", type=_clock, default=None, metavar="MHZ",
                        help="requested clock in MHz (default: 40 for ice40-up5k, 100 for ECP5)")
    parser.add_argument("--work-dir", metavar="DIR", default=None,
                        help="keep the design, netlist, reports and tool logs in DIR "
                             "(default: a temporary directory, removed unless a tool fails)")
    parser.add_argument("--hdl", choices=("rtlil", "verilog"), default="rtlil",
                        help="what Yosys reads: RTLIL (default, fast) or the Verilog of "
                             "'neurocore verilog' (slow to parse for large memories)")
    parser.add_argument("--zero-init", action="store_true",
                        help="ice40-up5k: no SPRAM; every memory stays in block RAM with its "
                             "power-up contents (by default, with RTLIL input, the single-port "
                             "memories that save the most block RAMs go to SPRAM, uninitialised)")
    add_seed_argument(parser, "nextpnr placement seed", default=None)
    add_json_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)


def run(args) -> int:
    from . import synth_flow, synth_report

    if args.learn and args.image is None:
        raise UsageError("--learn needs --image")
    if args.work_dir is not None:
        output_path(args.work_dir, "--work-dir", directory=True, make_parents=True)
    target = synth_flow.TARGETS[args.target]
    try:
        synth_flow.check_tools(target)   # before the (slow) design generation
    except synth_flow.ToolsMissing as exc:
        print_error(str(exc))
        return 2
    program = None
    config = parse_config(args.config) if args.config is not None else None
    if args.image is not None:
        compiled = load_source(args.image)
        if config is not None and compiled.config != config:
            raise UsageError(f"--config differs from the image's config ({compiled.config.hash()[:12]}); "
                             f"re-place the image with 'neurocore compile' first")
        program, config = compiled.program, compiled.config
    if config is None:
        config = parse_config(None)
    try:
        result = synth_flow.synthesise(config, target, clock_mhz=args.clock, program=program,
                                       learn=args.learn, work_dir=args.work_dir, hdl=args.hdl,
                                       seed=args.seed, zero_init=args.zero_init,
                                       progress=not args.quiet)
    except synth_flow.SynthError as exc:
        print_error(str(exc))
        return 1
    print_result(result, args.json, synth_report.format_report)
    return 0 if result["fits"] and result["timing_met"] else 1
