"""Running the ``occseg`` command in tests, and the image and boxes several command tests use."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from occseg.cli.main import cli
from tests.compnet.conftest import COCO128_IMAGES

IMAGE_192 = "000000000192.jpg"  # 640x480, four persons (three overlapping) and a baseball bat


BOXES_192 = [[349, 253, 481, 473], [437, 218, 515, 466], [268, 179, 379, 415]]


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def error_lines(res) -> list[str]:
    return [line for line in res.output.splitlines() if line.startswith("occseg: error:")]


def train_cli(train_json: Path, shared_data: Path, out: Path, *extra: str):
    """``occseg train`` of a small model (16 concepts, 2 mixtures, seed 0) on ``train_json``."""
    return run(
        "train", "--data", train_json, "--images", shared_data / COCO128_IMAGES, "--out", out,
        "--seed", "0", "--concepts", "16", "--mixtures", "2", *extra,
    )  # fmt: skip
