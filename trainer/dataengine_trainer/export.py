"""ONNX export of both models, with the contract's names, dynamic batch and metadata_props."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import onnx
import torch

from .box_model import BoxModel
from .detector import Detector, ExportDetector
from .preprocess import ROI_SIZE
from .train import EMBEDDING_DIM, INPUT_SIZE, MAX_DETECTIONS, OBJECT_EMBEDDING_DIM

OPSET = 17


def _set_metadata(path: Path, props: dict[str, str]) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for k, v in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_detector(
    model: Detector,
    path: Path,
    version: str,
    class_names: list[str],
    training_snapshot: str = "",
    parent_version: str | None = None,
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ExportDetector(model.eval(), MAX_DETECTIONS).eval()
    dummy = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE)
    # The tracer warns that the frame size becomes a constant: it is one (INPUT_SIZE), by contract.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper,
            (dummy,),
            str(path),
            input_names=["images"],
            output_names=["boxes", "scores", "class_ids", "embedding", "object_embeddings"],
            dynamic_axes={
                "images": {0: "n"},
                "boxes": {0: "n"},
                "scores": {0: "n"},
                "class_ids": {0: "n"},
                "embedding": {0: "n"},
                "object_embeddings": {0: "n"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    _set_metadata(
        path,
        {
            "kind": "detection",
            "version": version,
            "class_names": json.dumps(class_names),
            "input_size": str(INPUT_SIZE),
            "embedding_dim": str(EMBEDDING_DIM),
            "object_embedding_dim": str(OBJECT_EMBEDDING_DIM),
            "max_detections": str(MAX_DETECTIONS),
            "training_snapshot": training_snapshot,
            "parent_version": parent_version or "",
            "preprocess": "letterbox-topleft-bilinear-v1",
        },
    )
    return path


def export_box_model(
    model: BoxModel, path: Path, version: str, training_snapshot: str = "", parent_version: str | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.rand(2, 3, ROI_SIZE, ROI_SIZE)
    torch.onnx.export(
        model.eval(),
        (dummy,),
        str(path),
        input_names=["roi"],
        output_names=["box", "score"],
        dynamic_axes={"roi": {0: "n"}, "box": {0: "n"}, "score": {0: "n"}},
        opset_version=OPSET,
        dynamo=False,
    )
    _set_metadata(
        path,
        {
            "kind": "box",
            "version": version,
            "roi_size": str(ROI_SIZE),
            "context_margin": "0.5",
            "training_snapshot": training_snapshot,
            "parent_version": parent_version or "",
            "preprocess": "roi-bilinear-v1",
        },
    )
    return path
