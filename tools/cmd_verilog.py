"""``neurocore verilog``: write the core as Verilog."""
from __future__ import annotations

import json
from pathlib import Path

from .cli_common import UsageError, add_command

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


def parse_config(text: str | None):
    """A CoreConfig from inline JSON or a JSON file path (None: the default config)."""
    from ..hw.config import CoreConfig

    if text is None:
        return CoreConfig()
    source = text
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise UsageError(f"--config: no such file: {text} (give a JSON object or a JSON file)")
        source = path.read_text()
    try:
        fields = json.loads(source)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--config: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(fields, dict):
        raise UsageError("--config: expected a JSON object of CoreConfig fields")
    return CoreConfig.from_dict(fields)


def run(args) -> int:
    from ..hw.verilog import write_verilog

    config = parse_config(args.config)
    path = write_verilog(config, args.output)
    print(f"wrote {path} ({path.stat().st_size} bytes) for config {config.hash()[:12]}: "
          f"{config.neurons} neurons, {config.axons} axons, {config.synapses} synapses")
    return 0
