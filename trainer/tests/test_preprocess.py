import numpy as np
import torch

from dataengine_trainer.preprocess import letterbox, roi_crop, roi_geometry


def test_letterbox_resizes_top_left_and_pads_with_half():
    # 4x2 image, target 2: scale 0.5, resized to 2x1; bilinear with half-pixel centres at a
    # 2x downscale averages each pair of pixels.
    img = torch.tensor([[[0.0, 1.0, 0.2, 0.4], [1.0, 1.0, 0.6, 0.8]]]).repeat(3, 1, 1)
    out, scale = letterbox(img, 2)
    assert scale == 0.5
    assert out.shape == (3, 2, 2)
    expected_row = torch.tensor([(0.0 + 1.0 + 1.0 + 1.0) / 4, (0.2 + 0.4 + 0.6 + 0.8) / 4])
    assert torch.allclose(out[0, 0], expected_row, atol=1e-6)
    assert torch.all(out[:, 1] == 0.5)


def test_letterbox_keeps_an_image_of_the_target_size():
    img = torch.rand(3, 8, 8)
    out, scale = letterbox(img, 8)
    assert scale == 1.0 and torch.equal(out, img)


def test_roi_crop_geometry_and_outside_pixels():
    x0, y0, side = roi_geometry((10, 10, 30, 20))
    assert side == 40 and (x0, y0) == (0, -5)
    frame = torch.rand(3, 50, 60)
    outside = roi_crop(frame, (1000, 1000, 1010, 1010), size=8)
    assert torch.all(outside == 0.5)
    # A crop whose sampling grid lands on pixel centres reproduces those pixels exactly.
    crop = roi_crop(frame, (20, 20, 28, 28), size=16)  # side 16 from x0 = 16: one sample per pixel centre
    assert np.allclose(crop.numpy(), frame[:, 16:32, 16:32].numpy(), atol=1e-5)
