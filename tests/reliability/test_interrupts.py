"""Issue 24, items 4-8: an interrupted command (SIGTERM as SIGINT) leaves nothing behind, a killed run's debris
is removed by the next run, outputs that cannot be written are refused before any work, and bad image files are
found before the run.

The signal tests run ``occseg`` in a child process that sends itself the signal at a chosen point (a patched
writer), so the interrupt lands exactly while the output is being written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.reliability.corpus import Workspace, assert_refused, debris, png_header_only, run, snapshot

#: ``python -c`` prelude: patch ``MODULE.NAME`` so that it sends SIGNAL to this process (after doing its work
#: once), then run the command line given after the script.
_CHILD = """
import importlib, os, signal, sys, time
module = importlib.import_module({module!r})
real = getattr(module, {name!r})
def interrupted(*args, **kwargs):
    real(*args, **kwargs)
    os.kill(os.getpid(), signal.{signal})
    time.sleep(10)  # the signal is handled before this ends
setattr(module, {name!r}, interrupted)
from occseg.cli.main import main
sys.argv = ["occseg", *sys.argv[1:]]
main()
"""


def _interrupted(module: str, name: str, sig: str, args: list[object]) -> subprocess.CompletedProcess:
    code = textwrap.dedent(_CHILD.format(module=module, name=name, signal=sig))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src") + os.pathsep + str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("sig, code", [("SIGTERM", 128 + signal.SIGTERM), ("SIGINT", 128 + signal.SIGINT)])
def test_a_signal_while_predict_writes_leaves_no_file(ws: Workspace, sig: str, code: int):
    out = ws.root / "pred.json"
    before = snapshot(ws.root)
    res = _interrupted(
        "json", "dump", sig, ["predict", "--method", "box-fill", "--data", ws.data, "--out", out, "--no-progress"]
    )
    assert res.returncode == code, res.stderr
    assert f"occseg: interrupted ({sig})" in res.stderr and "Traceback" not in res.stderr
    assert snapshot(ws.root) == before and debris(ws.root) == []


def test_sigterm_during_make_challenge_leaves_no_temporary_folder(ws: Workspace):
    out = ws.root / "ch"
    before = snapshot(ws.root)
    args = ["make-challenge", "--source", ws.source, "--source-images", ws.source_images, "--classes", "person",
            "--backgrounds", ws.backgrounds, "--images", "4", "--size", "96x64", "--no-progress",
            "--out", out]  # fmt: skip
    res = _interrupted("occseg.data.writers", "write_kins_json", "SIGTERM", args)
    assert res.returncode == 143, res.stderr
    assert snapshot(ws.root) == before and debris(ws.root) == []


def test_sigterm_during_train_keeps_the_old_model(ws: Workspace):
    before = snapshot(ws.root)
    args = ["train", "--data", ws.data, "--classes", "person", "--out", ws.model, "--overwrite", "--no-progress"]
    res = _interrupted("occseg.data.readers", "read_dataset", "SIGTERM", args)
    assert res.returncode == 143, res.stderr
    assert snapshot(ws.root) == before


def test_make_challenge_removes_the_debris_of_a_killed_run(ws: Workspace):
    stale = ws.root / ".ch.tmp-k1ll3d_x"
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "train_000001.png").write_bytes(b"x" * 1000)
    mine = ws.root / ".ch.tmp-notes"  # not occseg's pattern: kept
    mine.write_text("mine")
    res = run("make-challenge", "--source", ws.source, "--source-images", ws.source_images, "--classes", "person",
              "--backgrounds", ws.backgrounds, "--images", "4", "--size", "96x64", "--no-progress",
              "--contact-sheet", "0", "--out", ws.root / "ch")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert not stale.exists() and mine.read_text() == "mine" and debris(ws.root) == []


def test_predict_removes_the_temporary_file_of_a_killed_run(ws: Workspace):
    stale = ws.root / ".pred.json.0123456789ab.tmp"
    stale.write_text('{"half": ')
    res = run("predict", "--method", "box-fill", "--data", ws.data, "--out", ws.root / "pred.json", "--no-progress")
    assert res.exit_code == 0, res.output
    assert not stale.exists() and debris(ws.root) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc here")
@pytest.mark.parametrize(
    "command",
    [
        ["train", "--classes", "person", "--out", "/proc/x"],
        ["predict", "--method", "box-fill", "--out", "/proc/x.json"],
        ["evaluate", "--pred", "{data}", "--out", "/proc/x"],
        ["make-challenge", "--classes", "person", "--out", "/proc/x"],
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_any_work(ws: Workspace, command: list[str]):
    data = "--source" if command[0] == "make-challenge" else "--gt" if command[0] == "evaluate" else "--data"
    args = [a.replace("{data}", str(ws.data)) for a in command] + [data, ws.data]
    assert_refused(ws.root, args, r"cannot write into /proc")


def test_predict_finds_a_bad_image_file_before_the_run(ws: Workspace):
    (ws.images / "3.png").write_bytes(b"")  # the last image: found only after all the work, before
    args = ["predict", "--data", ws.data, "--model", ws.model, "--out", ws.root / "p.json", "--no-progress"]
    assert_refused(ws.root, args, r"cannot read image header of .*3.png.*1 image file .*--skip-bad-images")
    res = run(*args, "--skip-bad-images")
    assert "occseg: warning: " in res.output and "3.png" in res.output and "skipped" in res.output
    assert "1 image file" not in res.output.splitlines()[-1]  # the run went on (to the model check here)


def test_an_image_beyond_the_decoders_limit_is_one_line(ws: Workspace):
    huge = png_header_only(ws.root / "huge.png", 60000, 60000)
    args = ["segment", "--model", ws.model, "--image", huge, "--boxes", ws.boxes, "--out", ws.root / "seg"]
    assert_refused(ws.root, args, rf"{huge}: .*too large.*pixels")
    big = ws.images / "2.png"
    png_header_only(big, 60000, 60000)
    args = ["predict", "--data", ws.data, "--model", ws.model, "--out", ws.root / "p.json", "--no-progress"]
    assert_refused(ws.root, args, rf"{big}: .*pixels")


def test_load_rgb_names_the_file_and_the_limit(tmp_path: Path):
    from occseg.data.images import ImageError, load_rgb

    huge = png_header_only(tmp_path / "huge.png", 60000, 60000)
    with pytest.raises(ImageError, match=r"huge.png: the image is too large to decode .*2\*\*30 pixels"):
        load_rgb(huge)


def test_train_finds_a_bad_image_file_before_the_run(ws: Workspace):
    (ws.images / "2.png").write_bytes(b"\x89PNG\r\n")  # truncated
    args = ["train", "--data", ws.data, "--classes", "person", "--out", ws.root / "m", "--no-progress",
            "--min-height", "0"]  # fmt: skip
    assert_refused(ws.root, args, r"cannot read image header of .*2.png.*1 image file of .*ann.json cannot be used")
