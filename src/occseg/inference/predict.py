"""Predictions for every annotated object of a dataset, in the KINS-style predictions format."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from occseg.checks import is_number
from occseg.choices import VOTE_ORDER_CUES, BoxChoice
from occseg.compnet.model import CompNetModel, load_model
from occseg.data.annotation import AnnotatedImage, Dataset, Instance, require_dataset
from occseg.data.masks import LazyMask
from occseg.geometry.boxes import BoxError, box_height, mask_to_box, validate_box
from occseg.inference.baselines import BOX_CHOICES, input_box
from occseg.inference.scene import explain_scene, prepare_scene
from occseg.inference.types import ObjectResult, SceneConfig, SceneResult
from occseg.refine import RefineConfig

log = logging.getLogger(__name__)


def load_model_and_backbone(
    model_dir: str | Path, *, device: str = "cpu", weights: str | Path | None = None, allow_download: bool = False
):
    """The model and the backbone it was learned on, checked against each other (name, channels, stride and
    the weights' fingerprint: :meth:`CompNetModel.check_backbone`).

    ``weights``: as :func:`~occseg.backbones.get_backbone` takes them; default: the ImageNet weights, or random
    weights when the model was learned on (seeded) random weights. A model learned on weights from a local
    file needs that file (the error says so). ``allow_download``: let torchvision download ImageNet weights that
    are not in its cache (vgg16, resnext50)."""
    check_device(device)  # before the model file is read: an error about the device, not the file

    model = load_model(model_dir, device=device)
    return model, backbone_for(model, device=device, weights=weights, allow_download=allow_download, source=model_dir)


def backbone_for(
    model: CompNetModel,
    *,
    device: str = "cpu",
    weights: str | Path | None = None,
    allow_download: bool = False,
    source: object = "the model",
):
    """The backbone ``model`` was learned on (see :func:`load_model_and_backbone`), checked against it;
    ``source`` names the model in the warning about an unrecorded fingerprint."""
    from occseg.backbones import get_backbone
    from occseg.backbones.weights import RANDOM

    if weights is None and model.settings.backbone_weights == RANDOM:
        weights = RANDOM
    backbone = get_backbone(model.settings.backbone, weights=weights, device=device, allow_download=allow_download)
    if not model.settings.backbone_fingerprint:
        log.warning("%s was saved before occseg recorded its backbone's weights: they are not checked", source)
    spec = backbone.spec
    model.check_backbone(
        spec.name, spec.channels, spec.stride, fingerprint=backbone.fingerprint(), weights=backbone.weights_source
    )
    return backbone


def check_device(device: str | torch.device | None) -> str | torch.device | None:
    """``device`` unchanged when it is usable here (or ``None``), else a ``ValueError`` saying why
    (:func:`~occseg.backbones.registry.device_problem`, as ``--device`` is checked)."""
    from occseg.backbones.registry import device_problem

    problem = None if device is None else device_problem(device)
    if problem:
        raise ValueError(f"device: {problem}")
    return device


def segment_boxes(
    model: CompNetModel,
    backbone,
    image: np.ndarray | str | Path,
    boxes: Sequence,
    cfg: SceneConfig | None = None,
    *,
    labels: Sequence[str | None] | None = None,
    device: str | None = None,
) -> SceneResult:
    """Class, visible / amodal / occluded masks, amodal boxes and order for the boxes of one image.

    ``image``: an ``(H, W[, C])`` array or an image file's path; ``boxes``: a list (or ``(N, 4)`` array) of
    ``x1, y1, x2, y2`` boxes; ``cfg``: default :class:`SceneConfig`. ``device``: where the backbone runs
    (default: where it already is; a given device moves it there)."""
    from occseg.data.images import as_rgb_array, load_rgb

    cfg = SceneConfig() if cfg is None else cfg
    if not isinstance(cfg, SceneConfig):
        raise TypeError(f"cfg must be a SceneConfig, not {type(cfg).__name__}: SceneConfig(reasoning=...) makes one")
    device = check_device(device)
    image = load_rgb(image) if isinstance(image, (str, Path)) else as_rgb_array(image)
    if boxes is None or isinstance(boxes, (str, bytes)):
        raise TypeError(f"boxes: a list (or (N, 4) array) of [x1, y1, x2, y2] boxes, not {boxes!r}")
    if hasattr(boxes, "detach") and hasattr(boxes, "cpu"):  # a torch tensor
        boxes = boxes.detach().cpu().numpy()
    flat = len(boxes) > 0 and all(isinstance(v, (int, float, np.number)) for v in boxes)
    if flat:
        raise ValueError(
            f"boxes: a list of [x1, y1, x2, y2] boxes, got one box's numbers {list(boxes)}; wrap it in a list"
        )
    states = prepare_scene(model, backbone, image, boxes, cfg, device=device)
    return explain_scene(model, states, cfg, labels=labels, image=image)


def explain_image(
    model: CompNetModel,
    backbone,
    image: np.ndarray,
    boxes: Sequence,
    scenes: Mapping[str, SceneConfig],
    *,
    labels: Sequence[str | None] | None = None,
    device: str | None = None,
    images: Mapping[str, np.ndarray | None] | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> dict[str, SceneResult]:
    """One image explained under several scene configs (``{name: config}``) from ONE backbone pass per box:
    ``{name: scene}``. ``batch_size``: crops per backbone batch (default: the first config's). ``images``: per
    config, the image the explanation sees (default: ``image``; ``None`` for a config explains without it: no
    refinement, the cell competition). ``progress``: a bar over the boxes' backbone pass."""
    configs = list(scenes.values())
    if not configs:
        return {}
    crops = configs[0] if batch_size is None else replace(configs[0], batch_size=batch_size)
    states = prepare_scene(model, backbone, image, boxes, crops, device=device, progress=progress)
    seen = images or {}
    return {
        name: explain_scene(model, states, cfg, labels=labels, image=seen.get(name, image))
        for name, cfg in scenes.items()
    }


def case_insensitive_classes(
    data_classes: Sequence[str], model_classes: Sequence[str], class_map: dict[str, str]
) -> dict[str, str]:
    """Data class -> model class for the data's names that differ from exactly one of the model's only in case
    (KITTI's ``Car``, COCO's ``car``) and are neither a model class nor mapped by ``class_map``."""
    lower: dict[str, list[str]] = {}
    for c in model_classes:
        lower.setdefault(c.lower(), []).append(c)
    out: dict[str, str] = {}
    for c in data_classes:
        hits = lower.get(c.lower(), [])
        if c not in model_classes and c not in class_map and len(hits) == 1:
            out[c] = hits[0]
    return out


def names_back(renamed: dict[str, str], data_classes: Sequence[str]) -> dict[str, str]:
    """Model class -> the data's name for it, for predictions to be named as the data names its objects:
    ``renamed`` maps data classes to model classes (a class map, the case-insensitive match); a model class is
    named back only when exactly one data class maps to it and the data has no class of the model class's own
    name (else the name would be ambiguous, and the prediction keeps the model's)."""
    targets: dict[str, list[str]] = {}
    for d, m in renamed.items():
        targets.setdefault(m, []).append(d)
    present = set(data_classes)
    return {m: ds[0] for m, ds in targets.items() if len(ds) == 1 and m not in present}


def _target(
    inst: Instance, model_classes: set[str], class_map: dict[str, str], classes: set[str] | None, all_objects: bool
) -> str | None:
    if inst.extra.get("unknown"):
        return None
    name = class_map.get(inst.category, inst.category)
    if all_objects:
        return name
    if classes is not None:
        return name if (inst.category in classes or name in classes) else None
    return name if name in model_classes else None


@dataclass
class PredictConfig:
    """Which annotated objects of a dataset are predicted, and what the model is given about them.

    ``boxes``: the given boxes: amodal where the data has them (``auto``, the paper's protocol), else visible, or
    one kind. ``given_labels``: give each object its annotated class (when the model knows it) instead of
    classifying it. Objects of other classes are not predicted (they act as unknown occluders, as in the paper's
    protocol; a warning counts them, and a ``ValueError`` says so when no object is left); ``classes`` picks the
    data's classes to predict (one class may be given as a string), and ``all_objects`` predicts every annotated
    object (not marked unknown), each classified by the model. ``class_map`` maps the data's class names to the
    model's (e.g. KITTI's ``Pedestrian`` to ``person``), on top of the training's class map and before names that
    differ from a model class only in case are matched; predictions of a mapped class are named as the data names
    it (:func:`names_back`). ``adapt_order``: refit the part-position classifier to the cells of the data's boxes
    before predicting (:mod:`occseg.inference.adapt`; a second backbone pass per object). ``min_height``: only
    objects whose visible box is this tall (px). ``progress``: show progress bars."""

    boxes: BoxChoice = "auto"
    given_labels: bool = False
    classes: Sequence[str] | str | None = None
    all_objects: bool = False
    class_map: Mapping[str, str] | None = None
    adapt_order: bool = False
    min_height: float = 0.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.boxes not in BOX_CHOICES:
            raise ValueError(f"boxes must be one of {', '.join(BOX_CHOICES)}, not {self.boxes!r}")
        if not is_number(self.min_height) or not self.min_height >= 0:
            raise ValueError(f"min_height must be a number of pixels >= 0, not {self.min_height!r}")
        if isinstance(self.classes, str):  # one class, not its letters
            self.classes = [self.classes]
        if self.all_objects and self.classes:
            raise ValueError("give either classes or all_objects, not both")


def scene_configs(
    modes: Sequence[str],
    *,
    reasoning_iters: int = 2,
    order: str = "auto",
    refine: bool = True,
    complete_boxes: bool = False,
) -> dict[str, SceneConfig]:
    """``{mode: SceneConfig}`` for reasoning ``modes`` that share the other settings (an unknown mode or order
    fails here, before any work)."""
    return {
        mode: SceneConfig(
            reasoning=mode,
            reasoning_iters=reasoning_iters,
            order=order,
            refine=RefineConfig() if refine else None,
            complete_boxes=complete_boxes,
        )
        for mode in dict.fromkeys(modes)
    }


def predict_dataset(
    model_dir: str | Path,
    dataset: Dataset,
    *,
    boxes: str = "auto",
    given_labels: bool = False,
    reasoning: str = "nod",
    reasoning_iters: int = 2,
    order: str = "auto",
    refine: bool = True,
    complete_boxes: bool = False,
    device: str = "cpu",
    classes: Sequence[str] | str | None = None,
    all_objects: bool = False,
    class_map: Mapping[str, str] | None = None,
    adapt_order: bool = False,
    min_height: float = 0.0,
    progress: bool = True,
    weights: str | Path | None = None,
    allow_download: bool = False,
) -> Dataset:
    """Predict every annotated object of the target classes (all objects of one image together) with the model
    in ``model_dir``: :func:`predict_scenes` with one scene config (:func:`scene_configs`) and a
    :class:`PredictConfig` made of the keywords of the same names. ``order``: who is in front of an overlapping
    pair (``SceneConfig.order``). ``complete_boxes``: with visible boxes, complete them to amodal boxes the paper's
    way (``SceneConfig.complete_boxes``, off by default). ``weights``: the backbone's weights (see
    :func:`load_model_and_backbone`)."""
    return predict_dataset_modes(
        model_dir, dataset, modes=(reasoning,), boxes=boxes, given_labels=given_labels,
        reasoning_iters=reasoning_iters, order=order, refine=refine, complete_boxes=complete_boxes, device=device,
        classes=classes,
        all_objects=all_objects, class_map=class_map, adapt_order=adapt_order, min_height=min_height,
        progress=progress, weights=weights,
        allow_download=allow_download,
    )[reasoning]  # fmt: skip


def predict_dataset_modes(
    model_dir: str | Path,
    dataset: Dataset,
    *,
    modes: Sequence[str] = ("off", "nod"),
    reasoning_iters: int = 2,
    order: str = "auto",
    refine: bool = True,
    complete_boxes: bool = False,
    device: str = "cpu",
    weights: str | Path | None = None,
    allow_download: bool = False,
    **predict: object,
) -> dict[str, Dataset]:
    """:func:`predict_dataset` for several reasoning ``modes`` at once (e.g. without and with reasoning), from
    ONE backbone pass per object: ``{mode: predictions}``. ``predict``: the :class:`PredictConfig` settings."""
    require_dataset(dataset, "dataset")
    cfg = PredictConfig(**predict)  # type: ignore[arg-type]
    scenes = scene_configs(
        modes, reasoning_iters=reasoning_iters, order=order, refine=refine, complete_boxes=complete_boxes
    )
    check_adapt_order(cfg, scenes)
    model, backbone = load_model_and_backbone(model_dir, device=device, weights=weights, allow_download=allow_download)
    return predict_scenes(model, backbone, dataset, scenes, cfg, device=device, source=model_dir)


def check_adapt_order(cfg: PredictConfig, scenes: Mapping[str, SceneConfig]) -> None:
    """Refitting the part-position classifier makes sense only where it decides the order."""
    orders = {s.order for s in scenes.values()}
    if cfg.adapt_order and ("counts" in orders or {s.reasoning for s in scenes.values()} == {"off"}):
        raise ValueError(
            "adapt_order refits the part-position classifier, which decides the order only with reasoning on and "
            "the order by part positions (not order='counts' / reasoning 'off')"
        )


@dataclass
class ClassNaming:
    """How the data's classes meet the model's: ``cmap`` data class -> model class (the training's class map, the
    given one, the case-insensitive matches), ``back`` model class -> the data's name for predictions, ``want``
    the data classes asked for (``None``: those the model knows)."""

    cmap: dict[str, str]
    back: dict[str, str]
    want: set[str] | None
    model_classes: set[str]


def class_naming(
    model: CompNetModel, dataset: Dataset, cfg: PredictConfig, source: object, warnings: list[str]
) -> ClassNaming:
    """The :class:`ClassNaming` of a dataset for the model; what a user should know about it is added to
    ``warnings``; a class map to classes the model does not know is an error."""
    model_classes = set(model.settings.classes)
    given_map = dict(cfg.class_map or {})
    foreign = sorted({m for m in given_map.values() if m not in model_classes})
    if foreign:
        raise ValueError(
            f"the class map maps to {', '.join(map(repr, foreign))}, which the model {source} does not know "
            f"(model classes: {', '.join(model.settings.classes)})"
        )
    cmap = dict(model.settings.training.get("class_map", {}))
    cmap.update(given_map)
    data_classes = list(
        dict.fromkeys([*dataset.categories, *(i.category for im in dataset.images for i in im.instances)])
    )
    case_map = case_insensitive_classes(data_classes, model.settings.classes, cmap)
    cmap.update(case_map)
    mapped = {d: m for d, m in given_map.items() if d in data_classes}
    # predictions name a mapped class as the data does, so that evaluating against the data counts it right
    back = names_back({**mapped, **case_map}, data_classes)
    want = set(cfg.classes) if cfg.classes else None
    absent = [d for d in given_map if d not in data_classes]
    if absent:
        warnings.append(
            f"the class map names {', '.join(map(repr, absent))}, which {dataset.source} does not have "
            f"(its classes: {', '.join(data_classes[:20])}{', ...' if len(data_classes) > 20 else ''})"
        )
    if mapped:
        warnings.append(
            "data classes taken as the model's by the class map: "
            + ", ".join(f"{d} -> {m}" for d, m in sorted(mapped.items()))
        )
    if case_map:
        warnings.append(
            "data classes taken as the model's, ignoring case: "
            + ", ".join(f"{d} -> {m}" for d, m in sorted(case_map.items()))
        )
    foreign_wanted = sorted(c for c in (want or ()) if cmap.get(c, c) not in model_classes)
    if foreign_wanted:
        warnings.append(
            f"the model {source} does not know the class(es) asked for {', '.join(map(repr, foreign_wanted))} "
            f"(its classes: {', '.join(model.settings.classes)}): their objects are classified by the model"
            + (", not given their class (--given-labels)" if cfg.given_labels else "")
            + "; a class map takes them as one of the model's"
        )
    kept_name = sorted({m for m in {**mapped, **case_map}.values() if m not in back})
    if kept_name:
        warnings.append(
            f"predictions of {', '.join(kept_name)} keep the model's class name: more than one data class is taken "
            "as it, or the data also has a class of that name (`occseg evaluate --class-agnostic` scores their masks "
            "whatever the name)"
        )
    return ClassNaming(cmap=cmap, back=back, want=want, model_classes=model_classes)


@dataclass
class ImageJob:
    """One image to predict: its objects with the model class each is taken as, their validated boxes, and
    whether those are amodal boxes."""

    image: AnnotatedImage
    objects: list[tuple[Instance, str]]
    boxes: list
    amodal: bool


def image_jobs(
    dataset: Dataset,
    cfg: PredictConfig,
    naming: ClassNaming,
    source: object,
    model_classes: Sequence[str],
    warnings: list[str],
) -> list[ImageJob]:
    """The images with objects to predict, their objects picked by class and height and their boxes validated
    (a refused box is a warning); errors when nothing is left because of the height or the classes."""
    unknown_class: Counter[str] = Counter()  # objects left out because the model does not know their class
    n_picked = n_short = 0  # objects to predict, and those left out as shorter than min_height
    jobs: list[ImageJob] = []
    for im in dataset.images:
        picked: list[tuple[Instance, str]] = []
        for inst in im.instances:
            if inst.iscrowd:
                continue
            name = _target(inst, naming.model_classes, naming.cmap, naming.want, cfg.all_objects)
            if name is None:
                if naming.want is None and not inst.extra.get("unknown"):
                    unknown_class[inst.category] += 1
                continue
            if box_height(inst.box) < cfg.min_height:
                n_short += 1
                continue
            picked.append((inst, name))
        n_picked += len(picked)
        if picked:
            job = _image_job(im, picked, cfg.boxes, warnings)
            if job.objects:
                jobs.append(job)
    if n_picked == 0 and n_short:
        raise ValueError(
            f"{dataset.source}: all {n_short} object(s) to predict are less than min_height={cfg.min_height:g} px "
            "tall (--min-height): nothing is left to predict"
        )
    _unknown_classes_told(unknown_class, n_picked, dataset, source, model_classes, warnings)
    return jobs


def _image_job(im: AnnotatedImage, picked: list[tuple[Instance, str]], boxes: str, warnings: list[str]) -> ImageJob:
    use_amodal = boxes == "amodal" or (boxes == "auto" and all(i.amodal_box for i, _ in picked))
    job = ImageJob(image=im, objects=[], boxes=[], amodal=use_amodal)
    for inst, name in picked:
        b = input_box(inst, im, "amodal" if use_amodal else "visible")  # an error if one has no amodal box
        try:
            b, warn = validate_box(b, im.width, im.height, what=f"{im.path.name} annotation {inst.id}")
        except BoxError as exc:
            warnings.append(str(exc))
            continue
        if warn:
            warnings.append(warn)
        job.boxes.append(b)
        job.objects.append((inst, name))
    return job


def predict_scenes(
    model: CompNetModel,
    backbone,
    dataset: Dataset,
    scenes: Mapping[str, SceneConfig],
    cfg: PredictConfig | None = None,
    *,
    device: str | None = None,
    source: object = "the model",
) -> dict[str, Dataset]:
    """The prediction engine: every object ``cfg`` picks from ``dataset`` (all objects of one image together),
    explained under each scene config of ``scenes`` from ONE backbone pass per object: ``{name: predictions}``,
    KINS-style datasets whose objects keep their annotation's ``id`` and ``image_id``. Each config's ``boxes``
    is set per image to the boxes given (``cfg.boxes``). ``source`` names the model in messages."""
    require_dataset(dataset, "dataset")
    cfg = PredictConfig() if cfg is None else cfg
    if not isinstance(cfg, PredictConfig):
        raise TypeError(f"cfg must be a PredictConfig, not {type(cfg).__name__}")
    check_adapt_order(cfg, scenes)
    if any(s.order in VOTE_ORDER_CUES for s in scenes.values()):
        model.require_position(source)
    if cfg.adapt_order:
        model.require_position(source, adapt=True)
    warnings: list[str] = []
    naming = class_naming(model, dataset, cfg, source, warnings)
    jobs = image_jobs(dataset, cfg, naming, source, model.settings.classes, warnings)
    if cfg.adapt_order:
        from occseg.inference.adapt import adapt_order_classifier

        model = replace(model, position=adapt_order_classifier(
            model, backbone, [(j.image, j.boxes) for j in jobs], device=device, progress=cfg.progress
        ))  # fmt: skip
    out_images: dict[str, list[AnnotatedImage]] = {name: [] for name in scenes}
    for job in tqdm(jobs, desc="predict", disable=not cfg.progress, leave=False, dynamic_ncols=True):
        kind = "amodal" if job.amodal else "visible"
        labels = [name if (cfg.given_labels and name in naming.model_classes) else None for _, name in job.objects]
        configs = {name: replace(scene, boxes=kind) for name, scene in scenes.items()}
        explained = explain_image(
            model, backbone, job.image.load_rgb(), job.boxes, configs, labels=labels, device=device
        )
        for name, scene in explained.items():
            out_images[name].append(
                _annotated(job.image, job.objects, job.boxes, scene, configs[name].reasoning_run, naming.back)
            )
    for w in warnings:
        log.warning(w)
    return {name: _predictions(dataset, ims, model, naming.back, warnings) for name, ims in out_images.items()}


def _predictions(
    dataset: Dataset, images: list[AnnotatedImage], model: CompNetModel, back: dict[str, str], warnings: list[str]
) -> Dataset:
    """The predicted images as a KINS-style dataset: the data's classes, then the model's (as the data names
    them), with the data's category ids and new ones for the rest."""
    cats = list(dict.fromkeys(list(dataset.categories) + [back.get(c, c) for c in model.settings.classes]))
    ids = dict(dataset.category_ids)
    for name in cats:
        if name not in ids:
            ids[name] = max(ids.values(), default=0) + 1
    return Dataset(
        images=images, categories=cats, source=dataset.source, format="kins", warnings=list(warnings), category_ids=ids
    )


def _unknown_classes_told(
    unknown_class: Counter[str],
    n_picked: int,
    dataset: Dataset,
    model_dir: str | Path,
    model_classes: Sequence[str],
    warnings: list[str],
) -> None:
    """The warning about the objects left out because the model does not know their class (added to
    ``warnings``), or the error when no object is left."""
    if unknown_class:
        names = ", ".join(f"{c} ({n})" for c, n in unknown_class.most_common(12))
        more = f", ... ({len(unknown_class)} classes)" if len(unknown_class) > 12 else ""
        told = (
            f"{dataset.source}: {sum(unknown_class.values())} annotated object(s) have a class the model "
            f"{model_dir} does not know ({names}{more}; the model's: {', '.join(model_classes)})"
        )
        if n_picked == 0:
            raise ValueError(
                f"{told}, and no object is left to predict: map the data's classes to the model's with --class-map "
                "(class_map=), predict them all, each classified by the model, with --all-objects (all_objects=True), "
                "or name the data's classes to predict with --classes"
            )
        warnings.append(
            f"{told}; they are not predicted and act as unknown occluders (--class-map or --all-objects predicts them)"
        )


def object_instance(ann_id: int, obj: ObjectResult, given_box, **fields) -> Instance:
    """One predicted object as an :class:`Instance` answering annotation ``ann_id``: its class, visible box and
    mask (the given box when the mask is empty), amodal box and mask, ``extra`` score and mixture; ``fields``
    sets further Instance fields (``extra`` entries are added to the score and mixture)."""
    extra = {"score": round(obj.confidence, 6), "mixture": obj.mixture, **fields.pop("extra", {})}
    return Instance(
        id=ann_id,
        category=fields.pop("category", obj.category),
        box=mask_to_box(obj.visible) or given_box,
        mask=LazyMask.from_array(obj.visible),
        amodal_box=obj.amodal_box,
        amodal_mask=LazyMask.from_array(obj.amodal),
        extra=extra,
        **fields,
    )


def _annotated(
    im: AnnotatedImage,
    kept: list[tuple[Instance, str]],
    given: list,
    scene: SceneResult,
    mode: str,
    rename: dict[str, str],
) -> AnnotatedImage:
    """One image's predictions (ids of the annotations they answer, the scene's order and layers); ``rename``:
    model class -> the data's name for it."""
    preds = [
        object_instance(
            inst.id,
            obj,
            given[k],
            category=rename.get(obj.category, obj.category),
            cluster_id=scene.groups[k],
            order=scene.layers[k],
            extra={
                "class_scores": {rename.get(c, c): round(v, 4) for c, v in obj.class_scores.items()},
                "given_box": list(given[k]),
            },
        )
        for k, ((inst, _), obj) in enumerate(zip(kept, scene.objects))
    ]
    return AnnotatedImage(
        image_id=im.image_id,
        path=im.path,
        width=im.width,
        height=im.height,
        instances=preds,
        extra={
            "order_ids": [p.id for p in preds],
            "order": scene.order.tolist(),
            "order_confidence": np.round(scene.order_confidence, 4).tolist(),
            "reasoning": mode,
            "broken_cycles": scene.report.get("broken_cycles", []),
        },
    )
