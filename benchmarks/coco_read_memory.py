"""Peak memory and time of reading a large COCO instances JSON (KINS-size annotations) with occseg's reader.

A synthetic file is generated (not kept in the repository): ``--images`` images of 1000x600 px with
``--objects`` annotations each, every one a polygon of ``--vertices`` vertices (two decimals, as COCO writes
them) and every tenth a crowd region with a compressed RLE; its size is printed. Each read runs in a fresh
process: its RSS after the imports, its peak RSS (``ru_maxrss``) and what the reader added are printed, with the
file's size, so the peak can be compared with one copy of the data.

    python benchmarks/coco_read_memory.py --images 20000 --objects 6 --vertices 60 [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from occseg.benchmarking import repository_root, work_folder

WIDTH, HEIGHT = 1000, 600

#: the child process: imports, its RSS, the read, its peak RSS (kB on Linux), printed as one JSON line
_CHILD = """
import json, resource, sys, time
from occseg.data.readers import read_dataset
def rss():
    with open('/proc/self/status') as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith('VmRSS:'))
base = rss()
t0 = time.perf_counter()
ds = read_dataset(sys.argv[1], fmt='coco')
seconds = time.perf_counter() - t0
after = rss()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({'base': base, 'peak': peak, 'after': after, 'seconds': seconds, 'images': len(ds.images),
                  'objects': ds.num_instances()}))
"""


def _polygon(rng: random.Random, vertices: int) -> list[float]:
    cx, cy = rng.uniform(100, WIDTH - 100), rng.uniform(100, HEIGHT - 100)
    out: list[float] = []
    for k in range(vertices):
        r = rng.uniform(20, 90)
        a = 6.283185307179586 * k / vertices
        out += [round(cx + r * math.cos(a), 2), round(cy + r * math.sin(a), 2)]
    return out


def _crowd_rle(rng: random.Random) -> dict:
    import numpy as np
    from pycocotools import mask as mask_utils

    m = np.zeros((HEIGHT, WIDTH), dtype=np.uint8, order="F")
    x, y = rng.randrange(0, WIDTH - 200), rng.randrange(0, HEIGHT - 200)
    m[y : y + rng.randrange(20, 200), x : x + rng.randrange(20, 200)] = 1
    rle = mask_utils.encode(m)
    return {"size": [HEIGHT, WIDTH], "counts": rle["counts"].decode("ascii")}


def write_synthetic_coco(path: Path, *, images: int, objects: int, vertices: int, seed: int = 0) -> int:
    """Write the synthetic COCO file (streamed: one annotation in memory at a time); returns its size in bytes."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"info": {"description": "synthetic"}, "categories": [{"id": 1, "name": "car"}, ')
        fh.write('{"id": 2, "name": "pedestrian"}], "images": [')
        for i in range(images):
            rec = {"id": i + 1, "file_name": f"{i + 1:06d}.png", "width": WIDTH, "height": HEIGHT}
            fh.write((", " if i else "") + json.dumps(rec))
        fh.write('], "annotations": [')
        n = 0
        for i in range(images):
            for _ in range(objects):
                crowd = n % 10 == 9
                segm = _crowd_rle(rng) if crowd else [_polygon(rng, vertices)]
                xs, ys = (segm[0][0::2], segm[0][1::2]) if not crowd else ([0.0, 10.0], [0.0, 10.0])
                box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
                ann = {"id": n + 1, "image_id": i + 1, "category_id": 1 + n % 2, "bbox": [round(v, 2) for v in box],
                       "area": round(box[2] * box[3], 2), "segmentation": segm, "iscrowd": int(crowd)}  # fmt: skip
                fh.write((", " if n else "") + json.dumps(ann))
                n += 1
        fh.write("]}\n")
    return path.stat().st_size


def read_in_child(path: Path) -> dict:
    """The child's figures (kB, s) for one read of ``path``."""
    env = {**os.environ, "PYTHONPATH": str(repository_root() / "src"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _CHILD, str(path)], env=env, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"the read failed: {res.stderr.strip().splitlines()[-1:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--objects", type=int, default=6, help="annotations per image")
    ap.add_argument("--vertices", type=int, default=60, help="vertices per polygon")
    ap.add_argument("--out", type=Path, default=None, help="keep the file here (default: a temporary folder)")
    a = ap.parse_args(argv)
    path = work_folder(a.out, "coco_read_memory_") / "instances.json"
    t0 = time.perf_counter()
    size = write_synthetic_coco(path, images=a.images, objects=a.objects, vertices=a.vertices)
    took = time.perf_counter() - t0
    print(f"file: {path} {size / 2**20:.1f} MB, {a.images} images x {a.objects} objects (written in {took:.0f} s)")
    r = read_in_child(path)
    mb = 1 / 1024
    print("| file MB | images | objects | RSS after imports MB | peak RSS MB | peak - imports MB | after the read MB "
          "| peak - imports / file size | s | load average |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    added = (r["peak"] - r["base"]) * mb
    cells = [f"{size / 2**20:.1f}", r["images"], r["objects"], f"{r['base'] * mb:.0f}", f"{r['peak'] * mb:.0f}"]
    cells += [f"{added:.0f}", f"{r['after'] * mb:.0f}", f"{added / (size / 2**20):.2f}", f"{r['seconds']:.1f}", load]
    print("| " + " | ".join(map(str, cells)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
