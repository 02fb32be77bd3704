"""Sharded evaluation: each rank scores its share of the images; rank 0 writes the one-process report."""

from __future__ import annotations

from pathlib import Path

import pytest

from occseg.data.readers import read_dataset
from occseg.distributed.evaluation import scores_from_json, scores_to_json
from occseg.evaluation.protocol import EvalConfig, ImageScores, evaluate
from tests.conftest import need_data
from tests.distributed.conftest import run_occseg

REPORT_FILES = ("report.json", "report.md", "objects.csv")


@pytest.fixture(scope="module")
def cocoa_pred(shared_data: Path, tmp_path_factory) -> tuple[Path, Path]:
    """The COCOA sample (amodal masks, occluded pairs) and box-fill's predictions of it."""
    need_data(shared_data, "cocoa-demo")
    gt = shared_data / "cocoa-demo"
    pred = tmp_path_factory.mktemp("cocoa_pred") / "pred.json"
    res = run_occseg("predict", "--data", gt, "--out", pred, "--method", "box-fill")
    assert res.returncode == 0, res.stderr
    return gt, pred


def test_scores_round_trip_through_json(cocoa_pred) -> None:
    # what a rank sends is what it scored: records (floats exact), order counts with their per-image units, pairs
    gt, pred = (read_dataset(p) for p in cocoa_pred)
    sent: list[ImageScores] = []

    def keep(n, score):
        sent.extend(score(k) for k in range(n))
        return [scores_from_json(scores_to_json(s)) for s in sent]

    ev = evaluate(gt, pred, EvalConfig(progress=False), map_images=keep)
    assert sent and any(s.pairs for s in sent) and any(s.order for s in sent)
    assert [scores_from_json(scores_to_json(s)) for s in sent] == sent
    assert ev.records == evaluate(gt, pred, EvalConfig(progress=False)).records


def test_two_gloo_processes_write_the_single_process_report(cocoa_pred, tmp_path: Path) -> None:
    # `torchrun --nproc-per-node 2 -m occseg evaluate` against `python -m occseg evaluate`: the same report.json
    # (bootstrap intervals included), report.md and objects.csv, byte for byte
    gt, pred = cocoa_pred
    args = ["evaluate", "--gt", gt, "--pred", pred, "--bootstrap", 300, "--no-progress"]
    one = run_occseg(*args, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = run_occseg(*args, "--out", tmp_path / "two", ranks=2)
    assert two.returncode == 0, two.stderr
    assert '"occluded_interval": [' in (tmp_path / "one" / "report.json").read_text()
    for name in REPORT_FILES:
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    assert two.stdout.count("wrote") == one.stdout.count("wrote")  # rank 0 alone writes and reports
