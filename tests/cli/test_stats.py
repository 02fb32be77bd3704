"""``occseg stats`` and the summary it prints."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from occseg.cli.main import cli
from occseg.data.annotation import AnnotatedImage, Dataset, Instance
from occseg.data.masks import LazyMask
from occseg.data.stats import dataset_stats, format_stats


def run(*args: str):
    return CliRunner().invoke(cli, ["stats", *args])


def count_row(output: str, label: str) -> int:
    m = re.search(rf"^\s+{re.escape(label)}\s+(\d+)\s*$", output, re.M)
    assert m, f"no row {label!r} in:\n{output}"
    return int(m.group(1))


def test_coco128_folder(shared_data):
    result = run(str(shared_data / "coco128-seg"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "format:    yolo" in out
    assert "images:    126" in out
    assert "instances: 929" in out
    assert count_row(out, "person") == 254 and count_row(out, "car") == 46 and count_row(out, "total") == 929
    assert "000000000656" in out and "000000000659" in out  # the warnings
    assert "none (no instance has both a visible and an amodal mask)" in out


def test_coco128_json(shared_data):
    result = run(str(shared_data / "coco128-seg" / "annotations" / "instances_train2017.json"))
    assert result.exit_code == 0, result.output
    assert "format:    coco" in result.output and "instances: 929" in result.output
    assert "warnings (0):" in result.output
    quiet = run(str(shared_data / "coco128-seg" / "annotations" / "instances_train2017.json"), "--no-progress")
    assert quiet.exit_code == 0 and quiet.output == result.output  # --no-progress changes nothing in the summary


def test_cocoa_levels(shared_data):
    result = run(str(shared_data / "cocoa-demo"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "format:    cocoa" in out and "instances: 48" in out
    assert "occlusion levels (48 objects with amodal masks):" in out
    levels = [
        count_row(out, f"{name} [{lo}, {hi})")
        for name, lo, hi in [
            ("L0", "0.00", "0.01"),
            ("L1", "0.01", "0.30"),
            ("L2", "0.30", "0.60"),
            ("L3", "0.60", "0.90"),
        ]
    ]
    assert levels == [27, 12, 8, 1]  # 24 unoccluded + 3 barely occluded in L0
    assert count_row(out, ">= 0.90 (no level)") == 0


def test_format_option_and_errors(shared_data, tmp_path):
    coco_json = shared_data / "coco128-seg" / "annotations" / "instances_train2017.json"
    result = run(str(coco_json), "--format", "kins")
    assert result.exit_code == 2
    assert "occseg: error:" in result.output and "instances_train2017.json: not a KINS file" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [\n\n oops]}')
    result = run(str(bad))
    assert result.exit_code == 2 and "bad.json: not valid JSON" in result.output and "line 3" in result.output
    result = run(str(tmp_path / "missing.json"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_images_option(tmp_path):
    from PIL import Image

    (tmp_path / "pics").mkdir()
    Image.new("RGB", (20, 10)).save(tmp_path / "pics" / "a.png")
    obj = {
        "images": [{"id": 1, "file_name": "a.png"}],  # no size: read from the image header
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [15, 5, 10, 10]},
                        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [2, 2, 0, 3]}],
    }  # fmt: skip
    (tmp_path / "gt.json").write_text(json.dumps(obj))
    result = run(str(tmp_path / "gt.json"), "--images", str(tmp_path / "pics"), "--max-warnings", "1")
    assert result.exit_code == 0, result.output
    assert "instances: 2" in result.output and count_row(result.output, "thing") == 2
    assert "warnings (2):" in result.output and "annotation 2" in result.output and "clipped" in result.output
    assert "... and 1 more (use --max-warnings)" in result.output


def test_stats_of_a_constructed_dataset():
    def rect(x2: int) -> LazyMask:
        m = np.zeros((4, 10), bool)
        m[:, :x2] = True
        return LazyMask.from_array(m)

    full = rect(10)
    insts = [
        Instance(1, "car", (0.0, 0.0, 10.0, 4.0), mask=full, amodal_mask=full),  # 0
        Instance(2, "car", (0.0, 0.0, 9.0, 4.0), mask=rect(9), amodal_mask=full),  # 0.1
        Instance(3, "car", (0.0, 0.0, 5.0, 4.0), mask=rect(5), amodal_mask=full),  # 0.5
        Instance(4, "van", (0.0, 0.0, 3.0, 4.0), mask=rect(3), amodal_mask=full),  # 0.7
        Instance(5, "van", (0.0, 0.0, 1.0, 4.0), mask=rect(1), amodal_mask=full),  # 0.9: no level
        Instance(6, "van", (0.0, 0.0, 1.0, 4.0), iscrowd=True),  # box only
    ]
    ds = Dataset([AnnotatedImage(1, Path("/a.png"), 10, 4, insts)], ["car", "van"], Path("/ds"), "kins", ["w1"])
    stats = dataset_stats(ds)
    assert (stats.num_images, stats.num_instances, stats.num_masks, stats.num_amodal) == (1, 6, 5, 5)
    assert stats.levels == {"L0": 1, "L1": 1, "L2": 1, "L3": 1} and stats.heavy == 1 and stats.num_crowd == 1
    assert stats.per_class == {"car": 3, "van": 3}
    text = format_stats(stats)
    assert "instances: 6" in text and "masks:     5 visible, 5 amodal, 1 crowd" in text
    assert count_row(text, "L3 [0.60, 0.90)") == 1 and count_row(text, ">= 0.90 (no level)") == 1
    assert "warnings (1):\n  w1" in text


def test_image_files_are_checked_against_their_annotated_size(tmp_path):
    from PIL import Image

    pics = tmp_path / "pics"
    pics.mkdir()
    Image.new("RGB", (20, 10)).save(pics / "right.png")
    Image.new("RGB", (10, 20)).save(pics / "turned.png")  # annotated 20 x 10
    Image.new("I;16", (20, 10)).save(pics / "deep.png")  # 16-bit grayscale: readable, right size
    (pics / "text.png").write_text("not a picture")
    names = ["right.png", "turned.png", "deep.png", "text.png", "gone.png"]
    obj = {
        "images": [{"id": k + 1, "file_name": n, "width": 20, "height": 10} for k, n in enumerate(names)],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(obj))
    result = run(str(tmp_path / "gt.json"), "--images", str(pics))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "image files (4 read, 1 not found (see the warnings); 2 problems):" in out
    assert "gone.png" in out  # the reader's warning
    assert f"{pics / 'turned.png'}: image is 10x20 but the annotation says 20x10" in out
    section = out.split("\nimage files (")[1]
    assert "text.png" in section and "gone.png" not in section
    assert "right.png" not in out and "deep.png" not in out
    skipped = run(str(tmp_path / "gt.json"), "--images", str(pics), "--no-check-images")
    assert skipped.exit_code == 0 and "image files (" not in skipped.output and "turned.png" not in skipped.output
    few = run(str(tmp_path / "gt.json"), "--images", str(pics), "--max-warnings", "1")
    assert "  ... and 1 more (use --max-warnings)" in few.output.split("\nimage files (")[1]
