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


def run(args: list[str], ranks: int) -> tuple[float, float, str]:
    """``(seconds, peak RSS of the largest process in MB, load average before)`` of one command."""
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
    return seconds, usage.ru_maxrss / 1024, load


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
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--classes", default="person")
    ap.add_argument("--model", type=Path, help="predict: the model folder")
    ap.add_argument("--boxes", default="250,1000", help="train: comma-separated box counts")
    ap.add_argument("--images", default="100", help="predict: comma-separated image counts")
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--concepts", type=int, default=512)
    ap.add_argument("--mixtures", type=int, default=8)
    ap.add_argument("--no-mask-head", action="store_true", help="train: without the mask head")
    ap.add_argument("--max-class-boxes", type=int, default=None, help="train: occseg train's cap (default: its own)")
    ap.add_argument("--out", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    a = ap.parse_args(argv)
    ranks = [int(r) for r in a.ranks.split(",")]
    sizes = [int(s) for s in (a.boxes if a.what == "train" else a.images).split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = a.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"| {a.what} | {'boxes (trained on)' if a.what == 'train' else 'images'} | processes | s | per s | "
              "peak RSS MB (largest process) | load average before | same as 1 process |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        head = " (no mask head)" if a.no_mask_head else ""
        for size in sizes:
            data = work / f"{a.what}-{size}.json"
            count = subset(
                a.data, data, classes=a.classes.split(","), boxes=size if a.what == "train" else None,
                images=size if a.what == "predict" else None,
            )  # fmt: skip
            first = None
            for n in ranks:
                out = work / (f"{a.what}-{size}-x{n}" + ("" if a.what == "train" else ".json"))
                if a.what == "train":
                    args = ["train", "--data", data, "--classes", a.classes, "--out", out, "--no-progress"]
                    args += ["--concepts", str(a.concepts), "--mixtures", str(a.mixtures)]
                    args += ["--no-mask-head"] if a.no_mask_head else []
                    args += ["--max-class-boxes", str(a.max_class_boxes)] if a.max_class_boxes else []
                else:
                    args = ["predict", "--data", data, "--model", a.model, "--out", out, "--no-progress"]
                seconds, rss, load = run([str(x) for x in args], n)
                if first is None:
                    first, same = out, "-"
                elif a.what == "train":
                    same = "yes" if same_model(first, out) else "NO"
                else:
                    same = "yes" if first.read_bytes() == out.read_bytes() else "NO"
                what = f"train{head}" if a.what == "train" else a.what
                shown = f"{count} ({trained_on(out)})" if a.what == "train" else str(count)
                print(f"| {what} | {shown} | {n} | {seconds:.1f} | {count / seconds:.2f} | {rss:.0f} | {load} | "
                      f"{same} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
