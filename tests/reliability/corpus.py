"""The bad-input corpus's building blocks: a small workspace of valid inputs written by the tests (no large file is
committed), a snapshot of a folder tree to prove nothing changed, and the check every refused command must pass."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from occseg.cli.main import cli

#: What a temporary file or folder of occseg looks like (``.NAME.<hex>.tmp``, ``.NAME.tmp-XXXXXXXX``).
DEBRIS = re.compile(r"^\..*(\.[0-9a-f]{12}\.tmp|\.tmp-[a-z0-9_]{8})$")


def write_png(path: Path, width: int, height: int, value: int = 90) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)).save(path)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares ``width`` x ``height`` pixels, followed by a few bytes of image data: a file
    of some hundred bytes that claims a picture far beyond any decoder's limit."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def square(x: float, y: float, s: float) -> list[float]:
    return [x, y, x + s, y, x + s, y + s, x, y + s]


def coco_dataset(folder: Path, *, n_images: int = 3, width: int = 64, height: int = 48) -> Path:
    """``folder/ann.json`` (COCO, polygons) and ``folder/images/N.png``: two overlapping persons and a car per
    image. Returns the JSON's path."""
    images, anns = [], []
    for i in range(1, n_images + 1):
        write_png(folder / "images" / f"{i}.png", width, height, value=i)
        images.append({"id": i, "file_name": f"{i}.png", "width": width, "height": height})
        for k, (cat, x, y, s) in enumerate([(1, 4, 4, 20), (1, 14, 10, 22), (2, 40, 8, 16)]):
            anns.append(
                {"id": 10 * i + k, "image_id": i, "category_id": cat, "bbox": [x, y, s, s],
                 "segmentation": [square(x, y, s)], "area": s * s, "iscrowd": 0}
            )  # fmt: skip
    obj = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}]}
    path = folder / "ann.json"
    path.write_text(json.dumps(obj))
    return path


@dataclass
class Workspace:
    """Valid inputs in ``root``: a COCO dataset, backgrounds, a saved model, an image and its boxes file."""

    root: Path
    data: Path  # the COCO JSON
    images: Path  # its image folder
    backgrounds: Path
    model: Path
    image: Path
    boxes: Path
    source: Path  # a make-challenge source (KINS JSON of whole objects)
    source_images: Path


def make_workspace(root: Path) -> Workspace:
    from occseg.compnet.model import save_model
    from occseg.data.writers import write_kins_json
    from tests.challenge.conftest import make_backgrounds, make_source
    from tests.compnet.conftest import random_model

    data = coco_dataset(root / "data")
    bg = make_backgrounds(root / "backgrounds", n=2)
    save_model(random_model(), root / "model")
    image = write_png(root / "img.png", 64, 48)
    boxes = root / "boxes.json"
    boxes.write_text(json.dumps([{"box": [4, 4, 24, 24]}, {"box": [14, 10, 36, 32]}]))
    src = make_source(root / "src" / "images", n_images=4)
    write_kins_json(src, root / "src" / "source.json")
    return Workspace(root, data, root / "data" / "images", bg, root / "model", image, boxes,
                     root / "src" / "source.json", root / "src" / "images")  # fmt: skip


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (hidden ones too): relative path -> SHA-256 of the bytes, ``"dir"`` or
    ``"link -> target"``."""
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                state[rel] = f"link -> {os.readlink(p)}"
            elif p.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


def debris(root: Path) -> list[str]:
    """occseg temporary files and folders anywhere under ``root``."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if DEBRIS.match(p.name))


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_refused(root: Path, args: list[object], message: str, *, codes: tuple[int, ...] = (1, 2)) -> str:
    """Run ``occseg ARGS`` and check the corpus's three promises: the exit code is one of ``codes``; one line
    ``occseg: error: ...`` matches ``message`` (a regular expression) and no traceback is shown; nothing under
    ``root`` changed and no debris is left. Returns the output."""
    before = snapshot(root)
    res = run(*args)
    out = res.output
    assert res.exit_code in codes, f"exit {res.exit_code}: {out}\n{res.exception!r}"
    assert isinstance(res.exception, SystemExit), f"not a clean exit: {res.exception!r}\n{out}"
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith(("occseg: error:", "Error:"))]
    assert len(errors) == 1, out
    assert re.search(message, errors[0]), f"{message!r} not in {errors[0]!r}"
    after = snapshot(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"changed by a refused command: {changed}"
    return out
