"""``neurocore inspect``: summarise a compiled image directory without running it."""
from __future__ import annotations

from .cli_common import UsageError, add_command, add_image_arguments, add_json_argument, print_result
from .cli_io import parse_config

DESCRIPTION = """\
Verify an image directory (every checksum, the config hash, the program's
validity, .hex files against program.npz) and summarise it: core config, layers
(neuron and axon ranges, size, WTA group or k/size of its WTA blocks, output), projections, memory words
per region, utilisation against capacity, learning, encoding and decoding.
A corrupt or inconsistent image is an error (exit status 2)."""

EXAMPLES = """\
neurocore inspect build/digits-img
neurocore inspect build/digits-img --json
neurocore inspect build/digits-img --config core.json   # check it matches this core"""



def register(subparsers) -> None:
    parser = add_command(subparsers, "inspect", help="summarise a compiled image directory",
                         description=DESCRIPTION, examples=EXAMPLES)
    add_image_arguments(parser)
    add_json_argument(parser, "the summary")
    parser.set_defaults(func=run)


def inspect_image(path, config=None) -> dict:
    """The summary ``neurocore inspect`` prints (the image is fully verified first; with
    ``config``, it must have been compiled for that CoreConfig)."""
    from ..hw.controller import host_regions
    from ..sw.image_dir import load_image_dir, read_manifest

    compiled = load_image_dir(path, config=config)
    manifest = read_manifest(path)
    cfg = compiled.config
    summary = compiled.summary()
    depths = {region.name: depth for region, (_, depth, _) in host_regions(cfg).items()}
    memories = {}
    for name, entry in manifest["files"].items():
        if "region" in entry:
            depth = depths[entry["region"]]
            memories[entry["region"]] = {"file": name, "words": entry["words"], "depth": depth,
                                         "word_bits": entry["word_bits"],
                                         "percent": round(100.0 * entry["words"] / depth, 2)}
    return {
        "image": str(path),
        "checksums_ok": True,
        "config": cfg.to_dict(),
        "config_hash": cfg.hash(),
        "created_by": manifest.get("created_by"),
        "inputs": compiled.input_axons,
        "layers": summary["layers"],
        "projections": summary["projections"],
        "outputs": {"layers": compiled.output_layers, "neurons": compiled.n_outputs},
        "memories": memories,
        "utilisation": compiled.utilisation(),
        "learning": {"core": cfg.learning, "plastic_synapses": summary["plastic_synapses"],
                     "on": bool(cfg.learning and summary["plastic_synapses"]),
                     "params": manifest["learning"]["params"]},
        "encoding": compiled.encoding,
        "decoding": compiled.decoding,
        "files": {name: entry["sha256"] for name, entry in manifest["files"].items()},
    }


def format_inspect(info: dict) -> str:
    cfg = info["config"]
    features = "+".join(f for f in ("learning", "wta", "adaptive_threshold") if cfg[f]) or "none"
    tables = [f"{cfg[name]} {what}" for name, what in (("segments", "segment-table entries"),
                                                     ("wta_blocks", "WTA block ranges"),
                                                     ("param_classes", "parameter classes")) if cfg.get(name)]
    if not cfg.get("rows", True):
        tables.append("no rows (segment lists only)")
    if tables:
        features += "; " + ", ".join(tables)
    lines = [
        f"image       : {info['image']} (checksums OK, {len(info['files'])} files)",
        f"core config : {cfg['neurons']} neurons, {cfg['axons']} axons, {cfg['synapses']} synapses; "
        f"W={cfg['weight_bits']} V={cfg['membrane_bits']} C={cfg['accumulator_bits']} "
        f"X={cfg['trace_bits']} bits; {cfg['wta_groups']} WTA groups; {features} "
        f"(hash {info['config_hash'][:12]})",
        f"inputs      : {info['inputs']} host axons (0..{info['inputs'] - 1})",
        "layers      :",
        f"  {'name':<16} {'neurons':>13} {'size':>6} {'axons':>13} {'WTA':>8} {'out':>4} "
        f"{'syn in':>8} {'plastic':>8}",
    ]
    for layer in info["layers"]:
        neurons = f"{layer['neurons'][0]}..{layer['neurons'][1]}"
        axons = "-" if layer["axons"] is None else f"{layer['axons'][0]}..{layer['axons'][1]}"
        block = layer.get("block_wta")            # [size, k]: blocks of size keep k (structural WTA)
        wta = f"{block[1]}/{block[0]}" if block else (layer["wta_group"] or "-")
        lines.append(f"  {layer['name']:<16} {neurons:>13} {layer['size']:>6} {axons:>13} "
                     f"{wta:>8} {'yes' if layer['output'] else '-':>4} "
                     f"{layer['synapses_in']:>8} {layer['plastic_synapses_in']:>8}")
    lines.append("projections :")
    for pr in info["projections"]:
        lines.append(f"  {pr['source']} -> {pr['target']}: {pr['synapses']} synapses"
                     + (" (plastic)" if pr["plastic"] else ""))
    lines.append("memories    :")
    for region, m in info["memories"].items():
        lines.append(f"  {region:<9} {m['file']:<13} {m['words']:>8} / {m['depth']:<8} words of "
                     f"{m['word_bits']} bits ({m['percent']}%)")
    lines.append("utilisation : " + ", ".join(
        f"{name.replace('_', ' ')} {u['used']}/{u['capacity']} ({u['percent']}%)"
        for name, u in info["utilisation"].items()))
    ln = info["learning"]
    lines.append(f"learning    : {'on' if ln['on'] else 'off'} ({ln['plastic_synapses']} plastic synapses; "
                 f"core {'with' if ln['core'] else 'without'} STDP engine)")
    lines.append(f"encoding    : {info['encoding'] or '-'}")
    dec = dict(info["decoding"])
    if "labels" in dec:
        dec["labels"] = f"<{len(dec['labels'])} labels>"
    lines.append(f"decoding    : {dec}")
    return "\n".join(lines)


def inspect_chip(path) -> dict:
    """The summary of a chip image (verified first: every checksum, core image and route)."""
    import json
    from pathlib import Path

    from ..sw.chip_image import load_chip_image
    from ..sw.image_dir import MANIFEST

    compiled = load_chip_image(path)
    manifest = json.loads((Path(path) / MANIFEST).read_text())
    cfg = compiled.config
    return {
        "image": str(path), "kind": "chip", "checksums_ok": True,
        "config": cfg.to_dict(), "config_hash": cfg.hash(),
        "inputs": compiled.input_axons, "outputs": compiled.n_outputs,
        "slices": {name: [list(s) for s in parts] for name, parts in compiled.slices.items()},
        "route_entries": compiled.remote_entries(), "cores": compiled.utilisation(),
        "encoding": compiled.encoding, "decoding": compiled.decoding,
        "files": {name: entry["sha256"] for name, entry in manifest["files"].items()},
    }


def format_chip(info: dict) -> str:
    cfg, core = info["config"], info["config"]["core"]
    cols = cfg["cols"]
    lines = [f"image       : {info['image']} (chip image, checksums OK, {len(info['files'])} files)",
             f"chip        : {cfg['rows']}x{cols} cores of {core['neurons']} neurons, {core['axons']} axons, "
             f"{core['synapses']} synapses; {cfg['routes']} route entries and {cfg['link_fifo']}-packet link "
             f"FIFOs each (hash {info['config_hash'][:12]})",
             f"inputs      : {info['inputs']} network inputs; outputs: {info['outputs']}",
             f"routes      : {info['route_entries']} route entries (packets of a step in which every neuron fires)",
             "cores       :"]
    for k, u in enumerate(info["cores"]):
        layers = ", ".join(f"{name} {size}" for name, size in u["layers"].items())
        lines.append(f"  core {k:>2} ({k // cols},{k % cols}): {u['neurons']:>5} neurons, {u['axons']:>5} axons, "
                     f"{u['synapses']:>7} synapses, {u['route_entries']:>5} routes  [{layers}]")
    lines.append("slices      : " + "; ".join(
        f"{name} " + ", ".join(f"{lo}..{hi - 1} on core {k}" for k, lo, hi in parts)
        for name, parts in info["slices"].items()))
    lines.append(f"encoding    : {info['encoding'] or '-'}")
    lines.append(f"decoding    : {info['decoding']}")
    return "\n".join(lines)


def run(args) -> int:
    from ..sw.chip_image import is_chip_image

    if is_chip_image(args.image):
        if args.config is not None:
            raise UsageError("--config: a chip image carries its own chip config; inspect one of its cores "
                             "to check a core config")
        print_result(inspect_chip(args.image), args.json, format_chip)
        return 0
    info = inspect_image(args.image, parse_config(args.config) if args.config is not None else None)
    print_result(info, args.json, format_inspect)
    return 0
