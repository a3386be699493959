"""Does STDP help? The STDP-trained spiking CNN against the same network with random kernels.

    python benchmarks/stdp_cnn_baselines.py [--dataset mnist-5k] [--seeds 0,1,2] [--epochs 2] [--json]

For every seed it runs ``neurocore.sw.stdp_cnn.train_stdp_cnn`` (the network and training
of ``neurocore train-stdp --arch cnn``, default parameters) and reports the test accuracy
on the core of

* the initial kernels (``history[0]``: ``normal(0.8, 0.05) * w_max``, nearly flat),
* the kernels after each epoch of STDP,
* the same network with *uniform random* kernels (integers in ``0..w_max``, drawn from
  the seed), at the conv threshold of the trained network and at the two thresholds of
  ``--random-thresholds`` (in units of ``w_max``); the readout is fitted the same way.

The random-kernel thresholds are chosen on the test split, which favours the baseline.
Takes about 3 minutes per seed on 2 cores (mnist-5k).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    from neurocore.sw import stdp_cnn
    from neurocore.sw.datasets import dog_dataset, load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist-5k")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--random-thresholds", default="10,12", help="w_max units, comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    data = dog_dataset(load_dataset(args.dataset))
    rows = []
    for seed in (int(v) for v in args.seeds.split(",")):
        t0 = time.perf_counter()
        result = stdp_cnn.train_stdp_cnn(data, epochs=args.epochs, seed=seed, progress=False)
        params = result.params
        enc = result.compiled.encoding
        split = dict(x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test, enc=enc)
        rng = np.random.default_rng([seed, 99])
        random = [rng.integers(0, params.w_max + 1, k.shape) for k in result.kernels]
        baseline = {}
        thresholds = sorted({params.eval_threshold[0]} | {int(float(v) * params.w_max)
                                                          for v in args.random_thresholds.split(",")})
        for threshold in thresholds:
            p = dataclasses.replace(params, eval_threshold=(threshold,) + params.eval_threshold[1:])
            report = stdp_cnn.evaluate_kernels(random, data, p, **split)[3]
            baseline[round(threshold / params.w_max, 2)] = float(report["accuracy"])
        rows.append({"seed": seed, "stdp": [h["accuracy"] for h in result.history],
                     "random_kernels": baseline, "seconds": round(time.perf_counter() - t0, 1)})
        if not args.json:
            print(f"seed {seed}: initial {rows[-1]['stdp'][0]:.4f}, after each epoch "
                  + ", ".join(f"{a:.4f}" for a in rows[-1]["stdp"][1:])
                  + "; random kernels " + ", ".join(f"thr {k} w_max: {v:.4f}" for k, v in baseline.items())
                  + f" ({rows[-1]['seconds']} s)", flush=True)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
