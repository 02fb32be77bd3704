"""Format detection and dispatch (occseg.data.readers: read_dataset, detect_format) and errors common to all formats."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from occseg.data.readers import FORMATS, DatasetFormatError, detect_format, read_dataset
from tests.conftest import need_data
from tests.data.readers.builders import by_image, mask_iou


def test_coco128_yolo_and_coco_agree_per_image(shared_data):
    yolo = read_dataset(shared_data / "coco128-seg", fmt="yolo")
    coco = read_dataset(shared_data / "coco128-seg" / "annotations" / "instances_train2017.json", fmt="coco")
    coco_images = by_image(coco)
    assert set(by_image(yolo)) == set(coco_images)
    ious = []
    for im in yolo.images:
        other = coco_images[im.image_id]
        assert im.path == other.path and (im.width, im.height) == (other.width, other.height)
        assert Counter(i.category for i in im.instances) == Counter(i.category for i in other.instances)
        unmatched = list(other.instances)
        for inst in im.instances:  # nearest box of the same class
            same = [o for o in unmatched if o.category == inst.category]
            best = min(same, key=lambda o: np.abs(np.subtract(o.box, inst.box)).max())
            unmatched.remove(best)
            assert np.abs(np.subtract(best.box, inst.box)).max() <= 1.0
            ious.append(mask_iou(inst.mask, best.mask))
    assert len(ious) == 929
    assert min(ious) >= 0.9  # the smallest objects lose most to the 6-decimal YOLO coordinates
    assert float(np.mean(ious)) >= 0.99


def test_detect_format_of_the_shared_folders(shared_data):
    need_data(shared_data, "coco128-seg", "coco-tiny", "cocoa-demo", "kitti-sample")
    assert detect_format(shared_data / "coco128-seg") == "yolo"
    assert detect_format(shared_data / "coco-tiny") == "coco"
    assert detect_format(shared_data / "cocoa-demo") == "cocoa"
    assert detect_format(shared_data / "cocoa-demo" / "2.json") == "cocoa"
    assert detect_format(shared_data / "kitti-sample") == "kitti"


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"images": [],\n "annotations": [,]\n}')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON .*line 2"):
        read_dataset(path)


def test_unknown_format_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset format 'voc'"):
        read_dataset(tmp_path, fmt="voc")
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        read_dataset(tmp_path / "nothing_here")
    with pytest.raises(DatasetFormatError, match="cannot tell the dataset format"):
        read_dataset(tmp_path)
    assert set(FORMATS) == {"coco", "yolo", "kins", "cocoa", "kitti"}
