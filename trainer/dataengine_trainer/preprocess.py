"""The preprocessing contract (docs/contracts.md), the one place training and export implement it.

The TypeScript inference wrapper implements the same two functions; a parity test feeds one
image through both and compares the tensors.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

PAD_VALUE = 0.5
CONTEXT_MARGIN = 0.5
ROI_SIZE = 64


def decode_rgb(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> HxWx3 uint8 (alpha dropped)."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def to_float_chw(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div_(255.0)


def letterbox_geometry(width: int, height: int, size: int) -> tuple[float, int, int]:
    scale = min(size / width, size / height)
    # JavaScript's Math.round and Python's round differ at .5 (banker's rounding); the contract
    # means round-half-up, as the TypeScript side computes it.
    nw = int(math.floor(width * scale + 0.5))
    nh = int(math.floor(height * scale + 0.5))
    return scale, nw, nh


def letterbox(image: torch.Tensor, size: int) -> tuple[torch.Tensor, float]:
    """[3,H,W] float in [0,1] -> ([3,size,size], scale): resized bilinear (half-pixel centres,
    no antialiasing), placed top-left, padded with 0.5."""
    _, h, w = image.shape
    scale, nw, nh = letterbox_geometry(w, h, size)
    if (nw, nh) != (w, h):
        image = F.interpolate(image[None], size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)[0]
    out = torch.full((3, size, size), PAD_VALUE, dtype=torch.float32)
    out[:, :nh, :nw] = image
    return out, scale


def roi_geometry(
    region: tuple[float, float, float, float], margin: float = CONTEXT_MARGIN
) -> tuple[float, float, float]:
    """Rough region (x1, y1, x2, y2) in frame pixels -> crop origin (x0, y0) and side."""
    x1, y1, x2, y2 = region
    side = max(x2 - x1, y2 - y1, 4.0) * (1 + 2 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return cx - side / 2, cy - side / 2, side


def roi_crop(image: torch.Tensor, region: tuple[float, float, float, float], size: int = ROI_SIZE) -> torch.Tensor:
    """[3,H,W] float frame -> [3,size,size] crop around the region, bilinear, 0.5 outside."""
    _, h, w = image.shape
    x0, y0, side = roi_geometry(region)
    steps = (torch.arange(size, dtype=torch.float64) + 0.5) * side / size - 0.5
    sx = x0 + steps
    sy = y0 + steps
    # grid_sample with align_corners=False maps pixel coordinate p to (2p + 1) / W - 1.
    gx = (2 * sx + 1) / w - 1
    gy = (2 * sy + 1) / h - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1).float()[None]
    # Zero padding on (image - 0.5) makes every neighbour outside the frame count as 0.5.
    crop = F.grid_sample(image[None] - PAD_VALUE, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crop[0] + PAD_VALUE
