"""Sharded evaluation: each rank scores its share of the images (round robin), and every rank gets all the
images' scores back in image order (:func:`~occseg.distributed.collectives.map_json`), so the report (bootstrap
intervals included) is the one-process report.

The scores travel as JSON (Python writes floats so that they read back to the same value): each image's object
records, order counts per scenario key and GT-occluded pairs (:class:`occseg.evaluation.protocol.ImageScores`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from tqdm import tqdm

from occseg.distributed.collectives import map_json
from occseg.distributed.context import DistContext
from occseg.evaluation.metrics import OrderCounts
from occseg.evaluation.protocol import ImageMapper, ImageScores, ObjectRecord, PairRecord

_COUNT_FIELDS = tuple(f.name for f in fields(OrderCounts) if f.name != "per_image")


def scores_to_json(scores: ImageScores) -> dict[str, Any]:
    """One image's scores as a JSON object (:func:`scores_from_json` reads it back, equal)."""
    return {
        "records": [asdict(r) for r in scores.records],
        "order": {
            k: {**{f: getattr(c, f) for f in _COUNT_FIELDS}, "per_image": c.per_image} for k, c in scores.order.items()
        },
        "pairs": [[p.image_id, p.first, p.second, p.gt, p.pred] for p in scores.pairs],
    }


def scores_from_json(obj: dict[str, Any]) -> ImageScores:
    """The inverse of :func:`scores_to_json`."""
    records = [ObjectRecord(**{**r, "box": tuple(r["box"])}) for r in obj["records"]]
    order = {
        k: OrderCounts(**{f: c[f] for f in _COUNT_FIELDS}, per_image=[tuple(x) for x in c["per_image"]])
        for k, c in obj["order"].items()
    }
    return ImageScores(records, order, [PairRecord(*p) for p in obj["pairs"]])


def sharded_image_map(ctx: DistContext, *, progress: bool = False) -> ImageMapper:
    """An :data:`~occseg.evaluation.protocol.ImageMapper` that scores image ``k`` on rank ``k % world_size`` and
    gathers every image's scores, in image order, on every rank (a progress bar on rank 0 for its share)."""

    def run(n: int, score: Callable[[int], ImageScores]) -> list[ImageScores]:
        bar = tqdm(
            total=len(ctx.shard(n)), desc="evaluate", unit="image", disable=not (progress and ctx.is_main), leave=False
        )

        def one(k: int) -> dict[str, Any]:
            scores = scores_to_json(score(k))
            bar.update()
            return scores

        try:
            return [scores_from_json(obj) for obj in map_json(ctx, n, one)]
        finally:
            bar.close()

    return run
