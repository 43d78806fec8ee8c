"""A compact anchor-free detector for CPUs (CenterNet-style: "Objects as Points", Zhou et al.
2019): a small conv backbone with a light top-down path, and per-pixel heads at stride 4 for a
class heatmap, box size and centre offset. Decoding (3x3 peak suppression, top-K) is part of the
graph, so the exported ONNX returns final boxes and no NMS is needed anywhere else."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

STRIDE = 4


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Detector(nn.Module):
    """About 0.45 GFLOP per 256x256 image: sized so 10,000 frames train in minutes on 2 cores."""

    def __init__(self, num_classes: int = 4, embedding_dim: int = 128, object_embedding_dim: int = 64):
        super().__init__()
        self.num_classes = num_classes
        self.stem = conv_bn(3, 16, 2)  # /2
        self.c2 = nn.Sequential(conv_bn(16, 32, 2), conv_bn(32, 32))  # /4
        self.c3 = nn.Sequential(conv_bn(32, 64, 2), conv_bn(64, 64))  # /8
        self.c4 = nn.Sequential(conv_bn(64, 96, 2), conv_bn(96, 96))  # /16
        self.lat3 = nn.Conv2d(64, 32, 1)
        self.lat2 = nn.Conv2d(32, 32, 1)
        self.top4 = nn.Conv2d(96, 32, 1)
        self.smooth = conv_bn(32, 32)
        self.head = conv_bn(32, 32)
        self.heat = nn.Conv2d(32, num_classes, 1)
        self.size = nn.Conv2d(32, 2, 1)
        self.offset = nn.Conv2d(32, 2, 1)
        self.embed = nn.Linear(96 + 64, embedding_dim)
        # Object embeddings: the features at each detection's centre (stride 4, 8 and 16) through a
        # small MLP, trained with a supervised contrastive loss over classes and, where the data
        # has track ids, FairMOT's identity loss. Computed at the K decoded peaks only, not as a
        # dense map (a dense 3x3 head would add ~40% to the detector): about 1% of its cost.
        self.object_embed = nn.Sequential(
            nn.Linear(32 + 64 + 96, 128), nn.ReLU(inplace=True), nn.Linear(128, object_embedding_dim)
        )
        # Heatmap bias so initial probabilities are ~0.01 (CenterNet's focal-loss prior).
        nn.init.constant_(self.heat.bias, -4.6)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f2 = self.c2(self.stem(x))
        f3 = self.c3(f2)
        f4 = self.c4(f3)
        p3 = self.lat3(f3) + F.interpolate(self.top4(f4), size=f3.shape[-2:], mode="nearest")
        p2 = self.smooth(self.lat2(f2) + F.interpolate(p3, size=f2.shape[-2:], mode="nearest"))
        h = self.head(p2)
        # The frame embedding pools mid- and high-level features, so both global appearance
        # (light, colour, blur) and content (what objects are there) move it.
        embedding = self.embed(torch.cat([f4.mean(dim=(2, 3)), f3.mean(dim=(2, 3))], dim=1))
        return {
            "heat": self.heat(h),
            "size": self.size(h),
            "offset": self.offset(h),
            "embedding": embedding,
            # Feature maps the object embedding reads at object centres.
            "p2": p2,
            "f3": f3,
            "f4": f4,
        }

    def embed_at_centres(self, out: dict[str, torch.Tensor], centres: torch.Tensor) -> torch.Tensor:
        """Unit-length object embeddings [M, D] at (image, row, column) rows of `centres` (the
        stride-4 grid), for training."""
        i, y, x = centres[:, 0], centres[:, 1], centres[:, 2]
        feats = [out["p2"][i, :, y, x], out["f3"][i, :, y // 2, x // 2], out["f4"][i, :, y // 4, x // 4]]
        return F.normalize(self.object_embed(torch.cat(feats, dim=1)), dim=1)

    def embed_at_peaks(self, out: dict[str, torch.Tensor], ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """Unit-length object embeddings [N, K, D] at each image's K peaks (stride-4 rows and
        columns [N, K]), written with flat gathers so the graph exports to ONNX."""

        def at(feat: torch.Tensor, div: int) -> torch.Tensor:
            n, c, h, w = feat.shape
            idx = torch.div(ys, div, rounding_mode="floor") * w + torch.div(xs, div, rounding_mode="floor")
            return torch.gather(feat.reshape(n, c, h * w), 2, idx[:, None, :].expand(n, c, idx.shape[1]))

        feats = torch.cat([at(out["p2"], 1), at(out["f3"], 2), at(out["f4"], 4)], dim=1).transpose(1, 2)
        return F.normalize(self.object_embed(feats), dim=2)


def decode(
    out: dict[str, torch.Tensor], max_detections: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Heads -> (boxes [N,K,4] normalized to the input tensor, scores [N,K] descending, class ids
    [N,K], and each peak's row and column on the stride-4 grid [N,K])."""
    heat = torch.sigmoid(out["heat"])
    n, c, h, w = heat.shape
    peaks = F.max_pool2d(heat, 3, stride=1, padding=1)
    heat = heat * (peaks == heat).float()
    scores, idx = torch.topk(heat.reshape(n, -1), max_detections, dim=1)
    classes = torch.div(idx, h * w, rounding_mode="floor")
    pix = idx - classes * (h * w)
    ys = torch.div(pix, w, rounding_mode="floor")
    xs = pix - ys * w
    size = out["size"].reshape(n, 2, h * w)
    offset = out["offset"].reshape(n, 2, h * w)
    gather = pix[:, None, :].expand(n, 2, max_detections)
    sz = torch.gather(size, 2, gather)
    off = torch.gather(offset, 2, gather)
    cx = xs.float() + off[:, 0]
    cy = ys.float() + off[:, 1]
    bw = sz[:, 0].clamp(min=0)
    bh = sz[:, 1].clamp(min=0)
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=2)
    boxes = (boxes / torch.tensor([w, h, w, h], dtype=boxes.dtype)).clamp(0, 1)
    return boxes, scores, classes, ys, xs


class ExportDetector(nn.Module):
    """The graph that ships: images -> boxes, scores, class_ids, embedding, object_embeddings
    (docs/contracts.md)."""

    def __init__(self, model: Detector, max_detections: int = 100):
        super().__init__()
        self.model = model
        self.max_detections = max_detections

    def forward(self, images: torch.Tensor):
        out = self.model(images)
        boxes, scores, classes, ys, xs = decode(out, self.max_detections)
        return boxes, scores, classes.to(torch.int64), out["embedding"], self.model.embed_at_peaks(out, ys, xs)


def gaussian_radius(w: float, h: float) -> float:
    # A simpler stand-in for CenterNet's IoU-derived radius: a third of the smaller side,
    # which keeps the positive region proportional to the object.
    return max(0.0, min(w, h) / 3.0)


def build_targets(
    boxes_per_image: list[torch.Tensor],
    labels_per_image: list[torch.Tensor],
    num_classes: int,
    out_h: int,
    out_w: int,
    ignore_per_image: list[torch.Tensor] | None = None,
    identities_per_image: list[torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Boxes in input-tensor pixels -> heatmap (Gaussian peaks), size/offset targets and masks;
    `ignore` marks the cells inside ignore regions, where the heatmap loss is not taken."""
    n = len(boxes_per_image)
    heat = torch.zeros(n, num_classes, out_h, out_w)
    size = torch.zeros(n, 2, out_h, out_w)
    offset = torch.zeros(n, 2, out_h, out_w)
    mask = torch.zeros(n, 1, out_h, out_w)
    # (image, row, column, class, identity or -1) of every object centre: where the object
    # embedding is trained.
    centres: list[list[int]] = []
    ys, xs = torch.meshgrid(
        torch.arange(out_h, dtype=torch.float32), torch.arange(out_w, dtype=torch.float32), indexing="ij"
    )
    for i, (boxes, labels) in enumerate(zip(boxes_per_image, labels_per_image, strict=True)):
        identities = identities_per_image[i].tolist() if identities_per_image else [-1] * len(labels)
        for box, label, identity in zip(boxes.tolist(), labels.tolist(), identities, strict=True):
            x1, y1, x2, y2 = (v / STRIDE for v in box)
            bw, bh = x2 - x1, y2 - y1
            if bw <= 0 or bh <= 0:
                continue
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            ix, iy = int(min(max(cx, 0), out_w - 1)), int(min(max(cy, 0), out_h - 1))
            sigma = max(gaussian_radius(bw, bh) / 2, 0.5)
            g = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
            heat[i, label] = torch.maximum(heat[i, label], g)
            size[i, :, iy, ix] = torch.tensor([bw, bh])
            offset[i, :, iy, ix] = torch.tensor([cx - ix, cy - iy])
            mask[i, 0, iy, ix] = 1.0
            centres.append([i, iy, ix, int(label), int(identity)])
    centre_index = torch.tensor(centres, dtype=torch.long).reshape(-1, 5)
    ignore = torch.zeros(n, 1, out_h, out_w)
    for i, regions in enumerate(ignore_per_image or []):
        for x1, y1, x2, y2 in (regions / STRIDE).tolist():
            c1, r1 = max(int(x1), 0), max(int(y1), 0)
            c2, r2 = min(math.ceil(x2), out_w), min(math.ceil(y2), out_h)
            ignore[i, 0, r1:r2, c1:c2] = 1.0
    return {"heat": heat, "size": size, "offset": offset, "mask": mask, "centres": centre_index, "ignore": ignore}


def detection_loss(out: dict[str, torch.Tensor], t: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """CenterNet's penalty-reduced focal loss on the heatmap, L1 on size and offset at centres."""
    pred = torch.sigmoid(out["heat"]).clamp(1e-4, 1 - 1e-4)
    gt = t["heat"]
    pos = gt.eq(1).float()
    neg = 1 - pos
    pos_loss = torch.log(pred) * (1 - pred) ** 2 * pos
    # Inside an ignore region a peak is neither a hit nor a false alarm: no negative loss there.
    neg_loss = torch.log(1 - pred) * pred**2 * (1 - gt) ** 4 * neg * (1 - t["ignore"])
    num_pos = pos.sum().clamp(min=1)
    heat_loss = -(pos_loss.sum() + neg_loss.sum()) / num_pos
    m = t["mask"]
    size_loss = (F.l1_loss(out["size"] * m, t["size"] * m, reduction="sum")) / num_pos
    off_loss = (F.l1_loss(out["offset"] * m, t["offset"] * m, reduction="sum")) / num_pos
    total = heat_loss + 0.1 * size_loss + off_loss
    return total, {"heat": heat_loss.item(), "size": size_loss.item(), "offset": off_loss.item()}


def identity_loss(
    z: torch.Tensor, identities: torch.Tensor, classifier: torch.Tensor, scale: float = 16.0
) -> torch.Tensor:
    """FairMOT's identity classification, with a cosine classifier: each object's embedding is
    pulled towards its own identity (the same object on other frames) and away from the others,
    so objects of one class do not all collapse to one point and neighbours are look-alikes."""
    known = identities >= 0
    if not known.any():
        return z.sum() * 0.0
    logits = scale * z[known] @ F.normalize(classifier, dim=1).T
    return F.cross_entropy(logits, identities[known])


def object_embedding_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020) over the batch's object centres: each
    object is pulled towards the others of its class and pushed from the rest."""
    if z.shape[0] < 2:
        return z.sum() * 0.0
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    has_positive = positive.any(dim=1)
    if not has_positive.any():
        return z.sum() * 0.0
    mean_log_prob = (log_prob.masked_fill(~positive, 0.0).sum(dim=1) / positive.sum(dim=1).clamp(min=1))[has_positive]
    return -mean_log_prob.mean()
