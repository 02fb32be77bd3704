"""Time and peak memory of ``occseg train`` / ``occseg predict`` with 1 and N processes (torchrun, gloo, 1 thread
each), on subsets of a dataset: the first images holding at least ``--boxes`` training boxes of the classes, or
the first ``--images`` images to predict. Each run is a fresh command; its peak RSS is that of the largest process
of its tree (``os.wait4``'s ``ru_maxrss``: under torchrun, the largest rank). The load average before each run is
printed with it: on a shared machine the times say little unless it is low. Checks too that every run with N
processes wrote what 1 process wrote (model tensors equal; predictions byte for byte). Training runs learn the
mask head too (``occseg train``'s default) unless ``--no-mask-head``; the table says how many boxes each trained
on (the seeded sample of at most ``--max-class-boxes`` per class).

    python benchmarks/distributed_scaling.py train --data challenge/annotations/train.json --classes person \
        --boxes 250,1000 --ranks 1,2 [--concepts 512 --mixtures 8] [--no-mask-head] [--max-class-boxes N] [--out DIR]
    python benchmarks/distributed_scaling.py predict --data challenge/annotations/test.json --model models/person \
        --images 100 --ranks 1,2 [--out DIR]

``--make-challenge N`` composes the data first (``occseg make-challenge``: persons of coco128-seg on the shared
background photos, seed 1, all N images in the split the command reads) instead of ``--data``; without
``--model``, predict uses the shipped person model. Each row gives the CPU time (user + system, every process of
the run) per box or image too: with N processes it stays near the 1-process figure when nothing is repeated on
every rank, whatever else the machine runs; and each size ends with the speed-up of N processes over 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def subset(data: Path, out: Path, *, classes: list[str] | None, boxes: int | None, images: int | None) -> int:
    """Write the first images of ``data`` (enough for ``boxes`` boxes >= 30 px of ``classes``, or ``images``) as
    a KINS-style JSON; returns how many boxes (training) or images (prediction) it holds."""
    from occseg.data.readers import read_dataset
    from occseg.data.writers import write_kins_json
    from occseg.geometry.boxes import box_height

    ds = read_dataset(data)
    if images is not None:
        write_kins_json(replace(ds, images=ds.images[:images]), out)
        return min(images, len(ds.images))
    n = 0
    for k, im in enumerate(ds.images):
        n += sum(
            1
            for i in im.instances
            if i.category in classes and box_height(i.amodal_box or i.box) >= 30 and not i.iscrowd
        )
        if n >= boxes:
            write_kins_json(replace(ds, images=ds.images[: k + 1]), out)
            return n
    raise SystemExit(f"{data} holds only {n} boxes of {classes}")


def make_challenge(work: Path, images: int, split: str) -> Path:
    """A generated Occlusion Challenge of ``images`` images, all in ``split`` (train or test): its annotations."""
    from occseg.benchmarking import data_dir

    out = work / f"challenge-{images}"
    data = data_dir()
    args = ["make-challenge", "--source", data / "coco128-seg" / "annotations" / "instances_train2017.json"]
    args += ["--classes", "person", "--backgrounds", data / "backgrounds", "--images", images, "--seed", 1]
    args += ["--test-fraction", 1.0 if split == "test" else 0.0, "--contact-sheet", 0, "--out", out, "--no-progress"]
    if not (out / "annotations" / f"{split}.json").is_file():
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        subprocess.run(
            [sys.executable, "-m", "occseg", *map(str, args)], env=env, check=True, stdout=subprocess.DEVNULL
        )
    return out / "annotations" / f"{split}.json"


def speedups(rows: list[tuple[int, float]]) -> str:
    """``N processes: X.XXx`` of each row's items per second over the 1-process row's."""
    base = next((rate for n, rate in rows if n == 1), None)
    if base is None:
        return ""
    return "speed-up over 1 process: " + ", ".join(f"{n} processes {rate / base:.2f}x" for n, rate in rows if n > 1)


def run(args: list[str], ranks: int) -> tuple[float, float, str, float]:
    """``(seconds, peak RSS of the largest process in MB, load average before, CPU seconds of the whole process
    tree)`` of one command."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    launch = [sys.executable]
    if ranks > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)]
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    t0 = time.perf_counter()
    proc = subprocess.Popen([*launch, "-m", "occseg", *args], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if status:
        raise SystemExit(f"failed ({status}): occseg {' '.join(args)}")
    return seconds, usage.ru_maxrss / 1024, load, usage.ru_utime + usage.ru_stime


def same_model(a: Path, b: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    ta, tb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return sorted(ta) == sorted(tb) and all(torch.equal(ta[k], tb[k]) for k in ta)


def trained_on(model: Path) -> int:
    """How many boxes the model was learned from (its record's ``crops_per_class``)."""
    import json

    return sum(json.loads((model / "model.json").read_text())["training"]["crops_per_class"].values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["train", "predict"])
    ap.add_argument("--data", type=Path, default=None, help="the dataset (or --make-challenge)")
    ap.add_argument("--make-challenge", type=int, default=0, help="compose a challenge of this many images instead")
    ap.add_argument("--classes", default="person")
    ap.add_argument("--model", type=Path, help="predict: the model folder (default: the shipped person model)")
    ap.add_argument("--boxes", default="250,1000", help="train: comma-separated box counts")
    ap.add_argument("--images", default="100", help="predict: comma-separated image counts")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--concepts", type=int, default=512)
    ap.add_argument("--mixtures", type=int, default=8)
    ap.add_argument("--no-mask-head", action="store_true", help="train: without the mask head")
    ap.add_argument("--max-class-boxes", type=int, default=None, help="train: occseg train's cap (default: its own)")
    ap.add_argument("--out", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    a = ap.parse_args(argv)
    if (a.data is None) == (a.make_challenge == 0):
        ap.error("give --data or --make-challenge N")
    ranks = [int(r) for r in a.ranks.split(",")]
    sizes = [int(s) for s in (a.boxes if a.what == "train" else a.images).split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = a.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if a.make_challenge:
            a.data = make_challenge(work, a.make_challenge, "train" if a.what == "train" else "test")
        print(f"| {a.what} | {'boxes (trained on)' if a.what == 'train' else 'images'} | processes | s | per s | "
              "peak RSS MB (largest process) | load average before | same as 1 process | CPU s per item |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        head = " (no mask head)" if a.no_mask_head else ""
        for size in sizes:
            data = work / f"{a.what}-{size}.json"
            count = subset(
                a.data, data, classes=a.classes.split(","), boxes=size if a.what == "train" else None,
                images=size if a.what == "predict" else None,
            )  # fmt: skip
            first, rates = None, []
            for n in ranks:
                out = work / (f"{a.what}-{size}-x{n}" + ("" if a.what == "train" else ".json"))
                if a.what == "train":
                    args = ["train", "--data", data, "--classes", a.classes, "--out", out, "--no-progress"]
                    args += ["--concepts", str(a.concepts), "--mixtures", str(a.mixtures)]
                    args += ["--no-mask-head"] if a.no_mask_head else []
                    args += ["--max-class-boxes", str(a.max_class_boxes)] if a.max_class_boxes else []
                else:
                    args = ["predict", "--data", data, "--out", out, "--no-progress"]
                    args += ["--model", a.model] if a.model is not None else []
                seconds, rss, load, cpu = run([str(x) for x in args], n)
                if first is None:
                    first, same = out, "-"
                elif a.what == "train":
                    same = "yes" if same_model(first, out) else "NO"
                else:
                    same = "yes" if first.read_bytes() == out.read_bytes() else "NO"
                what = f"train{head}" if a.what == "train" else a.what
                shown = f"{count} ({trained_on(out)})" if a.what == "train" else str(count)
                print(f"| {what} | {shown} | {n} | {seconds:.1f} | {count / seconds:.2f} | {rss:.0f} | {load} | "
                      f"{same} | {cpu / count:.2f} |", flush=True)  # fmt: skip
                rates.append((n, count / seconds))
            print(speedups(rates), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
