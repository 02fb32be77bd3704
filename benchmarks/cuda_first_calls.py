"""What a new input shape costs the backbone on a device, and what that does to a first training.

Box crops come in many shapes (each box's width at the crop height), and on CUDA cuDNN sets every new input shape
up anew. This script runs, in one process: EfficientNet-Lite0 forward passes of 30 crops of distinct widths at
one height (each shape new), the same 30 again (each shape seen), then a CompositionalNet training from the
person boxes of coco128-seg (the Occlusion Challenge benchmark's training set: the coco128-seg images holding
none of the first challenge's test objects) twice over, the first time with every shape new. ``--cudnn on``
lets the backbone use cuDNN, as PyTorch does by default; ``off`` (occseg's setting for EfficientNet-Lite0,
:attr:`occseg.backbones.registry.BackboneSpec.cudnn`) gives the convolutions to PyTorch's own kernels. Run once
per setting: the first-call costs belong to the process.

    python benchmarks/cuda_first_calls.py --device cuda --cudnn on
    python benchmarks/cuda_first_calls.py --device cuda --cudnn off

On CPU (``--device cpu``) the setting changes nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from occseg.backbones import get_backbone
from occseg.benchmarking import add_data_argument, work_folder
from occseg.benchmarking import sync_device as _sync
from occseg.benchmarking.challenge import build_challenge, training_boxes
from occseg.compnet.learn import TrainConfig, train_compnet


def forward_times(backbone, device: str, height: int, widths: list[int]) -> list[float]:
    """Seconds of one forward pass per width, each a ``(1, 3, height, width)`` batch."""
    out = []
    with torch.inference_mode():
        for w in widths:
            x = torch.randn(1, 3, height, w, device=device)
            _sync(device)
            t = time.perf_counter()
            backbone.forward_padded(x, [(height, w)])
            _sync(device)
            out.append(time.perf_counter() - t)
    return out


def summary(label: str, times: list[float]) -> str:
    s = sorted(times)
    median, most = 1e3 * s[len(s) // 2], 1e3 * s[-1]
    return f"{label}: {len(s)} passes, total {sum(s):.2f} s, median {median:.1f} ms, max {most:.1f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cudnn", choices=["on", "off"], default="off", help="let the backbone use cuDNN on CUDA")
    add_data_argument(ap)
    ap.add_argument("--trainings", type=int, default=2, help="trainings in a row (0: forward passes only)")
    args = ap.parse_args(argv)
    source = Path(args.data) / "coco128-seg" / "annotations" / "instances_train2017.json"
    backgrounds = Path(args.data) / "backgrounds"
    if args.trainings and not (source.exists() and backgrounds.exists()):
        print(f"not found: {source} or {backgrounds} (give --data or set OCCSEG_DATA)", file=sys.stderr)
        return 2

    backbone = get_backbone("efficientnet_lite0", device=args.device)
    backbone.spec = replace(backbone.spec, cudnn=args.cudnn == "on")
    print(f"device {args.device}, torch {torch.__version__}, cuDNN for the backbone: {args.cudnn}", flush=True)
    widths = random.Random(0).sample(range(64, 1200, 16), 30)
    print(summary("30 new widths at height 256", forward_times(backbone, args.device, 256, widths)), flush=True)
    print(summary("the same 30 widths again", forward_times(backbone, args.device, 256, widths)), flush=True)

    if args.trainings:
        work = work_folder(None, "occseg_first_calls_")
        samples = training_boxes(Path(args.data), build_challenge(Path(args.data), work / "challenge", 120, 0))
        for k in range(args.trainings):
            t = time.perf_counter()
            cfg = TrainConfig(seed=0, device=args.device)
            train_compnet(samples, ["person"], cfg, progress=False, backbone=backbone)
            _sync(args.device)
            print(f"training {k + 1} ({len(samples)} boxes): {time.perf_counter() - t:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
