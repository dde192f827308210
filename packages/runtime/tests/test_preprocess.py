"""Letterbox: geometry by hand, round trips on landscape, portrait and square frames."""

from __future__ import annotations

import numpy as np
import pytest

from bienbao.runtime import Letterbox, preprocess


def test_a_dashcam_frame_by_hand() -> None:
    box = Letterbox.fit((360, 640), (640, 640))
    # gain 1.0; 640x360 sits in the middle: (640 - 360) / 2 = 140 rows of padding on top
    assert (box.gain, box.pad_x, box.pad_y, box.resized) == (1.0, 0, 140, (360, 640))
    # the same frame into a 16:9 input (bienbao export --imgsz 640 --rect): 12 rows of padding, not 140
    rect = Letterbox.fit((360, 640), (384, 640))
    assert (rect.gain, rect.pad_x, rect.pad_y, rect.resized) == (1.0, 0, 12, (360, 640))
    # a 1280x720 camera into 480x832 (--imgsz 832 --rect): scaled by 0.65, 6 rows top and bottom
    big = Letterbox.fit((720, 1280), (480, 832))
    assert (big.gain, big.resized, big.pad_y) == (0.65, (468, 832), 6)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ((360, 640), (640, 640)),  # landscape dashcam frame
        ((1080, 1920), (640, 640)),  # landscape, downscaled
        ((1280, 720), (640, 640)),  # portrait phone video
        ((500, 500), (640, 640)),  # square, upscaled
        ((481, 853), (384, 640)),  # odd sizes into a non-square input
        ((360, 640), (384, 640)),  # a dashcam frame into its 16:9 input
        ((1080, 1920), (544, 960)),  # full HD into 960 x 544
    ],
)
def test_boxes_round_trip_through_the_letterbox(source, target) -> None:
    box = Letterbox.fit(source, target)
    height, width = source
    rng = np.random.default_rng(0)
    xy = rng.uniform([0, 0], [width * 0.8, height * 0.8], size=(50, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, size=(50, 2))], axis=1).clip(0, [width, height] * 2)
    back = box.to_source(box.to_target(boxes))
    assert np.allclose(back, boxes, atol=1e-3)
    # the whole frame maps onto exactly the unpadded area of the network input
    corners = box.to_target(np.array([[0, 0, width, height]], np.float32))[0]
    assert corners[0] == box.pad_x and corners[1] == box.pad_y
    assert abs(corners[2] - (box.pad_x + width * box.gain)) < 1e-3
    assert abs(corners[3] - (box.pad_y + height * box.gain)) < 1e-3
    assert box.pad_x + box.resized[1] <= target[1] and box.pad_y + box.resized[0] <= target[0]


@pytest.mark.parametrize("shape", [(360, 640, 3), (640, 360, 3), (333, 333, 3)])
def test_preprocess_layout_colour_and_padding(shape) -> None:
    frame = np.zeros(shape, np.uint8)
    frame[..., 0] = 255  # pure blue in BGR
    tensor, box = preprocess(frame, (640, 640))
    assert tensor.shape == (1, 3, 640, 640) and tensor.dtype == np.float32
    top, left = box.pad_y, box.pad_x
    inside = tensor[0, :, top + 5, left + 5]
    assert np.allclose(inside, [0.0, 0.0, 1.0])  # RGB order: blue is the last channel
    if top:
        assert np.allclose(tensor[0, :, 0, 320], 114 / 255)  # grey padding


def test_boxes_outside_the_frame_are_clipped() -> None:
    box = Letterbox.fit((360, 640), (640, 640))
    clipped = box.to_source(np.array([[-10, 100, 700, 600]], np.float32))[0]
    assert clipped.tolist() == [0, 0, 640, 360]


def test_a_frame_that_is_not_bgr_is_refused() -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        preprocess(np.zeros((10, 10), np.uint8), (64, 64))
