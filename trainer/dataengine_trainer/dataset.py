"""COCO JSON datasets (docs/contracts.md "Dataset"): writing generated scenes, and loading a
dataset (generated, or a snapshot the platform wrote) into memory for training."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .preprocess import decode_rgb
from .scenes import CLASSES, render_frame, split_of


def generate_dataset(
    out_dir: str | Path,
    scenario: str,
    count: int,
    cameras: int = 4,
    seed: int = 0,
    start_index: int = 0,
    camera_prefix: str = "cam",
    progress: Callable[[int], None] | None = None,
    stride: int = 1,
) -> Path:
    """Renders `count` frames (round-robin over cameras) as PNG files plus dataset.json.
    `stride` > 1 skips frames of each camera: with the sequence length (16) it gives one frame per
    scene, i.e. independent frames, as a drift reference needs."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        camera = f"{camera_prefix}-{i % cameras}"
        frame_index = start_index + (i // cameras) * stride
        frame = render_frame(seed, scenario, camera, frame_index)
        name = f"images/{scenario}-{camera}-{frame_index:06d}.png"
        frame.image.save(out / name, optimize=False, compress_level=1)
        image_id = i + 1
        images.append(
            {
                "id": image_id,
                "file_name": name,
                "width": frame.image.width,
                "height": frame.image.height,
                "camera_id": camera,
                "sequence_id": frame.sequence_id,
                "frame_index": frame_index,
                "scenario": scenario,
                "split": split_of(frame.sequence_id),
            }
        )
        for b in frame.boxes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CLASSES.index(b.category) + 1,
                    "bbox": [round(b.x1, 2), round(b.y1, 2), round(b.w, 2), round(b.h, 2)],
                    "area": round(b.w * b.h, 2),
                    "iscrowd": 0,
                    "track_id": b.track_id,
                }
            )
        if progress:
            progress(1)
    dataset = {
        "info": {"description": f"generated scenes: {scenario}, seed {seed}"},
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)],
        "images": images,
        "annotations": annotations,
    }
    path = out / "dataset.json"
    path.write_text(json.dumps(dataset))
    return path


@dataclass
class Sample:
    image_id: int
    rgb: np.ndarray  # HxWx3 uint8
    boxes: np.ndarray  # [M,4] x1,y1,x2,y2 frame pixels
    labels: np.ndarray  # [M] class index (0-based, ascending category id order)
    # [G,4] ignore regions (COCO crowd annotations): a frame labelled only in part marks the
    # detections nobody decided on, and training neither rewards nor penalises the model there.
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float32))
    # [M] identity of each box across frames (index into LoadedDataset.identities; -1: unknown).
    # Generated data carries track ids; labels from the platform do not (yet).
    identities: np.ndarray | None = None


@dataclass
class LoadedDataset:
    coco: dict
    class_names: list[str]
    category_ids: list[int]
    samples: list[Sample]
    path: Path
    # Track ids of the objects that appear in the dataset's annotations (their identities).
    identities: list[str] = field(default_factory=list)


def _select(images: list[dict], split: str | None, max_images: int | None) -> list[dict]:
    chosen = [im for im in images if split is None or im.get("split", "train") == split]
    if max_images is not None:
        chosen = chosen[:max_images]
    return chosen


def _corners(anns: list[dict]) -> np.ndarray:
    """COCO [x, y, w, h] boxes -> [M,4] x1, y1, x2, y2."""
    return np.array(
        [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns],
        dtype=np.float32,
    ).reshape(-1, 4)


def load_dataset(
    dataset_path: str | Path,
    image_root: str | Path | None = None,
    split: str | None = None,
    max_images: int | None = None,
) -> LoadedDataset:
    """Loads a COCO JSON dataset and decodes its images. `image_root` defaults to the dataset's folder."""
    path = Path(dataset_path)
    coco = json.loads(path.read_text())
    root = Path(image_root) if image_root is not None else path.parent
    cats = sorted(coco["categories"], key=lambda c: c["id"])
    cat_index = {c["id"]: i for i, c in enumerate(cats)}
    by_image: dict[int, list[dict]] = {}
    for a in coco.get("annotations", []):
        by_image.setdefault(a["image_id"], []).append(a)
    samples = []
    identity_index: dict[str, int] = {}
    for im in _select(coco["images"], split, max_images):
        rgb = decode_rgb((root / im["file_name"]).read_bytes())
        all_anns = by_image.get(im["id"], [])
        anns = [a for a in all_anns if not a.get("iscrowd", 0)]
        labels = np.array([cat_index[a["category_id"]] for a in anns], dtype=np.int64)
        ignore = _corners([a for a in all_anns if a.get("iscrowd", 0)])
        identities = np.array(
            [identity_index.setdefault(a["track_id"], len(identity_index)) if a.get("track_id") else -1 for a in anns],
            dtype=np.int64,
        )
        samples.append(Sample(im["id"], rgb, _corners(anns), labels, ignore, identities))
    cat_names = [c["name"] for c in cats]
    return LoadedDataset(coco, cat_names, [c["id"] for c in cats], samples, path, list(identity_index))


def iter_batches(items: list, batch_size: int, order: Iterable[int]) -> Iterable[list]:
    order = list(order)
    for i in range(0, len(order), batch_size):
        yield [items[j] for j in order[i : i + batch_size]]
