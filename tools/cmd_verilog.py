"""``neurocore verilog``: write the core as Verilog."""
from __future__ import annotations

from .cli_common import add_command
from .cli_io import output_path, parse_config, writing

DESCRIPTION = """\
Write the neuromorphic core as Verilog (top module `core`) for a core
configuration. Ports (see docs/hw.md): clk, rst, cmd__payload/valid/ready,
rsp__payload/valid/ready, spike_in__payload/valid/ready,
spike_out__payload/valid/ready, busy, error."""

EXAMPLES = """\
neurocore verilog -o build/core.v                                # default CoreConfig
neurocore verilog -o core.v --config '{"neurons": 64, "learning": false}'
neurocore verilog -o core.v --config config.json"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "verilog", help="write the core as Verilog",
                         description=DESCRIPTION, examples=EXAMPLES)
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="Verilog file to write")
    parser.add_argument("--config", metavar="JSON_OR_FILE", default=None,
                        help="CoreConfig fields as a JSON object or a JSON file (default: the defaults)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..hw.verilog import write_verilog

    output = output_path(args.output, "-o", make_parents=True)
    config = parse_config(args.config)
    with writing("-o", output):
        path = write_verilog(config, output)
    print(f"wrote {path} ({path.stat().st_size} bytes) for config {config.hash()[:12]}: "
          f"{config.neurons} neurons, {config.axons} axons, {config.synapses} synapses")
    return 0
