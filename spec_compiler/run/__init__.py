"""What stages hand to each other on disk, with no torch: the run folder and its records,
and the metadata of exported ONNX files (see records.py and folder.py)."""

from .folder import RunFolder, new_run_id, validation_split
from .records import (
    DataInfo,
    ImageFormat,
    InputInfo,
    Normalization,
    OnnxInput,
    OnnxMetadata,
    OnnxOutput,
    OutputInfo,
    Preprocess,
    RunRecord,
    TextFormat,
)

__all__ = ["DataInfo", "ImageFormat", "InputInfo", "Normalization", "OnnxInput", "OnnxMetadata", "OnnxOutput",
           "OutputInfo", "Preprocess", "RunFolder", "RunRecord", "TextFormat", "new_run_id", "validation_split"]
