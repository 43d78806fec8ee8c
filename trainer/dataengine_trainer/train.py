"""Training loops for the detector and the box model: seeded, checkpointed per epoch (a retried
run resumes from the last finished epoch), fine-tunable from a parent checkpoint, and
interruptible between steps (a Temporal cancellation stops them within a step)."""

from __future__ import annotations

import json
import random
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .box_model import BoxModel, box_loss, jitter_region, make_rois, to_crop_coords
from .dataset import LoadedDataset, Sample
from .detector import STRIDE, Detector, build_targets, detection_loss, identity_loss, object_embedding_loss
from .preprocess import letterbox, to_float_chw

INPUT_SIZE = 256
EMBEDDING_DIM = 128
OBJECT_EMBEDDING_DIM = 64
MAX_DETECTIONS = 100


class Cancelled(Exception):
    """Raised between steps when the caller asked training to stop."""


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0
    threads: int = 2


Progress = Callable[[dict], None]
ShouldStop = Callable[[], bool]


def seed_everything(seed: int, threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class DetectorBatch(NamedTuple):
    images: torch.Tensor
    boxes: list[torch.Tensor]  # per image, input-tensor pixels
    labels: list[torch.Tensor]
    ignores: list[torch.Tensor]  # ignore regions per image, input-tensor pixels
    identities: list[torch.Tensor]  # per box, -1 where unknown


def detector_batch(samples: list[Sample], rng: np.random.Generator, augment: bool) -> DetectorBatch:
    images, boxes, labels, ignores, identities = [], [], [], [], []
    for s in samples:
        rgb, b, g = s.rgb, s.boxes.copy(), s.ignore.copy()
        if augment and rng.random() < 0.5:
            rgb = rgb[:, ::-1]
            w = rgb.shape[1]
            b[:, [0, 2]] = w - b[:, [2, 0]]
            g[:, [0, 2]] = w - g[:, [2, 0]]
        tensor, scale = letterbox(to_float_chw(rgb), INPUT_SIZE)
        images.append(tensor)
        boxes.append(torch.from_numpy(b * scale))
        labels.append(torch.from_numpy(s.labels))
        ignores.append(torch.from_numpy(g * scale))
        ids = s.identities if s.identities is not None else np.full(len(s.labels), -1, dtype=np.int64)
        identities.append(torch.from_numpy(ids))
    return DetectorBatch(torch.stack(images), boxes, labels, ignores, identities)


def _checkpoint_payload(kind: str, model: torch.nn.Module, optimizer, epoch: int, meta: dict) -> dict:
    return {"kind": kind, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(), **meta}


def _run_epochs(
    kind: str,
    model: torch.nn.Module,
    step_fn: Callable[[list[int], np.random.Generator], torch.Tensor],
    num_items: int,
    cfg: TrainConfig,
    work_dir: Path,
    meta: dict,
    progress: Progress,
    should_stop: ShouldStop,
    extra: torch.nn.Module | None = None,
) -> dict:
    """The loop both models share: shuffled batches, AdamW with cosine decay, per-epoch checkpoints.
    `extra` holds training-only weights (optimized and resumed with the model, never exported)."""
    params = list(model.parameters()) + (list(extra.parameters()) if extra is not None else [])
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=1e-4)
    steps_per_epoch = max(1, (num_items + cfg.batch_size - 1) // cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.learning_rate, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    resume = work_dir / "resume.pt"
    start_epoch = 0
    if resume.exists():
        state = torch.load(resume, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if extra is not None:
            extra.load_state_dict(state["extra"])
        start_epoch = state["epoch"]
    started = time.time()
    last_loss = float("nan")
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        # Each epoch's order depends only on the seed and the epoch, so a resumed run is the same run.
        rng = np.random.default_rng([cfg.seed, epoch])
        order = rng.permutation(num_items)
        losses = []
        for step in range(steps_per_epoch):
            if should_stop():
                raise Cancelled(f"{kind} training cancelled in epoch {epoch + 1}, step {step}")
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size].tolist()
            if not idx:
                continue
            loss = step_fn(idx, rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            progress(
                {
                    "epoch": epoch + 1,
                    "epochs": cfg.epochs,
                    "step": step + 1,
                    "steps": steps_per_epoch,
                    "loss": losses[-1],
                }
            )
        last_loss = float(np.mean(losses)) if losses else last_loss
        # Written under a temporary name and renamed: a worker killed mid-write must not leave a
        # torn resume.pt that the retried step would fail to load.
        tmp = resume.with_suffix(".tmp")
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "extra": extra.state_dict() if extra is not None else None,
            },
            tmp,
        )
        tmp.replace(resume)
    checkpoint = _checkpoint_payload(kind, model, optimizer, cfg.epochs, meta)
    return {
        "final_loss": last_loss,
        "train_seconds": time.time() - started,
        "checkpoint": checkpoint,
        "resumed_from_epoch": start_epoch,
    }


def train_detector(
    data: LoadedDataset,
    cfg: TrainConfig,
    work_dir: Path,
    parent_checkpoint: Path | None = None,
    progress: Progress = lambda _: None,
    should_stop: ShouldStop = lambda: False,
) -> tuple[Detector, dict]:
    seed_everything(cfg.seed, cfg.threads)
    model = Detector(
        num_classes=len(data.class_names), embedding_dim=EMBEDDING_DIM, object_embedding_dim=OBJECT_EMBEDDING_DIM
    )
    if parent_checkpoint is not None:
        parent = torch.load(parent_checkpoint, weights_only=False)
        if parent.get("class_names") != data.class_names:
            raise ValueError(f"parent classes {parent.get('class_names')} differ from the dataset's {data.class_names}")
        # A parent trained before object embeddings existed lacks only that head: it starts fresh.
        missing, unexpected = model.load_state_dict(parent["model"], strict=False)
        if unexpected or any(not k.startswith("object_embed.") for k in missing):
            raise ValueError(f"parent checkpoint does not fit the detector: missing {missing}, unexpected {unexpected}")
    samples = [s for s in data.samples]
    out_hw = INPUT_SIZE // STRIDE
    # Training-only: one row per identity (track) of the dataset; never exported.
    identity_classifier = (
        torch.nn.Linear(OBJECT_EMBEDDING_DIM, len(data.identities), bias=False) if data.identities else None
    )

    def step(idx: list[int], rng: np.random.Generator) -> torch.Tensor:
        b = detector_batch([samples[i] for i in idx], rng, augment=True)
        targets = build_targets(b.boxes, b.labels, model.num_classes, out_hw, out_hw, b.ignores, b.identities)
        out = model(b.images)
        loss, _ = detection_loss(out, targets)
        centres = targets["centres"]
        if centres.shape[0] > 0:
            z = model.embed_at_centres(out, centres)
            loss = loss + 0.1 * object_embedding_loss(z, centres[:, 3])
            if identity_classifier is not None:
                loss = loss + 0.1 * identity_loss(z, centres[:, 4], identity_classifier.weight)
        return loss

    meta = {
        "class_names": data.class_names,
        "input_size": INPUT_SIZE,
        "embedding_dim": EMBEDDING_DIM,
        "object_embedding_dim": OBJECT_EMBEDDING_DIM,
    }
    result = _run_epochs(
        "detection", model, step, len(samples), cfg, work_dir, meta, progress, should_stop, extra=identity_classifier
    )
    model.eval()
    return model, result


def box_training_items(data: LoadedDataset) -> list[tuple[int, np.ndarray]]:
    """(sample index, true box) for every object big enough for a reviewer to box."""
    items = []
    for i, s in enumerate(data.samples):
        for b in s.boxes:
            if (b[2] - b[0]) >= 4 and (b[3] - b[1]) >= 4:
                items.append((i, b))
    return items


def train_box_model(
    data: LoadedDataset,
    cfg: TrainConfig,
    work_dir: Path,
    parent_checkpoint: Path | None = None,
    progress: Progress = lambda _: None,
    should_stop: ShouldStop = lambda: False,
) -> tuple[BoxModel, dict]:
    seed_everything(cfg.seed, cfg.threads)
    model = BoxModel()
    if parent_checkpoint is not None:
        model.load_state_dict(torch.load(parent_checkpoint, weights_only=False)["model"])
    items = box_training_items(data)
    if not items:
        raise ValueError("the dataset has no boxes to train the box model on")

    def frame(i: int) -> torch.Tensor:
        # Converted per use, not cached: float frames of a large dataset would not fit in memory.
        return to_float_chw(data.samples[i].rgb)

    def step(idx: list[int], rng: np.random.Generator) -> torch.Tensor:
        rois, targets = [], []
        for j in idx:
            si, box = items[j]
            region = jitter_region(box, rng)
            rois.append(make_rois(frame(si), [region])[0])
            targets.append(torch.from_numpy(to_crop_coords(box, region)))
        pred_box, pred_score = model(torch.stack(rois))
        return box_loss(pred_box, pred_score, torch.stack(targets))

    result = _run_epochs(
        "box", model, step, len(items), cfg, work_dir, {"roi_size": 64, "context_margin": 0.5}, progress, should_stop
    )
    model.eval()
    return model, result


def write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True))
