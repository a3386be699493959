"""The I/O harness for synthesis: a four-pin top level that keeps every port of the core live.

The core has hundreds of port bits and the devices far fewer pins. :func:`harness_verilog`
wraps it (:func:`core_ports` reads its ports from the RTLIL or Verilog text) in the top
level :data:`HARNESS_TOP`: every input but clk and rst is driven by one shift register fed
from the pin ``sin``, rst passes two synchronising flip-flops, and the outputs are
XOR-reduced four at a time, each level registered, down to the pin ``sout``. It costs one
flip-flop per core input bit plus about one logic cell per three output bits, and nothing
of the core can be optimised away.
"""
from __future__ import annotations

import re

from ..hw.verilog import TOPLEVEL as CORE_TOP   # the core's module, instantiated by the harness

__all__ = ["HARNESS_TOP", "CORE_TOP", "core_ports", "harness_verilog"]

HARNESS_TOP = "neurocore_synth_top"   # the harness's module, the top level Yosys synthesises


_RTLIL_WIRE = re.compile(r"^\s*wire\s+(?:width\s+(\d+)\s+)?(?:upto\s+)?(?:signed\s+)?"
                         r"(input|output|inout)\s+\d+\s+\\(\S+)\s*$")
_VERILOG_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?"
                           r"(?:\[(\d+):(\d+)\]\s*)?([A-Za-z_][\w$]*)\s*;")


def _module_body(text: str, module: str, fmt: str) -> list[str]:
    head = re.compile(rf"^module \\{re.escape(module)}\s*$" if fmt == "rtlil"
                      else rf"^module {re.escape(module)}\s*\(")
    lines, inside = [], False
    for line in text.splitlines():
        if not inside:
            inside = bool(head.match(line))
        elif line.startswith("end"):  # "end" (RTLIL) or "endmodule"
            if fmt == "rtlil" and line.strip() != "end":
                continue
            break
        else:
            lines.append(line)
    if not inside:
        raise ValueError(f"module {module} not found")
    return lines


def core_ports(text: str, fmt: str = "rtlil", module: str = CORE_TOP) -> list[tuple[str, str, int]]:
    """The ports ``(direction, name, width)`` of ``module`` in RTLIL or Verilog text."""
    ports = []
    for line in _module_body(text, module, fmt):
        if fmt == "rtlil":
            match = _RTLIL_WIRE.match(line)
            if match:
                ports.append((match[2], match[3], int(match[1] or 1)))
        else:
            match = _VERILOG_PORT.match(line)
            if match:
                width = abs(int(match[2]) - int(match[3])) + 1 if match[2] is not None else 1
                ports.append((match[1], match[4], width))
    if not ports:
        raise ValueError(f"module {module} has no ports")
    return ports


def harness_verilog(ports, *, core: str = CORE_TOP, top: str = HARNESS_TOP) -> tuple[str, dict]:
    """A top level with four pins (clk, rst, sin, sout) around ``core``.

    Every core input except clk and rst comes from one shift register fed by ``sin``; rst
    passes two synchronising flip-flops; the core outputs are XOR-reduced four at a time, each level registered, down to ``sout``.
    Returns the Verilog and the harness's cost (``input_bits``, ``output_bits``,
    ``flip_flops``, ``xor_luts``).
    """
    inputs = [(name, width) for direction, name, width in ports
              if direction == "input" and name not in ("clk", "rst")]
    outputs = [(name, width) for direction, name, width in ports if direction == "output"]
    n_in = max(1, sum(width for _, width in inputs))
    n_out = sum(width for _, width in outputs)
    lines = [f"// I/O harness for synthesis: {n_in} input bits shifted in, "
             f"{n_out} output bits XOR-reduced out.",
             f"module {top}(input wire clk, input wire rst, input wire sin, output wire sout);",
             f"  reg [{n_in - 1}:0] in_sr = 0;",
             "  always @(posedge clk) in_sr <= " + (f"{{in_sr[{n_in - 2}:0], sin}};" if n_in > 1 else "sin;")]
    connections, low = [], 0
    for name, width in inputs:
        connections.append(f"    .{name}(in_sr[{low + width - 1}:{low}])")
        low += width
    lines.append(f"  wire [{max(n_out, 1) - 1}:0] out_bits;")
    low = 0
    for name, width in outputs:
        connections.append(f"    .{name}(out_bits[{low + width - 1}:{low}])")
        low += width
    # the reset pin is synchronised (two flip-flops), as any board design would
    lines += ["  reg [1:0] rst_sync = 2'b11;",
              "  always @(posedge clk) rst_sync <= {rst_sync[0], rst};"]
    connections = ["    .clk(clk)", "    .rst(rst_sync[1])"] + connections
    lines.append(f"  {core} dut (\n" + ",\n".join(connections) + "\n  );")
    flip_flops, luts = n_in + 2, 0
    level, width, prev = 0, n_out, "out_bits"
    if n_out == 0:
        lines.append("  assign out_bits = 1'b0;")
        width = 1
    while True:
        groups = -(-width // 4)
        name = f"x{level}"
        lines.append(f"  reg [{groups - 1}:0] {name} = 0;")
        lines.append("  always @(posedge clk) begin")
        for g in range(groups):
            hi = min(width, 4 * g + 4) - 1
            lines.append(f"    {name}[{g}] <= ^{prev}[{hi}:{4 * g}];")
        lines.append("  end")
        flip_flops += groups
        luts += groups
        prev, width, level = name, groups, level + 1
        if groups == 1:
            break
    lines.append(f"  assign sout = {prev}[0];")
    lines.append("endmodule")
    return "\n".join(lines) + "\n", {"input_bits": n_in, "output_bits": n_out,
                                     "flip_flops": flip_flops, "xor_luts": luts}
