"""Bad input to the dataset readers: corrupt RLE masks, non-UTF-8 label files, out-of-range KITTI fields,
wrongly typed COCOA fields. Each error is one line naming the file, the image and the annotation at fault."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from occseg.data.masks import MaskError, RleBatch, check_rle, invalid_compressed, rle_to_json
from occseg.data.readers import DatasetFormatError, read_dataset
from tests.data.readers.builders import ann, coco_obj, make_yolo, write_json, write_png

NOT_UTF8 = b"\xff\xfe\x00"


def rle_of(mask: np.ndarray) -> dict:
    return rle_to_json(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))


def square_rle(height: int = 30, width: int = 40) -> dict:
    m = np.zeros((height, width), bool)
    m[5:15, 10:20] = True
    return rle_of(m)


# ------------------------------------------------------------------------------------------------ RLE masks

#: (counts, message) for a 30x40 image (1200 pixels); "34" and "3X1" are valid encodings of the wrong total.
BAD_COUNTS = [
    ("!!!!", r"invalid RLE mask \(compressed counts hold '!' at position 0, outside '0'\.\.'o'\)"),
    ("34", r"invalid RLE mask \(counts sum to 7 pixels, the 40x30 image has 1200\)"),
    ("3X1", r"invalid RLE mask \(counts sum to 43 pixels, the 40x30 image has 1200\)"),
    ("3X", r"invalid RLE mask \(compressed counts end in the middle of a number\)"),
    ("é", r"invalid RLE mask \(compressed counts hold 'é', outside '0'\.\.'o'\)"),
    ([3, 4], r"invalid RLE mask \(counts sum to 7 pixels, the 40x30 image has 1200\)"),
    ([1000, 300], r"invalid RLE mask \(counts sum to 1300 pixels, the 40x30 image has 1200\)"),
    ([1300, -100], r"invalid RLE mask \(uncompressed counts must be non-negative integers, got -100\)"),
    ([600.5, 599.5], r"invalid RLE mask \(uncompressed counts must be non-negative integers, got 600\.5\)"),
    (1200, r"invalid RLE mask \('counts' must be a string or a list of integers, got 1200\)"),
]


@pytest.mark.parametrize(("counts", "message"), BAD_COUNTS)
def test_coco_corrupt_rle_names_file_image_and_annotation(tmp_path, counts, message):
    segm = {"size": [30, 40], "counts": counts}
    path = write_json(
        tmp_path / "instances.json", coco_obj([ann(1, [1, 1, 5, 5]), ann(4, [1, 1, 3, 3], segmentation=segm)])
    )
    with pytest.raises(
        DatasetFormatError, match=r"^instances\.json: image 1 \(a\.png\), annotation 4: " + message + "$"
    ):
        read_dataset(path)


def test_coco_corrupt_rle_without_bbox_is_an_error_not_a_skip(tmp_path):
    """Without a bbox the box comes from the mask; a corrupt mask must not be read as an empty one."""
    rec = {"id": 7, "image_id": 2, "category_id": 1, "segmentation": {"size": [30, 40], "counts": "!!!!"}}
    path = write_json(tmp_path / "g.json", coco_obj([rec]))
    with pytest.raises(DatasetFormatError, match=r"g\.json: image 2 \(b\.png\), annotation 7: invalid RLE mask"):
        read_dataset(path)


def test_rle_size_that_is_not_two_integers(tmp_path):
    path = write_json(
        tmp_path / "g.json", coco_obj([ann(4, [1, 1, 3, 3], segmentation={"size": ["a", 40], "counts": "00"})])
    )
    with pytest.raises(DatasetFormatError, match=r"annotation 4: RLE size must be \[height, width\], got \['a', 40\]"):
        read_dataset(path)


def test_kins_predictions_with_a_corrupt_i_segm(tmp_path):
    good = square_rle()
    recs = [
        {"id": k, "image_id": 1, "category_id": 3, "i_bbox": [10, 5, 10, 10], "i_segm": good,
         "a_bbox": [10, 5, 10, 10], "a_segm": good}
        for k in range(1, 4)
    ]  # fmt: skip
    recs[1]["i_segm"] = {"size": [30, 40], "counts": "!!!!"}
    path = write_json(tmp_path / "predictions.json", coco_obj(recs))
    msg = (
        r"predictions\.json: image 1 \(a\.png\), annotation 2 \(i_segm\): invalid RLE mask \(compressed counts hold '!'"
    )
    with pytest.raises(DatasetFormatError, match=msg):
        read_dataset(path, fmt="kins")
    recs[1]["i_segm"] = good
    recs[2]["a_segm"] = {"size": [30, 40], "counts": [3, 4]}
    write_json(path, coco_obj(recs))
    with pytest.raises(DatasetFormatError, match=r"annotation 3 \(a_segm\): invalid RLE mask \(counts sum to 7 pixels"):
        read_dataset(path)


def cocoa_file(tmp_path: Path, regions: list[dict], **image_keys) -> Path:
    write_png(tmp_path / "1.jpg", 40, 30)
    return write_json(tmp_path / "1.json", {"image_id": 5, "size": [30, 40], "regions": regions, **image_keys})


def cocoa_region(**kw) -> dict:
    return {"segmentation": [10, 5, 20, 5, 20, 15, 10, 15], "name": "cup", "order": 1, **kw}


def test_cocoa_corrupt_visible_mask_is_not_called_fully_occluded(tmp_path):
    cocoa_file(tmp_path, [cocoa_region(), cocoa_region(visible_mask={"size": [30, 40], "counts": "!!!!"})])
    with pytest.raises(DatasetFormatError, match=r"1\.json, region 1 \(visible_mask\): invalid RLE mask \(compressed"):
        read_dataset(tmp_path)


def test_valid_rles_pass_and_the_batch_check_agrees_with_the_single_one():
    rng = np.random.default_rng(3)
    counts, pixels = [], []
    for t in range(400):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        m = rng.random((h, w)) < (0.02, 0.5, 0.0, 1.0)[t % 4]
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        check_rle(rle, h, w)  # valid: no error
        check_rle(rle_to_json(rle), h, w)
        s = bytearray(rle["counts"])
        if t % 3 == 0 and s:  # corrupt a third of them
            s[int(rng.integers(len(s)))] = int(rng.integers(0, 256))
        counts.append(bytes(s))
        pixels.append(h * w)
    batch = invalid_compressed(counts, pixels)
    single = []
    for s, n in zip(counts, pixels):
        try:
            check_rle({"size": [1, n], "counts": s}, 1, n)
            single.append(False)
        except MaskError:
            single.append(True)
    assert batch.tolist() == single and 0 < sum(single) < 400
    # a large mask with long runs
    big = np.zeros((2000, 3000), bool)
    big[500:1500, 100:2900] = True
    s = mask_utils.encode(np.asfortranarray(big.astype(np.uint8)))["counts"]
    assert invalid_compressed([s, b"", s], [6_000_000, 0, 6_000_001]).tolist() == [False, False, True]


def test_rle_batch_names_the_first_bad_mask():
    batch = RleBatch()
    good = square_rle()
    batch.add(good["counts"].encode(), 30, 40, "f.json: annotation 1")
    batch.add(b"34", 30, 40, "f.json: annotation 2")
    batch.add(b"!!", 30, 40, "f.json: annotation 3")
    with pytest.raises(MaskError, match=r"^f\.json: annotation 2: invalid RLE mask \(counts sum to 7 pixels"):
        batch.check()
    assert len(batch) == 0


def test_rle_batch_checked_in_runs_of_characters_names_the_same_first_bad_mask():
    good = square_rle()["counts"].encode()
    for chunk in (1, len(good), len(good) + 1, 1 << 22):  # one string a run, two, all at once
        batch = RleBatch()
        for k, counts in enumerate([good, good, good, b"34", good, b"!!"]):
            batch.add(counts, 30, 40, f"f.json: annotation {k}")
        with pytest.raises(MaskError, match=r"^f\.json: annotation 3: invalid RLE mask"):
            batch.check(chunk_chars=chunk)
        batch.add(good, 30, 40, "")
        batch.add(good, 30, 40, "")
        batch.check(chunk_chars=chunk)  # valid strings in every run: no error


# ------------------------------------------------------------------------------------ text files, encodings


def test_yolo_label_file_not_utf8(tmp_path):
    root = make_yolo(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"})
    (root / "labels" / "train" / "a.txt").write_bytes(NOT_UTF8)
    msg = r"labels/train/a\.txt: not a UTF-8 text file \(byte 0xff at position 0\), so not a YOLO label file$"
    with pytest.raises(DatasetFormatError, match=msg):
        read_dataset(root)


def test_yolo_names_file_not_utf8_and_bom_label_file(tmp_path):
    root = make_yolo(tmp_path, {"a": "1 0.5 0.5 0.2 0.2\n"})
    (root / "labels" / "train" / "a.txt").write_bytes(b"\xef\xbb\xbf1 0.5 0.5 0.2 0.2\n")  # BOM: fine
    assert read_dataset(root).images[0].instances[0].category == "bicycle"
    (root / "names.txt").write_bytes(b"cat\n\xe9l\xe9phant\n")  # Latin-1
    with pytest.raises(DatasetFormatError, match=r"names\.txt: not a UTF-8 text file .*so not a class names file"):
        read_dataset(root)


def kitti(tmp_path: Path, line: str | bytes) -> Path:
    write_png(tmp_path / "image_2" / "000007.png", 50, 20)
    (tmp_path / "label_2").mkdir()
    data = line if isinstance(line, bytes) else line.encode()
    (tmp_path / "label_2" / "000007.txt").write_bytes(data)
    return tmp_path


def kitti_line(truncated: str = "0.00", occluded: str = "0", *, score: str = "") -> str:
    return f"Car {truncated} {occluded} -1.5 1 2 30 18 1.5 1.6 3.9 1.0 1.5 20.0 -1.5 {score}".strip() + "\n"


def test_kitti_label_file_not_utf8(tmp_path):
    with pytest.raises(DatasetFormatError, match=r"label_2/000007\.txt: not a UTF-8 text file .*KITTI label file"):
        read_dataset(kitti(tmp_path, NOT_UTF8))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (kitti_line(occluded="7"), r"000007\.txt line 1: occlusion flag 7 is not 0 \(fully visible\), 1 .* or -1"),
        (kitti_line(occluded="1.5"), r"000007\.txt line 1: occlusion flag 1\.5 is not 0"),
        (kitti_line(truncated="1.5"), r"000007\.txt line 1: truncation 1\.5 is not in \[0, 1\]"),
        (kitti_line(truncated="-0.2"), r"000007\.txt line 1: truncation -0\.2 is not in \[0, 1\]"),
        (kitti_line(truncated="nan"), r"000007\.txt line 1: truncation nan is not in \[0, 1\]"),
    ],
)
def test_kitti_truncation_and_occlusion_out_of_range(tmp_path, line, message):
    with pytest.raises(DatasetFormatError, match=message):
        read_dataset(kitti(tmp_path, line))


def test_kitti_result_lines_with_unset_fields_are_read(tmp_path):
    ds = read_dataset(kitti(tmp_path, kitti_line("-1", "-1", score="0.9") + kitti_line("1", "3")))
    first, second = ds.images[0].instances
    assert (first.extra["truncated"], first.extra["occluded"], first.extra["score"]) == (-1.0, -1, 0.9)
    assert (second.extra["truncated"], second.extra["occluded"]) == (1.0, 3)


# -------------------------------------------------------------------------------------- wrongly typed fields


@pytest.mark.parametrize(
    ("name", "message"),
    [(5, r"got a number: 5"), (["cup"], r"got a list: \['cup'\]"), (True, r"got a boolean: True")],
)
def test_cocoa_name_that_is_not_text(tmp_path, name, message):
    cocoa_file(tmp_path, [cocoa_region(), cocoa_region(name=name)])
    with pytest.raises(DatasetFormatError, match=r"1\.json, region 1: 'name' must be text, " + message):
        read_dataset(tmp_path)


def test_cocoa_missing_or_null_name_is_unnamed(tmp_path):
    region = cocoa_region()
    del region["name"]
    cocoa_file(tmp_path, [region, cocoa_region(name=None), cocoa_region(name="  paper   cup ")])
    assert [i.category for i in read_dataset(tmp_path).images[0].instances] == ["unnamed", "unnamed", "paper cup"]


def test_cocoa_order_below_one(tmp_path):
    cocoa_file(tmp_path, [cocoa_region(order="0")])
    with pytest.raises(DatasetFormatError, match=r"1\.json, region 0: 'order' must be 1 or more \(1 = front\), got 0"):
        read_dataset(tmp_path)


def test_cocoa_regions_that_are_not_a_list(tmp_path):
    cocoa_file(tmp_path, {"0": cocoa_region()})  # type: ignore[arg-type]
    with pytest.raises(
        DatasetFormatError, match=r"1\.json: not a COCOA per-image file: 'regions' is an object, not a list"
    ):
        read_dataset(tmp_path)


def test_cocoa_collection_file_name_not_text(tmp_path):
    obj = {"images": [{"id": 1, "file_name": 17}], "annotations": [{"image_id": 1, "regions": [cocoa_region()]}]}
    path = write_json(tmp_path / "cocoa.json", obj)
    with pytest.raises(DatasetFormatError, match=r"cocoa\.json: images\[0\] needs 'id' and 'file_name'"):
        read_dataset(path)


def test_iscrowd_must_be_0_or_1(tmp_path):
    path = write_json(tmp_path / "g.json", coco_obj([ann(3, [1, 1, 5, 5], iscrowd="0")]))
    with pytest.raises(
        DatasetFormatError, match=r"g\.json: image 1 \(a\.png\), annotation 3 iscrowd: expected 0 or 1, got '0'"
    ):
        read_dataset(path)


def test_image_size_that_is_not_positive_or_is_absurd_is_read_from_the_file(tmp_path):
    obj = coco_obj([ann(1, [1, 1, 5, 5])])
    obj["images"][0].update(width=-40)
    obj["images"][1].update(width=float("inf"))
    write_png(tmp_path / "a.png", 40, 30)
    path = write_json(tmp_path / "g.json", obj)
    ds = read_dataset(path, images=tmp_path)
    assert [(im.width, im.height) for im in ds.images] == [(40, 30)]
    (w1,) = [w for w in ds.warnings if "image 1 " in w]
    assert w1 == (
        "g.json: image 1 (a.png) has width -40 and height 30 (not both numbers from 1 to 65535), so its size 40x30 "
        "is read from the image file"
    )
    (w2,) = [w for w in ds.warnings if "image 2 " in w]
    assert "has width inf and height 30 (not both numbers from 1 to 65535) and its file" in w2 and "skipped" in w2
    obj["images"][0].update(width=1e20)  # no picture is that wide: a broken annotation, not a size to believe
    ds = read_dataset(write_json(tmp_path / "g.json", obj), images=tmp_path)
    assert [(im.width, im.height) for im in ds.images] == [(40, 30)]
    assert any("has width 1e+20 and height 30 (not both numbers from 1 to 65535), so its size 40x30" in w
               for w in ds.warnings)  # fmt: skip


def test_cocoa_size_beyond_any_picture_is_read_from_the_file(tmp_path):
    from occseg.data.readers.cocoa import _declared_size

    assert _declared_size({"size": [48, 64]}) == (64, 48)
    assert _declared_size({"size": [48, 10**20]}) is None
    assert _declared_size({"width": 70000, "height": 10}) is None
    assert _declared_size({"width": True, "height": 10}) is None
    assert _declared_size({"width": 65535, "height": 1}) == (65535, 1)


# -------------------------------------------------------------------------------------------------- wording


def test_top_level_not_an_object_wording(tmp_path):
    path = tmp_path / "five.json"
    path.write_text("[1, 2]")
    with pytest.raises(
        DatasetFormatError, match=r"five\.json: not an annotation JSON: the top level is a list, not an object$"
    ):
        read_dataset(path)
    path.write_text('{"images": [], "categories": [], "annotations": null}')
    with pytest.raises(
        DatasetFormatError, match=r"five\.json: not a COCO instances file: 'annotations' is null, not a list$"
    ):
        read_dataset(path, fmt="coco")
    path.write_text(json.dumps(coco_obj([ann(1, [1, 1, 5, 5]), 7])))
    with pytest.raises(DatasetFormatError, match=r"five\.json: annotations\[1\] is a number, not an object$"):
        read_dataset(path)


# ------------------------------------------------------------------------------------------ annotation ids


def test_two_annotations_of_one_image_with_one_id_are_an_error(tmp_path):
    obj = coco_obj([ann(1, [1, 1, 5, 5]), ann(4, [1, 1, 5, 5]), ann(4, [2, 2, 5, 5], image_id=2), ann(4, [2, 2, 5, 5])])
    path = write_json(tmp_path / "dup.json", obj)
    msg = (
        r"^.*/dup\.json: image 1 \(a\.png\) has two annotations with id 4 \(annotations\[1\] and annotations\[3\]\); "
        r"annotation ids must be unique$"
    )
    with pytest.raises(DatasetFormatError, match=msg):
        read_dataset(path)


def test_kins_duplicate_ids_are_an_error_too(tmp_path):
    rec = {"id": 7, "image_id": 2, "category_id": 3, "i_bbox": [1, 1, 5, 5], "a_bbox": [1, 1, 6, 6]}
    path = write_json(tmp_path / "k.json", coco_obj([rec, dict(rec, id=8), dict(rec)]))
    with pytest.raises(DatasetFormatError, match=r"k\.json: image 2 \(b\.png\) has two annotations with id 7 "):
        read_dataset(path, fmt="kins")


def test_one_id_in_two_images_is_fine(tmp_path):
    """Ground truth and predictions are matched by (image_id, id), so ids need only be unique within an image."""
    obj = coco_obj([ann(4, [1, 1, 5, 5]), ann(4, [2, 2, 5, 5], image_id=2)])
    ds = read_dataset(write_json(tmp_path / "g.json", obj), images=tmp_path)
    assert [(im.image_id, [i.id for i in im.instances]) for im in ds.images] == [(1, [4]), (2, [4])]


# ------------------------------------------------------------------------------------------ YOLO data.yaml

FORMS = r"a list \[a, b, \.\.\.\] or a mapping \{0: a, 1: b, \.\.\.\}$"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("names: {bad\n", r"cannot read the 'names' entry '\{bad': it has no closing '\}'; expected " + FORMS),
        ("names: [dog\n", r"cannot read the 'names' entry '\[dog': it has no closing '\]'; expected " + FORMS),
        ("names: dog\n", r"cannot read the 'names' entry 'dog': it is not " + FORMS),
        ("names: 'dog'\n", r"cannot read the 'names' entry \"'dog'\": it is not " + FORMS),
        ("names: {0: dog, x: cat}\n", r"'names' entry 'x: cat' is not 'index: name'$"),
        ("names: {0: dog, cat}\n", r"'names' entry 'cat' is not 'index: name'$"),
        ("names: {0: dog, 2: cat}\n", r"the 'names' indices must be the class indices 0\.\.1, got \[0, 2\]$"),
        ("names: {0: 'dog', '1': 'cat'}\n", r"the 'names' indices must be the class indices 0\.\.1, got \[0, '1'\]$"),
        ("names:\n  0: dog\n  2: cat\n", r"the 'names' indices must be the class indices 0\.\.1, got \[0, 2\]$"),
        ("names:\n  0: dog\n  one: cat\n", r"'names' entry 'one: cat' is not 'index: name'$"),
    ],
)
def test_yolo_yaml_names_that_cannot_be_read_name_the_file(tmp_path, yaml_text, message):
    root = make_yolo(tmp_path, {"a": "1 0.5 0.5 0.2 0.2\n"})
    (root / "data.yaml").write_text(yaml_text)
    with pytest.raises(DatasetFormatError, match=r"^.*/data\.yaml: " + message):
        read_dataset(root)


def test_yolo_other_yaml_with_bad_names_is_named_too(tmp_path):
    root = make_yolo(tmp_path, {"a": "1 0.5 0.5 0.2 0.2\n"})
    (root / "coco8.yaml").write_text("path: .\nnames: {0: dog, 1: cat\n")
    with pytest.raises(DatasetFormatError, match=r"^.*/coco8\.yaml: cannot read the 'names' entry"):
        read_dataset(root)
    (root / "coco8.yaml").write_text("path: .\nnames: {0: dog, 1: cat}\n")
    assert read_dataset(root).images[0].instances[0].category == "cat"
