"""The interactive box model: a rough region's crop (with context) -> a tight box and a score.

Reviewers drag a loose rectangle; the model returns the object's box inside the crop and its
own estimate of how good that box is (predicted IoU), which the review app shows."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .detector import conv_bn
from .preprocess import ROI_SIZE, roi_crop, roi_geometry


class BoxModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 16, 2),  # 32
            conv_bn(16, 32, 2),  # 16
            conv_bn(32, 64, 2),  # 8
            conv_bn(64, 96, 2),  # 4
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(96 * 4 * 4, 128), nn.ReLU(inplace=True))
        self.box = nn.Linear(128, 4)
        self.score = nn.Linear(128, 1)

    def forward(self, roi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.features(roi))
        # Predict centre and size in the crop; the rough region is centred in the crop, so the
        # untrained model starts near "the box is the middle third".
        c = torch.sigmoid(self.box(h))
        cx, cy, w, hh = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
        box = torch.stack([cx - w / 2, cy - hh / 2, cx + w / 2, cy + hh / 2], dim=1)
        return box, torch.sigmoid(self.score(h))[:, 0]


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise IoU of two [N,4] x1y1x2y2 tensors."""
    ix1 = torch.maximum(a[:, 0], b[:, 0])
    iy1 = torch.maximum(a[:, 1], b[:, 1])
    ix2 = torch.minimum(a[:, 2], b[:, 2])
    iy2 = torch.minimum(a[:, 3], b[:, 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    area = lambda t: (t[:, 2] - t[:, 0]).clamp(min=0) * (t[:, 3] - t[:, 1]).clamp(min=0)  # noqa: E731
    return inter / (area(a) + area(b) - inter).clamp(min=1e-9)


def jitter_region(box: np.ndarray, rng: np.random.Generator, strength: float = 0.25) -> np.ndarray:
    """A rough region a reviewer might drag around a true box: scaled and shifted."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    cx += rng.uniform(-strength, strength) * w
    cy += rng.uniform(-strength, strength) * h
    w *= rng.uniform(1 - strength, 1 + 2 * strength)
    h *= rng.uniform(1 - strength, 1 + 2 * strength)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float32)


def to_crop_coords(box: np.ndarray, region: np.ndarray) -> np.ndarray:
    x0, y0, side = roi_geometry(tuple(float(v) for v in region))
    return np.array(
        [(box[0] - x0) / side, (box[1] - y0) / side, (box[2] - x0) / side, (box[3] - y0) / side], dtype=np.float32
    )


def from_crop_coords(box: np.ndarray, region: np.ndarray) -> np.ndarray:
    x0, y0, side = roi_geometry(tuple(float(v) for v in region))
    return np.array([x0 + box[0] * side, y0 + box[1] * side, x0 + box[2] * side, y0 + box[3] * side], dtype=np.float32)


def make_rois(frame: torch.Tensor, regions: list[np.ndarray]) -> torch.Tensor:
    return (
        torch.stack([roi_crop(frame, tuple(float(v) for v in r), ROI_SIZE) for r in regions])
        if regions
        else torch.zeros(0, 3, ROI_SIZE, ROI_SIZE)
    )


def box_loss(pred_box: torch.Tensor, pred_score: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    l1 = F.smooth_l1_loss(pred_box, target, beta=0.05)
    iou = box_iou(pred_box.detach(), target)
    return l1 + 0.5 * F.mse_loss(pred_score, iou)
