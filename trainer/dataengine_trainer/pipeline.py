"""Train -> export -> artifacts, for one model kind. The CLI and the Temporal activities both
call these, so a model trained by hand and one trained by a workflow are made the same way.

Artifacts of a version live together in one folder (docs/contracts.md "Blob store"):
model.onnx, checkpoint.pt, metrics.json, for a detector model.int8.onnx (its INT8 variant) and
reference.json, plus a resume.pt while training is under way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .dataset import LoadedDataset, load_dataset
from .evaluate import coco_metrics, evaluate_box, predict_detections, reference_stats
from .export import export_box_model, export_detector
from .quantize import quantize_detector
from .train import (
    Progress,
    ShouldStop,
    TrainConfig,
    peak_rss_mb,
    train_box_model,
    train_detector,
    write_json,
)


@dataclass
class TrainOutcome:
    kind: str
    version: str
    model_path: Path
    # The detector's INT8 variant, when one was made.
    int8_path: Path | None
    checkpoint_path: Path
    metrics_path: Path
    epochs: int
    num_images: int
    final_loss: float
    train_seconds: float
    # Epochs a retried run found finished (resume.pt) and did not train again; 0 on a first run.
    resumed_from_epoch: int = 0


def train_to_dir(
    kind: str,
    data: LoadedDataset,
    version: str,
    out_dir: Path,
    cfg: TrainConfig,
    parent_checkpoint: Path | None = None,
    parent_version: str | None = None,
    training_snapshot: str = "",
    progress: Progress = lambda _: None,
    should_stop: ShouldStop = lambda: False,
    reference_data: LoadedDataset | None = None,
    int8_calibration_frames: int = 0,
) -> TrainOutcome:
    """`int8_calibration_frames`: training frames the detector's INT8 variant is calibrated on (0:
    no variant). Training frames, not held-out ones: the held-out split judges the variant at the
    promotion gate, and nothing fitted on it may be judged on it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if kind == "detection":
        model, result = train_detector(data, cfg, out_dir, parent_checkpoint, progress, should_stop)
    elif kind == "box":
        model, result = train_box_model(data, cfg, out_dir, parent_checkpoint, progress, should_stop)
    else:
        raise ValueError(f"kind must be 'detection' or 'box', not {kind!r}")
    checkpoint = result["checkpoint"]
    checkpoint.update({"version": version, "parent_version": parent_version, "class_names": data.class_names})
    # Write to temporary names and rename, so a crash never leaves a half-written model that a
    # retry or a reader would take for finished.
    ckpt_path = out_dir / "checkpoint.pt"
    tmp = out_dir / "checkpoint.pt.tmp"
    torch.save(checkpoint, tmp)
    tmp.replace(ckpt_path)
    onnx_tmp = out_dir / "model.onnx.tmp"
    if kind == "detection":
        export_detector(model, onnx_tmp, version, data.class_names, training_snapshot, parent_version)
    else:
        export_box_model(model, onnx_tmp, version, training_snapshot, parent_version)
    model_path = out_dir / "model.onnx"
    onnx_tmp.replace(model_path)
    if kind == "detection":
        # Held-out frames if given, else a slice of the training frames: the drift reference.
        ref = reference_stats(str(model_path), reference_data if reference_data and reference_data.samples else data)
        write_json(out_dir / "reference.json", ref)
    int8_path = None
    if kind == "detection" and int8_calibration_frames > 0:
        progress({"stage": "quantizing", "calibration_frames": min(int8_calibration_frames, len(data.samples))})
        int8_path = quantize_detector(model_path, out_dir / "model.int8.onnx", data, int8_calibration_frames, cfg.seed)
    metrics = {
        "kind": kind,
        "version": version,
        "epochs": cfg.epochs,
        "num_images": len(data.samples),
        "final_loss": result["final_loss"],
        "train_seconds": result["train_seconds"],
        "peak_rss_mb": peak_rss_mb(),
        "seed": cfg.seed,
        "resumed_from_epoch": result["resumed_from_epoch"],
    }
    metrics_path = out_dir / "metrics.json"
    write_json(metrics_path, metrics)
    (out_dir / "resume.pt").unlink(missing_ok=True)
    return TrainOutcome(
        kind,
        version,
        model_path,
        int8_path,
        ckpt_path,
        metrics_path,
        cfg.epochs,
        len(data.samples),
        result["final_loss"],
        result["train_seconds"],
        result["resumed_from_epoch"],
    )


def evaluate_model(
    kind: str,
    model_path: Path,
    dataset_path: Path,
    image_root: Path | None,
    split: str | None,
    score_threshold: float = 0.5,
) -> dict:
    data = load_dataset(dataset_path, image_root, split=split)
    if kind == "detection":
        return coco_metrics(data, predict_detections(str(model_path), data), score_threshold)
    return evaluate_box(str(model_path), data)
