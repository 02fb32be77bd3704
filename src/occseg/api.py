"""occseg's Python API: load a model (the shipped person model by default), segment the boxed objects of an
image, predict a dataset, train a model from boxes, evaluate predictions.

.. code-block:: python

    import occseg

    model = occseg.load()  # the shipped person model (EfficientNet-Lite0), no training needed
    scene = model.segment("photo.jpg", [(10, 20, 200, 400), (150, 30, 330, 420)], reasoning="nod")
    for obj in scene.objects:
        print(obj.category, obj.confidence, obj.visible.sum(), obj.occluded.sum(), obj.amodal_box)
    print(scene.order, scene.order_confidence, scene.layers)

    model = occseg.train("coco128-seg", classes=["person"], out="models/person", seed=0)
    report = occseg.evaluate(gt="challenge/annotations/test.json", pred="pred.json")

Boxes are ``x1, y1, x2, y2`` image pixels. Every step underneath takes a config dataclass
(:class:`~occseg.inference.types.SceneConfig`, :class:`~occseg.inference.predict.PredictConfig`,
:class:`~occseg.compnet.learn.TrainConfig`, :class:`~occseg.evaluation.protocol.EvalConfig`); the functions here
fill them from a few keywords, and a config given whole wins over those keywords.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from occseg.choices import Reasoning
from occseg.compnet.learn import TrainConfig
from occseg.compnet.model import CompNetModel
from occseg.data.annotation import Dataset
from occseg.evaluation.protocol import EvalConfig
from occseg.inference.predict import PredictConfig
from occseg.inference.types import SceneConfig, SceneResult

#: the folder of the models that ship inside the package, one sub-folder per model
SHIPPED_MODELS = Path(__file__).resolve().parent / "models"
#: the model :func:`load` gives without a name
DEFAULT_MODEL = "person"

__all__ = [
    "DEFAULT_MODEL",
    "EvalConfig",
    "Model",
    "PredictConfig",
    "SceneConfig",
    "TrainConfig",
    "evaluate",
    "load",
    "model_folder",
    "models",
    "train",
]


def models() -> dict[str, Path]:
    """The models that ship with occseg: name -> model folder (``model.json`` + ``model.safetensors``)."""
    if not SHIPPED_MODELS.is_dir():
        return {}
    return {p.name: p for p in sorted(SHIPPED_MODELS.iterdir()) if (p / "model.json").is_file()}


@dataclass(frozen=True, eq=False)
class Model:
    """A CompositionalNet and the backbone it was learned on (checked against each other), ready to segment.
    Made by :func:`load` or :func:`train`; ``path`` is the model folder it was read from (``None``: not saved)."""

    compnet: CompNetModel
    backbone: Any  # occseg.backbones.registry.Backbone
    path: Path | None = None
    device: str = "cpu"

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes the model tells apart."""
        return tuple(self.compnet.settings.classes)

    def segment(
        self,
        image: Any,
        boxes: Any,
        *,
        reasoning: Reasoning = "nod",
        reasoning_iters: int = 2,
        labels: Sequence[str | None] | None = None,
        config: SceneConfig | None = None,
    ) -> SceneResult:
        """Class, visible / amodal / occluded masks, amodal box and depth order of the boxed objects of one image.

        ``image``: a file path, a numpy array (grayscale, RGB, RGBA, 16-bit, or floats in [0, 1]), a PIL image or a
        tensor; ``boxes``: a list, an ``(N, 4)`` array or a tensor of ``x1, y1, x2, y2`` boxes; ``labels``: per box a
        class name that fixes its class, or ``None`` to classify it. ``reasoning``: ``off``, ``nod`` or ``od``
        (:data:`occseg.choices.Reasoning`), ``reasoning_iters`` its rounds; ``config``: a whole
        :class:`SceneConfig`, which then wins over both. Returns a :class:`SceneResult`: ``objects`` (each with
        ``category``, ``confidence``, boolean ``visible`` / ``amodal`` / ``occluded`` masks, ``amodal_box``),
        ``order`` (+1: row object in front of column object), ``order_confidence`` and ``layers`` (0 = front)."""
        from occseg.inference.predict import segment_boxes

        cfg = config if config is not None else SceneConfig(reasoning=reasoning, reasoning_iters=reasoning_iters)
        return segment_boxes(self.compnet, self.backbone, image, boxes, cfg, labels=labels)

    def predict(
        self,
        data: str | Path | Dataset,
        *,
        images: str | Path | None = None,
        reasoning: Reasoning = "nod",
        reasoning_iters: int = 2,
        config: SceneConfig | None = None,
        predict: PredictConfig | None = None,
    ) -> Dataset:
        """Predictions for the annotated objects of a dataset (given their boxes; all objects of one image
        together), as a KINS-style :class:`~occseg.data.annotation.Dataset` (``occseg predict`` writes the same with
        :func:`~occseg.data.writers.write_kins_json`). ``data``: annotations in any format occseg reads (``images``:
        their image folder) or a Dataset; ``config``: a whole :class:`SceneConfig` (wins over ``reasoning`` /
        ``reasoning_iters``); ``predict``: which objects and boxes (:class:`PredictConfig`; default: the objects of
        the classes the model knows, amodal boxes where the data has them, no progress bar)."""
        from occseg.inference.predict import predict_scenes

        dataset = _dataset(data, images)
        scene = config if config is not None else SceneConfig(reasoning=reasoning, reasoning_iters=reasoning_iters)
        cfg = predict if predict is not None else PredictConfig(progress=False)
        source = self.path if self.path is not None else "the model"
        return predict_scenes(self.compnet, self.backbone, dataset, {"scene": scene}, cfg, source=source)["scene"]


def load(
    model: str | Path | None = None,
    *,
    device: str = "cpu",
    weights: str | Path | None = None,
    allow_download: bool = False,
) -> Model:
    """A model ready to segment: ``model`` is a model folder, or the name of a shipped model (:func:`models`;
    default: the shipped person model). The backbone it was learned on is built on ``device`` and checked against
    it (``weights``, ``allow_download``: as :func:`~occseg.inference.predict.load_model_and_backbone` takes
    them)."""
    from occseg.inference.predict import load_model_and_backbone

    path = model_folder(model)
    compnet, backbone = load_model_and_backbone(path, device=device, weights=weights, allow_download=allow_download)
    return Model(compnet=compnet, backbone=backbone, path=path, device=device)


def model_folder(model: str | Path | None = None) -> Path:
    """The folder of ``model``: a model folder as given, a shipped model's name (:func:`models`), or ``None`` for
    the default shipped model; ``FileNotFoundError`` saying which models ship when it is neither."""
    shipped = models()
    if model is None:
        model = DEFAULT_MODEL
        if model not in shipped:
            raise FileNotFoundError(f"the default model {DEFAULT_MODEL!r} is not in {SHIPPED_MODELS}")
    if isinstance(model, str) and model in shipped and not Path(model).exists():
        return shipped[model]
    path = Path(model)
    if not path.is_dir():
        names = ", ".join(shipped) or "none"
        raise FileNotFoundError(f"model {str(model)!r}: no such model folder, nor a shipped model (shipped: {names})")
    return path


def train(
    data: str | Path | Dataset | Sequence[str | Path | Dataset],
    *,
    classes: Sequence[str] | str,
    images: str | Path | None = None,
    config: TrainConfig | None = None,
    device: str = "cpu",
    out: str | Path | None = None,
    seed: int = 0,
    class_map: Mapping[str, str] | None = None,
    min_height: float = 30.0,
    backgrounds: Sequence[str | Path] = (),
    progress: bool = False,
) -> Model:
    """Learn a CompositionalNet from the boxes of ``classes`` (no mask is read) and return it loaded.

    ``data``: annotations in any format occseg reads (``images``: their image folder), a Dataset, or a list of
    them; ``class_map``: data class -> model class; boxes lower than ``min_height`` px are skipped;
    ``backgrounds``: object-free photos for the outlier model. ``config``: a whole :class:`TrainConfig` (wins over
    ``seed``; its device, when it names one, over ``device``). ``out``: the model folder to write (``None``:
    nothing is saved)."""
    from occseg.compnet.learn import train_compnet
    from occseg.compnet.model import save_model
    from occseg.compnet.samples import box_samples
    from occseg.inference.predict import backbone_for, check_device

    names = [classes] if isinstance(classes, str) else list(dict.fromkeys(classes))
    if not names:
        raise ValueError("classes: give at least one class to learn")
    check_device(device)
    cfg = config if config is not None else TrainConfig(seed=seed)
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, not {type(cfg).__name__}")
    cfg = cfg if cfg.device is not None else replace(cfg, device=device)
    sets = [_dataset(d, images) for d in (data if isinstance(data, (list, tuple)) else [data])]
    cmap = dict(class_map or {})
    samples = [s for ds in sets for s in box_samples(ds, names, class_map=cmap, min_height=min_height)]
    if not samples:
        raise ValueError(
            f"no training objects of class(es) {names} (boxes >= {min_height:g} px) in "
            + ", ".join(str(ds.source) for ds in sets)
        )
    t0 = time.perf_counter()
    compnet = train_compnet(samples, names, cfg, background_images=list(backgrounds), progress=progress)
    compnet.settings.training["class_map"] = cmap
    compnet.settings.training["data"] = ", ".join(str(ds.source) for ds in sets)
    compnet.settings.training["seconds"] = round(time.perf_counter() - t0, 1)
    if out is not None:
        save_model(compnet, out)
        return load(Path(out), device=str(cfg.device), weights=cfg.backbone_weights)
    backbone = backbone_for(compnet, device=str(cfg.device), weights=cfg.backbone_weights)
    return Model(compnet=compnet, backbone=backbone, path=None, device=str(cfg.device))


def evaluate(
    gt: str | Path | Dataset,
    pred: str | Path | Dataset,
    *,
    gt_images: str | Path | None = None,
    config: EvalConfig | None = None,
) -> dict[str, Any]:
    """Score predictions against ground truth under the paper's protocol: the report dict, the same as
    ``occseg evaluate`` writes to ``report.json`` (mIoU of visible / amodal / occluded masks per occlusion level,
    class and order accuracy, 95 % intervals). ``gt``: annotations in any format occseg reads, or a Dataset;
    ``pred``: a predictions file (``occseg predict``) or a Dataset (:meth:`Model.predict`); ``config``: which
    objects are scored and the bootstrap (default :class:`EvalConfig`, no progress bar)."""
    from occseg.evaluation.matching import read_predictions
    from occseg.evaluation.report import scored_report

    truth = _dataset(gt, gt_images)
    predictions = pred if isinstance(pred, Dataset) else read_predictions(pred)
    cfg = config if config is not None else EvalConfig(progress=False)
    report, _ = scored_report(truth, predictions, cfg, gt_images=gt_images)
    return report


def _dataset(data: str | Path | Dataset, images: str | Path | None) -> Dataset:
    """``data`` read with :func:`~occseg.data.readers.read_dataset` (format detected), or as given."""
    from occseg.data.readers import read_dataset

    if isinstance(data, Dataset):
        return data
    if not isinstance(data, (str, Path)):
        raise TypeError(f"data: a path to annotations or a Dataset, not {type(data).__name__}")
    return read_dataset(data, images=images)
