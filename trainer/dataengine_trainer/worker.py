"""The Temporal worker on task queue `training` and its activities (docs/contracts.md
"Training worker"). Inputs and outputs are small JSON objects of keys and numbers; the data
itself is in the blob store both sides share.

Activities are synchronous (PyTorch holds the CPU) and run in a thread pool. They heartbeat after
every step; Temporal delivers a cancellation on the next heartbeat, and the training loop checks
`activity.is_cancelled()` between steps, so a cancelled run stops within one step."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import http.server
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from .dataset import load_dataset
from .pipeline import evaluate_model, train_to_dir
from .quantize import DEFAULT_CALIBRATION_FRAMES
from .store import opened_store
from .train import Cancelled, TrainConfig

TRAINING_QUEUE = "training"


@dataclass
class TrainInput:
    dataset_key: str
    version: str
    image_root_key: str | None = None
    parent_version: str | None = None
    epochs: int = 8
    seed: int = 0
    batch_size: int | None = None
    learning_rate: float = 2e-3
    max_images: int | None = None
    training_snapshot: str = ""
    # Training frames the detector's INT8 variant is calibrated on; 0 makes no variant.
    int8_calibration_frames: int = DEFAULT_CALIBRATION_FRAMES


@dataclass
class TrainResult:
    kind: str
    version: str
    artifact_key: str
    checkpoint_key: str
    metrics_key: str
    epochs: int
    num_images: int
    final_loss: float
    train_seconds: float
    resumed_from_epoch: int = 0
    # The detector's INT8 variant (model.int8.onnx beside model.onnx), if one was made.
    int8_artifact_key: str | None = None


@dataclass
class EvaluateInput:
    model_key: str
    dataset_key: str
    image_root_key: str | None = None
    split: str | None = None
    score_threshold: float = 0.5


@dataclass
class DetectorMetrics:
    map50: float
    map50_95: float
    per_class_ap50: dict
    precision: float
    recall: float
    num_images: int


@dataclass
class BoxMetrics:
    mean_iou_input: float
    mean_iou_refined: float
    iou_gain: float
    num_objects: int


def model_dir_key(kind: str, version: str) -> str:
    return f"models/{kind}/{version}"


@contextlib.contextmanager
def _heartbeating(interval: float = 1.0):
    """Heartbeats from a side thread every `interval` seconds while the body runs, with the latest
    progress the body reported through the yielded callback. Heartbeating from the training loop
    alone would fall silent during long single operations (decoding a large dataset, ONNX export,
    evaluating thousands of frames), and a heartbeat timeout short enough to notice a crashed
    worker quickly would then fail healthy runs. The thread runs in a copy of the activity's
    context, which is what `activity.heartbeat` looks up; the SDK hands heartbeats to its event
    loop thread-safely."""
    latest: dict = {"stage": "starting"}
    done = threading.Event()
    ctx = contextvars.copy_context()

    def beat() -> None:
        while not done.wait(interval):
            activity.heartbeat(latest)

    thread = threading.Thread(target=ctx.run, args=(beat,), daemon=True)
    activity.heartbeat(latest)
    thread.start()
    try:
        yield lambda progress: latest.update(progress)
    finally:
        done.set()
        thread.join()


def _train(kind: str, inp: TrainInput) -> TrainResult:
    with _heartbeating() as report, opened_store() as store:
        return _train_reporting(kind, inp, report, store)


def _train_reporting(kind: str, inp: TrainInput, report, store) -> TrainResult:
    report({"stage": "loading"})
    dataset_json, image_root = store.fetch_dataset(inp.dataset_key, inp.image_root_key)
    data = load_dataset(dataset_json, image_root, split="train", max_images=inp.max_images)
    if not data.samples:
        raise ValueError(f"dataset {inp.dataset_key} has no images in its train split")
    parent = None
    if inp.parent_version:
        parent_key = f"{model_dir_key(kind, inp.parent_version)}/checkpoint.pt"
        parent = store.fetch(parent_key)
        if parent is None:
            raise FileNotFoundError(
                f"parent checkpoint {parent_key} not found (fine-tuning from {kind} {inp.parent_version})"
            )
    batch = inp.batch_size or (16 if kind == "detection" else 64)
    cfg = TrainConfig(epochs=inp.epochs, batch_size=batch, learning_rate=inp.learning_rate, seed=inp.seed)
    key = model_dir_key(kind, inp.version)
    reference = None
    if kind == "detection":
        reference = load_dataset(dataset_json, image_root, split="val", max_images=300)
    try:
        outcome = train_to_dir(
            kind,
            data,
            inp.version,
            store.path(key),
            cfg,
            parent_checkpoint=parent,
            parent_version=inp.parent_version,
            training_snapshot=inp.training_snapshot,
            progress=report,
            should_stop=activity.is_cancelled,
            reference_data=reference,
            int8_calibration_frames=inp.int8_calibration_frames,
        )
    except Cancelled as err:
        # Re-raised as the SDK's cancellation, so the workflow sees a cancelled activity, not a failure.
        raise CancelledError(str(err)) from err
    report({"stage": "publishing"})
    store.publish(key)
    return TrainResult(
        kind,
        inp.version,
        f"{key}/model.onnx",
        f"{key}/checkpoint.pt",
        f"{key}/metrics.json",
        outcome.epochs,
        outcome.num_images,
        outcome.final_loss,
        outcome.train_seconds,
        outcome.resumed_from_epoch,
        f"{key}/{outcome.int8_path.name}" if outcome.int8_path else None,
    )


@activity.defn(name="train_detector")
def train_detector(inp: TrainInput) -> TrainResult:
    return _train("detection", inp)


@activity.defn(name="train_box_model")
def train_box_model(inp: TrainInput) -> TrainResult:
    return _train("box", inp)


def _evaluate(kind: str, inp: EvaluateInput) -> dict:
    with _heartbeating() as report, opened_store() as store:
        report({"stage": "evaluate"})
        model = store.fetch(inp.model_key)
        if model is None:
            raise FileNotFoundError(f"model {inp.model_key} not found")
        dataset_json, image_root = store.fetch_dataset(inp.dataset_key, inp.image_root_key)
        return evaluate_model(kind, model, dataset_json, image_root, inp.split, inp.score_threshold)


@activity.defn(name="evaluate_detector")
def evaluate_detector(inp: EvaluateInput) -> DetectorMetrics:
    return DetectorMetrics(**_evaluate("detection", inp))


@activity.defn(name="evaluate_box_model")
def evaluate_box_model(inp: EvaluateInput) -> BoxMetrics:
    return BoxMetrics(**_evaluate("box", inp))


ACTIVITIES = [train_detector, train_box_model, evaluate_detector, evaluate_box_model]


def serve_health(port: int) -> http.server.ThreadingHTTPServer:
    """Answers GET /healthz with 200 from a side thread, for an orchestrator's probes: the
    process is up and its worker has started (it is served only once the worker polls)."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/healthz"
            body = b'{"status":"ok"}' if ok else b'{"status":"not found"}'
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # probes every few seconds would flood the log
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def run_worker(
    address: str, namespace: str, task_queue: str, max_concurrent: int = 1, health_port: int = 0
) -> None:
    client = await Client.connect(address, namespace=namespace)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max_concurrent + 1) as pool:
        worker = Worker(
            client,
            task_queue=task_queue,
            activities=ACTIVITIES,
            activity_executor=pool,
            # Training saturates the CPU; more than one at a time only makes each slower.
            max_concurrent_activities=max_concurrent,
            # A cancellation reaches an activity only in the reply to a heartbeat, and the SDK
            # sends heartbeats at most every 0.8 x heartbeat timeout (up to 60 s) by default. Every
            # 2 s makes a cancelled run stop within seconds, for one small RPC per run.
            max_heartbeat_throttle_interval=timedelta(seconds=2),
            default_heartbeat_throttle_interval=timedelta(seconds=2),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            health = serve_health(health_port) if health_port else None
            print(json.dumps({"worker": "training", "task_queue": task_queue, "address": address}), flush=True)
            await stop.wait()
            if health:
                health.shutdown()


def add_parser(sub) -> None:
    w = sub.add_parser("worker", help="run the Temporal training worker")
    w.add_argument("--address", default=os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    w.add_argument("--namespace", default=os.environ.get("TEMPORAL_NAMESPACE", "default"))
    w.add_argument("--task-queue", default=TRAINING_QUEUE)
    w.add_argument("--max-concurrent", type=int, default=1)
    # GET /healthz on this port for liveness and readiness probes (0: none).
    w.add_argument("--health-port", type=int, default=int(os.environ.get("TRAINER_HEALTH_PORT", "0")))
    w.set_defaults(fn=_run_and_exit)


def _run_and_exit(a) -> None:
    asyncio.run(run_worker(a.address, a.namespace, a.task_queue, a.max_concurrent, a.health_port))
    # The worker has shut down cleanly; skip interpreter finalization, where the SDK's native
    # threads and torch's thread pools can abort the process ("PyGILState_Release").
    sys.stdout.flush()
    os._exit(0)
