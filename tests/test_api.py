"""The Python API as a user calls it: ``occseg.load`` / ``Model.segment`` / ``Model.predict`` / ``occseg.train`` /
``occseg.evaluate`` / ``occseg.models``, with the shipped person model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import occseg
from occseg.cli.main import cli
from occseg.compnet.model import TENSORS_DIGEST
from occseg.data.annotation import Dataset
from occseg.evaluation.metrics import mask_iou
from occseg.geometry.boxes import box_height, box_to_pixel_mask
from tests.conftest import need_data

#: the SHA-256 of the shipped person model's tensor file, as `python benchmarks/ship_model.py --out
#: src/occseg/models/person` printed it
SHIPPED_PERSON_SHA256 = "5e7e506402e7ab35104a6bb83d44a16dcbad1efa09d903232661f16b84c0c278"


@pytest.fixture(scope="module")
def person_model() -> occseg.Model:
    return occseg.load()


def test_the_shipped_person_model_is_listed_and_its_tensor_file_is_the_recorded_one():
    shipped = occseg.models()
    assert list(shipped) == ["person"]
    folder = shipped["person"]
    blob = (folder / "model.safetensors").read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    assert digest == SHIPPED_PERSON_SHA256
    assert json.loads((folder / "model.json").read_text())[TENSORS_DIGEST] == digest
    assert len(blob) < 2 * 2**20  # small enough to ship inside the package


def test_load_gives_the_person_model_by_default_by_name_and_by_folder(person_model):
    assert person_model.classes == ("person",)
    assert person_model.path == occseg.models()["person"]
    assert person_model.compnet.settings.backbone == "efficientnet_lite0"
    assert occseg.load("person").path == person_model.path
    assert occseg.load(person_model.path, device="cpu").classes == ("person",)
    with pytest.raises(FileNotFoundError, match=r"model 'no/such/model': no such model folder.*shipped: person"):
        occseg.load("no/such/model")
    with pytest.raises(ValueError, match="device"):
        occseg.load(device="tpu")


def _two_figures() -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """A constructed 200 x 240 image: two upright figures on a grey ground, the right one overlapping the left."""
    img = np.full((200, 240, 3), 128, np.uint8)
    img[30:190, 40:120] = (200, 60, 40)
    img[20:195, 100:190] = (40, 70, 200)
    return img, [(30, 20, 130, 198), (90, 10, 200, 199)]


def test_segment_a_constructed_image_takes_arrays_pil_images_tensors_and_paths(person_model, tmp_path: Path):
    img, boxes = _two_figures()
    scene = person_model.segment(img, boxes, reasoning="nod")
    assert len(scene.objects) == len(scene.layers) == 2
    for obj, box in zip(scene.objects, boxes):
        assert obj.category == "person" and 0.0 <= obj.confidence <= 1.0
        assert obj.visible.shape == obj.amodal.shape == (200, 240) and obj.visible.dtype == bool
        assert np.array_equal(obj.occluded, obj.amodal & ~obj.visible)
        assert not (obj.visible & ~obj.amodal).any()
        assert obj.visible[box[1] : box[3], box[0] : box[2]].sum() == obj.visible.sum()  # inside its box
    assert scene.order.shape == scene.order_confidence.shape == (2, 2)
    assert np.array_equal(scene.order, -scene.order.T)
    Image.fromarray(img).save(tmp_path / "figures.png")
    for same_image in (
        Image.fromarray(img),
        torch.from_numpy(img),
        tmp_path / "figures.png",
        str(tmp_path / "figures.png"),
    ):
        again = person_model.segment(same_image, torch.tensor(boxes), reasoning="nod")
        assert all(np.array_equal(a.visible, b.visible) for a, b in zip(scene.objects, again.objects))
        assert np.array_equal(again.order, scene.order)


def test_segment_keywords_and_a_whole_config(person_model):
    img, boxes = _two_figures()
    off = person_model.segment(img, np.array(boxes), reasoning="off")
    assert not off.order_confidence.any()  # no reasoning: the order only read from the masks
    config = occseg.SceneConfig(reasoning="off", refine=None)
    coarse = person_model.segment(img, boxes, reasoning="od", config=config)  # the config wins
    assert coarse.report.get("competition") is None and not coarse.order_confidence.any()
    labelled = person_model.segment(img, boxes, labels=["person", None])
    assert [o.category for o in labelled.objects] == ["person", "person"]
    assert person_model.segment(img, []).objects == []
    with pytest.raises(ValueError, match="reasoning must be off, nod or od, not 'full'"):
        person_model.segment(img, boxes, reasoning="full")


def _coco_persons(shared_data: Path, image_id: int):
    from occseg.data.readers import read_dataset

    ds = read_dataset(shared_data / "coco128-seg" / "annotations" / "instances_train2017.json")
    im = next(i for i in ds.images if i.image_id == image_id)
    persons = [i for i in im.instances if i.category == "person" and not i.iscrowd and box_height(i.box) >= 30]
    return im, persons


@pytest.mark.parametrize("image_id", [328, 488])  # test-split images (ids[3::4]): never trained on
def test_the_shipped_model_segments_real_persons_better_than_their_boxes(person_model, shared_data, image_id):
    need_data(shared_data, "coco128-seg")
    im, persons = _coco_persons(shared_data, image_id)
    scene = person_model.segment(im.path, [p.box for p in persons], reasoning="nod")
    gts = [p.mask.decode() for p in persons]
    ours = np.mean([mask_iou(o.visible, g) for o, g in zip(scene.objects, gts)])
    boxes = np.mean([mask_iou(box_to_pixel_mask(p.box, im.height, im.width), g) for p, g in zip(persons, gts)])
    assert ours > boxes + 0.05, (ours, boxes)  # measured 0.589 / 0.462 (328) and 0.581 / 0.421 (488)
    assert all(o.category == "person" for o in scene.objects)
    assert sorted(set(scene.layers)) == list(range(max(scene.layers) + 1))


def test_predict_and_evaluate_give_the_report_the_command_line_writes(person_model, shared_data, tmp_path: Path):
    need_data(shared_data, "coco128-seg")
    from tests.compnet.conftest import COCO128_IMAGES, write_coco_subset

    gt = write_coco_subset(shared_data, tmp_path / "gt.json", (328, 488), keep_masks=True)
    images = shared_data / COCO128_IMAGES
    pred = person_model.predict(read_data(gt, images), reasoning="nod")
    assert isinstance(pred, Dataset) and sum(len(im.instances) for im in pred.images) >= 8
    persons = occseg.EvalConfig(classes="person", min_height=30, progress=False)
    report = occseg.evaluate(gt=gt, pred=pred, gt_images=images, config=persons)
    assert report["all"]["visible"]["all_objects"] > 0.5 and report["settings"]["gt"] == str(gt)
    from occseg.data.writers import write_kins_json

    write_kins_json(pred, tmp_path / "pred.json")
    from_file = occseg.evaluate(gt=gt, pred=tmp_path / "pred.json", gt_images=images, config=persons)
    res = CliRunner().invoke(
        cli,
        ["evaluate", "--gt", str(gt), "--gt-images", str(images), "--pred", str(tmp_path / "pred.json"),
         "--out", str(tmp_path / "report"), "--no-progress", "--classes", "person", "--min-height", "30"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    written = json.loads((tmp_path / "report" / "report.json").read_text())
    assert written["all"] == json.loads(json.dumps(from_file["all"]))
    assert from_file["all"]["visible"] == report["all"]["visible"]


def read_data(path: Path, images: Path) -> Dataset:
    """A dataset as a user reads it."""
    from occseg.data.readers import read_dataset

    return read_dataset(path, images=images)


def test_train_returns_a_loaded_model_and_saves_it_only_when_asked(tiny_compnet, tmp_path: Path, one_torch_thread):
    from tests.compnet.conftest import tiny_train_config

    cfg = tiny_train_config()
    data = read_data(tiny_compnet.data, tiny_compnet.images)
    model = occseg.train(data, classes=["person", "giraffe"], config=cfg, out=tmp_path / "model")
    assert model.classes == ("person", "giraffe") and model.path == tmp_path / "model"
    assert (tmp_path / "model" / "model.safetensors").is_file()
    unsaved = occseg.train([tiny_compnet.data], images=tiny_compnet.images, classes=["person", "giraffe"], config=cfg)
    assert unsaved.path is None and not any(p.name == "model.json" for p in tmp_path.glob("*.json"))
    # seeded: the same model either way, and the same as the fixture's
    assert torch.equal(unsaved.compnet.concepts, model.compnet.concepts)
    assert torch.equal(model.compnet.concepts, tiny_compnet.model.concepts)
    img, boxes = _two_figures()
    assert len(unsaved.segment(img, boxes).objects) == 2
    with pytest.raises(ValueError, match="no training objects of class"):
        occseg.train(data, classes=["zebra"], config=cfg)
