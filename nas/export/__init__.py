"""Export an architecture or a searched trial for deployment, and check the file before saying so.

    from nas.export import export, load
    result = export("runs/pixel-60ms", "onnx", "winner.onnx")     # best trial of a run
    model = load("winner.pt")                                     # a `--format pytorch` file

What is exported (`select_source`):
- a baseline name, an architecture JSON or a block string: that architecture with initialised
  weights (seed 0);
- a run folder: its best trial (or `trial=N`). When the search kept a checkpoint for that trial
  (it keeps the Pareto trials'), the *trained proxy network* is exported: the network the
  checkpoint's weights belong to (the proxy data set's input size and classes, relaxed strides).
  Otherwise, or when `width` / `resolution` / `num_classes` change the shapes, or `deploy_arch`
  is set, the trial's *deployment architecture* (ImageNet head, deployment resolution) with
  initialised weights. `ExportSource.note` says which, in one sentence.

Every format is checked after writing: onnx passes `onnx.checker` and onnxruntime reproduces the
PyTorch output within `CHECK_ATOL`; torchscript, pytorch and tflite files are reloaded and run;
json and string files are decoded back to the same architecture. Inputs are float32 NCHW images
normalised as in training.

Modules: `source` (what to export), `writers` (one writer and check per format), `checks` (the
shared check batch and comparison), `loading` (records and files back into modules), `litert`
(the tflite conversion and its timing on this machine).
"""

from nas.export.checks import CHECK_ATOL, CHECK_BATCH, CHECK_RTOL, check_input
from nas.export.litert import TFLITE_EXTRA, measure_tflite_latency
from nas.export.loading import load, network
from nas.export.source import INIT_SEED, ExportSource, describe_source, select_source
from nas.export.writers import (FORMATS, ONNX_OPSETS, PYTORCH_FILE_FORMAT, SUFFIXES, ExportResult, export,
                                export_arch, sidecar_of)

__all__ = ["CHECK_ATOL", "CHECK_BATCH", "CHECK_RTOL", "ExportResult", "ExportSource", "FORMATS", "INIT_SEED",
           "ONNX_OPSETS", "PYTORCH_FILE_FORMAT", "SUFFIXES", "TFLITE_EXTRA", "check_input", "describe_source",
           "export", "export_arch", "load", "measure_tflite_latency", "network", "select_source", "sidecar_of"]
