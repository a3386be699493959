"""ANN-to-SNN conversion: trained float networks -> integer spiking networks for the core.

* :mod:`.graph` -- a small sequential float graph IR (Dense, Conv2d, AvgPool2d, SumPool2d,
  Flatten, ReLU) with shape checks and a numpy forward pass.
* :mod:`.frontends` -- scikit-learn ``MLPClassifier``, PyTorch ``nn.Sequential`` and NIR
  graphs -> the IR.
* :mod:`.quantize` -- lowering to synapse lists, data-based (percentile) normalisation and
  per-layer integer quantisation -> :class:`~neurocore.sw.network.SnnNetwork`.
* :mod:`.pipeline` -- train (or load) an ANN on a dataset, convert, compile, evaluate on
  the golden model, accuracy vs time steps.
"""
from __future__ import annotations

from .frontends import from_nir, from_sklearn, from_torch
from .graph import AvgPool2d, Conv2d, Dense, Flatten, Graph, ReLU, SumPool2d
from .quantize import Converted, LayerInfo, convert, lower, normalise, simulate

__all__ = ["Graph", "Dense", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "ReLU",
           "from_sklearn", "from_torch", "from_nir", "convert", "lower", "normalise", "simulate",
           "Converted", "LayerInfo", "convert_dataset"]


def __getattr__(name):
    # the pipeline pulls in the compiler, the golden model and sklearn: import it on demand
    if name == "convert_dataset":
        from .pipeline import convert_dataset
        return convert_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
