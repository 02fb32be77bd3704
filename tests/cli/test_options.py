"""Options shared by several commands (src/occseg/cli/options.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import torch

from occseg.cli.options import check_device, parse_class_map
from tests.cli.invoke import error_lines, run


def test_device_values_are_checked_before_any_work():
    assert check_device(None, None, "cpu") == "cpu"
    with pytest.raises(click.BadParameter, match=r"'foo' is not a torch device \(cpu, cuda or cuda:N\)"):
        check_device(None, None, "foo")
    with pytest.raises(click.BadParameter, match=r"'meta': occseg runs on cpu or cuda"):
        check_device(None, None, "meta")
    if torch.cuda.is_available():
        assert check_device(None, None, "cuda") == "cuda"
        n = torch.cuda.device_count()
        with pytest.raises(click.BadParameter, match=f"this machine has {n} CUDA device"):
            check_device(None, None, f"cuda:{n}")
    else:
        with pytest.raises(click.BadParameter, match=r"'cuda:0': CUDA is not available on this machine"):
            check_device(None, None, "cuda:0")


def test_parse_class_map_formats(tmp_path: Path):
    j = tmp_path / "map.json"
    j.write_text(json.dumps({"car": "vehicle", "truck": "vehicle", "bus": "vehicle"}))
    assert parse_class_map(str(j)) == {"car": "vehicle", "truck": "vehicle", "bus": "vehicle"}
    t = tmp_path / "map.txt"
    t.write_text("car vehicle\n\ntruck: vehicle   # a comment\nbus -> vehicle\n")
    assert parse_class_map(str(t)) == {"car": "vehicle", "truck": "vehicle", "bus": "vehicle"}
    t.write_text("traffic light: road sign\nfire hydrant -> street thing\n")  # names with spaces
    assert parse_class_map(str(t)) == {"traffic light": "road sign", "fire hydrant": "street thing"}
    b = tmp_path / "braces.txt"
    b.write_text('  {"car": "vehicle"}')  # JSON is recognised by its content too
    assert parse_class_map(str(b)) == {"car": "vehicle"}
    t.write_text("\ufeffcar vehicle\ncar vehicle\n")  # a byte-order mark, and the same line twice
    assert parse_class_map(str(t)) == {"car": "vehicle"}
    assert parse_class_map(None) == {}


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("map.json", '{"car": "vehicle",\n "truck": }', r"map.json: not valid JSON \(.* at line 2, column 11\)"),
        ("map.json", '["car", "vehicle"]', r"map.json: a class map must be a JSON object"),
        ("map.json", '{"car": 3}', r"map.json: a class map must be a JSON object"),
        ("map.txt", "car vehicle\ntruck big vehicle\n", r"map.txt, line 2: expected 'dataset_class model_class'"),
        ("map.txt", "car\n", r"map.txt, line 1: expected 'dataset_class model_class' .*, got 'car'"),
        ("map.txt", "car:\n", r"map.txt, line 1: expected 'dataset_class model_class' .*, got 'car:'"),
        ("map.txt", "truck person\ncar car\ntruck car\n", r"map.txt, lines 1 and 3: 'truck' is mapped to two model "
         r"classes, 'person' and 'car'"),
        ("map.json", '{"car": "person", "car": "dog"}', r"map.json: the class map gives 'car' two model classes, "
         r"'person' and 'dog'"),
        ("map.txt", b"\xe9t\xe9 person\n", r"map.txt: not a UTF-8 text file \(at byte 0\), so not a class map"),
        ("map.json", "[" * 100000 + "]" * 100000, r"map.json: not valid JSON for occseg \(.* nested too deeply\)"),
    ],
)  # fmt: skip
def test_a_bad_class_map_names_the_file_and_line(tmp_path: Path, name: str, text: str, message: str):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=message):
        parse_class_map(str(p))
    data = tmp_path / "data.json"
    data.write_text("{}")  # the map is read first
    res = run("train", "--data", data, "--classes", "person", "--class-map", p, "--out", tmp_path / "m")
    assert res.exit_code == 2 and len(error_lines(res)) == 1, res.output
    assert str(p) in error_lines(res)[0]
    assert not (tmp_path / "m").exists()


def test_predict_and_evaluate_check_their_output_paths_first(tmp_path: Path, train_json: Path):
    folder = tmp_path / "adir"
    folder.mkdir()
    res = run("predict", "--data", train_json, "--method", "box-fill", "--out", folder)
    assert res.exit_code == 2 and "'--out': File" in res.output and "is a directory" in res.output
    a_file = tmp_path / "afile"
    a_file.write_text("keep")
    res = run("evaluate", "--gt", train_json, "--pred", train_json, "--out", a_file)
    assert res.exit_code == 2 and "is a file" in res.output and a_file.read_text() == "keep"


def test_commands_refuse_to_overwrite_their_input_or_write_to_an_empty_path(
    tmp_path: Path, train_json: Path, segment_inputs
):
    data = tmp_path / "gt.json"
    data.write_bytes(train_json.read_bytes())
    res = run("predict", "--data", data, "--method", "box-fill", "--out", data)
    assert res.exit_code == 2 and error_lines(res) == [
        f"occseg: error: --out {data} is the input file {data}: writing there would overwrite it; choose another path"
    ]
    assert data.read_bytes() == train_json.read_bytes()  # the annotations are still there
    model_dir, image = segment_inputs
    boxes = tmp_path / "result.json"
    boxes.write_text('[{"box": [10, 10, 50, 50]}]')
    res = run("segment", "--model", model_dir, "--image", image, "--boxes", boxes, "--out", tmp_path)
    assert res.exit_code == 2 and "result.json is the input file" in error_lines(res)[0]
    assert boxes.read_text() == '[{"box": [10, 10, 50, 50]}]'
    for args in (
        ("train", "--data", data, "--classes", "person"),
        ("evaluate", "--gt", data, "--pred", data),
        ("segment", "--model", model_dir, "--image", image, "--boxes", boxes),
    ):
        res = run(*args, "--out", "")
        assert res.exit_code == 2 and "Invalid value for '--out': is empty: name a folder" in res.output, args
    res = run("predict", "--data", data, "--method", "box-fill", "--out", " ")
    assert res.exit_code == 2 and "Invalid value for '--out': is empty: name a file" in res.output
