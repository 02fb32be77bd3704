"""The Occlusion Challenge from coco128-seg persons, scored with the box-fill baseline.

Builds the challenge (``occseg make-challenge``: whole coco128-seg persons pasted over the photos of
``backgrounds/``, 200 images by default, half train / half test by source object), predicts the test split
with ``occseg predict --method box-fill`` (the given box as visible and amodal mask), scores it with
``occseg evaluate`` on the target classes only (unknown occluders shape the masks but are not scored) and
prints the box-fill rows: mIoU per occlusion level for the visible, amodal and occluded masks, per scenario.

Every step runs through the ``occseg`` command line, so this script depends only on the commands' interfaces.

    python benchmarks/challenge_boxfill.py [--data ../shared/data] [--images 200] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from occseg.benchmarking import add_data_argument, missing, work_folder

LEVELS = ("L0", "L1", "L2", "L3")
MASKS = ("visible", "amodal", "occluded")


def occseg(*args: str) -> None:
    """Run an occseg command with this interpreter; stop with its message when it fails."""
    cmd = [sys.executable, "-m", "occseg.cli.main", *args]
    print("$ occseg " + " ".join(args), flush=True)
    done = subprocess.run(cmd)
    if done.returncode != 0:
        sys.exit(f"occseg {args[0]} failed with exit code {done.returncode}")


def _cell(v: float | None) -> str:
    return "    -" if v is None else f"{v:5.3f}"


def format_rows(report: dict, method: str = "box-fill") -> str:
    """One row per scenario and mask type: L0..L3, mean over levels, object-weighted mean, objects."""
    head = f"{'method':<9} {'scenario':<13} {'mask':<9}" + "".join(f"{c:>7}" for c in (*LEVELS, "mean", "wmean"))
    head += f"{'n':>6}"
    lines = [head, "-" * len(head)]
    scenarios = ["all"] + sorted(k for k in report if k not in ("all", "settings") and isinstance(report[k], dict))
    for scen in scenarios:
        block = report.get(scen)
        if not isinstance(block, dict):
            continue
        for mask in MASKS:
            row = block.get(mask)
            if not isinstance(row, dict):
                continue
            n = row.get("n", {})
            total = n.get("total") if isinstance(n, dict) else n
            cells = "".join(f"{_cell(row.get(c)):>7}" for c in (*LEVELS, "mean", "weighted_mean"))
            lines.append(f"{method:<9} {scen:<13} {mask:<9}{cells}{total!s:>6}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--images", type=int, default=200, help="Composed images, train and test together.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classes", default="person")
    ap.add_argument("--out", default=None, help="Working folder (default: a new temporary folder).")
    args = ap.parse_args(argv)

    data = Path(args.data)
    source = data / "coco128-seg" / "annotations" / "instances_train2017.json"
    backgrounds = data / "backgrounds"
    if missing(source, backgrounds):
        return 2
    work = work_folder(args.out, "occseg_challenge_boxfill_")
    challenge, pred, report_dir = work / "challenge", work / "boxfill_predictions.json", work / "boxfill_eval"

    t0 = time.perf_counter()
    occseg("make-challenge", "--source", str(source), "--classes", args.classes, "--backgrounds", str(backgrounds),
           "--images", str(args.images), "--seed", str(args.seed), "--out", str(challenge),
           "--no-progress")  # fmt: skip
    t1 = time.perf_counter()
    test_json = challenge / "annotations" / "test.json"
    occseg("predict", "--method", "box-fill", "--data", str(test_json), "--out", str(pred))
    t2 = time.perf_counter()
    occseg("evaluate", "--gt", str(test_json), "--pred", str(pred), "--out", str(report_dir),
           "--classes", args.classes, "--no-progress")  # fmt: skip
    t3 = time.perf_counter()

    report = json.loads((report_dir / "report.json").read_text())
    print()
    print(f"Occlusion Challenge (coco128-seg {args.classes} over {backgrounds.name}/, {args.images} images, "
          f"seed {args.seed}), test split, box-fill baseline (mIoU; mean = plain mean of the levels, "
          "wmean = object-weighted):")  # fmt: skip
    print(format_rows(report))
    order = report.get("all", {}).get("order_accuracy")
    if order is not None:
        print(f"order accuracy (all): {json.dumps(order)}")
    print(
        f"\nbuild {t1 - t0:.1f} s, predict {t2 - t1:.1f} s, evaluate {t3 - t2:.1f} s; "
        + (f"files in {work}" if args.out else "files deleted (--out DIR keeps them)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
