"""Time to fit the part-position classifier (:func:`occseg.compnet.position.fit_position_model`) on one device,
repeated in one process, so the first call's start-up cost (CUDA's first kernels, L-BFGS's first steps) shows
apart from the fit itself.

The training crops are the person boxes of coco128-seg (EfficientNet-Lite0 features, as
:func:`occseg.compnet.learn.train_compnet` extracts them); the visual concepts are learned from every seventh
crop cell (vMF EM, 512 concepts); the classifier then fits as in training (6 x 3 bins, L2 1e-5, up to 200 L-BFGS
iterations, at most 200,000 cells).

    python benchmarks/position_fit.py [--data ../shared/data] [--devices cpu,cuda] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import torch

from occseg.backbones import get_backbone
from occseg.benchmarking import add_data_argument, missing, subset
from occseg.benchmarking import sync_device as _sync
from occseg.compnet.learn import TrainConfig, extract_training_crops
from occseg.compnet.position import fit_position_model, position_inputs
from occseg.compnet.samples import box_samples
from occseg.compnet.vmf import fit_vmf_mixture
from occseg.data.readers import read_dataset

CLASS = "person"


def time_device(samples: list, device: str, repeats: int, num_concepts: int = 512) -> dict[str, float | int]:
    """Seconds to extract the crops and to fit the classifier ``repeats`` times on ``device``."""
    backbone = get_backbone("efficientnet_lite0", device=device)
    cfg = TrainConfig(seed=0, device=device)
    kappa = backbone.spec.kappa
    t = time.perf_counter()
    crops, _ = extract_training_crops(samples, backbone, cfg, progress=False)
    out: dict[str, float | int] = {"objects": len(crops), "crops_s": time.perf_counter() - t}
    cells = torch.cat([c.features.reshape(c.features.shape[0], -1).T for c in crops])[::7]
    concepts = fit_vmf_mixture(cells.to(device), num_concepts, kappa, seed=0).means
    for k in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fit_position_model(
            [(c.features, c.box_cells) for c in crops],
            (6, 3),
            l2=cfg.position_l2,
            max_cells=cfg.position_max_cells,
            seed=0,
            inputs=lambda f: position_inputs(f.to(device), concepts, kappa),
            device=device,
        )
        _sync(device)
        out[f"fit_{k + 1}_s"] = time.perf_counter() - t
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--concepts", type=int, default=512, help="visual concepts the classifier reads")
    ap.add_argument("--max-images", type=int, default=None, help="at most this many images (smoke tests)")
    ap.add_argument("--devices", default="cpu", help="comma-separated torch devices (cpu, cuda)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    source = args.data / "coco128-seg" / "annotations" / "instances_train2017.json"
    if missing(source):
        return 2
    ds = read_dataset(source)
    samples = box_samples(subset(ds, sorted(im.image_id for im in ds.images)[: args.max_images]), [CLASS])
    results = {}
    for device in args.devices.split(","):
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"skipping {device}: no CUDA device", file=sys.stderr)
            continue
        results[device] = time_device(samples, device, args.repeats, args.concepts)
    fits = [f"fit {k + 1}" for k in range(args.repeats)]
    print(f"## part-position classifier fit (torch {torch.__version__}, {torch.get_num_threads()} threads)\n")
    print("| device | objects | crops s | " + " | ".join(f"{f} s" for f in fits) + " |")
    print("|---|---:|---:|" + "---:|" * len(fits))
    for device, r in results.items():
        times = " | ".join(f"{r[f'fit_{k + 1}_s']:.2f}" for k in range(args.repeats))
        print(f"| {device} | {r['objects']} | {r['crops_s']:.2f} | {times} |")
    print("\n" + json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
