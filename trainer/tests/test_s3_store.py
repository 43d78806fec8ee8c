"""The trainer on a bucket: a training step reads its snapshot from an S3-compatible server
(SeaweedFS's `weed mini`, installed by `make install` into .tools) and leaves its model there for
the platform; evaluation reads both back. Nothing is left on the worker's disk."""

import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from temporalio.testing import ActivityEnvironment

from dataengine_trainer import worker
from dataengine_trainer.dataset import generate_dataset

WEED = Path(__file__).resolve().parents[2] / ".tools" / "venv" / "bin" / "weed"
KEYS = {"AWS_ACCESS_KEY_ID": "trainer-test", "AWS_SECRET_ACCESS_KEY": "trainer-test-secret"}
BUCKET = "trainer-test"


def _spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    if not WEED.exists():
        pytest.fail(f"{WEED} is missing: run `make install`")
    root = tmp_path_factory.mktemp("weed")
    (root / "data").mkdir()
    (root / "log").mkdir()
    listeners = ["master", "volume", "filer", "s3", "admin"]
    ports = {f"{n}.port{g}": _spare_port() for n in listeners for g in ("", ".grpc")}
    args = [str(WEED), f"-logdir={root / 'log'}", "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1"]
    args += ["-ip.bind=127.0.0.1", "-master.telemetry=false", "-webdav=false", "-admin.ui=false"]
    args += ["-s3.port.iceberg=0", "-s3.port.lance=0", f"-bucket={BUCKET}"]
    args += [f"-{name}={port}" for name, port in ports.items()]
    with open(root / "out.log", "ab") as log:
        proc = subprocess.Popen(args, env={"PATH": "/usr/bin:/bin", **KEYS}, stdout=log, stderr=log)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="HEAD"), timeout=2)
            break
        except urllib.error.HTTPError as err:
            if err.code == 403:  # The bucket exists; unsigned requests are refused.
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError((root / "out.log").read_text()[-2000:])
        time.sleep(0.25)
    yield endpoint
    # weed mini can take longer than a moment to shut its servers down; the test is over.
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_training_and_evaluation_read_and_write_the_bucket(s3, tmp_path, monkeypatch):
    for k, v in {**KEYS, "STORE_URL": f"s3://{BUCKET}/store", "S3_ENDPOINT": s3}.items():
        monkeypatch.setenv(k, v)
    path_style = Config(s3={"addressing_style": "path"})
    client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1", config=path_style)
    # A snapshot as the platform writes one: dataset.json and its images, keyed under the prefix.
    generate_dataset(tmp_path / "snapshots" / "s1", "clear", 16, cameras=2, seed=11)
    for f in (tmp_path / "snapshots").rglob("*"):
        if f.is_file():
            client.upload_file(str(f), BUCKET, f"store/{f.relative_to(tmp_path).as_posix()}")
    mirrors_before = set(Path(tempfile.gettempdir()).glob("dataengine-trainer-*"))

    env = ActivityEnvironment()
    inp = worker.TrainInput(dataset_key="snapshots/s1/dataset.json", version="s3-1", epochs=1, batch_size=4)
    result = env.run(worker.train_box_model, inp)

    stored = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="store/models/")["Contents"]}
    assert {f"store/{result.artifact_key}", f"store/{result.checkpoint_key}", f"store/{result.metrics_key}"} <= stored
    # The resume state is the step's own working file, not an output.
    assert not any(k.endswith("resume.pt") for k in stored)
    metrics = env.run(
        worker.evaluate_box_model,
        worker.EvaluateInput(model_key=result.artifact_key, dataset_key="snapshots/s1/dataset.json"),
    )
    assert metrics.num_objects > 0
    # Each step's mirror of the bucket is removed when the step ends.
    assert set(Path(tempfile.gettempdir()).glob("dataengine-trainer-*")) == mirrors_before

    # A missing snapshot fails with its key, not with a half-read dataset.
    with pytest.raises(FileNotFoundError, match="snapshots/none/dataset.json"):
        env.run(worker.train_box_model, worker.TrainInput(dataset_key="snapshots/none/dataset.json", version="s3-2"))
