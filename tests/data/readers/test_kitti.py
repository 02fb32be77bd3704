"""KITTI label_2 folders (occseg.data.readers.kitti): the shared frames and bad lines."""

from __future__ import annotations

import pytest

from occseg.data.readers import DatasetFormatError, read_dataset
from tests.conftest import need_data
from tests.data.readers.builders import by_image, write_png


def test_kitti_sample(shared_data):
    need_data(shared_data, "kitti-sample")
    ds = read_dataset(shared_data / "kitti-sample")
    assert ds.format == "kitti" and len(ds) == 3
    assert ds.num_instances() == 6  # the 4 DontCare lines are skipped
    assert ds.instances_per_class() == {"Car": 2, "Cyclist": 1, "Misc": 1, "Pedestrian": 1, "Truck": 1}
    im0 = by_image(ds)[0]
    assert (im0.width, im0.height) == (1224, 370)  # KITTI frames differ slightly in size
    ped = im0.instances[0]
    assert ped.category == "Pedestrian" and ped.box == (712.40, 143.00, 810.73, 307.92)
    assert ped.mask is None and ped.amodal_mask is None
    assert ped.extra["truncated"] == 0.0 and ped.extra["occluded"] == 0
    assert ped.extra["dimensions"] == [1.89, 0.48, 1.2]
    cyclist = next(i for i in by_image(ds)[1].instances if i.category == "Cyclist")
    assert cyclist.extra["occluded"] == 3


def test_kitti_bad_line(tmp_path):
    write_png(tmp_path / "image_2" / "000007.png", 50, 20)
    (tmp_path / "label_2").mkdir()
    (tmp_path / "label_2" / "000007.txt").write_text("Car 0.0 0 0.1 1 2 3\n")
    with pytest.raises(DatasetFormatError, match=r"000007.txt line 1: .*15"):
        read_dataset(tmp_path)
