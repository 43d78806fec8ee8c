import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from dataengine_trainer.detector import ExportDetector
from dataengine_trainer.pipeline import train_to_dir
from dataengine_trainer.train import TrainConfig


def test_detector_trains_exports_and_onnx_matches_pytorch(small_dataset, tmp_path):
    losses = []
    out = train_to_dir(
        "detection",
        small_dataset,
        "v-test",
        tmp_path,
        TrainConfig(epochs=2, batch_size=8, seed=1),
        progress=lambda p: losses.append(p["loss"]),
    )
    assert losses[-1] < losses[0]
    model = onnx.load(str(out.model_path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["kind"] == "detection" and meta["version"] == "v-test"
    assert json.loads(meta["class_names"]) == ["vehicle", "pedestrian", "cyclist", "sign"]
    assert meta["input_size"] == "256" and meta["embedding_dim"] == "128" and meta["max_detections"] == "100"

    checkpoint = torch.load(out.checkpoint_path, weights_only=False)
    from dataengine_trainer.detector import Detector

    torch_model = Detector()
    torch_model.load_state_dict(checkpoint["model"])
    wrapper = ExportDetector(torch_model.eval()).eval()
    x = torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = [t.numpy() for t in wrapper(x)]
    session = ort.InferenceSession(str(out.model_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})
    assert [g.shape for g in got] == [(3, 100, 4), (3, 100), (3, 100), (3, 128)]
    assert got[2].dtype == np.int64
    np.testing.assert_allclose(got[1], expected[1], atol=1e-4)
    np.testing.assert_allclose(got[3], expected[3], atol=1e-4)
    # Boxes of well-separated peaks match; near-ties in score may swap order, so compare top ones.
    np.testing.assert_allclose(got[0][:, :5], expected[0][:, :5], atol=1e-4)


def test_training_is_reproducible(small_dataset, tmp_path):
    a = train_to_dir("box", small_dataset, "a", tmp_path / "a", TrainConfig(epochs=1, batch_size=16, seed=5))
    b = train_to_dir("box", small_dataset, "b", tmp_path / "b", TrainConfig(epochs=1, batch_size=16, seed=5))
    assert a.final_loss == pytest.approx(b.final_loss, rel=1e-6)
    ma = torch.load(a.checkpoint_path, weights_only=False)["model"]
    mb = torch.load(b.checkpoint_path, weights_only=False)["model"]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
