"""Summary of a dataset: images, instances per class, reader warnings and objects per occlusion level."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from tqdm import tqdm

from occseg.data.annotation import OCCLUSION_LEVELS, AnnotatedImage, Dataset, occlusion_level

#: Occlusion fractions at or above this fall in no level of the protocol (docs/method.md §E).
HEAVY_OCCLUSION = 0.9


@dataclass
class DatasetStats:
    """What ``occseg stats`` prints."""

    source: str
    format: str
    num_images: int
    num_instances: int
    per_class: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    num_masks: int = 0  # instances with a visible mask
    num_crowd: int = 0
    num_amodal: int = 0  # instances with both a visible and an amodal mask
    levels: dict[str, int] = field(default_factory=dict)  # L0..L3 -> count
    heavy: int = 0  # occlusion fraction >= 0.9 (in no level)
    undefined: int = 0  # amodal mask of zero area: no fraction
    images_checked: int | None = None  # image files whose header was read; None: not checked
    images_missing: int = 0
    image_problems: list[str] = field(default_factory=list)  # unreadable files, sizes other than annotated


def check_image_files(dataset: Dataset, *, progress: bool = False) -> tuple[int, int, list[str]]:
    """Read each image file's header: ``(files read, files not found, problems)``, a problem being a file that
    cannot be read as an image or whose size is not the one its annotation gives (its boxes and masks would
    not fit it; training and prediction refuse such an image). Only headers are read, not pixels."""
    from occseg.data.images import ImageError, image_size

    checked = missing = 0
    problems: list[str] = []
    for im in tqdm(dataset.images, desc="image files", unit="img", disable=not progress or len(dataset) < 200):
        if not im.path.is_file():
            missing += 1
            continue
        checked += 1
        try:
            w, h = image_size(im.path)
        except ImageError as exc:
            problems.append(str(exc))
            continue
        if (w, h) != (im.width, im.height):
            problems.append(f"{im.path}: image is {w}x{h} but the annotation says {im.width}x{im.height}")
    return checked, missing, problems


def image_file_problem(image: AnnotatedImage) -> str | None:
    """Why an image's file cannot be used (missing, unreadable, not its annotated size; read from its header),
    or ``None``."""
    from occseg.data.images import ImageError, image_size

    try:
        w, h = image_size(image.path)
    except ImageError as exc:
        return str(exc)
    if (w, h) != (image.width, image.height):
        return f"{image.path}: image is {w}x{h} but the annotation says {image.width}x{image.height}"
    return None


def usable_images(
    dataset: Dataset,
    *,
    skip: bool = False,
    option: str | None = None,
    progress: bool = False,
    map_items: Callable[[int, Callable[[int], str | None]], list[str | None]] | None = None,
) -> tuple[Dataset, list[str]]:
    """The header check of :func:`check_image_files` made before a run that reads the pixels: an image file that
    is missing, cannot be read or is not its annotated size is a ``ValueError`` naming it (``option`` names the
    switch that skips such files), or with ``skip`` a warning ``"...; image skipped"``; returns the dataset without
    those images, and the warnings. ``map_items(n, fn)`` runs ``fn`` over the image indices (default a loop; under
    torchrun :func:`occseg.distributed.collectives.map_json`, each rank checking its share)."""
    bar = tqdm(total=len(dataset.images), desc="image files", unit="img", disable=not progress)

    def check(k: int) -> str | None:
        bar.update()
        return image_file_problem(dataset.images[k])

    problems = (map_items or (lambda n, fn: [fn(k) for k in range(n)]))(len(dataset.images), check)
    bar.close()
    bad = {k: why for k, why in enumerate(problems) if why is not None}
    if not bad:
        return dataset, []
    if not skip:
        first = next(iter(bad.values()))
        raise ValueError(
            f"{first} ({len(bad)} image file{'s' if len(bad) > 1 else ''} of {dataset.source} cannot be used, found "
            f"before the run; `occseg stats` lists them{f'; {option} goes on without them' if option else ''})"
        )
    kept = [im for k, im in enumerate(dataset.images) if k not in bad]
    return replace(dataset, images=kept), [f"{why}; image skipped" for why in bad.values()]


def dataset_stats(dataset: Dataset, *, progress: bool = False, check_images: bool = False) -> DatasetStats:
    """Count images, instances (per class), masks, and amodal objects per occlusion level; with
    ``check_images``, also read each image file's header (:func:`check_image_files`).

    Occlusion fractions are computed on the RLEs (:meth:`Instance.occlusion_fraction`), so only instances with
    both masks are rasterised, one at a time.
    """
    stats = DatasetStats(
        source=str(dataset.source),
        format=dataset.format,
        num_images=len(dataset),
        num_instances=dataset.num_instances(),
        per_class=dataset.instances_per_class(),
        warnings=list(dataset.warnings),
        levels=dict.fromkeys(OCCLUSION_LEVELS, 0),
    )
    amodal = [i for im in dataset.images for i in im.instances if i.amodal_mask is not None and i.mask is not None]
    stats.num_masks = sum(1 for im in dataset.images for i in im.instances if i.mask is not None)
    stats.num_crowd = sum(1 for im in dataset.images for i in im.instances if i.iscrowd)
    stats.num_amodal = len(amodal)
    for inst in tqdm(amodal, desc="occlusion", unit="obj", disable=not progress or len(amodal) < 1000):
        frac = inst.occlusion_fraction()
        level = occlusion_level(frac)
        if frac is None:
            stats.undefined += 1
        elif level is not None:
            stats.levels[level] += 1
        elif frac >= HEAVY_OCCLUSION:
            stats.heavy += 1
    if check_images:
        stats.images_checked, stats.images_missing, stats.image_problems = check_image_files(dataset, progress=progress)
    return stats


def _table(rows: list[tuple[str, str]], header: tuple[str, str], indent: str = "  ") -> list[str]:
    width = max([len(header[0])] + [len(r[0]) for r in rows])
    num = max([len(header[1])] + [len(r[1]) for r in rows])
    lines = [f"{indent}{header[0]:<{width}}  {header[1]:>{num}}"]
    lines += [f"{indent}{a:<{width}}  {b:>{num}}" for a, b in rows]
    return lines


def format_stats(stats: DatasetStats, *, max_warnings: int | None = 20) -> str:
    """The human-readable summary ``occseg stats`` prints."""
    lines = [
        f"dataset:   {stats.source}",
        f"format:    {stats.format}",
        f"images:    {stats.num_images}",
        f"instances: {stats.num_instances}",
        f"masks:     {stats.num_masks} visible, {stats.num_amodal} amodal"
        + (f", {stats.num_crowd} crowd" if stats.num_crowd else ""),
        "",
        f"instances per class ({len(stats.per_class)} classes):",
    ]
    rows = [(name, str(n)) for name, n in stats.per_class.items()]
    rows.append(("total", str(stats.num_instances)))
    lines += _table(rows, ("class", "count"))
    lines += ["", f"warnings ({len(stats.warnings)}):"]
    shown = stats.warnings if max_warnings is None else stats.warnings[:max_warnings]
    lines += [f"  {w}" for w in shown] or ["  none"]
    if len(shown) < len(stats.warnings):
        lines.append(f"  ... and {len(stats.warnings) - len(shown)} more (use --max-warnings)")
    if stats.images_checked is not None:
        missing = f", {stats.images_missing} not found (see the warnings)" if stats.images_missing else ""
        lines += ["", f"image files ({stats.images_checked} read{missing}; {len(stats.image_problems)} problems):"]
        shown = stats.image_problems if max_warnings is None else stats.image_problems[:max_warnings]
        lines += [f"  {w}" for w in shown] or ["  none"]
        if len(shown) < len(stats.image_problems):
            lines.append(f"  ... and {len(stats.image_problems) - len(shown)} more (use --max-warnings)")
    lines += ["", f"occlusion levels ({stats.num_amodal} objects with amodal masks):"]
    if stats.num_amodal:
        rows = [
            (f"{name} [{lo:.2f}, {hi:.2f})", str(stats.levels.get(name, 0)))
            for name, (lo, hi) in OCCLUSION_LEVELS.items()
        ]
        rows.append((f">= {HEAVY_OCCLUSION:.2f} (no level)", str(stats.heavy)))
        if stats.undefined:
            rows.append(("empty amodal mask", str(stats.undefined)))
        lines += _table(rows, ("level", "count"))
    else:
        lines.append("  none (no instance has both a visible and an amodal mask)")
    return "\n".join(lines)
