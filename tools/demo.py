"""The demo behind ``neurocore demo``: the whole flow on the digits dataset, and a report folder.

With no arguments and no download (digits ships with scikit-learn):

1. **Train, convert, compile, evaluate** with
   :func:`neurocore.sw.convert.pipeline.convert_dataset`: a 64-128-10 ReLU MLP trained on
   the training split, converted to an integer (int8) SNN, compiled for the default core,
   evaluated on the bit-exact golden model over the whole test split at ``steps`` and at
   every ``T`` of the accuracy-vs-T curve; the compiled memory images are written to
   ``image/`` of the report.
2. **Check the image**: :func:`neurocore.sw.image_dir.load_image_dir` reads ``image/`` back
   (checksums, program validity) and :func:`neurocore.sw.evaluate.evaluate` runs it on the
   whole test split again: the accuracy must equal step 1's; this run's confusion matrix
   is plotted.
3. **Verilog**: :func:`neurocore.hw.verilog.write_verilog` writes the core with the program
   baked in as initial memory contents (``core.v``).
4. **Co-simulation** (skipped with ``cosim=False``): :func:`neurocore.sw.image_cosim.image_cosim`
   builds the core with Verilator (or Icarus), loads the program over the host interface
   and runs the first ``samples`` test samples on the RTL under cocotb, checking every
   output spike, the final state and every weight against the golden model; the RTL's
   cycle counters give the synaptic operations per clock.
5. **Plots** (:mod:`neurocore.tools.plots`): accuracy vs T, the spike raster and membrane
   traces of test sample 0, the confusion matrix.

The report folder (default ``neurocore-report``) holds ``report.json`` (the summary below
plus the details), ``summary.txt`` (the table :func:`format_summary` prints), ``image/``,
``core.v``, the four PNGs and, after co-simulation, ``cosim/`` (the build and simulation
logs). It is written atomically: everything goes into a temporary sibling directory that
is swapped into place at the end (:func:`neurocore.sw.output_dir.staged_output`). An
existing directory is replaced only if it is an earlier report of this demo (or empty),
or with ``force`` an earlier image directory; the current directory and its parents, a
link, a file and a directory of other files are never replaced.

:func:`run_demo` returns a JSON-friendly dict with at least ``ann_accuracy``,
``snn_accuracy``, ``cosim_samples``, ``cosim_mismatches`` and ``sop_per_cycle`` (the last
two ``None`` without co-simulation).
"""
from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

# a light module (no numpy): ``neurocore --help`` stays instant
from ..sw.output_dir import (EMPTY, IMAGE, REPORT, REPORT_JSON, REPORT_KIND, check_output_dir, output_files,
                             output_kind, staged_output)

__all__ = ["run_demo", "format_summary", "check_out_dir", "is_report_dir", "DEFAULT_OUT",
           "DEFAULT_SAMPLES", "DEFAULT_STEPS", "REPORT_KIND", "REPORT_JSON"]

DATASET = "digits"
ENCODER = "current"
DEFAULT_OUT = "neurocore-report"
DEFAULT_SAMPLES = 20
DEFAULT_STEPS = 16
SUMMARY_TXT = "summary.txt"
IMAGE_DIR = "image"
VERILOG = "core.v"
COSIM_DIR = "cosim"
COSIM_LOGS = ("build.log", "sim.log")


class _Refused(ValueError):
    """The output directory must not be replaced (reported as a one-line usage error)."""


# -- the report directory ------------------------------------------------------------------------
def is_report_dir(path) -> bool:
    """Whether ``path`` is a report of this demo (its ``report.json`` says so and lists every file)."""
    return output_kind(path) == REPORT


def _rule(force: bool) -> dict:
    """What the report folder may replace: its own earlier report, an empty directory, and
    with ``force`` an earlier image directory (the arguments of ``check_output_dir``)."""
    return {"replace": (REPORT, EMPTY, IMAGE) if force else (REPORT, EMPTY),
            "hint": "pass --force to replace it", "error": _Refused}


def check_out_dir(out, force: bool = False) -> Path:
    """The absolute report path, if it may be (re)written; else raise ``ValueError``.

    Allowed (:func:`neurocore.sw.output_dir.check_output_dir`): a path that does not exist,
    an empty directory, an earlier report of this demo, and with ``force`` an earlier
    image directory -- never the current directory or one of its parents, a link, a file
    or a directory of other files.
    """
    check_output_dir(out, **_rule(force))
    return Path(out).expanduser().absolute()


# -- progress ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _ticker(desc: str, enabled: bool, status=None):
    """A progress line on stderr for a step of unknown length: elapsed time, and ``status()``."""
    if not enabled:
        yield
        return
    from tqdm import tqdm

    bar = tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed}{postfix}", file=sys.stderr)
    stop = threading.Event()

    def tick():
        while not stop.wait(0.5):
            if status is not None:
                bar.set_postfix_str(status(), refresh=False)
            bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if status is not None:
            bar.set_postfix_str("done", refresh=False)
        bar.close()


def _cosim_status(build_dir: Path, simulator: str, samples: int, steps: int):
    """What :func:`image_cosim` is doing, guessed from the files it has written so far."""
    def status() -> str:
        if (build_dir / "sim.log").exists():
            return f"simulating {samples} samples x {steps} steps on the RTL"
        if (build_dir / "core.v").exists():
            return f"building the core with {simulator}"
        return "generating the Verilog"
    return status


# -- the demo ------------------------------------------------------------------------------------
def run_demo(out=DEFAULT_OUT, *, samples: int = DEFAULT_SAMPLES, steps: int = DEFAULT_STEPS,
             simulator: str = "verilator", cosim: bool = True, seed: int = 0, force: bool = False,
             progress: bool = True, curve_steps=None) -> dict:
    """Run the demo (see the module docstring) and write the report folder ``out``.

    ``curve_steps`` are the ``T`` of the accuracy-vs-T curve (default:
    ``convert_dataset``'s; ``steps`` is always included). Raises ``ValueError`` for an
    ``out`` it must not replace, an unknown or missing simulator, or more co-simulation
    samples than the test split holds.
    """
    t_start = time.perf_counter()
    from ..sim.cosim import SIMULATORS, available_simulators
    from ..sw.convert.pipeline import DEFAULT_CURVE

    steps, samples, seed = int(steps), int(samples), int(seed)
    if steps < 1 or samples < 1 or seed < 0:
        raise ValueError(f"steps and samples must be positive and seed non-negative, got steps={steps}, "
                         f"samples={samples}, seed={seed}")
    out = check_out_dir(out, force)
    if cosim:
        if simulator not in SIMULATORS:
            raise ValueError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
        found = available_simulators()
        if simulator not in found:
            raise ValueError(f"simulator {simulator} is not installed (found: {', '.join(found) or 'none'}); "
                             "pass --no-cosim to skip the RTL co-simulation")
    curve_steps = DEFAULT_CURVE if curve_steps is None else tuple(curve_steps)

    with staged_output(out, **_rule(force)) as tmp:
        report = _build_report(tmp, samples=samples, steps=steps, simulator=simulator, cosim=cosim,
                               seed=seed, progress=progress, curve_steps=curve_steps)
        report["timings"]["total_s"] = round(time.perf_counter() - t_start, 2)
        report["total_s"] = report["timings"]["total_s"]
        report["report"] = str(out)
        report["files"] = sorted(output_files(tmp) + [REPORT_JSON, SUMMARY_TXT])
        (tmp / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
        (tmp / SUMMARY_TXT).write_text(format_summary(report) + "\n")
    return report


def _build_report(tmp: Path, *, samples, steps, simulator, cosim, seed, progress, curve_steps) -> dict:
    from ..hw.verilog import write_verilog
    from ..sw.image_cosim import image_cosim
    from ..sw.convert.pipeline import convert_dataset
    from ..sw.datasets import load_dataset
    from ..sw.evaluate import encode_samples, evaluate
    from ..sw.image_dir import load_image_dir
    from . import plots

    timings: dict[str, float] = {}

    # 1. train, convert, compile, evaluate on the golden model; write the memory images
    t0 = time.perf_counter()
    data = load_dataset(DATASET)
    timings["load_s"] = round(time.perf_counter() - t0, 2)
    if cosim and samples > len(data.x_test):
        raise ValueError(f"--samples {samples}: the {DATASET} test split has only {len(data.x_test)} samples")
    t0 = time.perf_counter()
    conv = convert_dataset(DATASET, steps=steps, seed=seed, encoder=ENCODER, curve_steps=curve_steps,
                           out=tmp / IMAGE_DIR, progress=progress)
    elapsed = time.perf_counter() - t0
    t = conv["timings"]
    timings["train_s"] = round(t["train_s"], 2)
    timings["evaluate_s"] = round(t["evaluate_s"], 2)
    # the rest of convert_dataset: converting, compiling, writing the image
    timings["convert_compile_s"] = round(elapsed - t["load_s"] - t["train_s"] - t["evaluate_s"], 2)

    # 2. read the image back and evaluate it again (and keep its confusion matrix)
    t0 = time.perf_counter()
    compiled = load_image_dir(tmp / IMAGE_DIR)
    check = evaluate(compiled, data.x_test, data.y_test, steps=steps, encoder=ENCODER, seed=seed,
                     progress=progress)
    if check["accuracy"] != conv["snn_accuracy"]:
        raise RuntimeError(f"the written image scores {check['accuracy']} on the golden model, the "
                           f"converted network {conv['snn_accuracy']}")
    timings["image_check_s"] = round(time.perf_counter() - t0, 2)

    # 3. the Verilog with the program baked in
    t0 = time.perf_counter()
    with _ticker("verilog", progress, lambda: f"core with the program baked in -> {VERILOG}"):
        write_verilog(compiled.config, tmp / VERILOG, program=compiled.program)
    timings["verilog_s"] = round(time.perf_counter() - t0, 2)

    # 4. the RTL in co-simulation on the first test samples
    summary = None
    if cosim:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="neurocore-demo-cosim-") as work:
            build_dir = Path(work) / f"{simulator}-image"
            with _ticker(f"cosim ({simulator})", progress,
                         _cosim_status(build_dir, simulator, samples, steps)):
                summary = image_cosim(compiled, data.x_test[:samples], data.y_test[:samples], steps=steps,
                                      encoder=ENCODER, seed=seed, simulator=simulator, work_dir=work)
            logs = tmp / COSIM_DIR
            logs.mkdir()
            for name in COSIM_LOGS:
                if (build_dir / name).is_file():
                    shutil.copyfile(build_dir / name, logs / name)
        summary.pop("work_dir", None)
        timings["cosim_build_s"] = summary["build_seconds"]
        timings["cosim_s"] = round(time.perf_counter() - t0, 2)

    # 5. plots
    t0 = time.perf_counter()
    names = plots.PLOT_FILES
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(names), desc="plots", unit="plot", file=sys.stderr)
    try:
        files = {"accuracy": plots.accuracy_curve(conv, tmp / names["accuracy"])}
        if bar is not None:
            bar.update(1)
        inputs = encode_samples(data.x_test[:1], steps, ENCODER, seed)[0]
        files.update(plots.sample_plots(compiled, inputs, tmp, label=int(data.y_test[0]),
                                        name="test sample 0"))
        if bar is not None:
            bar.update(2)
        files["confusion"] = plots.confusion_matrix(
            check["confusion_matrix"], tmp / names["confusion"],
            title=f"{DATASET} test split, golden model, T = {steps}: "
                  f"{100 * check['accuracy']:.2f} % of {check['n_samples']} correct")
        if bar is not None:
            bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    timings["plots_s"] = round(time.perf_counter() - t0, 2)

    sizes = [conv["n_features"]] + list(conv["ann"]["hidden"]) + [conv["n_classes"]]
    return {
        "kind": REPORT_KIND,
        "demo": f"{DATASET}: ANN -> int{conv['weight_bits']} SNN -> core, golden model and RTL",
        "dataset": DATASET,
        "n_train": conv["n_train"],
        "n_test": conv["n_test"],
        "steps": steps,
        "seed": seed,
        "encoder": ENCODER,
        "weight_bits": conv["weight_bits"],
        "ann_accuracy": conv["ann_accuracy"],
        "snn_accuracy": conv["snn_accuracy"],
        "rate_limit_accuracy": conv["rate_limit_accuracy"],
        "cosim_samples": summary["samples"] if summary else 0,
        "cosim_mismatches": summary["mismatches"] if summary else None,
        "cosim_agreement": (summary["mismatches"] == 0 and summary["predictions_equal"]) if summary else None,
        "sop_per_cycle": summary["sop_per_cycle"] if summary else None,
        "simulator": simulator if summary else None,
        "network": {
            "sizes": sizes,
            "neurons": conv["neurons"],
            "synapses": conv["synapses"],
            "mean_sops_per_sample": conv["mean_sops"],
            "mean_output_spikes": conv["mean_output_spikes"],
            "config": conv["config"],
            "config_hash": conv["config_hash"],
            "utilisation": compiled.utilisation(),
        },
        "ann": conv["ann"],
        "curve": conv["curve"],
        "confusion_matrix": check["confusion_matrix"],
        "cosim": summary,
        "plots": {k: str(Path(v).relative_to(tmp)) for k, v in files.items()},
        "timings": timings,
    }


# -- the summary ---------------------------------------------------------------------------------
def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {seconds % 60:04.1f} s"


def _shown(path: str) -> str:
    """``path`` relative to the current directory if it is inside it, else as it is."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def format_summary(report: dict) -> str:
    """The summary table of a :func:`run_demo` report."""
    net, tm, cs = report["network"], report["timings"], report["cosim"]
    n_test, steps = report["n_test"], report["steps"]
    rows = [
        ("ANN accuracy", f"{100 * report['ann_accuracy']:.2f} %",
         f"float MLP {'-'.join(map(str, net['sizes']))}, {n_test} test samples"),
        ("SNN accuracy", f"{100 * report['snn_accuracy']:.2f} %",
         f"int{report['weight_bits']} SNN on the golden model, T = {steps}, {n_test} test samples"),
    ]
    if cs is None:
        rows += [("co-sim agreement", "skipped", "--no-cosim"),
                 ("synaptic ops / clock", "-", "needs the RTL co-simulation")]
    else:
        if report["cosim_mismatches"] == 0:
            agreement = f"{cs['samples']}/{cs['samples']} bit-exact"
        else:
            agreement = f"{report['cosim_mismatches']} MISMATCHES"
        predictions = "same" if cs["predictions_equal"] else "DIFFERENT"
        rows += [
            ("co-sim agreement", agreement,
             f"RTL ({cs['simulator']}) vs golden model: output spikes, final state, weights; "
             f"{predictions} predictions ({100 * cs['rtl_accuracy']:.1f} % correct)"),
            ("synaptic ops / clock", f"{report['sop_per_cycle']:.3f}",
             f"{cs['sops']} SOPs in {cs['cycles']} cycles ({cs['cycles_per_sample']:.0f} cycles/sample)"),
        ]
    rows.append(("time taken", _duration(tm["total_s"]), "wall clock, stages below"))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [f"neurocore demo: {report['demo']} (core config {net['config_hash'][:12]}: "
             f"{net['neurons']} neurons, {net['synapses']} synapses)", ""]
    lines += [f"  {name:<{width}}  {value:>{value_width}}  {note}" for name, value, note in rows]
    stages = [
        ("load the data", tm["load_s"]),
        ("train the ANN", tm["train_s"]),
        ("convert, compile, write the image", tm["convert_compile_s"]),
        (f"golden model: {n_test} samples x {len(report['curve']) or 1} T values", tm["evaluate_s"]),
        ("re-load and re-check the image", tm["image_check_s"]),
        ("Verilog with the program", tm["verilog_s"]),
    ]
    if cs is not None:
        stages += [(f"RTL: Verilog + {cs['simulator']} build", tm["cosim_build_s"]),
                   (f"RTL: load, run {cs['samples']} samples, compare", tm["cosim_s"] - tm["cosim_build_s"])]
    stages.append(("plots", tm["plots_s"]))
    sw = max(len(s[0]) for s in stages)
    lines += ["", f"  {'stage':<{sw + 2}}  {'time':>9}"]
    lines += [f"    {name:<{sw}}  {_duration(seconds):>9}" for name, seconds in stages]
    lines += ["", f"report: {_shown(report['report'])}/ ({IMAGE_DIR}/ memory images, {VERILOG}, "
                  f"{len(report['plots'])} plots, {REPORT_JSON})"]
    return "\n".join(lines)
