"""All boxed objects of one real image with the tiny learned model: one backbone pass per object, masks inside
their boxes, and the occlusion reasoning's guarantees (no pixel visible in two objects)."""

from __future__ import annotations

import numpy as np
import pytest

from occseg.data.images import load_rgb
from occseg.geometry.boxes import box_to_pixel_mask, mask_to_box
from occseg.inference.scene import SceneConfig, SceneResult, explain_scene, prepare_scene
from occseg.refine import RefineConfig
from tests.compnet.conftest import torch_threads

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# coco128-seg 000000000192.jpg (640x480): four persons, three of them overlapping (xyxy from the COCO boxes)
BOXES = [
    (349.0, 253.0, 481.0, 473.0),
    (437.0, 218.0, 515.0, 466.0),
    (1.0, 274.0, 38.0, 480.0),
    (268.0, 179.0, 379.0, 415.0),
]


@pytest.fixture(scope="module")
def image(tiny_compnet) -> np.ndarray:
    return load_rgb(tiny_compnet.images / "000000000192.jpg")


@pytest.fixture(scope="module")
def states(tiny_compnet, lite0_backbone, image):
    """The prepared objects, shared by the tests that explain them with amodal boxes (explaining with
    ``boxes="visible"`` stores completed boxes on the states, so that test prepares its own)."""
    with torch_threads(1):
        return prepare_scene(tiny_compnet.model, lite0_backbone, image, BOXES, SceneConfig())


def test_prepare_scene_runs_the_backbone_once_per_box(tiny_compnet, lite0_backbone, image, monkeypatch):
    seen: list[int] = []
    original = lite0_backbone.forward_padded

    def counting(x, sizes):
        seen.append(x.shape[0])
        return original(x, sizes)

    monkeypatch.setattr(lite0_backbone, "forward_padded", counting)
    st = prepare_scene(tiny_compnet.model, lite0_backbone, image, BOXES, SceneConfig(batch_size=3))
    assert seen == [3, 1]  # 4 crops in batches of 3: every box exactly once
    assert len(st) == 4
    for s, box in zip(st, BOXES):
        assert s.box == box and s.image_size == (480, 640)
        assert set(s.terms) == {"person", "giraffe"}  # every class's terms from the same pass
        assert s.terms["person"].log_fg.shape[0] == 2 and s.terms["giraffe"].log_fg.shape[0] == 1


def _check_objects(res: SceneResult, n: int) -> None:
    assert len(res.objects) == len(res.layers) == len(res.groups) == n
    assert res.order.shape == (n, n) and np.array_equal(res.order, -res.order.T)
    for o, box in zip(res.objects, BOXES):
        assert o.visible.shape == o.amodal.shape == (480, 640)
        assert not (o.visible & ~o.amodal).any()  # visible inside amodal
        assert not (o.amodal & ~box_to_pixel_mask(box, 480, 640)).any()  # amodal boxes given: inside the box
        assert o.visible.any()
        assert set(o.class_scores) <= {"person", "giraffe"} and 0.0 <= o.confidence <= 1.0


def test_explain_without_reasoning_with_given_labels(tiny_compnet, states):
    res = explain_scene(tiny_compnet.model, states, SceneConfig(reasoning="off"), labels=["person"] * 4)
    _check_objects(res, 4)
    assert [o.category for o in res.objects] == ["person"] * 4
    assert all(list(o.class_scores) == ["person"] for o in res.objects)  # only the given class is scored
    same = explain_scene(
        tiny_compnet.model, states, SceneConfig(reasoning="od", reasoning_iters=0), labels=["person"] * 4
    )
    for a, b in zip(res.objects, same.objects):  # zero reasoning iterations = no reasoning
        assert np.array_equal(a.visible, b.visible) and np.array_equal(a.amodal, b.amodal)


@pytest.mark.parametrize("mode", ["od", "nod"])
def test_reasoning_leaves_no_pixel_visible_in_two_objects(tiny_compnet, states, mode):
    off = explain_scene(tiny_compnet.model, states, SceneConfig(reasoning="off"), labels=["person"] * 4)
    overlap_before = sum(
        int((off.objects[i].visible & off.objects[j].visible).sum()) for i in range(4) for j in range(i + 1, 4)
    )
    assert overlap_before > 0  # the persons' independent masks do collide
    res = explain_scene(tiny_compnet.model, states, SceneConfig(reasoning=mode), labels=["person"] * 4)
    _check_objects(res, 4)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not (res.objects[i].visible & res.objects[j].visible).any(), (mode, i, j)
    assert "iterations" in res.report
    # what an object lost stays inside its amodal mask, and nothing it lost is visible
    for o, o0 in zip(res.objects, off.objects):
        assert not (o.visible & ~o0.visible).any()  # reasoning only removes visible pixels
    # the persons overlapping each other are one group; the one at the left edge is alone
    assert res.groups[0] == res.groups[1] == res.groups[3] != res.groups[2]
    if mode == "od":
        assert res.order[0, 1] != 0 and res.order[0, 3] != 0


@pytest.mark.parametrize("complete", [False, True])
@pytest.mark.parametrize("refined", [False, True])
def test_visible_boxes_give_amodal_boxes_that_hold_them(tiny_compnet, lite0_backbone, image, refined, complete):
    own = prepare_scene(tiny_compnet.model, lite0_backbone, image, BOXES, SceneConfig())
    cfg = SceneConfig(reasoning="off", boxes="visible", complete_boxes=complete)
    res = explain_scene(tiny_compnet.model, own, cfg, image=image if refined else None)
    for o, st, box in zip(res.objects, own, BOXES):
        x1, y1, x2, y2 = o.amodal_box
        assert x1 <= box[0] and y1 <= box[1] and x2 >= box[2] and y2 >= box[3]  # contains the visible box
        assert 0 <= x1 and 0 <= y1 and x2 <= 640 and y2 <= 480
        assert (st.completed_box is not None) == complete
        if not complete:  # the given box and the amodal mask's box, nothing more
            m = mask_to_box(o.amodal)
            assert o.amodal_box == (min(box[0], m[0]), min(box[1], m[1]), max(box[2], m[2]), max(box[3], m[3]))


def test_same_input_same_result(tiny_compnet, lite0_backbone, image, states):
    again = prepare_scene(tiny_compnet.model, lite0_backbone, image, BOXES, SceneConfig())
    a = explain_scene(tiny_compnet.model, states, SceneConfig())
    b = explain_scene(tiny_compnet.model, again, SceneConfig())
    assert [o.category for o in a.objects] == [o.category for o in b.objects]
    assert all(np.array_equal(x.visible, y.visible) for x, y in zip(a.objects, b.objects))
    assert np.array_equal(a.order, b.order)


def test_no_boxes_no_objects(tiny_compnet, lite0_backbone, image):
    assert prepare_scene(tiny_compnet.model, lite0_backbone, image, [], SceneConfig()) == []
    res = explain_scene(tiny_compnet.model, [], SceneConfig())
    assert res.objects == [] and res.order.shape == (0, 0) and res.layers == [] and res.groups == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reasoning": "full"}, "reasoning must be off, nod or od, not 'full'"),
        ({"boxes": "tight"}, "boxes must be amodal or visible, not 'tight'"),
        ({"reasoning_iters": -1}, "reasoning_iters must be >= 0"),
        ({"reasoning_iters": 1.5}, "reasoning_iters must be an integer, not 1.5"),
        ({"reasoning_iters": None}, "reasoning_iters must be an integer, not None"),
        ({"batch_size": 0}, r"batch_size must be None \(automatic\) or at least 1, not 0"),
        ({"refine": "yes"}, r"refine must be a RefineConfig, True, False or None, not 'yes'"),
        ({"batch_size": True}, r"batch_size must be None \(automatic\) or at least 1, not True"),
        ({"colour_margin": "1"}, r"colour_margin must be a number >= 0, not '1'"),
        ({"colour_margin": None}, r"colour_margin must be a number >= 0, not None"),
        ({"hidden": "cells"}, r"hidden must be auto, occluder, front, shape or agree, not 'cells'"),
        ({"complete_boxes": "yes"}, r"complete_boxes must be True or False, not 'yes'"),
    ],
)
def test_scene_config_is_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SceneConfig(**kwargs)


def test_scene_config_takes_numpy_integers_and_refine_as_a_flag():
    assert SceneConfig(reasoning_iters=np.int64(2)).reasoning_iters == 2
    assert SceneConfig(batch_size=np.int64(4)).batch_size == 4
    assert type(SceneConfig(reasoning_iters=np.int64(2)).reasoning_iters) is int
    assert SceneConfig(refine=True).refine == RefineConfig() and SceneConfig(refine=False).refine is None


@pytest.mark.parametrize("mode", ["nod", "od"])
def test_no_round_of_reasoning_is_no_reasoning(tiny_compnet, lite0_backbone, image, states, mode):
    """0 rounds: every object as without reasoning, with the image's refinement too (no pixel lost by both)."""
    off = explain_scene(tiny_compnet.model, states, SceneConfig(reasoning="off"), image=image)
    none = explain_scene(tiny_compnet.model, states, SceneConfig(reasoning=mode, reasoning_iters=0), image=image)
    assert SceneConfig(reasoning=mode, reasoning_iters=0).reasoning_run == "off"  # as predict and segment record it
    assert SceneConfig(reasoning=mode).reasoning_run == mode
    assert all(np.array_equal(a.visible, b.visible) for a, b in zip(off.objects, none.objects))
    assert all(np.array_equal(a.amodal, b.amodal) for a, b in zip(off.objects, none.objects))
    assert np.array_equal(off.order, none.order) and off.layers == none.layers


def test_labels_must_be_one_per_box(tiny_compnet, states):
    for labels, got in ((["person"], "1 labels"), (["person"] * 5, "5 labels"), ("person", "'person'")):
        with pytest.raises(ValueError, match=f"labels: need one class name \\(or None\\) per box, 4 in all; got {got}"):
            explain_scene(tiny_compnet.model, states, SceneConfig(reasoning="off"), labels=labels)
    with pytest.raises(ValueError, match="labels: box 2 has an empty class name"):
        explain_scene(tiny_compnet.model, states, SceneConfig(reasoning="off"), labels=[None, "person", "", None])


def test_images_of_other_kinds_and_array_boxes_give_the_same_result(tiny_compnet, lite0_backbone, image):
    gray = image.mean(axis=2).round().astype(np.uint8)
    as_rgb = np.repeat(gray[:, :, None], 3, axis=2)
    cfg = SceneConfig()  # refinement and the colour competition: they see the image too
    with torch_threads(1):
        ref = explain_scene(
            tiny_compnet.model, prepare_scene(tiny_compnet.model, lite0_backbone, as_rgb, BOXES, cfg), cfg, image=as_rgb
        )
        for other in (gray, gray[:, :, None], gray.astype(np.float32) / 255.0, gray.astype(np.uint16) * 257):
            boxes = np.array(BOXES)  # an (N, 4) array works as well as a list
            st = prepare_scene(tiny_compnet.model, lite0_backbone, other, boxes, cfg)
            res = explain_scene(tiny_compnet.model, st, cfg, image=other)
            assert [o.category for o in res.objects] == [o.category for o in ref.objects]
            for a, b in zip(res.objects, ref.objects):
                assert np.array_equal(a.visible, b.visible) and np.array_equal(a.amodal, b.amodal)
            assert np.array_equal(res.order, ref.order)


def test_a_scene_result_without_confidences_has_zeros_and_a_wrong_shape_is_refused():
    order = np.array([[0, 1], [-1, 0]], dtype=np.int8)
    res = SceneResult(objects=[], order=order, layers=[0, 1], groups=[0, 0])
    assert res.order_confidence.shape == (2, 2) and not res.order_confidence.any()
    with pytest.raises(ValueError, match=r"order_confidence has shape \(3, 3\), the order \(2, 2\)"):
        SceneResult(objects=[], order=order, layers=[0, 1], groups=[0, 0], order_confidence=np.zeros((3, 3)))


def test_segment_boxes_takes_a_path_and_the_default_config(tiny_compnet, lite0_backbone, image):
    from occseg.inference.predict import segment_boxes

    path = tiny_compnet.images / "000000000192.jpg"
    with torch_threads(1):
        by_path = segment_boxes(tiny_compnet.model, lite0_backbone, path, BOXES[:2])
        by_array = segment_boxes(tiny_compnet.model, lite0_backbone, image, BOXES[:2], SceneConfig())
    assert all(np.array_equal(a.visible, b.visible) for a, b in zip(by_path.objects, by_array.objects))
    with pytest.raises(ValueError, match=r"boxes: a list of \[x1, y1, x2, y2\] boxes, got one box's numbers"):
        segment_boxes(tiny_compnet.model, lite0_backbone, image, BOXES[0])


def test_segment_boxes_takes_pil_images_tensors_and_label_arrays_and_names_wrong_arguments(
    tiny_compnet, lite0_backbone, image
):
    import torch
    from PIL import Image

    from occseg.inference.predict import segment_boxes

    model = tiny_compnet.model
    with torch_threads(1):
        ref = segment_boxes(model, lite0_backbone, image, BOXES[:2])
        for other, boxes, labels in (
            (Image.fromarray(image), BOXES[:2], None),  # a PIL image
            (torch.from_numpy(image.copy()), torch.tensor(BOXES[:2]), None),  # tensors
            (image, BOXES[:2], np.array([None, None])),  # labels as an array
        ):
            res = segment_boxes(model, lite0_backbone, other, boxes, labels=labels)
            assert all(np.array_equal(a.visible, b.visible) for a, b in zip(res.objects, ref.objects))
    with pytest.raises(ValueError, match=r"got one box's numbers"):
        segment_boxes(model, lite0_backbone, image, torch.tensor(BOXES[0]))  # one box as a tensor
    with pytest.raises(TypeError, match=r"cfg must be a SceneConfig, not dict"):
        segment_boxes(model, lite0_backbone, image, BOXES[:2], {"reasoning": "od"})
    with pytest.raises(TypeError, match=r"boxes: a list \(or \(N, 4\) array\) of \[x1, y1, x2, y2\] boxes, not None"):
        segment_boxes(model, lite0_backbone, image, None)
    with pytest.raises(ValueError, match=r"device: 'xyz' is not a torch device"):
        segment_boxes(model, lite0_backbone, image, BOXES[:2], device="xyz")
