"""Evaluation with pycocotools itself (no second COCO evaluator), returned as plain numbers."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import onnxruntime as ort
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .box_model import box_iou, from_crop_coords, jitter_region, make_rois
from .dataset import LoadedDataset
from .preprocess import letterbox, to_float_chw
from .train import box_training_items


def onnx_session(path: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def predict_detections(model_path: str, data: LoadedDataset, batch_size: int = 32) -> list[dict]:
    """COCO-format detections (frame pixels) of an exported detector for every image."""
    session = onnx_session(model_path)
    meta = session.get_modelmeta().custom_metadata_map
    size = int(meta["input_size"])
    results = []
    for i in range(0, len(data.samples), batch_size):
        chunk = data.samples[i : i + batch_size]
        tensors, scales = zip(*(letterbox(to_float_chw(s.rgb), size) for s in chunk), strict=True)
        boxes, scores, classes, _, _ = session.run(None, {"images": torch.stack(tensors).numpy()})
        for s, scale, b, sc, c in zip(chunk, scales, boxes, scores, classes, strict=True):
            px = b * size / scale
            for (x1, y1, x2, y2), score, cls in zip(px, sc, c, strict=True):
                if score < 0.01:
                    continue
                results.append(
                    {
                        "image_id": s.image_id,
                        "category_id": data.category_ids[int(cls)],
                        "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                        "score": float(score),
                    }
                )
    return results


def coco_metrics(data: LoadedDataset, detections: list[dict], score_threshold: float = 0.5) -> dict:
    """mAP@0.5, mAP@[.5:.95] and per-class AP@0.5 by COCOeval; precision/recall at the threshold."""
    image_ids = [s.image_id for s in data.samples]
    gt = COCO()
    gt.dataset = {
        "images": [im for im in data.coco["images"] if im["id"] in set(image_ids)],
        "annotations": [a for a in data.coco.get("annotations", []) if a["image_id"] in set(image_ids)],
        "categories": data.coco["categories"],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    per_class = {name: 0.0 for name in data.class_names}
    map50 = map50_95 = 0.0
    if detections and gt.dataset["annotations"]:
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(detections)
            ev = COCOeval(gt, dt, "bbox")
            ev.params.imgIds = image_ids
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        map50_95, map50 = float(ev.stats[0]), float(ev.stats[1])
        # precision[T, R, K, A, M]: IoU 0.5, all recall points, class k, area all, maxDets 100.
        precision = ev.eval["precision"]
        for k, name in enumerate(data.class_names):
            p = precision[0, :, k, 0, 2]
            p = p[p > -1]
            per_class[name] = float(p.mean()) if p.size else 0.0
        map50 = max(map50, 0.0)
        map50_95 = max(map50_95, 0.0)
    precision_at, recall_at = _precision_recall(data, detections, score_threshold)
    return {
        "map50": map50,
        "map50_95": map50_95,
        "per_class_ap50": per_class,
        "precision": precision_at,
        "recall": recall_at,
        "num_images": len(image_ids),
    }


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = lambda t: (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def _precision_recall(data: LoadedDataset, detections: list[dict], threshold: float) -> tuple[float, float]:
    """Greedy one-to-one matching at IoU 0.5 of the detections a reviewer would see (score >= threshold).
    This is the operating point, which COCOeval does not report; mAP above is COCOeval's."""
    by_image: dict[int, list[dict]] = {}
    for d in detections:
        if d["score"] >= threshold:
            by_image.setdefault(d["image_id"], []).append(d)
    tp = fp = total_gt = 0
    for s in data.samples:
        total_gt += len(s.boxes)
        dets = sorted(by_image.get(s.image_id, []), key=lambda d: -d["score"])
        matched = np.zeros(len(s.boxes), dtype=bool)
        for d in dets:
            cls = data.category_ids.index(d["category_id"])
            x, y, w, h = d["bbox"]
            if len(s.boxes) == 0:
                fp += 1
                continue
            ious = _iou_matrix(np.array([[x, y, x + w, y + h]]), s.boxes)[0]
            ious[(s.labels != cls) | matched] = 0
            j = int(np.argmax(ious))
            if ious[j] >= 0.5:
                matched[j] = True
                tp += 1
            else:
                fp += 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / total_gt if total_gt else 0.0
    return precision, recall


def evaluate_box(model_path: str, data: LoadedDataset, seed: int = 1234, max_objects: int = 2000) -> dict:
    """Mean IoU of rough regions (jittered true boxes) vs an exported box model's refined boxes."""
    session = onnx_session(model_path)
    rng = np.random.default_rng(seed)
    items = box_training_items(data)[:max_objects]
    inputs, refined, truths = [], [], []
    for si, box in items:
        region = jitter_region(box, rng)
        roi = make_rois(to_float_chw(data.samples[si].rgb), [region])
        pred, _ = session.run(None, {"roi": roi.numpy()})
        refined.append(from_crop_coords(pred[0], region))
        inputs.append(region)
        truths.append(box)
    if not items:
        return {"mean_iou_input": 0.0, "mean_iou_refined": 0.0, "iou_gain": 0.0, "num_objects": 0}
    t = torch.from_numpy(np.stack(truths))
    iou_in = float(box_iou(torch.from_numpy(np.stack(inputs)), t).mean())
    iou_out = float(box_iou(torch.from_numpy(np.stack(refined)), t).mean())
    return {
        "mean_iou_input": iou_in,
        "mean_iou_refined": iou_out,
        "iou_gain": iou_out - iou_in,
        "num_objects": len(items),
    }


def reference_stats(
    model_path: str, data: LoadedDataset, max_images: int = 300, min_score: float = 0.1, batch_size: int = 32
) -> dict:
    """What the drift monitor compares live frames against: the model's frame embeddings, kept
    detection scores and detections per frame on held-out images (docs/contracts.md)."""
    session = onnx_session(model_path)
    size = int(session.get_modelmeta().custom_metadata_map["input_size"])
    samples = data.samples[:max_images]
    embeddings, scores, counts = [], [], []
    for i in range(0, len(samples), batch_size):
        chunk = samples[i : i + batch_size]
        tensors = [letterbox(to_float_chw(s.rgb), size)[0] for s in chunk]
        _, sc, _, emb, _ = session.run(None, {"images": torch.stack(tensors).numpy()})
        for e, s in zip(emb, sc, strict=True):
            kept = [round(float(v), 5) for v in s if v >= min_score]
            embeddings.append([round(float(v), 6) for v in e])
            scores.append(kept)
            counts.append(len(kept))
    return {
        "model": model_path.rsplit("/", 1)[-1],
        "num_frames": len(samples),
        "min_score": min_score,
        "embeddings": embeddings,
        "scores": scores,
        "num_detections": counts,
    }
