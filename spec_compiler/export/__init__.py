"""ONNX export: the built PyTorch module, verified, as one self-describing file.

pipeline.py runs the steps; prepare.py (module, weights, normalization), exporter.py
(torch.onnx), passes.py (graph rewrites), metadata.py, verify.py (parity), data.py (the
run's data), simplify.py (onnxslim), quantize.py (int8) and report.py each hold one of
them, for a chain and a graph spec (several named inputs and outputs) alike.
"""

from .pipeline import export_model
from .report import Check, ExportReport

__all__ = ["Check", "ExportReport", "export_model"]
