r"""ONNX export: a trained model as a standard file that runs without rnnkit (or torch).

.. code-block:: text

    rnnkit export RUN --onnx model.onnx        # RUN: a run directory or a checkpoint

Every task's model exports, with dynamic batch and sequence axes:

===================  ======================================================================
model                graph(s)
===================  ======================================================================
language model       one step (or a few) with the recurrent state in and out
classifier           padded batches with their lengths → class scores
tagger               padded sentences → emissions, plus the CRF's transition scores (the
                     Viterbi search over them is a few lines of NumPy)
seq2seq              ``model.encoder.onnx`` (source → the decoder's first state and the
                     memory it attends to) and ``model.decoder.onnx`` (one step: previous
                     tokens and state → log-probabilities, new state, attention)
forecaster           history (and future covariates) → the forecast, in the scaled space
speech               spectral frames with their lengths → CTC scores per step
===================  ======================================================================

:mod:`rnnkit.export.tracing` traces and checks; :mod:`rnnkit.export.graphs` describes each
model's graphs (a new model type plugs in with one function, :func:`register_exporter`).
"""

from rnnkit.export import graphs as _graphs  # noqa: F401  (registers the models' exporters)
from rnnkit.export.tracing import (
    EXPORTERS,
    OPSET,
    OPSETS,
    ExportedFile,
    OnnxGraph,
    TorchRecurrent,
    compare,
    export_onnx,
    exportable,
    register_exporter,
)

__all__ = [
    "EXPORTERS",
    "OPSET",
    "OPSETS",
    "ExportedFile",
    "OnnxGraph",
    "TorchRecurrent",
    "compare",
    "export_onnx",
    "exportable",
    "register_exporter",
]
