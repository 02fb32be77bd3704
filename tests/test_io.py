"""Atomic writes and JSON reading (src/occseg/io.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from occseg.io import (
    atomic_dir,
    atomic_path,
    check_not_input,
    check_output_dir,
    check_output_file,
    read_json,
    remove_stale_temporaries,
    write_json,
    write_text,
)


def test_write_json_round_trip_with_plain_file_permissions(tmp_path):
    target = tmp_path / "sub" / "out.json"
    write_json(target, {"a": [1, 2.5, None], "b": "é"}, indent=1)
    assert read_json(target) == {"a": [1, 2.5, None], "b": "é"}
    assert target.read_text(encoding="utf-8").endswith("\n")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "report.json"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_path(target) as tmp:
            tmp.write_text("new, half-written")
            raise RuntimeError("failed half-way")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    with pytest.raises(TypeError):
        write_json(target, {"not serialisable": object()})
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "x.txt"
    write_text(target, "one")
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".x.txt.") and tmp.name.endswith(".tmp")
        tmp.write_text("two")
        assert target.read_text() == "one"  # not replaced before the block ends
    assert target.read_text() == "two"


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"boxes file not found: .*missing.json"):
        read_json(tmp_path / "missing.json", what="boxes file")
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1,\n "b": }')
    with pytest.raises(ValueError, match=r"bad.json: not valid JSON \(Expecting value at line 2, column 7\)"):
        read_json(bad)
    cut = tmp_path / "cut.json"
    cut.write_text('{"a": "unterminated')
    with pytest.raises(
        ValueError, match=r"cut.json: not valid JSON \(Unterminated string starting at line 1, column 7\)"
    ):
        read_json(cut)
    binary = tmp_path / "img.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ValueError, match=r"img.json: not a UTF-8 text file, so not JSON"):
        read_json(binary)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)  # beyond Python's recursion limit
    with pytest.raises(ValueError, match=r"deep.json: not valid JSON for occseg \(arrays or objects nested too deeply"):
        read_json(deep)


def test_read_json_of_a_folder_says_so(tmp_path):
    with pytest.raises(ValueError, match=f"boxes file {tmp_path} is a folder, not a JSON file"):
        read_json(tmp_path, what="boxes file")


def test_output_checks_before_any_work(tmp_path):
    check_output_dir(tmp_path / "new" / "deeper")  # will be created: its nearest existing folder is writable
    check_output_dir(tmp_path)
    check_output_file(tmp_path / "new" / "p.json")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"--out .*f exists and is not a folder"):
        check_output_dir(tmp_path / "f", what="--out")
    with pytest.raises(ValueError, match=r"is not a folder"):
        check_output_dir(tmp_path / "f" / "sub")
    (tmp_path / "d" / "report.json").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"report.json is a folder, so report.json cannot be written there"):
        check_output_dir(tmp_path / "d", files=("report.md", "report.json"))
    with pytest.raises(ValueError, match=r"--out .*report.json is a folder, not a file"):
        check_output_file(tmp_path / "d" / "report.json", what="--out")
    (tmp_path / "d" / "images").write_text("x")
    with pytest.raises(ValueError, match=r"images is a file, so the folder images/ cannot be made there"):
        check_output_dir(tmp_path / "d", folders=("annotations", "images"))


def test_output_checks_refuse_to_overwrite_an_input_or_an_empty_path(tmp_path):
    data = tmp_path / "data.json"
    data.write_text("{}")
    check_output_file(tmp_path / "p.json", inputs=(data, None))  # not there yet: fine
    with pytest.raises(ValueError, match=r"--out .*data.json is the input file .*data.json: writing there would"):
        check_output_file(data, what="--out", inputs=(None, data))
    (tmp_path / "alias.json").symlink_to(data)  # the same file under another name
    with pytest.raises(ValueError, match=r"is the input file"):
        check_output_file(tmp_path / "alias.json", inputs=(data,))
    with pytest.raises(ValueError, match=r"--out .*/data.json is the input file"):
        check_output_dir(tmp_path, what="--out", files=("result.json", "data.json"), inputs=(data,))
    check_output_dir(tmp_path, files=("result.json",), inputs=(data,))
    check_not_input(tmp_path / "other.json", [data, tmp_path])  # a folder among the inputs is no file to overwrite
    for empty in ("", " "):
        with pytest.raises(ValueError, match=r"--out is empty: name a folder"):
            check_output_dir(empty, what="--out")
        with pytest.raises(ValueError, match=r"--out is empty: name a file"):
            check_output_file(empty, what="--out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_output_check_refuses_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="cannot write into"):
            check_output_dir(ro / "out")
    finally:
        ro.chmod(0o700)


def test_output_check_probes_the_folder_by_writing(tmp_path):
    """Root passes every permission check, so a virtual or read-only file system is found only by writing."""
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    with pytest.raises(ValueError, match=r"--out /proc/x: cannot write into /proc"):
        check_output_dir("/proc/x", what="--out")
    with pytest.raises(ValueError, match=r"--out /proc/x.json: cannot write into /proc"):
        check_output_file("/proc/x.json", what="--out")
    check_output_dir(tmp_path / "new")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_the_debris_of_a_killed_run_is_removed_at_the_next_start(tmp_path):
    out = tmp_path / "ch"
    stale = [
        tmp_path / ".ch.tmp-ab12_x9z",
        tmp_path / ".pred.json.0123456789ab.tmp",
        out / ".report.json.a1b2c3d4e5f6.tmp",
    ]
    stale[0].mkdir()
    (stale[0] / "big.png").write_bytes(b"x" * 100)
    out.mkdir()
    for f in stale[1:]:
        f.write_text("half")
    keep = [
        tmp_path / ".ch.tmp-mine",
        tmp_path / ".other.tmp-ab12_x9z",
        tmp_path / "ch.tmp-ab12_x9z",
        out / ".report.json.tmp",
    ]
    for f in keep:
        f.write_text("not occseg's")
    check_output_dir(out, files=("report.json",))
    check_output_file(tmp_path / "pred.json")
    assert not any(f.exists() for f in stale)
    assert all(f.read_text() == "not occseg's" for f in keep)
    assert remove_stale_temporaries(tmp_path / "nothing" / "here") == []


def test_atomic_dir_appears_whole_and_replaces_only_when_told(tmp_path):
    target = tmp_path / "m"
    with atomic_dir(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".m.tmp-")
        (tmp / "a").write_text("1")
        assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"] and (target / "a").read_text() == "1"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~umask
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        with atomic_dir(target) as tmp:
            (tmp / "b").write_text("2")
    assert [p.name for p in tmp_path.iterdir()] == ["m"] and [p.name for p in target.iterdir()] == ["a"]
    with pytest.raises(RuntimeError):
        with atomic_dir(target, replace=True) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["m"] and [p.name for p in target.iterdir()] == ["a"]
    with atomic_dir(target, replace=True) as tmp:
        (tmp / "b").write_text("2")
    assert [p.name for p in tmp_path.iterdir()] == ["m"] and [p.name for p in target.iterdir()] == ["b"]
    (tmp_path / "empty").mkdir()
    with atomic_dir(tmp_path / "empty") as tmp:
        (tmp / "c").write_text("3")
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["c"]


def test_an_input_inside_an_output_folder_is_refused(tmp_path):
    (tmp_path / "out" / "images").mkdir(parents=True)
    src = tmp_path / "out" / "images" / "1.png"
    src.write_bytes(b"png")
    with pytest.raises(ValueError, match=r"--out .*out/images holds the input .*1.png: writing into that folder"):
        check_output_dir(tmp_path / "out", what="--out", folders=("images",), inputs=(src,))
    with pytest.raises(ValueError, match=r"holds the input"):  # a folder given as an input, through a link
        (tmp_path / "link").symlink_to(tmp_path / "out" / "images")
        check_not_input(tmp_path / "out", [tmp_path / "link"], folder=True)
    check_not_input(tmp_path / "elsewhere", [src], folder=True)
