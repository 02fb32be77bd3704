"""`occseg segment` with many boxes: wall time and peak memory (RSS) against the number of boxes.

A tiny model (persons of 4 coco128-seg images, 16 concepts) is learned once; then, for each count, that many boxes
(seeded, 40-160 px, anywhere in the image) are segmented on one coco128-seg photo by the command itself, each run in
a fresh process whose peak RSS is read from ``getrusage``. Prints one line per count and, with ``--json``, writes the
figures.

    python benchmarks/segment_many_boxes.py [--data DIR] [--boxes 400 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: a child process: run the command line after ``--``, then print its own peak RSS (kB on Linux) on the last line
_CHILD = (
    "import resource, sys\n"
    "from occseg.cli.main import main\n"
    "sys.argv = ['occseg', *sys.argv[1:]]\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def tiny_model(data: Path, out: Path) -> Path:
    from occseg.compnet.learn import TrainConfig, train_compnet
    from occseg.compnet.model import save_model
    from occseg.compnet.samples import box_samples
    from occseg.data.readers import read_dataset

    ds = read_dataset(data / "coco128-seg" / "annotations" / "instances_train2017.json")
    ds.images = [im for im in ds.images if im.image_id in (36, 136, 192, 322)]
    samples = box_samples(ds, ["person"], min_height=30)
    model = train_compnet(samples, ["person"], TrainConfig(num_concepts=16, num_mixtures=2, seed=0), progress=False)
    save_model(model, out)
    return out


def random_boxes(n: int, width: int, height: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    size = rng.uniform(40, 160, size=(n, 2))
    x1 = rng.uniform(0, width - size[:, 0])
    y1 = rng.uniform(0, height - size[:, 1])
    return [{"box": [round(float(a), 1), round(float(b), 1), round(float(a + w), 1), round(float(b + h), 1)]}
            for a, b, (w, h) in zip(x1, y1, size)]  # fmt: skip


def run_segment(model: Path, image: Path, boxes: Path, out: Path, extra: list[str]) -> tuple[float, int, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = ["segment", "--model", model, "--image", image, "--boxes", boxes, "--out", out, "--no-progress", *extra]
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _CHILD, *map(str, args)], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    lines = res.stderr.strip().splitlines()
    rss = int(lines[-1].split()[1]) if lines and lines[-1].startswith("maxrss_kb") else -1
    status = "ok" if res.returncode == 0 else f"exit {res.returncode}: {(lines[-2] if len(lines) > 1 else '')[:160]}"
    return seconds, rss, status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=None, help="the data folder (default: $OCCSEG_DATA, else ../shared/data)"
    )
    ap.add_argument("--boxes", type=int, nargs="+", default=[400, 2000])
    ap.add_argument("--image-id", type=int, default=192)
    ap.add_argument("--extra", nargs="*", default=[], help="more segment options, e.g. --reasoning off")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from PIL import Image

    from occseg.benchmarking import data_dir
    from occseg.geometry.boxes import overlapping_pairs

    args.data = args.data or data_dir()

    image = args.data / "coco128-seg" / "images" / "train2017" / f"{args.image_id:012d}.jpg"
    width, height = Image.open(image).size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = tiny_model(args.data, root / "model")
        for n in args.boxes:
            boxes = root / f"boxes_{n}.json"
            listed = random_boxes(n, width, height)
            boxes.write_text(json.dumps(listed))
            pairs = len(overlapping_pairs([b["box"] for b in listed]))  # what the reasoning's cost grows with
            extra = ["--max-boxes", str(n), *args.extra]
            seconds, rss, status = run_segment(model, image, boxes, root / f"seg_{n}", extra)
            rows.append({"boxes": n, "overlapping_pairs": pairs, "seconds": round(seconds, 1),
                         "peak_rss_mb": round(rss / 1024), "status": status})  # fmt: skip
            print(
                f"{n:6d} boxes on {width}x{height} ({pairs} overlapping pairs): {seconds:7.1f} s, "
                f"peak RSS {rss / 1024:7.0f} MB, {status}"
            )
    print(f"load average {os.getloadavg()[0]:.2f} (a shared machine: timings are indicative)")
    if args.json:
        args.json.write_text(json.dumps({"image": str(image.name), "extra": args.extra, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
