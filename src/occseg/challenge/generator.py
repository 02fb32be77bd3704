"""The whole Occlusion Challenge run: select whole objects, split them, compose images, write everything.

Output folder ``OUT``::

    images/{train,test}_NNNNNN.png       composed images (PNG: lossless and byte-for-byte repeatable)
    annotations/train.json, test.json    KINS-2020-style JSON (occseg.data.writers), image_root "../images"
    selection.json                       the verdict on every candidate object (kept / rejected and why)
    split.json                           which source objects (and source images) are in each split
    summary.json                         target objects per split, scenario and occlusion level
    contact_sheet.png                    a grid of composed images with masks and depth order drawn

All randomness comes from one ``numpy.random.Generator(PCG64(seed))`` consumed in a fixed order, so the same
seed and inputs give identical bytes. The objects of an image are listed in an order drawn from a second
generator (``PCG64([seed, 1])``): the composition places them front to back, and listing them that way would
give the depth order away to any method that looks at the listing (the depth is in each object's
``cluster_id`` / ``order``). Splits are by source object: the whole objects (targets and, separately,
unknown occluders) are permuted and the first ``round(n * test_fraction)`` go to test; each composed image uses
objects of one split only.

A run builds everything in a temporary folder beside ``OUT`` (``.OUT.tmp-XXXXXXXX``, same filesystem) and only
when all of it succeeded moves these outputs into ``OUT``, each by a rename that replaces the old file; images
and the contact sheet of an earlier run that this run does not make are then removed. Other files in ``OUT``
are left alone. A run that fails removes its temporary folder and leaves ``OUT`` as it was (only when the
selection keeps no object and ``OUT`` holds no earlier challenge is ``selection.json`` written there, to
explain the error).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from occseg.challenge.backgrounds import BackgroundPool, free_regions, list_background_files
from occseg.challenge.composer import (
    LEVELS,
    SCENARIOS,
    ComposedImage,
    LevelBalancer,
    ObjectPool,
    PlacementConfig,
    compose,
    scenario_slots,
)
from occseg.challenge.contact_sheet import write_contact_sheet
from occseg.challenge.objects import CutOut, Selection, SelectionConfig, select_objects, synthetic_occluders
from occseg.checks import is_integer
from occseg.data.annotation import AnnotatedImage, Dataset, Instance, occlusion_level
from occseg.data.images import save_rgb
from occseg.data.masks import LazyMask
from occseg.geometry.boxes import mask_to_box
from occseg.io import check_not_input, write_json

SPLITS: tuple[str, ...] = ("train", "test")
#: The largest output image side (--size): each composed image and its masks are held in memory whole
MAX_SIDE = 4096
SYNTHETIC_CATEGORY = "unknown_occluder"
_IMAGE_NAME = re.compile(r"^(train|test)_\d{6}\.png$")
_FILES: tuple[str, ...] = ("selection.json", "split.json", "summary.json", "contact_sheet.png")  # besides these:
_ANNOTATIONS: tuple[str, ...] = tuple(f"{split}.json" for split in SPLITS)  # annotations/ and images/ above


@dataclass
class ChallengeConfig:
    """Everything a run depends on (with the source dataset and the backgrounds folder's contents)."""

    out: Path
    source: Path | None = None  # annotations to read with read_dataset (not needed when a Dataset is given)
    source_images: Path | None = None  # image folder for the source, when the reader cannot find it
    classes: tuple[str, ...] = ("person",)
    unknown_classes: tuple[str, ...] | str = "all-other"  # "all-other", "none", or class names
    backgrounds: Path | None = None  # folder of background photos
    source_backgrounds: bool | None = None  # object-free source regions as backgrounds; None: only without a folder
    images: int = 200  # composed images, both splits together
    seed: int = 0
    test_fraction: float = 0.5
    size: tuple[int, int] = (640, 480)  # output (width, height)
    scenarios: tuple[str, ...] = SCENARIOS
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    min_region_height: int = 120  # smallest object-free source region used as a background
    synthetic_occluders: int = 16  # per split, when no whole unknown-class object exists there
    max_image_tries: int = 20  # backgrounds / layouts tried per image before giving up
    contact_sheet_images: int = 12
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.classes, str):  # one class, not its letters
            object.__setattr__(self, "classes", (self.classes,))

    def validate(self) -> None:
        for name in ("images", "seed"):
            value = getattr(self, name)
            if not is_integer(value) or value < 0:
                raise ValueError(f"{name} (--{name}) must be an integer >= 0, got {value!r}")
        if self.images < 1:
            raise ValueError(f"--images must be at least 1, got {self.images}")
        if not 0.0 <= self.test_fraction <= 1.0:
            raise ValueError(f"--test-fraction must be in [0, 1], got {self.test_fraction}")
        if not self.classes:
            raise ValueError("give at least one target class (--classes)")
        w, h = self.size
        if w < 32 or h < 32:
            raise ValueError(f"output size {w}x{h} is too small (at least 32x32)")
        if w > MAX_SIDE or h > MAX_SIDE:
            raise ValueError(f"output size {w}x{h} is too large (at most {MAX_SIDE} px a side)")
        n_test = int(round(self.images * self.test_fraction))
        empty = "test" if n_test == 0 else "train" if n_test == self.images else None
        if empty and 0.0 < self.test_fraction < 1.0:  # a fraction of 0 or 1 asks for one split on purpose
            raise ValueError(
                f"--images {self.images} with --test-fraction {self.test_fraction:g} leaves the {empty} split empty; "
                f"give at least {smallest_split_images(self.test_fraction)} images"
            )
        if not self.scenarios:
            raise ValueError(f"give at least one scenario (--scenarios), from {', '.join(SCENARIOS)}")
        bad = [s for s in self.scenarios if s not in SCENARIOS]
        if bad:
            raise ValueError(f"unknown scenario(s) {bad}; choose from {', '.join(SCENARIOS)}")
        if self.backgrounds is None and self.source_backgrounds is False:
            raise ValueError("no backgrounds: give a backgrounds folder or allow object-free source regions")


def smallest_split_images(test_fraction: float) -> int:
    """The fewest images that give both splits at least one at ``test_fraction`` (in (0, 1))."""
    bound = max(2, math.ceil(1 / min(test_fraction, 1 - test_fraction)))  # enough for both: n * fraction >= 1
    return next(n for n in range(2, bound + 1) if 0 < int(round(n * test_fraction)) < n)


@dataclass
class ChallengeResult:
    out: Path
    datasets: dict[str, Dataset]
    selection: Selection
    summary: dict[str, Any]
    split: dict[str, Any]
    table: str


def resolve_unknown_classes(dataset: Dataset, classes: tuple[str, ...], unknown: tuple[str, ...] | str) -> list[str]:
    """The unknown-occluder classes: every other class of the source, none, or the named ones (checked)."""
    if isinstance(unknown, str):
        key = unknown.strip().lower()
        if key in ("all-other", "all_other", "all"):
            return [c for c in dataset.categories if c not in classes]
        if key in ("none", ""):
            return []
        unknown = tuple(u.strip() for u in unknown.split(",") if u.strip())
    missing = [u for u in unknown if u not in dataset.categories]
    if missing:
        raise ValueError(f"unknown class(es) {missing} are not categories of {dataset.source}")
    clash = [u for u in unknown if u in classes]
    if clash:
        raise ValueError(f"class(es) {clash} cannot be both target and unknown occluder classes")
    return list(unknown)


def check_classes(dataset: Dataset, classes: tuple[str, ...]) -> None:
    missing = [c for c in classes if c not in dataset.categories]
    if missing:
        shown = ", ".join(dataset.categories[:30]) + (" ..." if len(dataset.categories) > 30 else "")
        raise ValueError(f"class(es) {missing} not in {dataset.source} (its categories: {shown})")


def check_selection(selection: Selection, classes: tuple[str, ...], source: Path) -> None:
    """An error naming every target class without a whole object, with the rejection counts."""
    kept = selection.counts("target")["kept_per_class"]
    empty = [c for c in classes if kept.get(c, 0) == 0]
    if not empty:
        return
    lines = []
    for c in empty:
        reps = [r for r in selection.reports if r.role == "target" and r.category == c]
        by_reason: dict[str, int] = {}
        for r in reps:
            for reason in r.reasons:
                by_reason[reason] = by_reason.get(reason, 0) + 1
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(
            f"class {c!r}: {len(reps)} candidates, all rejected "
            f"({reasons or 'no instance of this class'}{'; one may fail several tests' if reasons else ''})"
        )
    rule = selection.config
    raise ValueError(
        f"no whole objects survive the selection in {source}: "
        + "; ".join(lines)
        + f" [rule: mask height >= {rule.min_height} px, >= {rule.border_margin} px from the border, "
        f"not within {rule.touch_px} px of another instance, not crowd]"
    )


def split_objects(cutouts: list[CutOut], test_fraction: float, rng: np.random.Generator) -> dict[str, list[CutOut]]:
    """Seeded permutation; the first ``round(n * test_fraction)`` go to test, in their original order."""
    n = len(cutouts)
    perm = rng.permutation(n)
    n_test = int(round(n * test_fraction))
    test = set(perm[:n_test].tolist())
    return {
        "train": [c for i, c in enumerate(cutouts) if i not in test],
        "test": [c for i, c in enumerate(cutouts) if i in test],
    }


def _instance(obj: Any, ann_id: int, scenario: str) -> Instance:
    amodal = LazyMask.from_array(obj.amodal)
    visible = LazyMask.from_array(obj.visible)
    cut: CutOut = obj.cutout
    extra: dict[str, Any] = {}
    if cut.unknown:
        extra["unknown"] = True
    extra["occ_fraction"] = obj.occ_fraction
    extra["scenario"] = scenario
    extra["source"] = dict(cut.source)
    extra["placement"] = dict(obj.placement)
    return Instance(
        id=ann_id,
        category=cut.category,
        box=mask_to_box(obj.visible),  # type: ignore[arg-type]  # never empty: occlusion < 0.9 / free max
        mask=visible,
        amodal_box=mask_to_box(obj.amodal),
        amodal_mask=amodal,
        cluster_id=obj.cluster,
        order=obj.order,
        iscrowd=False,
        extra=extra,
    )


def _empty_counts(scenarios: tuple[str, ...]) -> dict[str, dict[str, int]]:
    return {s: {lv: 0 for lv in (*LEVELS, "total")} for s in scenarios}


def format_table(counts: dict[str, dict[str, dict[str, int]]]) -> str:
    """The target-object counts as a text table: one row per split and scenario, columns L0..L3 and total."""
    head = f"{'split':<6} {'scenario':<14}" + "".join(f"{c:>7}" for c in (*LEVELS, "total"))
    lines = [head, "-" * len(head)]
    for split, per_scen in counts.items():
        for scen, row in per_scen.items():
            lines.append(f"{split:<6} {scen:<14}" + "".join(f"{row[c]:>7}" for c in (*LEVELS, "total")))
    return "\n".join(lines)


def _compose_split(
    split: str,
    n_images: int,
    first_image_id: int,
    first_ann_id: int,
    targets: list[CutOut],
    unknowns: list[CutOut],
    backgrounds: BackgroundPool,
    rng: np.random.Generator,
    config: ChallengeConfig,
    image_dir: Path,
    listing: np.random.Generator,
) -> tuple[list[AnnotatedImage], dict[str, Any]]:
    """Compose and save the images of one split; returns their annotations and split statistics. ``listing``
    draws the order in which each image's objects are listed (never the front-to-back order of composition)."""
    stats: dict[str, Any] = {"failed_layouts": 0, "synthetic_occluders": 0}
    if n_images == 0:
        return [], stats
    if not targets:
        raise ValueError(f"the {split} split has {n_images} images to make but no whole target object")
    target_pool = ObjectPool(targets)
    unknown_pool = None
    if "2obj_unknown" in config.scenarios:
        if not unknowns:
            textures = [backgrounds.sample(rng)[0] for _ in range(4)]
            unknowns = synthetic_occluders(textures, rng, config.synthetic_occluders, prefix=f"synthetic-{split}")
            stats["synthetic_occluders"] = len(unknowns)
        unknown_pool = ObjectPool(unknowns)
    balancer = LevelBalancer(config.scenarios)
    records: list[AnnotatedImage] = []
    ann_id = first_ann_id
    bar = tqdm(range(n_images), desc=f"composing {split}", unit="img", disable=not config.progress, leave=False)
    for i in bar:
        scenario = config.scenarios[i % len(config.scenarios)]
        composed: ComposedImage | None = None
        for _ in range(config.max_image_tries):
            background, bg_info = backgrounds.sample(rng)
            slots = scenario_slots(scenario, rng, config.placement)
            prefs = balancer.preferences(scenario, slots, rng)
            composed = compose(background, scenario, slots, prefs, target_pool, unknown_pool, rng, config.placement)
            if composed is not None:
                break
            stats["failed_layouts"] += 1
        if composed is None:
            raise ValueError(
                f"could not compose {split} image {i} ({scenario}) in {config.max_image_tries} tries: "
                "the objects may be too large or too few for the output size"
            )
        name = f"{split}_{i:06d}.png"
        path = (image_dir / name).resolve()
        save_rgb(path, composed.image)
        instances = []
        for k in listing.permutation(len(composed.objects)):
            obj = composed.objects[int(k)]
            instances.append(_instance(obj, ann_id, scenario))
            ann_id += 1
            if not obj.cutout.unknown:
                balancer.add(scenario, occlusion_level(obj.occ_fraction))
        height, width = composed.image.shape[:2]
        records.append(
            AnnotatedImage(
                image_id=first_image_id + i,
                path=path,
                width=width,
                height=height,
                instances=instances,
                extra={"scenario": scenario, "split": split, "background": bg_info},
            )
        )
    return records, stats


def level_counts(images: list[AnnotatedImage], scenarios: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Target objects (not unknown occluders) per scenario and level, from their exact occlusion fractions."""
    counts = _empty_counts(scenarios)
    for im in images:
        scen = im.extra["scenario"]
        for inst in im.instances:
            if inst.extra.get("unknown"):
                continue
            level = occlusion_level(inst.occlusion_fraction())
            if level is not None:
                counts[scen][level] += 1
            counts[scen]["total"] += 1
    return counts


def _object_json(c: CutOut) -> dict[str, Any]:
    return {"key": c.key, "category": c.category, **c.source}


def _remove_stale_images(image_dir: Path, keep: set[str]) -> None:
    if not image_dir.is_dir():
        return
    for f in image_dir.iterdir():
        if _IMAGE_NAME.match(f.name) and f.name not in keep:
            f.unlink()


def _has_outputs(out: Path) -> bool:
    """Whether ``out`` holds any output of an earlier run."""
    if any((out / name).exists() for name in _FILES) or any((out / "annotations" / a).exists() for a in _ANNOTATIONS):
        return True
    images = out / "images"
    return images.is_dir() and any(_IMAGE_NAME.match(f.name) for f in images.iterdir())


def _install(staging: Path, out: Path, images: set[str]) -> None:
    """Move the outputs built in ``staging`` into ``out``, replacing the old ones file by file (renames on one
    filesystem); then remove the images and contact sheet of an earlier run that this run did not make."""
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "annotations"):
        src, dst = staging / sub, out / sub
        if not dst.exists():
            os.replace(src, dst)
            continue
        for f in sorted(src.iterdir()):
            os.replace(f, dst / f.name)
    for name in _FILES:
        if (staging / name).exists():
            os.replace(staging / name, out / name)
        elif name == "contact_sheet.png" and (out / name).is_file():
            (out / name).unlink()  # this run makes none: the old one would show images that are gone
    _remove_stale_images(out / "images", images)


def check_inputs_outside(out: Path, dataset: Dataset, backgrounds: list[Path]) -> None:
    """Refuse (``ValueError``) a run whose output would overwrite or remove what it reads: the source annotations,
    its images or the background photos at an output file or inside ``images/`` / ``annotations/``."""
    inputs = [dataset.source, *(im.path for im in dataset.images), *backgrounds]
    for name in _FILES:
        check_not_input(out / name, inputs, what="--out")
    for name in _ANNOTATIONS:
        check_not_input(out / "annotations" / name, inputs, what="--out")
    for sub in ("images", "annotations"):
        check_not_input(out / sub, inputs, what="--out", folder=True)


def generate_challenge(config: ChallengeConfig, dataset: Dataset | None = None) -> ChallengeResult:
    """Build the Occlusion Challenge described by ``config`` (reading ``config.source`` unless given ``dataset``).

    Everything is built in a temporary folder beside ``config.out`` and moved into it only when the whole run
    succeeded; the returned datasets point at the images in ``config.out``."""
    config.validate()
    if dataset is None:
        if config.source is None:
            raise ValueError("give a source dataset (--source)")
        from occseg.data.readers import read_dataset

        dataset = read_dataset(config.source, images=config.source_images)
    source_name = Path(dataset.source)
    classes = tuple(config.classes)
    check_classes(dataset, classes)
    unknown_classes = resolve_unknown_classes(dataset, classes, config.unknown_classes)
    files = list_background_files(config.backgrounds) if config.backgrounds is not None else []

    out = Path(config.out)
    check_inputs_outside(out, dataset, files)
    selection = select_objects(dataset, classes, unknown_classes=unknown_classes, config=config.selection)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a folder")
    selection_json = {"source": str(source_name), **selection.to_json()}
    try:
        check_selection(selection, classes, source_name)
    except ValueError:
        if not _has_outputs(out):  # nothing to lose: leave the report that explains it
            write_json(out / "selection.json", selection_json, indent=1)
        raise

    final = out.resolve()  # the temporary folder goes beside the real folder, on its filesystem
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name or 'out'}.tmp-", dir=final.parent))
    try:
        result = _build(config, dataset, selection, selection_json, classes, unknown_classes, files, staging)
        images = {im.path.name for ds in result.datasets.values() for im in ds.images}
        _install(staging, final, images)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # the datasets point at the installed files, not at the (removed) temporary folder
    for split, ds in result.datasets.items():
        ds.source = final / "annotations" / f"{split}.json"
        for im in ds.images:
            im.path = final / "images" / im.path.name
    result.out = out
    return result


def _build(
    config: ChallengeConfig,
    dataset: Dataset,
    selection: Selection,
    selection_json: dict[str, Any],
    classes: tuple[str, ...],
    unknown_classes: list[str],
    files: list[Path],
    out: Path,
) -> ChallengeResult:
    """Compose and write every output into ``out`` (the temporary folder)."""
    write_json(out / "selection.json", selection_json, indent=1)
    backgrounds, regions = _background_pool(config, dataset, files)
    rng = np.random.Generator(np.random.PCG64(config.seed))
    listing = np.random.Generator(np.random.PCG64([config.seed, 1]))  # the objects' listing order only
    target_split = split_objects(selection.targets, config.test_fraction, rng)
    unknown_split = split_objects(selection.unknowns, config.test_fraction, rng)
    n_test = int(round(config.images * config.test_fraction))
    n_images = {"train": config.images - n_test, "test": n_test}

    image_dir = out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    datasets: dict[str, Dataset] = {}
    stats: dict[str, Any] = {}
    next_image, next_ann = 1, 1
    categories = list(classes) + [c for c in dataset.categories if c in unknown_classes]
    for split in SPLITS:
        records, stats[split] = _compose_split(
            split,
            n_images[split],
            next_image,
            next_ann,
            target_split[split],
            unknown_split[split],
            backgrounds,
            rng,
            config,
            image_dir,
            listing,
        )
        next_image += len(records)
        next_ann += sum(len(r.instances) for r in records)
        datasets[split] = _write_split(split, records, dataset, categories, classes, out)

    counts = {split: level_counts(datasets[split].images, config.scenarios) for split in SPLITS}
    total = _empty_counts(config.scenarios)
    for split in SPLITS:
        for scen, row in counts[split].items():
            for k, v in row.items():
                total[scen][k] += v
    table = format_table({**counts, "all": total})
    split_info = _split_json(config, target_split, unknown_split)
    summary = {
        "source": str(Path(dataset.source)),
        "classes": list(classes),
        "unknown_classes": unknown_classes,
        "seed": config.seed,
        "size": list(config.size),
        "scenarios": list(config.scenarios),
        "images": {split: len(datasets[split].images) for split in SPLITS},
        "objects": {
            "targets": {split: len(target_split[split]) for split in SPLITS},
            "unknown": {split: len(unknown_split[split]) for split in SPLITS},
        },
        "backgrounds": {"files": [f.name for f in files], "source_regions": len(regions)},
        "counts": counts,
        "counts_all": total,
        "stats": stats,
    }
    write_json(out / "split.json", split_info, indent=1)
    write_json(out / "summary.json", summary, indent=1)
    sheet_images = _sheet_images(datasets, config.contact_sheet_images)
    if sheet_images:
        write_contact_sheet(out / "contact_sheet.png", sheet_images)
    return ChallengeResult(
        out=out, datasets=datasets, selection=selection, summary=summary, split=split_info, table=table
    )


def _background_pool(config: ChallengeConfig, dataset: Dataset, files: list[Path]) -> tuple[BackgroundPool, list]:
    """The backgrounds: the given photos, and (``config.source_backgrounds``, by default when no photo is given)
    the object-free regions of the source images; the pool and those regions."""
    use_regions = config.source_backgrounds if config.source_backgrounds is not None else not files
    regions = free_regions(dataset, config.size, min_height=config.min_region_height) if use_regions else []
    if use_regions and not regions and not files:
        raise ValueError(
            f"no object-free region of at least {config.min_region_height} px in the images of "
            f"{Path(dataset.source)}; give a backgrounds folder"
        )
    return BackgroundPool(config.size, files, regions), regions


def _write_split(
    split: str,
    records: list[AnnotatedImage],
    dataset: Dataset,
    categories: list[str],
    classes: tuple[str, ...],
    out: Path,
) -> Dataset:
    """One split's composed images as a dataset (its classes: the targets' and the unknown occluders' used, with
    the source's category ids; a new id for synthetic occluders), written to ``annotations/<split>.json``."""
    from occseg.data.writers import write_kins_json

    category_ids = {c: dataset.category_id(c) for c in categories}
    used = {inst.category for r in records for inst in r.instances}
    cats = [c for c in categories if c in classes or c in used]
    ids = {c: category_ids[c] for c in cats}
    if any(inst.category == SYNTHETIC_CATEGORY for r in records for inst in r.instances):
        cats.append(SYNTHETIC_CATEGORY)
        source_ids = [dataset.category_id(c) for c in dataset.categories]
        ids[SYNTHETIC_CATEGORY] = max([*source_ids, *ids.values()], default=0) + 1
    ds = Dataset(
        images=records,
        categories=cats,
        source=(out / "annotations" / f"{split}.json").resolve(),
        format="kins",
        category_ids=ids,
    )
    write_kins_json(ds, out / "annotations" / f"{split}.json", image_root=(out / "images").resolve())
    return ds


def _split_json(config: ChallengeConfig, target_split: dict, unknown_split: dict) -> dict[str, Any]:
    """``split.json``: the seed, which source objects went to which split, and their source images."""
    return {
        "seed": config.seed,
        "test_fraction": config.test_fraction,
        "train_objects": [_object_json(c) for c in target_split["train"]],
        "test_objects": [_object_json(c) for c in target_split["test"]],
        "train_unknown_objects": [_object_json(c) for c in unknown_split["train"]],
        "test_unknown_objects": [_object_json(c) for c in unknown_split["test"]],
        "test_source_image_ids": sorted(
            {int(c.source["image_id"]) for c in target_split["test"] + unknown_split["test"]}
        ),
        "train_source_image_ids": sorted(
            {int(c.source["image_id"]) for c in target_split["train"] + unknown_split["train"]}
        ),
    }


def _sheet_images(datasets: dict[str, Dataset], n: int) -> list[AnnotatedImage]:
    """Up to ``n`` images, alternating splits, so every scenario shows."""
    lists = [datasets[s].images for s in SPLITS]
    out: list[AnnotatedImage] = []
    i = 0
    while len(out) < n and any(i < len(x) for x in lists):
        for x in lists:
            if i < len(x) and len(out) < n:
                out.append(x[i])
        i += 1
    return out
