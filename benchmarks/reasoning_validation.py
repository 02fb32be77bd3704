"""How the reasoning's settings were chosen: the order cue and the NOD colour margin on a split of the Occlusion
Challenge, normally a train split (the validation set; the test split is for reporting).

Same setup as ``benchmarks/reasoning_challenge.py`` (challenge, model trained from boxes of coco128-seg images
that hold none of the test objects, GT amodal boxes and the class given). Rows: no reasoning; NOD (2 rounds)
with the order from the part-position vote at each ``--margins`` value; NOD with the order from pixel counts at
the default margin; OD (2 rounds) with each order cue. Visible mIoU per level and its plain mean, amodal mean,
order accuracy over the GT-occluded pairs, in %.

    python benchmarks/reasoning_validation.py [--seed 0] [--images 120] [--split train] [--margins 0,0.5,1,2,4]

The defaults were chosen with ``--seed 0`` (120 images) and ``--seed 1 --images 300``, both ``--split train``.
With the mask head, the hidden part (``SceneConfig.hidden``) was chosen on the larger challenge's train split:
``--sources all --min-height 24 --images 200 --mask-head --margins 1`` (rows with a head: the hidden parts
``shape`` and ``occluder`` against the head's default ``front``; a second table holds the 2 objects + unknown
occluders scenario alone), and so were the competition (the head's, the colour models', ``head_colour``) and the
order cue (the vote, the counts, ``gated``) with a head. ``--rows REGEX`` scores only the rows it names, and
``--model`` reuses the model a run saved with ``--save-model``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from occseg.benchmarking import settings_json
from occseg.benchmarking.challenge import (
    LEVELS,
    add_setup_arguments,
    build_setup,
    score_configs,
    seed_text,
)
from occseg.inference.scene import SceneConfig
from occseg.io import write_json

#: the challenge's scenario with unknown occluders in front of two persons
UNKNOWN = "2obj_unknown"


def variants(margins: list[float], head: bool = False) -> dict[str, SceneConfig]:
    """The rows; with a mask head (``head``) also the hidden parts "shape" (the cells' amodal shape less the head's
    mask), "occluder" (the occluder cells alone) and "front" (the occluder cells and the shape under the objects in
    front) against its default "agree" (:data:`occseg.choices.HiddenPart`), and the colour competition over
    contested pixels against the head's (its default)."""
    out = {"no reasoning": SceneConfig(reasoning="off")}
    for m in margins:
        out[f"NOD (2), position order, margin {m:g}"] = SceneConfig(order="position", colour_margin=m)
    default = SceneConfig().colour_margin
    out[f"NOD (2), pixel counts, margin {default:g}"] = SceneConfig(order="counts")
    out["OD (2), position order"] = SceneConfig(reasoning="od", order="position")
    out["OD (2), pixel counts"] = SceneConfig(reasoning="od", order="counts")
    if head:
        out["no reasoning, hidden part: shape"] = SceneConfig(reasoning="off", hidden="shape")
        out["NOD (2), position order, hidden part: shape"] = SceneConfig(order="position", hidden="shape")
        out["NOD (2), pixel counts, hidden part: shape"] = SceneConfig(order="counts", hidden="shape")
        out["NOD (2), position order, hidden part: occluder"] = SceneConfig(order="position", hidden="occluder")
        out["NOD (2), pixel counts, hidden part: occluder"] = SceneConfig(order="counts", hidden="occluder")
        out["NOD (2), position order, hidden part: front"] = SceneConfig(order="position", hidden="front")
        # the competition over contested pixels: the head's logits (the default with a head) against colour
        out["NOD (2), position order, colour competition"] = SceneConfig(order="position", competition="colour")
        out["OD (2), position order, colour competition"] = SceneConfig(
            reasoning="od", order="position", competition="colour"
        )
        for tie in (0.0, 2.0):  # the head competition's tie (4 by default) for heads whose logits are surer
            out[f"NOD (2), position order, head tie {tie:g}"] = SceneConfig(order="position", head_tie=tie)
            out[f"NOD (2), pixel counts, head tie {tie:g}"] = SceneConfig(order="counts", head_tie=tie)
        out.update(hybrid_variants())
    return out


def hybrid_variants() -> dict[str, SceneConfig]:
    """With a mask head: the head's logits where they are clear and the colour models where the head is unsure
    (``head_colour``) at several colour ties (``SceneConfig.colour_tie``); with it, the order from the pixel counts
    and from the vote where it is sure, the counts elsewhere (``gated``), also with the colour competition."""
    out = {}
    for tie in (0.0, 1.0, 2.0, 4.0, 8.0):
        name = f"NOD (2), position order, head_colour, colour tie {tie:g}"
        out[name] = SceneConfig(order="position", competition="head_colour", colour_tie=tie)
    out["NOD (2), pixel counts, head_colour, colour tie 2"] = SceneConfig(order="counts", competition="head_colour")
    for sure in (0.1, 0.2):
        for comp in ("head", "head_colour", "colour"):
            out[f"NOD (2), gated order (sure vote {sure:g}), {comp} competition"] = SceneConfig(
                order="gated", sure_vote=sure, competition=comp
            )
    return out


def print_table(results: dict[str, dict], scenario: str | None = None) -> None:
    """One markdown row per setting (of ``scenario``'s objects and pairs, or all)."""
    print(
        "| setting | vis L0 | vis L1 | vis L2 | vis L3 | vis mean | amo mean | order (occluded) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for name, res in results.items():
        a = res if scenario is None else res["scenarios"][scenario]
        if a is None:
            continue
        v = a["visible"]
        cells = [v[lv] for lv in LEVELS] + [v["mean"], a["amodal"]["mean"], a["order_accuracy"]["occluded"]]
        print(f"| {name} | " + " | ".join("-" if c is None else f"{100 * c:.1f}" for c in cells) + " |")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_setup_arguments(ap)
    ap.add_argument("--split", default="train", choices=["train", "test"])
    ap.add_argument("--margins", default="0,0.5,1,2,4", help="NOD colour margins to compare (nats)")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    ap.add_argument("--rows", default=None, help="score only the rows whose name holds this text (regex)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        margins = [float(m) for m in args.margins.split(",")]
    except ValueError:
        print(f"--margins: not a comma-separated list of numbers: {args.margins!r}", file=sys.stderr)
        return 2
    setup = build_setup(args)
    if setup is None:
        return 2
    data = setup.challenge.datasets[args.split]
    head = setup.model.mask_head is not None
    rows = {k: v for k, v in variants(margins, head).items() if args.rows is None or re.search(args.rows, k)}
    results = score_configs(setup.model, setup.backbone, data, rows, device=args.device,
                            progress=args.progress, scenarios=(UNKNOWN,))  # fmt: skip
    print(
        f"## Reasoning settings on the Occlusion Challenge's {args.split} split ({args.images} images, "
        f"{seed_text(args)}, sources {','.join(args.sources)}{', with the mask head' if head else ''})\n"
    )
    print_table(results)
    print(f"\n### scenario {UNKNOWN} (two persons and unknown occluders)\n")
    print_table(results, UNKNOWN)
    if args.json:
        write_json(Path(args.json), {"settings": settings_json(args), "results": results}, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
