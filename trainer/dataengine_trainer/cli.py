"""`python -m dataengine_trainer <command>`: the trainer's command line (also reached through
`npm run dataengine -- <command>`)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from .dataset import generate_dataset, load_dataset
from .evaluate import coco_metrics, reference_stats
from .pipeline import evaluate_model, train_to_dir
from .preprocess import decode_rgb, letterbox, roi_crop, to_float_chw
from .quantize import DEFAULT_CALIBRATION_FRAMES, quantize_detector
from .scenes import SCENARIOS
from .train import TrainConfig, peak_rss_mb


def _bar(total: int, desc: str):
    return tqdm(total=total, desc=desc, unit="step", leave=False, dynamic_ncols=True, disable=not sys.stderr.isatty())


def _progress_printer(desc: str):
    state = {"bar": None, "epoch": 0}

    def report(p: dict) -> None:
        if "epoch" not in p:  # a stage after training (quantizing)
            print(f"{desc}: {p.get('stage')}", file=sys.stderr)
            return
        if p["epoch"] != state["epoch"]:
            if state["bar"] is not None:
                state["bar"].close()
            state["epoch"] = p["epoch"]
            state["bar"] = _bar(p["steps"], f"{desc} epoch {p['epoch']}/{p['epochs']}")
        state["bar"].update(1)
        state["bar"].set_postfix(loss=f"{p['loss']:.3f}")
        if p["step"] == p["steps"]:
            print(f"{desc}: epoch {p['epoch']}/{p['epochs']} loss {p['loss']:.4f}", file=sys.stderr)

    return report


def cmd_generate(a) -> None:
    with _bar(a.count, f"generating {a.scenario}") as bar:
        path = generate_dataset(
            a.out, a.scenario, a.count, a.cameras, a.seed, a.start_index, progress=bar.update, stride=a.stride
        )
    print(path)


def _train(a, kind: str) -> None:
    data = load_dataset(a.dataset, a.image_root, split=a.split, max_images=a.max_images)
    cfg = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.learning_rate, seed=a.seed)
    outcome = train_to_dir(
        kind,
        data,
        a.version,
        Path(a.out),
        cfg,
        parent_checkpoint=Path(a.parent_checkpoint) if a.parent_checkpoint else None,
        progress=_progress_printer(kind),
        int8_calibration_frames=getattr(a, "int8_calibration_frames", 0),
    )
    print(
        json.dumps(
            {
                "model": str(outcome.model_path),
                "int8_model": str(outcome.int8_path) if outcome.int8_path else None,
                "final_loss": outcome.final_loss,
                "train_seconds": round(outcome.train_seconds, 1),
                "num_images": outcome.num_images,
                "peak_rss_mb": round(peak_rss_mb()),
            }
        )
    )


def cmd_evaluate(a) -> None:
    if (a.model is None) == (a.detections is None):
        raise SystemExit("evaluate: give either --model (run it on the dataset) or --detections (score these)")
    image_root = Path(a.image_root) if a.image_root else None
    if a.detections:
        # Detections made elsewhere (by the platform's loop, say), in COCO results format.
        metrics = coco_metrics(
            load_dataset(Path(a.dataset), image_root, a.split),
            json.loads(Path(a.detections).read_text()),
            a.score_threshold,
        )
    else:
        metrics = evaluate_model(a.kind, Path(a.model), Path(a.dataset), image_root, a.split, a.score_threshold)
    print(json.dumps(metrics, indent=2))


def cmd_preprocess(a) -> None:
    tensor, _ = letterbox(to_float_chw(decode_rgb(Path(a.image).read_bytes())), a.size)
    Path(a.out).write_bytes(tensor.numpy().astype("<f4").tobytes())


def cmd_roi(a) -> None:
    region = tuple(float(v) for v in a.region.split(","))
    if len(region) != 4:
        raise SystemExit("--region must be x1,y1,x2,y2")
    crop = roi_crop(to_float_chw(decode_rgb(Path(a.image).read_bytes())), region)
    Path(a.out).write_bytes(crop.numpy().astype("<f4").tobytes())


def build_models(
    out: Path,
    frames: int,
    val_frames: int,
    det_epochs: int,
    box_epochs: int,
    seed: int,
    scenarios_eval: list[str],
    eval_frames: int,
    work: Path,
) -> dict:
    """Generates a training set, trains and exports both models into `out`, and evaluates them."""
    train_dir = work / "train"
    generate_dataset(train_dir, "clear", frames, cameras=4, seed=seed)
    data = load_dataset(train_dir / "dataset.json")
    started = time.time()
    det = train_to_dir(
        "detection",
        data,
        "seed",
        work / "detection",
        TrainConfig(epochs=det_epochs, seed=seed),
        progress=_progress_printer("detector"),
    )
    box = train_to_dir(
        "box",
        data,
        "seed",
        work / "box",
        TrainConfig(epochs=box_epochs, seed=seed, batch_size=64),
        progress=_progress_printer("box model"),
    )
    train_seconds = time.time() - started
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(det.model_path, out / "detection.onnx")
    shutil.copy(box.model_path, out / "box.onnx")
    evaluation = evaluate_scenarios(out / "detection.onnx", scenarios_eval, eval_frames, seed, work)
    box_metrics = evaluate_model("box", out / "box.onnx", work / "eval-clear" / "dataset.json", None, None)
    # The drift reference ships with the model: its embeddings on held-out frames of the cameras
    # it was trained on (frame indices it never saw), i.e. its validation data.
    # One frame per scene (stride = the sequence length): consecutive frames of a scene are nearly
    # identical, and a reference of correlated frames would make every new scene look like drift.
    generate_dataset(work / "reference", "clear", 200, cameras=4, seed=seed, start_index=frames // 4 + 1000, stride=16)
    ref = reference_stats(
        str(out / "detection.onnx"), load_dataset(work / "reference" / "dataset.json"), max_images=200
    )
    (out / "reference.json").write_text(json.dumps(ref))
    return {
        "seed": seed,
        "train_frames": frames,
        "detector_epochs": det_epochs,
        "box_epochs": box_epochs,
        "train_seconds": round(train_seconds, 1),
        "peak_rss_mb": round(peak_rss_mb()),
        "detector": evaluation,
        "detector_int8": add_int8_variant(out, data, scenarios_eval, eval_frames, seed, work),
        "box_model": box_metrics,
    }


def evaluate_scenarios(model: Path, scenarios: list[str], eval_frames: int, seed: int, work: Path) -> dict:
    """mAP of a detector per scenario on held-out frames: a different seed than training, so no
    frame of evaluation was seen in training (generated once per `work` folder)."""
    evaluation = {}
    for scenario in scenarios:
        d = work / f"eval-{scenario}"
        if not (d / "dataset.json").exists():
            generate_dataset(d, scenario, eval_frames, cameras=4, seed=seed + 1000)
        m = evaluate_model("detection", model, d / "dataset.json", None, None)
        evaluation[scenario] = {k: m[k] for k in ("map50", "map50_95", "precision", "recall", "per_class_ap50")}
        print(f"{model.name} {scenario}: mAP@0.5 {m['map50']:.3f}  mAP@[.5:.95] {m['map50_95']:.3f}", file=sys.stderr)
    return evaluation


def add_int8_variant(out: Path, data, scenarios_eval: list[str], eval_frames: int, seed: int, work: Path) -> dict:
    """Quantizes out/detection.onnx to out/detection.int8.onnx on the training frames, and
    evaluates it on the same held-out frames as the float model."""
    quantize_detector(out / "detection.onnx", out / "detection.int8.onnx", data, DEFAULT_CALIBRATION_FRAMES, seed)
    return {
        "calibration_frames": min(DEFAULT_CALIBRATION_FRAMES, len(data.samples)),
        "evaluation": evaluate_scenarios(out / "detection.int8.onnx", scenarios_eval, eval_frames, seed, work),
    }


def cmd_seed_models(a) -> None:
    out = Path(a.out)
    if a.int8_only:
        # The float seed models stay as they are; only their INT8 variant is (re)made, from the
        # same training frames, and its evaluation added to metrics.json.
        metrics = json.loads((out / "metrics.json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            generate_dataset(Path(tmp) / "train", "clear", metrics["train_frames"], cameras=4, seed=metrics["seed"])
            data = load_dataset(Path(tmp) / "train" / "dataset.json")
            metrics["detector_int8"] = add_int8_variant(
                out, data, list(metrics["detector"]), a.eval_frames, metrics["seed"], Path(tmp)
            )
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print(json.dumps(metrics["detector_int8"], indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        metrics = build_models(
            out, a.frames, 0, a.epochs, a.box_epochs, a.seed, SCENARIOS[:-1] + ["class_mix"], a.eval_frames, Path(tmp)
        )
    metrics["command"] = " ".join(["python -m dataengine_trainer"] + sys.argv[1:])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))


def cmd_tiny_models(a) -> None:
    """Small, quickly trained models for tests: the suite never depends on the seed models."""
    out = Path(a.out)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate_dataset(work / "train", "clear", a.frames, cameras=2, seed=a.seed)
        data = load_dataset(work / "train" / "dataset.json")
        for kind, name, epochs in (("detection", "detection.onnx", 2), ("box", "box.onnx", 2)):
            o = train_to_dir(
                kind,
                data,
                f"tiny-{a.seed}",
                work / kind,
                TrainConfig(epochs=epochs, seed=a.seed, batch_size=8),
                int8_calibration_frames=16 if kind == "detection" else 0,
            )
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(o.model_path, out / name)
            shutil.copy(o.checkpoint_path, out / name.replace(".onnx", ".pt"))
            if o.int8_path:
                shutil.copy(o.int8_path, out / name.replace(".onnx", ".int8.onnx"))
    print(out)


def cmd_shift_benchmark(a) -> None:
    """mAP of a base detector in-distribution and per shift scenario, then after fine-tuning on
    N labelled frames of each scenario: how much of each shift's drop labels win back."""
    sizes = [int(v) for v in a.sizes.split(",")]
    scenarios = [s for s in (a.scenarios.split(",") if a.scenarios else SCENARIOS) if s != "clear"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate_dataset(work / "base", "clear", a.base_frames, cameras=4, seed=a.seed)
        base = train_to_dir(
            "detection",
            load_dataset(work / "base" / "dataset.json"),
            "base",
            work / "base-model",
            TrainConfig(epochs=a.base_epochs, seed=a.seed),
            progress=_progress_printer("base"),
        )
        evals = {}
        for scenario in ["clear"] + scenarios:
            generate_dataset(work / f"eval-{scenario}", scenario, a.eval_frames, cameras=4, seed=a.seed + 1000)
            evals[scenario] = work / f"eval-{scenario}" / "dataset.json"
        score = lambda model: {s: evaluate_model("detection", model, evals[s], None, None) for s in evals}  # noqa: E731
        base_scores = score(base.model_path)
        rows = []
        for scenario in scenarios:
            generate_dataset(work / f"ft-{scenario}", scenario, max(sizes), cameras=4, seed=a.seed + 2000)
            row = {
                "scenario": scenario,
                "clear_before": base_scores["clear"]["map50"],
                "shifted_before": base_scores[scenario]["map50"],
            }
            for n in sizes:
                data = load_dataset(work / f"ft-{scenario}" / "dataset.json", max_images=n)
                tuned = train_to_dir(
                    "detection",
                    data,
                    f"ft-{scenario}-{n}",
                    work / f"ft-model-{scenario}-{n}",
                    TrainConfig(epochs=a.ft_epochs, seed=a.seed, learning_rate=1e-3),
                    parent_checkpoint=base.checkpoint_path,
                )
                m = evaluate_model("detection", tuned.model_path, evals[scenario], None, None)
                row[f"after_{n}"] = m["map50"]
                row[f"after_{n}_map50_95"] = m["map50_95"]
                drop = row["clear_before"] - row["shifted_before"]
                row[f"recovered_{n}"] = (m["map50"] - row["shifted_before"]) / drop if drop > 0 else None
                print(f"{scenario}: {n} labels -> mAP@0.5 {m['map50']:.3f}", file=sys.stderr)
            rows.append(row)
    table = {
        "base": {s: {"map50": v["map50"], "map50_95": v["map50_95"]} for s, v in base_scores.items()},
        "fine_tuning": rows,
        "settings": vars(a) | {"fn": None},
    }
    print(json.dumps(table, indent=2, default=str))


def cmd_fine_tune_eval(a) -> None:
    """Fine-tunes a detector from a parent checkpoint on a dataset (e.g. the frames a sampling
    policy chose, with their labels) and scores it on named evaluation sets, in one process:
    the label-efficiency benchmark (bench/label-efficiency.ts) calls this once per selection."""
    data = load_dataset(a.dataset, a.image_root)
    evals = dict(item.split("=", 1) for item in a.eval.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        tuned = train_to_dir(
            "detection",
            data,
            "fine-tuned",
            Path(tmp),
            TrainConfig(epochs=a.epochs, seed=a.seed, learning_rate=a.learning_rate),
            parent_checkpoint=Path(a.parent_checkpoint),
        )
        scores = {
            name: evaluate_model("detection", tuned.model_path, Path(path), None, None) for name, path in evals.items()
        }
    print(
        json.dumps(
            {
                "num_images": len(data.samples),
                "epochs": a.epochs,
                "train_seconds": round(tuned.train_seconds, 1),
                "map50": {n: m["map50"] for n, m in scores.items()},
                "map50_95": {n: m["map50_95"] for n, m in scores.items()},
            }
        )
    )


def cmd_reference(a) -> None:
    """Writes a detector's drift reference (embeddings, scores, detections per frame) for a dataset."""
    ref = reference_stats(a.model, load_dataset(a.dataset), max_images=a.max_images)
    Path(a.out).write_text(json.dumps(ref))
    print(a.out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="dataengine_trainer", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="render scenes to PNG + COCO JSON")
    g.add_argument("--out", required=True)
    g.add_argument("--scenario", default="clear", choices=SCENARIOS)
    g.add_argument("--count", type=int, default=1000)
    g.add_argument("--cameras", type=int, default=4)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--start-index", type=int, default=0)
    g.add_argument("--stride", type=int, default=1, help="frame index step per camera (16 = one frame per scene)")
    g.set_defaults(fn=cmd_generate)

    for name, kind in (("train-detector", "detection"), ("train-box", "box")):
        t = sub.add_parser(name, help=f"train the {kind} model from a COCO dataset and export ONNX")
        t.add_argument("--dataset", required=True, help="COCO JSON file")
        t.add_argument(
            "--image-root", default=None, help="folder image file names are relative to (default: the dataset's folder)"
        )
        t.add_argument("--out", required=True, help="artifact folder: model.onnx, checkpoint.pt, metrics.json")
        t.add_argument("--version", default="local")
        t.add_argument("--split", default=None, help="train only on images of this split")
        t.add_argument("--max-images", type=int, default=None)
        t.add_argument("--epochs", type=int, default=8)
        t.add_argument("--batch-size", type=int, default=16 if kind == "detection" else 64)
        t.add_argument("--learning-rate", type=float, default=2e-3)
        t.add_argument("--seed", type=int, default=0)
        t.add_argument("--parent-checkpoint", default=None, help="fine-tune from this checkpoint.pt")
        if kind == "detection":
            t.add_argument(
                "--int8-calibration-frames",
                type=int,
                default=DEFAULT_CALIBRATION_FRAMES,
                help="training frames the INT8 variant (model.int8.onnx) is calibrated on; 0: no variant",
            )
        t.set_defaults(fn=lambda a, kind=kind: _train(a, kind))

    e = sub.add_parser("evaluate", help="COCO metrics (pycocotools) of an ONNX model on a dataset")
    e.add_argument("--kind", choices=["detection", "box"], default="detection")
    e.add_argument("--model", default=None, help="ONNX model to run on the dataset")
    e.add_argument("--detections", default=None, help="instead of --model: COCO results JSON to score (detection only)")
    e.add_argument("--dataset", required=True)
    e.add_argument("--image-root", default=None)
    e.add_argument("--split", default=None)
    e.add_argument("--score-threshold", type=float, default=0.5)
    e.set_defaults(fn=cmd_evaluate)

    s = sub.add_parser("seed-models", help="generate scenes, train and evaluate the initial models")
    s.add_argument("--out", default="models/seed")
    s.add_argument("--frames", type=int, default=4000)
    s.add_argument("--epochs", type=int, default=6)
    s.add_argument("--box-epochs", type=int, default=2)
    s.add_argument("--eval-frames", type=int, default=300)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--int8-only", action="store_true", help="keep the float models in --out; only make their INT8 variant again"
    )
    s.set_defaults(fn=cmd_seed_models)

    ti = sub.add_parser("tiny-models", help="small models for tests, in seconds")
    ti.add_argument("--out", required=True)
    ti.add_argument("--frames", type=int, default=48)
    ti.add_argument("--seed", type=int, default=0)
    ti.set_defaults(fn=cmd_tiny_models)

    sb = sub.add_parser(
        "shift-benchmark", help="mAP drop per shift scenario and recovery after fine-tuning on N labels"
    )
    sb.add_argument("--base-frames", type=int, default=2000)
    sb.add_argument("--base-epochs", type=int, default=5)
    sb.add_argument("--sizes", default="500,2000")
    sb.add_argument("--ft-epochs", type=int, default=6)
    sb.add_argument("--eval-frames", type=int, default=200)
    sb.add_argument("--seed", type=int, default=0)
    sb.add_argument("--scenarios", default=None, help="comma-separated shift scenarios (default: all)")
    sb.set_defaults(fn=cmd_shift_benchmark)

    fe = sub.add_parser(
        "fine-tune-eval", help="fine-tune a detector on a dataset and print its mAP on named evaluation sets"
    )
    fe.add_argument("--dataset", required=True, help="COCO JSON of the labelled frames")
    fe.add_argument("--image-root", default=None)
    fe.add_argument("--parent-checkpoint", required=True)
    fe.add_argument("--epochs", type=int, default=6)
    fe.add_argument("--learning-rate", type=float, default=1e-3)
    fe.add_argument("--seed", type=int, default=0)
    fe.add_argument("--eval", required=True, help="name=dataset.json[,name=dataset.json...]")
    fe.set_defaults(fn=cmd_fine_tune_eval)

    rf = sub.add_parser("reference", help="write a detector's drift reference.json for a dataset of held-out frames")
    rf.add_argument("--model", required=True)
    rf.add_argument("--dataset", required=True)
    rf.add_argument("--out", required=True)
    rf.add_argument("--max-images", type=int, default=300)
    rf.set_defaults(fn=cmd_reference)

    pp = sub.add_parser("preprocess", help="write the detector input tensor of an image (float32 CHW, little-endian)")
    pp.add_argument("--image", required=True)
    pp.add_argument("--out", required=True)
    pp.add_argument("--size", type=int, default=256)
    pp.set_defaults(fn=cmd_preprocess)

    r = sub.add_parser("roi", help="write the box-model crop tensor of a region (float32 CHW, little-endian)")
    r.add_argument("--image", required=True)
    r.add_argument("--region", required=True, help="x1,y1,x2,y2 in frame pixels")
    r.add_argument("--out", required=True)
    r.set_defaults(fn=cmd_roi)

    from . import camera, worker  # imported here: both pull in network libraries

    camera.add_parser(sub)
    worker.add_parser(sub)

    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
