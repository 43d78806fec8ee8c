import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from dataengine_trainer.detector import ExportDetector
from dataengine_trainer.pipeline import train_to_dir
from dataengine_trainer.preprocess import letterbox, to_float_chw
from dataengine_trainer.quantize import calibration_indices
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
    b = detector_batch(data.samples[:24], np.random.default_rng(0), augment=False)
    centres = build_targets(b.boxes, b.labels, model.num_classes, 256 // STRIDE, 256 // STRIDE)["centres"]
    with torch.no_grad():
        z = model.embed_at_centres(model(b.images), centres)
    sim = z @ z.T
    same = centres[:, 3][:, None] == centres[:, 3][None, :]
    off_diagonal = ~torch.eye(len(z), dtype=torch.bool)
    assert sim[same & off_diagonal].mean() > 0.8
    assert sim[~same].mean() < 0.5


def test_ignore_regions_take_no_heatmap_loss(tmp_path):
    """A confident peak inside an ignore region (a detection nobody decided on) costs nothing;
    the same peak outside it is a false alarm. Crowd annotations load as ignore regions."""
    from dataengine_trainer.dataset import load_dataset
    from dataengine_trainer.detector import build_targets, detection_loss

    boxes = [torch.tensor([[8.0, 8.0, 40.0, 40.0]])]
    labels = [torch.tensor([0])]
    targets = build_targets(boxes, labels, 2, 64, 64, [torch.tensor([[100.0, 100.0, 160.0, 160.0]])])
    assert targets["ignore"][0, 0, 30, 30] == 1 and targets["ignore"][0, 0, 10, 10] == 0

    def loss_with_peak_at(row: int, col: int) -> float:
        heat = torch.full((1, 2, 64, 64), -6.0)
        heat[0, 0, 6, 6] = 6.0  # the labelled object
        heat[0, 1, row, col] = 6.0  # an unlabelled detection
        out = {"heat": heat, "size": torch.zeros(1, 2, 64, 64), "offset": torch.zeros(1, 2, 64, 64)}
        return detection_loss(out, targets)[1]["heat"]

    assert loss_with_peak_at(30, 30) < loss_with_peak_at(50, 50) / 2

    coco = {
        "categories": [{"id": 1, "name": "vehicle"}],
        "images": [{"id": 1, "file_name": "f.png", "width": 8, "height": 8}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "area": 4, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [4, 4, 3, 3], "area": 9, "iscrowd": 1},
        ],
    }
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "f.png")
    (tmp_path / "dataset.json").write_text(json.dumps(coco))
    sample = load_dataset(tmp_path / "dataset.json").samples[0]
    assert sample.boxes.tolist() == [[1, 1, 3, 3]] and sample.ignore.tolist() == [[4, 4, 7, 7]]


def test_int8_variant_is_quantised_and_agrees_with_the_float_model(small_dataset, tmp_path):
    out = train_to_dir(
        "detection",
        small_dataset,
        "v-int8",
        tmp_path,
        TrainConfig(epochs=2, batch_size=8, seed=1),
        int8_calibration_frames=16,
    )
    assert out.int8_path == tmp_path / "model.int8.onnx"
    float_model, int8_model = onnx.load(str(out.model_path)), onnx.load(str(out.int8_path))
    float_meta = {p.key: p.value for p in float_model.metadata_props}
    int8_meta = {p.key: p.value for p in int8_model.metadata_props}
    # The variant reads like the version it stands in for, and says what it is.
    assert int8_meta.pop("precision") == "int8"
    assert json.loads(int8_meta.pop("quantization"))["calibration_frames"] == 16
    assert int8_meta == float_meta
    ops = {n.op_type for n in int8_model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # Convolution weights come dequantised from 8 bits, except the three output heads' (float).
    dequantised = {n.output[0] for n in int8_model.graph.node if n.op_type == "DequantizeLinear"}
    initializers = {i.name for i in int8_model.graph.initializer}
    convs = {n.name: n for n in int8_model.graph.node if n.op_type == "Conv"}
    heads = ("/model/heat/Conv", "/model/size/Conv", "/model/offset/Conv")
    assert all(c.input[1] in dequantised for name, c in convs.items() if name not in heads)
    assert all(convs[h].input[1] in initializers for h in heads)

    images = torch.stack([letterbox(to_float_chw(small_dataset.samples[i].rgb), 256)[0] for i in range(4)]).numpy()
    f = ort.InferenceSession(str(out.model_path), providers=["CPUExecutionProvider"]).run(None, {"images": images})
    q = ort.InferenceSession(str(out.int8_path), providers=["CPUExecutionProvider"]).run(None, {"images": images})
    assert [a.shape for a in q] == [a.shape for a in f]
    # Frame embeddings point the same way (cosine similarity), and the strongest score moves little.
    cos = (f[3] * q[3]).sum(1) / np.linalg.norm(f[3], axis=1) / np.linalg.norm(q[3], axis=1)
    assert cos.min() > 0.95
    np.testing.assert_allclose(q[1][:, 0], f[1][:, 0], atol=0.05)


def test_calibration_frames_are_a_seeded_spread_sample():
    picked = calibration_indices(10_000, 500, seed=3)
    assert len(picked) == 500 and len(set(picked)) == 500 and picked == sorted(picked)
    assert picked == calibration_indices(10_000, 500, seed=3)
    assert picked != calibration_indices(10_000, 500, seed=4)
    # Spread over the whole dataset, not its first frames.
    assert picked[0] < 200 and picked[-1] > 9_800
    assert calibration_indices(40, 500, seed=0) == list(range(40))
