"""``neurocore compile``: re-place a compiled network onto a core config and write an image dir."""
from __future__ import annotations

from .cli_common import UsageError, add_command, add_config_argument, add_json_argument, print_json
from .cli_io import load_source, output_path, parse_config, writing

DESCRIPTION = """\
Re-place a compiled network onto a core configuration and write a new image
directory (memory images for $readmemh, program.npz, manifest.json). SOURCE is
an image directory or its program.npz. The network (layers, projections,
learning, encoding/decoding) is recovered from SOURCE and compiled again with
the placement rule of neurocore.sw.compiler; without --config the source's
config is kept (useful to re-emit or to turn a program.npz into a full image
directory). --chip RxC partitions it over a chip of R x C cores of --config
instead (greedy, in network order; neurocore.sw.partition) and writes a chip
image: one image directory per core, the route tables and the chip manifest.
--freeze prepares a trained (STDP) network for a core without
learning or adaptive threshold: same spikes with learning off. Networks are
first compiled from Python (conversion, STDP training) with compile_network
and write_image_dir."""

EXAMPLES = """\
neurocore compile build/digits-img -o build/digits-small --config '{"neurons": 128, "learning": false}'
neurocore compile build/digits-img/program.npz -o build/copy      # re-emit with the same config
neurocore compile build/img -o build/img --force --config cfg.json  # replace OUT atomically
neurocore compile build/stdp-img -o build/infer --freeze \\
    --config '{"learning": false, "adaptive_threshold": false}'   # inference-only core
neurocore compile build/mnist-mlp -o build/mnist-chip --chip 3x3 \\
    --config '{"neurons": 256, "axons": 1024, "synapses": 65536}'  # a chip of nine small cores"""


def register(subparsers) -> None:
    parser = add_command(subparsers, "compile", help="re-place a compiled network onto a core config",
                         description=DESCRIPTION, examples=EXAMPLES)
    parser.add_argument("source", metavar="SOURCE", help="image directory or program .npz")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="image directory to write")
    add_config_argument(parser, "target CoreConfig fields as a JSON object or JSON file "
                                "(default: the source's config)")
    parser.add_argument("--freeze", action="store_true",
                        help="for inference-only cores: make every synapse non-plastic and fold theta "
                             "into the thresholds (same behaviour with learning off)")
    parser.add_argument("--chip", type=chip_grid, default=None, metavar="RxC",
                        help="partition the network over a chip of R x C cores of --config (default: the "
                             "default core) and write a chip image (docs/core-spec.md, section 9)")
    parser.add_argument("--force", action="store_true", help="replace DIR if it exists (atomically)")
    add_json_argument(parser)
    parser.set_defaults(func=run)


def chip_grid(text: str) -> tuple[int, int]:
    """``RxC`` (e.g. ``3x3``) -> ``(R, C)``, each in 1..CHIP_SIDE_MAX."""
    import argparse

    from ..hw.widths import CHIP_SIDE_MAX

    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or not all(1 <= int(p) <= CHIP_SIDE_MAX for p in parts):
        raise argparse.ArgumentTypeError(f"expected RxC with R and C in 1..{CHIP_SIDE_MAX} (e.g. 2x2), got {text!r}")
    return int(parts[0]), int(parts[1])


def _run_chip(args, out, source, net) -> int:
    from ..hw.chip import ChipConfig
    from ..hw.config import CoreConfig
    from ..sw.chip_image import write_chip_image
    from ..sw.partition import compile_chip

    core = parse_config(args.config) if args.config is not None else CoreConfig()
    rows, cols = args.chip
    compiled = compile_chip(net, ChipConfig(rows=rows, cols=cols, core=core))
    with writing("-o", out):
        write_chip_image(compiled, out, overwrite=args.force)
    use = compiled.utilisation()
    if args.json:
        print_json({"source": str(args.source), "output": str(out), "chip": compiled.config.to_dict(),
                    "config_hash": compiled.config.hash(), "slices": compiled.slices,
                    "route_entries": compiled.remote_entries(), "cores": use})
        return 0
    print(f"wrote {out}: a {rows}x{cols} chip of cores {core.hash()[:12]} ({core.neurons} neurons, {core.axons} "
          f"axons, {core.synapses} synapse words each); {compiled.remote_entries()} route entries")
    for k, u in enumerate(use):
        layers = ", ".join(f"{name} {size}" for name, size in u["layers"].items())
        print(f"  core {k:>2} ({k // cols},{k % cols}): {u['neurons']:>5} neurons, {u['axons']:>5} axons, "
              f"{u['synapses']:>7} synapses, {u['route_entries']:>5} routes  [{layers}]")
    return 0


def run(args) -> int:
    from ..sw.compiler import compile_network, freeze_network
    from ..sw.image_dir import write_image_dir

    out = output_path(args.output, "-o", directory=True, make_parents=True)
    source = load_source(args.source)
    config = parse_config(args.config) if args.config is not None else source.config
    if out.exists() and not args.force:
        raise UsageError(f"{out} already exists (use --force to replace it)")
    net = source.to_network()
    if args.freeze:
        net = freeze_network(net)
    if args.chip is not None:
        return _run_chip(args, out, source, net)
    compiled = compile_network(net, config)
    with writing("-o", out):
        write_image_dir(compiled, out, overwrite=args.force)
    use = compiled.utilisation()
    if args.json:
        print_json({"source": str(args.source), "output": str(out), "config": config.to_dict(),
                    "config_hash": config.hash(), "utilisation": use,
                    "layers": {k: list(v) for k, v in compiled.layers.items()}})
        return 0
    print(f"wrote {out} for config {config.hash()[:12]}: "
          + ", ".join(f"{u['used']}/{u['capacity']} {name.replace('_', ' ')}" for name, u in use.items()))
    return 0
