"""A statically quantised (INT8) variant of an exported detector, by onnxruntime's quantizer.

Static, not dynamic: the detector is convolutions, and only static quantisation (activation ranges
fixed ahead of time from calibration frames) turns them into integer kernels. The format is QDQ
(QuantizeLinear/DequantizeLinear pairs around float ops), which onnxruntime fuses into QLinearConv
when it loads the model. Activations are unsigned 8-bit and weights signed 8-bit per channel: on
x86 CPUs onnxruntime fuses that pairing (U8S8) into integer convolutions; with signed activations
most convolutions stayed float on the machine this was measured on and the model ran no faster.

The variant keeps the float model's inputs, outputs and metadata (plus "precision" and the
calibration it was made with), so anything that runs the float model runs this one."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from .dataset import LoadedDataset
from .preprocess import letterbox, to_float_chw

DEFAULT_CALIBRATION_FRAMES = 500

# The three 1x1 output convolutions (detector.py: heat, size, offset) stay float, as output layers
# usually do: their outputs are the scores, box sizes and centre offsets themselves, and together
# they are about 0.5% of the detector's work.
FLOAT_NODES = ["/model/heat/Conv", "/model/size/Conv", "/model/offset/Conv"]


class _Frames(CalibrationDataReader):
    """Feeds letterboxed calibration frames to the quantizer in batches (the same pre-processing
    the platform applies before inference, so the ranges fit what the model will see)."""

    def __init__(self, data: LoadedDataset, indices: list[int], size: int, batch_size: int = 16):
        # A generator: one batch in memory at a time (500 frames at once would be 375 MiB).
        self._batches = (
            {
                "images": torch.stack(
                    [letterbox(to_float_chw(data.samples[i].rgb), size)[0] for i in indices[j : j + batch_size]]
                ).numpy()
            }
            for j in range(0, len(indices), batch_size)
        )

    def get_next(self) -> dict | None:
        return next(self._batches, None)


def calibration_indices(num_samples: int, frames: int, seed: int) -> list[int]:
    """A seeded sample of at most `frames` frames, spread over the whole dataset rather than its
    first cameras or hours."""
    if frames >= num_samples:
        return list(range(num_samples))
    return sorted(np.random.default_rng(seed).choice(num_samples, size=frames, replace=False).tolist())


def quantize_detector(
    float_model: Path, out: Path, data: LoadedDataset, frames: int = DEFAULT_CALIBRATION_FRAMES, seed: int = 0
) -> Path:
    """Writes the INT8 variant of `float_model` to `out`, calibrated on up to `frames` frames of
    `data`. Writes to a temporary name and renames, so a crash leaves no half-written variant."""
    if not data.samples:
        raise ValueError("quantization needs at least one calibration frame")
    source = onnx.load(str(float_model))
    meta = {p.key: p.value for p in source.metadata_props}
    indices = calibration_indices(len(data.samples), frames, seed)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference and graph clean-up first, as onnxruntime recommends before quantizing
        # (symbolic shape inference needs sympy, which the trainer installs).
        quant_pre_process(str(float_model), str(prepared))
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(quantized),
            _Frames(data, indices, int(meta["input_size"])),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            # Ranges averaged over batches rather than the single most extreme one (measured
            # better than the plain minimum/maximum and than a 99.99th percentile here).
            extra_options={"CalibMovingAverage": True},
            nodes_to_exclude=[n.name for n in source.graph.node if n.name in FLOAT_NODES],
        )
        model = onnx.load(str(quantized))
    del model.metadata_props[:]
    meta.update(
        {
            "precision": "int8",
            "quantization": json.dumps(
                {
                    "format": "QDQ",
                    "activations": "uint8",
                    "weights": "int8 per channel",
                    "calibration_frames": len(indices),
                }
            ),
        }
    )
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    onnx.save(model, str(tmp_out))
    tmp_out.replace(out)
    return out
