import numpy as np
import pytest

from dataengine_trainer.scenes import CLASSES, HEIGHT, SCENARIOS, SEQUENCE_LENGTH, WIDTH, render_frame, split_of


def test_same_inputs_give_the_same_frame():
    a = render_frame(1, "clear", "cam-0", 5)
    b = render_frame(1, "clear", "cam-0", 5)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.boxes == b.boxes
    assert not np.array_equal(np.asarray(a.image), np.asarray(render_frame(2, "clear", "cam-0", 5).image))


def test_boxes_lie_inside_the_frame_and_every_class_appears():
    seen = set()
    for i in range(60):
        f = render_frame(0, "clear", f"cam-{i % 3}", i)
        assert f.image.size == (WIDTH, HEIGHT)
        for b in f.boxes:
            assert 0 <= b.x1 < b.x2 <= WIDTH and 0 <= b.y1 < b.y2 <= HEIGHT
            seen.add(b.category)
    assert seen == set(CLASSES)


def test_objects_move_within_a_sequence():
    first = render_frame(0, "clear", "cam-0", 0)
    second = render_frame(0, "clear", "cam-0", 3)
    assert first.sequence_id == second.sequence_id
    moved = [
        (a.x1, b.x1)
        for a, b in zip(first.boxes, second.boxes, strict=False)
        if a.category == b.category and a.category != "sign"
    ]
    assert any(abs(x0 - x1) > 0.5 for x0, x1 in moved)
    assert render_frame(0, "clear", "cam-0", SEQUENCE_LENGTH).sequence_id != first.sequence_id


def test_shift_scenarios_change_what_the_camera_sees():
    clear = np.asarray(render_frame(0, "clear", "cam-0", 0).image, dtype=np.float32)
    night = np.asarray(render_frame(0, "night", "cam-0", 0).image, dtype=np.float32)
    fog = np.asarray(render_frame(0, "fog", "cam-0", 0).image, dtype=np.float32)
    assert night.mean() < clear.mean() * 0.6
    assert fog.std() < clear.std() * 0.7
    mix = [b.category for i in range(80) for b in render_frame(0, "class_mix", f"cam-{i % 4}", i).boxes]
    base = [b.category for i in range(80) for b in render_frame(0, "clear", f"cam-{i % 4}", i).boxes]
    assert mix.count("cyclist") / len(mix) > 2 * base.count("cyclist") / len(base)
    with pytest.raises(ValueError, match="unknown scenario"):
        render_frame(0, "snow", "cam-0", 0)
    assert set(SCENARIOS) >= {"clear", "night", "fog", "new_camera", "class_mix"}


def test_split_keeps_sequences_together():
    assert split_of("cam-0/clear/3") == split_of("cam-0/clear/3")
    splits = {split_of(f"cam-{i}/clear/{j}") for i in range(5) for j in range(20)}
    assert splits == {"train", "val"}
