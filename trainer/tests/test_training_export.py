import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from dataengine_trainer.detector import ExportDetector
from dataengine_trainer.pipeline import train_to_dir
from dataengine_trainer.train import TrainConfig, train_detector


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
    assert meta["object_embedding_dim"] == "64"

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
    assert [g.shape for g in got] == [(3, 100, 4), (3, 100), (3, 100), (3, 128), (3, 100, 64)]
    assert got[2].dtype == np.int64
    np.testing.assert_allclose(got[1], expected[1], atol=1e-4)
    np.testing.assert_allclose(got[3], expected[3], atol=1e-4)
    # Object embeddings are unit length, read where each detection's peak is.
    np.testing.assert_allclose(np.linalg.norm(got[4], axis=2), 1.0, atol=1e-4)
    np.testing.assert_allclose(got[4][:, :5], expected[4][:, :5], atol=1e-4)
    # Boxes of well-separated peaks match; near-ties in score may swap order, so compare top ones.
    np.testing.assert_allclose(got[0][:, :5], expected[0][:, :5], atol=1e-4)


def test_training_is_reproducible(small_dataset, tmp_path):
    a = train_to_dir("box", small_dataset, "a", tmp_path / "a", TrainConfig(epochs=1, batch_size=16, seed=5))
    b = train_to_dir("box", small_dataset, "b", tmp_path / "b", TrainConfig(epochs=1, batch_size=16, seed=5))
    assert a.final_loss == pytest.approx(b.final_loss, rel=1e-6)
    ma = torch.load(a.checkpoint_path, weights_only=False)["model"]
    mb = torch.load(b.checkpoint_path, weights_only=False)["model"]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)


def test_object_embeddings_separate_classes_after_training(tmp_path):
    """The contrastive head puts objects of one class close together and objects of two classes
    apart, in the exported (eval-mode) graph. 128 frames: fewer leave BatchNorm's running
    statistics too close to their start for any head to separate anything."""
    from dataengine_trainer.dataset import generate_dataset, load_dataset
    from dataengine_trainer.detector import STRIDE, build_targets
    from dataengine_trainer.train import detector_batch

    generate_dataset(tmp_path / "scenes", "clear", 128, cameras=2, seed=3)
    data = load_dataset(tmp_path / "scenes" / "dataset.json")
    model, _ = train_detector(data, TrainConfig(epochs=4, batch_size=8, seed=2), tmp_path)
    images, boxes, labels = detector_batch(data.samples[:24], np.random.default_rng(0), augment=False)
    centres = build_targets(boxes, labels, model.num_classes, 256 // STRIDE, 256 // STRIDE)["centres"]
    with torch.no_grad():
        dense = model(images)["objects"]
    z = torch.nn.functional.normalize(dense[centres[:, 0], :, centres[:, 1], centres[:, 2]], dim=1)
    sim = z @ z.T
    same = centres[:, 3][:, None] == centres[:, 3][None, :]
    off_diagonal = ~torch.eye(len(z), dtype=torch.bool)
    assert sim[same & off_diagonal].mean() > 0.8
    assert sim[~same].mean() < 0.5
