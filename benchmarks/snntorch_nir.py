"""Train a leaky snnTorch network, export it with snnTorch's own NIR exporter, run it on neurocore.

    python benchmarks/snntorch_nir.py [--out FILE.nir] [--steps 8,16,32,64] [--json]

Run it with the neurocore virtualenv's python, with the snntorch extra installed
(``pip install 'neurocore[snntorch]'``: snntorch 1.0.0, whose exporter needs nirtorch). It

1. loads ``digits`` with neurocore's own loader (``neurocore.sw.datasets.load_dataset``:
   the same train/test split as ``neurocore convert``);
2. trains ``Linear(64, H) - Leaky - Linear(H, 10) - Leaky`` with snnTorch (``beta`` fixed,
   one per neuron, threshold 1, snnTorch's default reset by subtraction, fast-sigmoid
   surrogate gradient, Adam, ``ce_rate_loss``) on Bernoulli rate-coded inputs of
   ``--train-steps`` steps; seeded, one CPU thread;
3. exports it with ``snntorch.export_nir.export_to_nir`` (per-neuron ``beta`` and
   ``threshold``: snnTorch 1.0.0 cannot infer the NIR types of scalar ones) and writes the
   ``.nir`` file (``nir.write``);
4. scores snnTorch's float network on the test split with the spike trains neurocore's
   evaluation uses (``neurocore.sw.evaluate.encode_samples``, the same ``--encoder`` and
   ``--seed``) and the core's decoding (most output spikes, ties to the earliest first
   spike, then the lowest class), at every ``T`` of ``--steps``;
5. runs ``neurocore convert --nir FILE --dataset digits`` twice, ratio only (the default:
   the LIF leak is dropped and the network is re-normalised as a rate network) and with
   ``--keep-dynamics --reset subtract`` (the network's own leak, threshold and reset),
   and prints the three accuracies at every ``T``.

Example::

    .venv/bin/python benchmarks/snntorch_nir.py --out tests/data/snntorch_digits.nir

``T`` counts core steps from the first input step: the core's output layer integrates
``T - 1`` of them (one step of latency per population), snnTorch's all ``T``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _log(message: str) -> None:
    print(f"[snntorch_nir] {message}", file=sys.stderr, flush=True)


def _steps(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(v) for v in text.split(",") if v}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return values


def build_network(n_in: int, hidden: int, n_out: int, beta: float):
    """``Linear - Leaky - Linear - Leaky`` with fixed per-neuron ``beta`` and threshold 1."""
    import snntorch as snn
    import torch
    from snntorch import surrogate

    def leaky(n: int, output: bool = False):
        return snn.Leaky(beta=torch.full((n,), float(beta)), threshold=torch.ones(n), init_hidden=True,
                         output=output, reset_mechanism="subtract", spike_grad=surrogate.fast_sigmoid(slope=25))

    return torch.nn.Sequential(torch.nn.Linear(n_in, hidden), leaky(hidden),
                               torch.nn.Linear(hidden, n_out), leaky(n_out, output=True))


def run_network(net, spikes):
    """Output spikes ``[T, B, n_out]`` of ``net`` for input spikes ``[T, B, n_in]`` (state reset first)."""
    import torch
    from snntorch import utils

    utils.reset(net)
    out = []
    for t in range(spikes.shape[0]):
        spk, _ = net(spikes[t])
        out.append(spk)
    return torch.stack(out)


def train(data, *, hidden: int, beta: float, steps: int, epochs: int, batch: int, lr: float, seed: int):
    import torch
    from snntorch import functional as SF

    torch.manual_seed(seed)
    net = build_network(data.x_train.shape[1], hidden, data.n_classes, beta)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = SF.ce_rate_loss()
    x = torch.tensor(data.x_train, dtype=torch.float32)
    y = torch.tensor(data.y_train, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            spikes = (torch.rand((steps, len(idx), x.shape[1]), generator=generator) < x[idx]).float()
            loss = loss_fn(run_network(net, spikes), y[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        if epoch % 10 == 9 or epoch == epochs - 1:
            _log(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f}")
    return net


def decode(counts: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The core's count decoding: most spikes, then the earliest first spike, then the lowest class."""
    best = counts.max(axis=1, keepdims=True)
    key = np.where(counts == best, first, np.iinfo(np.int64).max)
    return np.argmin(key, axis=1)


def snntorch_accuracy(net, data, steps: int, encoder: str, seed: int) -> float:
    """snnTorch's float accuracy on the test split with neurocore's spike trains of ``steps`` steps."""
    import torch

    from neurocore.sw.evaluate import encode_samples

    spikes = encode_samples(np.asarray(data.x_test, np.float64), steps, encoder, seed)      # [B, T, F]
    with torch.no_grad():
        out = run_network(net, torch.tensor(spikes.transpose(1, 0, 2), dtype=torch.float32)).numpy()
    out = out.transpose(1, 0, 2) > 0                                                        # [B, T, C]
    counts = out.sum(axis=1)
    first = np.where(out.any(axis=1), out.argmax(axis=1), steps)
    return float((decode(counts, first) == data.y_test).mean())


def export(net, path: Path, n_in: int) -> Path:
    import nir
    import torch
    from snntorch.export_nir import export_to_nir

    graph = export_to_nir(net, torch.zeros(1, n_in), ignore_dims=[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(path), graph)
    return path


def neurocore_convert(path: Path, steps: tuple[int, ...], encoder: str, seed: int, extra: list[str]) -> dict:
    """``neurocore convert --nir path --dataset digits ... --json`` in a subprocess; its JSON report."""
    command = [sys.executable, "-m", "neurocore.tools.cli", "convert", "--nir", str(path), "--dataset", "digits",
               "--steps", str(steps[-1]), "--curve", ",".join(map(str, steps)), "--encoder", encoder,
               "--seed", str(seed), "--json", *extra]
    _log("$ neurocore " + " ".join(command[3:]))
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"neurocore convert failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  .venv/bin/python benchmarks/snntorch_nir.py --out tests/data/snntorch_digits.nir")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="where to write the exported .nir file (default: a temporary file)")
    parser.add_argument("--hidden", type=int, default=32, help="hidden Leaky neurons (default: %(default)s)")
    parser.add_argument("--beta", type=float, default=0.9, help="membrane decay of every Leaky (default: %(default)s)")
    parser.add_argument("--train-steps", type=int, default=16, help="time steps per training sample (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate (default: %(default)s)")
    parser.add_argument("--steps", type=_steps, default=(8, 16, 32, 64), metavar="T[,T...]",
                        help="evaluation time steps (default: 8,16,32,64)")
    parser.add_argument("--encoder", choices=("rate", "current"), default="rate",
                        help="input spike code of the evaluation (default: %(default)s, as trained)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training and the encoder (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not 0 < args.beta < 1:
        parser.error(f"--beta must be in (0, 1), got {args.beta}")

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import snntorch
        import torch
    except ImportError as exc:
        parser.error(f"needs snntorch and torch: pip install 'neurocore[snntorch]' ({exc})")
    torch.set_num_threads(1)
    from neurocore.sw.datasets import load_dataset

    data = load_dataset("digits")
    _log(f"snntorch {snntorch.__version__}, torch {torch.__version__}: training 64-{args.hidden}-10 Leaky "
         f"(beta {args.beta}) for {args.epochs} epochs of {args.train_steps} steps")
    net = train(data, hidden=args.hidden, beta=args.beta, steps=args.train_steps, epochs=args.epochs,
                batch=args.batch, lr=args.lr, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = export(net, args.out if args.out is not None else Path(tmp) / "snntorch_digits.nir",
                      data.x_train.shape[1])
        _log(f"exported with snntorch.export_nir.export_to_nir: {path} ({path.stat().st_size} bytes)")
        float_acc = {t: snntorch_accuracy(net, data, t, args.encoder, args.seed) for t in args.steps}
        ratio = neurocore_convert(path, args.steps, args.encoder, args.seed, [])
        dynamic = neurocore_convert(path, args.steps, args.encoder, args.seed, ["--keep-dynamics", "--reset", "subtract"])
    ratio_acc = {p["steps"]: p["snn_accuracy"] for p in ratio["curve"]}
    dynamic_acc = {p["steps"]: p["snn_accuracy"] for p in dynamic["curve"]}
    rows = [{"steps": t, "snntorch": float_acc[t], "ratio_only": ratio_acc[t], "keep_dynamics": dynamic_acc[t]}
            for t in args.steps]
    result = {"snntorch": snntorch.__version__, "torch": torch.__version__, "hidden": args.hidden,
              "beta": args.beta, "train_steps": args.train_steps, "epochs": args.epochs, "encoder": args.encoder,
              "seed": args.seed, "nir": str(args.out) if args.out is not None else None,
              "float_graph_accuracy": ratio["ann_accuracy"], "dynamics": dynamic["dynamics"], "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"snnTorch {result['snntorch']} 64-{args.hidden}-10 Leaky (beta {args.beta}, subtract reset), "
          f"trained {args.epochs} epochs x {args.train_steps} steps; digits test split, {args.encoder} code, seed "
          f"{args.seed}")
    for d in dynamic["dynamics"]:
        e = d["entries"][0]
        print(f"  {d['layer']:<8} tau {e['tau']:.4g} s (beta {e['decay']:.4f}) -> leak_shift {e['leak_shift']} "
              f"(decay {e['effective_decay']:.4f}, {100 * e['decay_error']:+.2f} %), threshold {d['threshold']}")
    print(f"float graph (ReLU view of the NIR file): {100 * ratio['ann_accuracy']:.2f} %")
    print("     T   snnTorch float   ratio only   --keep-dynamics")
    for row in rows:
        print(f"  {row['steps']:>4}   {100 * row['snntorch']:12.2f} %  {100 * row['ratio_only']:8.2f} %  "
              f"{100 * row['keep_dynamics']:12.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
