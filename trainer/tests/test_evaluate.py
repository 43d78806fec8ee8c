import json

import pytest

from dataengine_trainer.cli import main
from dataengine_trainer.evaluate import coco_metrics


def _perfect(data):
    dets = []
    for s in data.samples:
        for box, label in zip(s.boxes, s.labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            dets.append(
                {
                    "image_id": s.image_id,
                    "category_id": data.category_ids[int(label)],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": 0.9,
                }
            )
    return dets


def test_pycocotools_gives_full_marks_to_ground_truth_and_less_to_shifted_boxes(small_dataset):
    perfect = coco_metrics(small_dataset, _perfect(small_dataset))
    assert perfect["map50"] > 0.99 and perfect["map50_95"] > 0.99
    assert perfect["precision"] == 1.0 and perfect["recall"] == 1.0
    shifted = [
        dict(d, bbox=[d["bbox"][0] + d["bbox"][2] * 0.3, d["bbox"][1], d["bbox"][2], d["bbox"][3]])
        for d in _perfect(small_dataset)
    ]
    worse = coco_metrics(small_dataset, shifted)
    assert worse["map50_95"] < perfect["map50_95"] - 0.2
    assert coco_metrics(small_dataset, [])["map50"] == 0.0


def test_cli_scores_detections_made_elsewhere_and_names_the_missing_option(small_dataset, tmp_path, capsys):
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps(_perfect(small_dataset)))
    main(["evaluate", "--dataset", str(small_dataset.path), "--detections", str(dets)])
    assert json.loads(capsys.readouterr().out)["map50"] > 0.99
    with pytest.raises(SystemExit, match="either --model .* or --detections"):
        main(["evaluate", "--dataset", str(small_dataset.path)])
